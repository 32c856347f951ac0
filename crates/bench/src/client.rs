//! A minimal async IMAP client: just enough protocol to drive load and notice mistakes.
//!
//! It sends tagged commands, frames responses with [`ResponseReader`], sends APPEND literals
//! (non-synchronising `{n+}` when the server offers LITERAL+, RFC 7888 §4, otherwise waiting for
//! the `+` continuation, RFC 9051 §7.5), runs IDLE (RFC 2177), and counts every protocol error it
//! sees: BAD completions, malformed or unknown responses, badly bracketed data, wrong tags and
//! unexpected continuations. It does not interpret FETCH data beyond counting it.
//!
//! Limits: every read has a timeout; one response may not exceed [`MAX_RESPONSE`] bytes.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::deflate::DeflateIo;
use crate::response::{FrameError, Kind, ResponseReader, Status, check_data, classify};

/// Largest single response accepted (a FETCH BODY[] of the biggest corpus message fits easily).
pub const MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// Why a client operation failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The server closed the connection.
    #[error("connection closed by the server")]
    Closed,
    /// No response within the timeout.
    #[error("timed out waiting for the server")]
    Timeout,
    /// The response stream could not be framed.
    #[error("framing: {0}")]
    Frame(#[from] FrameError),
    /// The server said something this client cannot continue after.
    #[error("protocol: {0}")]
    Protocol(String),
    /// TLS setup failed.
    #[error("tls: {0}")]
    Tls(String),
}

/// Where and how to connect.
#[derive(Clone)]
pub struct Target {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS from the first byte (implicit TLS) when set.
    pub tls: Option<TlsTarget>,
    /// Limit for every wait on the server.
    pub timeout: Duration,
    /// Write like Python's imaplib: Nagle's algorithm left on, synchronising literals only (no
    /// LITERAL+), the message and the CRLF after it in separate writes. A server that waits for
    /// more than it has (or acknowledges late) costs such a client a delayed-ACK round per APPEND.
    pub imaplib_style: bool,
}

/// The TLS side of a [`Target`].
#[derive(Clone)]
pub struct TlsTarget {
    /// The rustls client configuration.
    pub config: Arc<ClientConfig>,
    /// Name sent in SNI and checked against the certificate (unless verification is off).
    pub server_name: ServerName<'static>,
}

/// How the server certificate is checked.
#[derive(Debug, Clone)]
pub enum Verification<'a> {
    /// Accept any certificate (a load tool on loopback); signatures are still verified, so the
    /// handshake costs the same as a verified one.
    Insecure,
    /// Trust the certificates in this PEM file.
    CaFile(&'a Path),
}

/// Builds the TLS client configuration (aws-lc-rs provider, as the server uses).
pub fn tls_config(verification: Verification<'_>) -> Result<Arc<ClientConfig>, ClientError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?;
    let config = match verification {
        Verification::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert { provider }))
            .with_no_client_auth(),
        Verification::CaFile(path) => {
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| ClientError::Tls(format!("{}: {e}", path.display())))?;
            for cert in certs {
                let cert = cert.map_err(|e| ClientError::Tls(format!("{}: {e}", path.display())))?;
                roots.add(cert).map_err(|e| ClientError::Tls(e.to_string()))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

/// Accepts any certificate chain but still checks handshake signatures.
#[derive(Debug)]
struct AcceptAnyCert {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A byte stream, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Protocol health and traffic of one connection (or, merged, of a whole run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Protocol errors seen: BAD completions, malformed responses, wrong tags, ...
    pub protocol_errors: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// The first protocol error, for the report.
    pub first_error: Option<String>,
}

impl Counters {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Counters) {
        self.protocol_errors += other.protocol_errors;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }
}

/// The completion of one command.
#[derive(Debug, Clone)]
pub struct Done {
    /// OK, NO or BAD.
    pub status: Status,
    /// Text after the status word (response code included).
    pub text: String,
    /// Untagged responses received for this command.
    pub untagged: u64,
    /// Bytes received for this command, its completion included.
    pub bytes: u64,
}

impl Done {
    /// True for an OK completion.
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }
}

/// One untagged data response handed to a command's observer.
#[derive(Debug)]
pub struct Data<'a> {
    /// `n` of `* n EXISTS`, `* n FETCH`, ...
    pub number: Option<u32>,
    /// The keyword, upper-cased (`EXISTS`, `FETCH`, `SEARCH`, ...).
    pub keyword: &'a [u8],
    /// The whole response, literals included.
    pub raw: &'a [u8],
}

/// One IMAP connection.
pub struct Client {
    io: Box<dyn Io>,
    reader: ResponseReader,
    next_tag: u64,
    capabilities: Vec<String>,
    timeout: Duration,
    /// Protocol errors and traffic so far.
    pub counters: Counters,
    chunk: Vec<u8>,
    /// See [`Target::imaplib_style`].
    imaplib_style: bool,
}

impl Client {
    /// Connects, completes TLS if configured, and reads the greeting.
    pub async fn connect(target: &Target) -> Result<Client, ClientError> {
        let connect = TcpStream::connect((target.host.as_str(), target.port));
        let tcp = tokio::time::timeout(target.timeout, connect).await.map_err(|_| ClientError::Timeout)??;
        tcp.set_nodelay(!target.imaplib_style)?;
        let io: Box<dyn Io> = match &target.tls {
            None => Box::new(tcp),
            Some(tls) => {
                let connector = TlsConnector::from(Arc::clone(&tls.config));
                let handshake = connector.connect(tls.server_name.clone(), tcp);
                let stream = tokio::time::timeout(target.timeout, handshake)
                    .await
                    .map_err(|_| ClientError::Timeout)??;
                Box::new(stream)
            }
        };
        let mut client = Client {
            io,
            reader: ResponseReader::new(MAX_RESPONSE),
            next_tag: 1,
            capabilities: Vec::new(),
            timeout: target.timeout,
            counters: Counters::default(),
            chunk: vec![0; 64 * 1024],
            imaplib_style: target.imaplib_style,
        };
        client.greeting().await?;
        Ok(client)
    }

    /// Whether the last CAPABILITY seen lists `name` (case-insensitive).
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.iter().any(|c| c.eq_ignore_ascii_case(name))
    }

    /// The capabilities last seen.
    pub fn capabilities(&self) -> &[String] {
        &self.capabilities
    }

    /// Asks for CAPABILITY (RFC 9051 §6.1.1) and remembers the answer.
    pub async fn refresh_capabilities(&mut self) -> Result<Done, ClientError> {
        self.command("CAPABILITY", &mut |_| {}).await
    }

    /// `LOGIN user password` (RFC 9051 §6.2.3); a NO is returned, not an error.
    pub async fn login(&mut self, user: &str, password: &str) -> Result<Done, ClientError> {
        let cmd = format!("LOGIN {} {}", quote(user), quote(password));
        let done = self.command(&cmd, &mut |_| {}).await?;
        // RFC 9051 §6.2.3: capabilities may change after login; the OK usually carries them.
        if done.is_ok() && !done.text.to_ascii_uppercase().starts_with("[CAPABILITY ") {
            self.refresh_capabilities().await?;
        }
        Ok(done)
    }

    /// Sends `tag SP command CRLF` and reads up to its completion, handing every untagged data
    /// response to `observe`.
    pub async fn command(
        &mut self,
        command: &str,
        observe: &mut (dyn FnMut(&Data<'_>) + Send),
    ) -> Result<Done, ClientError> {
        let tag = self.tag();
        let mut line = Vec::with_capacity(tag.len() + command.len() + 3);
        line.extend_from_slice(tag.as_bytes());
        line.push(b' ');
        line.extend_from_slice(command.as_bytes());
        line.extend_from_slice(b"\r\n");
        self.write(&[&line]).await?;
        self.finish(&tag, observe).await
    }

    /// Sends `tag SP command CRLF` without waiting (pipelining, RFC 9051 §5.5); the caller
    /// reads the completions in order with [`Client::complete`]. `literal` is sent as a
    /// non-synchronising literal right after `command`, which must end with `{n+}`.
    pub async fn send(&mut self, command: &str, literal: Option<&[u8]>) -> Result<String, ClientError> {
        let tag = self.tag();
        let head = format!("{tag} {command}\r\n");
        match literal {
            Some(body) => self.write(&[head.as_bytes(), body, b"\r\n"]).await?,
            None => self.write(&[head.as_bytes()]).await?,
        }
        Ok(tag)
    }

    /// Reads up to the completion of `tag`, sent earlier with [`Client::send`].
    pub async fn complete(
        &mut self,
        tag: &str,
        observe: &mut (dyn FnMut(&Data<'_>) + Send),
    ) -> Result<Done, ClientError> {
        self.finish(tag, observe).await
    }

    /// `APPEND mailbox (flags) literal [ (flags) literal ...]`: one message is a plain APPEND,
    /// several are one MULTIAPPEND (RFC 3502). Uses LITERAL+ when the server offers it.
    pub async fn append(
        &mut self,
        mailbox: &str,
        flags: &str,
        messages: &[&[u8]],
    ) -> Result<Done, ClientError> {
        let tag = self.tag();
        let plus = self.has_capability("LITERAL+") && !self.imaplib_style;
        let mut head = format!("{tag} APPEND {}", quote(mailbox));
        for (i, message) in messages.iter().enumerate() {
            if !flags.is_empty() {
                let _ = write!(head, " ({flags})");
            }
            let marker = if plus { "+" } else { "" };
            let _ = write!(head, " {{{}{marker}}}\r\n", message.len());
            if plus {
                self.write(&[head.as_bytes(), message]).await?;
            } else {
                self.write(&[head.as_bytes()]).await?;
                // RFC 9051 §7.5: wait for "+" before sending a synchronising literal; the server
                // may instead refuse with a tagged completion.
                if let Some(done) = self.await_continuation(&tag).await? {
                    return Ok(done);
                }
                self.write(&[message]).await?;
            }
            head.clear();
            if i + 1 == messages.len() {
                head.push_str("\r\n");
            }
        }
        if messages.is_empty() {
            head.push_str("\r\n");
        }
        self.write(&[head.as_bytes()]).await?;
        self.finish(&tag, &mut |_| {}).await
    }

    /// Starts IDLE (RFC 2177) and waits for the continuation; returns the tag to end it with.
    pub async fn idle(&mut self) -> Result<String, ClientError> {
        let tag = self.tag();
        self.write(&[format!("{tag} IDLE\r\n").as_bytes()]).await?;
        match self.await_continuation(&tag).await? {
            None => Ok(tag),
            Some(done) => {
                Err(ClientError::Protocol(format!("IDLE refused: {:?} {}", done.status, done.text)))
            }
        }
    }

    /// `COMPRESS DEFLATE` (RFC 4978): after an OK, everything is compressed both ways.
    pub async fn compress(&mut self) -> Result<Done, ClientError> {
        let done = self.command("COMPRESS DEFLATE", &mut |_| {}).await?;
        if done.is_ok() {
            // A placeholder while the stream moves into the compression layer.
            let plain = std::mem::replace(&mut self.io, Box::new(tokio::io::duplex(1).0));
            self.io = Box::new(DeflateIo::new(plain));
        }
        Ok(done)
    }

    /// Reads untagged responses (during IDLE) until one with `keyword` (e.g. `EXISTS`) arrives.
    pub async fn wait_untagged(&mut self, keyword: &str) -> Result<(), ClientError> {
        loop {
            while let Some(response) = self.reader.next_response()? {
                if let Kind::Data { keyword: got, .. } = classify(response)
                    && got == keyword.as_bytes()
                {
                    return Ok(());
                }
                if let Kind::UntaggedStatus { status: Status::Bye, text } = classify(response) {
                    return Err(ClientError::Protocol(format!("BYE {}", String::from_utf8_lossy(text))));
                }
            }
            self.fill().await?;
        }
    }

    /// Ends IDLE with `DONE` and reads the completion.
    pub async fn idle_done(&mut self, tag: &str) -> Result<Done, ClientError> {
        self.write(&[b"DONE\r\n"]).await?;
        self.finish(tag, &mut |_| {}).await
    }

    /// LOGOUT (RFC 9051 §6.1.3): expects BYE then OK, then closes the socket.
    pub async fn logout(mut self) -> Result<Counters, ClientError> {
        let tag = self.tag();
        self.write(&[format!("{tag} LOGOUT\r\n").as_bytes()]).await?;
        let done = self.finish(&tag, &mut |_| {}).await?;
        if !done.is_ok() {
            self.protocol_error(format!("LOGOUT answered {:?}", done.status));
        }
        let _ = self.io.shutdown().await;
        Ok(self.counters)
    }

    /// Closes the connection without LOGOUT.
    pub async fn close(mut self) -> Counters {
        let _ = self.io.shutdown().await;
        self.counters
    }

    fn tag(&mut self) -> String {
        let tag = format!("b{}", self.next_tag);
        self.next_tag += 1;
        tag
    }

    async fn write(&mut self, parts: &[&[u8]]) -> Result<(), ClientError> {
        let io = &mut self.io;
        let timeout = self.timeout;
        let work = async {
            for part in parts {
                io.write_all(part).await?;
            }
            io.flush().await
        };
        tokio::time::timeout(timeout, work).await.map_err(|_| ClientError::Timeout)??;
        self.counters.bytes_out += parts.iter().map(|p| p.len() as u64).sum::<u64>();
        Ok(())
    }

    /// Reads more bytes into the framer.
    async fn fill(&mut self) -> Result<(), ClientError> {
        let read = self.io.read(&mut self.chunk);
        let n = tokio::time::timeout(self.timeout, read).await.map_err(|_| ClientError::Timeout)??;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        self.counters.bytes_in += n as u64;
        self.reader.push(self.chunk.get(..n).unwrap_or_default());
        Ok(())
    }

    fn protocol_error(&mut self, what: String) {
        self.counters.protocol_errors += 1;
        if self.counters.first_error.is_none() {
            self.counters.first_error = Some(what);
        }
    }

    async fn greeting(&mut self) -> Result<(), ClientError> {
        loop {
            if let Some(response) = self.reader.next_response()? {
                // RFC 9051 §7.1.1-7.1.5: the greeting is OK, PREAUTH or BYE.
                let (status, text) = match classify(response) {
                    Kind::UntaggedStatus { status, text } => {
                        (status, String::from_utf8_lossy(text).into_owned())
                    }
                    _ => {
                        let line = String::from_utf8_lossy(response).trim_end().to_owned();
                        self.protocol_error(format!("bad greeting: {line}"));
                        return Err(ClientError::Protocol(format!("bad greeting: {line}")));
                    }
                };
                return match status {
                    Status::Ok | Status::Preauth => {
                        self.note_capability_code(&text);
                        Ok(())
                    }
                    _ => Err(ClientError::Protocol(format!("greeting {status:?} {text}"))),
                };
            }
            self.fill().await?;
        }
    }

    /// Reads until the continuation request `+`, or the completion of `tag` if the server
    /// refuses (then `Some(done)`).
    async fn await_continuation(&mut self, tag: &str) -> Result<Option<Done>, ClientError> {
        loop {
            while let Some(response) = self.reader.next_response()? {
                if classify(response) == Kind::Continuation {
                    return Ok(None);
                }
                let len = response.len() as u64;
                let response = response.to_vec();
                if let Some(done) = self.handle(tag, &response, len, &mut |_| {})? {
                    return Ok(Some(done));
                }
            }
            self.fill().await?;
        }
    }

    /// Reads responses until the completion of `tag`.
    async fn finish(
        &mut self,
        tag: &str,
        observe: &mut (dyn FnMut(&Data<'_>) + Send),
    ) -> Result<Done, ClientError> {
        let mut untagged = 0u64;
        let mut bytes = 0u64;
        loop {
            // The response borrows the reader; everything below works on disjoint fields.
            while let Some(response) = self.reader.next_response()? {
                bytes += response.len() as u64;
                match classify(response) {
                    Kind::Tagged { tag: got, status, text } if got == tag.as_bytes() => {
                        let text = String::from_utf8_lossy(text).into_owned();
                        if status == Status::Bad {
                            self.protocol_error(format!("{tag} BAD {text}"));
                        }
                        if status == Status::Ok {
                            self.note_capability_code(&text);
                        }
                        return Ok(Done { status, text, untagged, bytes });
                    }
                    Kind::Data { number, keyword } => {
                        untagged += 1;
                        if !check_data(response) {
                            let line = preview(response);
                            self.counters.protocol_errors += 1;
                            self.counters.first_error.get_or_insert(format!("badly bracketed: {line}"));
                            continue;
                        }
                        if keyword == b"CAPABILITY" {
                            let words = String::from_utf8_lossy(response);
                            self.capabilities =
                                words.split_whitespace().skip(2).map(str::to_owned).collect::<Vec<_>>();
                        }
                        observe(&Data { number, keyword: &keyword, raw: response });
                    }
                    Kind::UntaggedStatus { status, text: _ } => {
                        untagged += 1;
                        // Response codes such as [UIDVALIDITY n] and [HIGHESTMODSEQ n] live here.
                        let keyword: &[u8] = match status {
                            Status::Ok => b"OK",
                            Status::No => b"NO",
                            Status::Bad => b"BAD",
                            Status::Bye => b"BYE",
                            Status::Preauth => b"PREAUTH",
                        };
                        observe(&Data { number: None, keyword, raw: response });
                    }
                    _ => {
                        let what = format!("unexpected response to {tag}: {}", preview(response));
                        self.counters.protocol_errors += 1;
                        self.counters.first_error.get_or_insert(what);
                    }
                }
            }
            self.fill().await?;
        }
    }

    /// Handles one response while waiting for a continuation; `Some` when it completes `tag`.
    fn handle(
        &mut self,
        tag: &str,
        response: &[u8],
        bytes: u64,
        observe: &mut (dyn FnMut(&Data<'_>) + Send),
    ) -> Result<Option<Done>, ClientError> {
        match classify(response) {
            Kind::Tagged { tag: got, status, text } if got == tag.as_bytes() => {
                let text = String::from_utf8_lossy(text).into_owned();
                if status == Status::Bad {
                    self.protocol_error(format!("{tag} BAD {text}"));
                }
                Ok(Some(Done { status, text, untagged: 0, bytes }))
            }
            Kind::Data { number, keyword } => {
                if check_data(response) {
                    observe(&Data { number, keyword: &keyword, raw: response });
                } else {
                    self.protocol_error(format!("badly bracketed: {}", preview(response)));
                }
                Ok(None)
            }
            Kind::UntaggedStatus { status: Status::Bye, text } => {
                Err(ClientError::Protocol(format!("BYE {}", String::from_utf8_lossy(text))))
            }
            Kind::UntaggedStatus { .. } => Ok(None),
            _ => {
                self.protocol_error(format!("unexpected response to {tag}: {}", preview(response)));
                Ok(None)
            }
        }
    }

    /// Picks up `[CAPABILITY ...]` from a greeting or completion (RFC 9051 §7.1).
    fn note_capability_code(&mut self, text: &str) {
        let upper = text.to_ascii_uppercase();
        if let Some(rest) = upper.strip_prefix("[CAPABILITY ") {
            let end = rest.find(']').unwrap_or(rest.len());
            let list = text.get(12..12 + end).unwrap_or_default();
            self.capabilities = list.split_whitespace().map(str::to_owned).collect();
        }
    }
}

/// The first line of a response, shortened, for error messages.
fn preview(response: &[u8]) -> String {
    let line =
        String::from_utf8_lossy(response.get(..response.len().min(120)).unwrap_or_default()).into_owned();
    line.lines().next().unwrap_or_default().to_owned()
}

/// An IMAP quoted string (RFC 9051 §4.3) for user names, passwords and mailbox names.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Extracts the number after `name` in text such as `[UIDVALIDITY 3857529045]` or a STATUS
/// response's `(MESSAGES 231 UIDNEXT 44292)`.
pub fn number_after(text: &[u8], name: &str) -> Option<u64> {
    let upper = text.to_ascii_uppercase();
    let needle = format!("{name} ");
    let pos = upper.windows(needle.len()).position(|w| w == needle.as_bytes())?;
    let digits: String = text
        .get(pos + needle.len()..)?
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .map(|b| char::from(*b))
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("INBOX"), "\"INBOX\"");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn numbers_in_text() {
        assert_eq!(number_after(b"[UIDVALIDITY 3857529045] UIDs valid", "UIDVALIDITY"), Some(3_857_529_045));
        assert_eq!(number_after(b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)", "MESSAGES"), Some(231));
        assert_eq!(number_after(b"* STATUS x (messages 5)", "MESSAGES"), Some(5));
        assert_eq!(number_after(b"nothing", "MESSAGES"), None);
    }

    /// A scripted server on loopback: checks the bytes the client sends and the counters it keeps.
    #[tokio::test]
    async fn scripted_session() {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            let (r, mut w) = sock.into_split();
            let mut r = BufReader::new(r);
            let mut line = String::new();
            w.write_all(b"* OK [CAPABILITY IMAP4rev2 LITERAL+] ready\r\n").await.unwrap();
            r.read_line(&mut line).await.unwrap();
            assert_eq!(line, "b1 LOGIN \"u\" \"p\"\r\n");
            w.write_all(b"b1 OK [CAPABILITY IMAP4rev2 LITERAL+ IDLE] done\r\n").await.unwrap();
            line.clear();
            r.read_line(&mut line).await.unwrap();
            assert_eq!(line, "b2 APPEND \"INBOX\" (\\Seen) {3+}\r\n");
            let mut body = [0u8; 5];
            r.read_exact(&mut body).await.unwrap();
            assert_eq!(&body, b"abc\r\n");
            // A wrong tag and a malformed line are protocol errors; the right tag completes.
            w.write_all(b"* 1 EXISTS\r\nzz OK what\r\n* HELLO\r\nb2 OK [APPENDUID 1 1] ok\r\n")
                .await
                .unwrap();
            line.clear();
            r.read_line(&mut line).await.unwrap();
            assert_eq!(line, "b3 FETCH 1 BODY[]\r\n");
            w.write_all(b"* 1 FETCH (BODY[] {4}\r\nab\r\n)\r\nb3 OK\r\n").await.unwrap();
            line.clear();
            r.read_line(&mut line).await.unwrap();
            assert_eq!(line, "b4 LOGOUT\r\n");
            w.write_all(b"* BYE bye\r\nb4 OK\r\n").await.unwrap();
        });
        let target = Target {
            host: "127.0.0.1".into(),
            port,
            tls: None,
            timeout: Duration::from_secs(5),
            imaplib_style: false,
        };
        let mut c = Client::connect(&target).await.unwrap();
        assert!(c.has_capability("literal+"));
        assert!(c.login("u", "p").await.unwrap().is_ok());
        assert!(c.has_capability("IDLE"));
        let done = c.append("INBOX", "\\Seen", &[b"abc"]).await.unwrap();
        assert!(done.is_ok());
        assert_eq!(done.untagged, 1);
        assert_eq!(c.counters.protocol_errors, 2);
        let mut fetched = 0;
        let done = c
            .command("FETCH 1 BODY[]", &mut |d| {
                assert_eq!(d.keyword, b"FETCH");
                fetched += 1;
            })
            .await
            .unwrap();
        assert!(done.is_ok());
        assert_eq!(fetched, 1);
        let counters = c.logout().await.unwrap();
        assert_eq!(counters.protocol_errors, 2);
        assert!(counters.first_error.unwrap().contains("zz OK"));
        server.await.unwrap();
    }
}
