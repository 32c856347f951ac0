//! A small blocking IMAP4rev1 client: enough to read a whole account (LOGIN, LIST, LSUB,
//! EXAMINE, UID FETCH) over cleartext, STARTTLS or implicit TLS (rustls).
//!
//! Responses are read whole, literals included, and split into [`Token`]s; a literal is
//! never larger than [`MAX_LITERAL`]. Every read waits at most [`TIMEOUT`].

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::{Error, Result};

/// The longest literal accepted from the server (a message; the store refuses larger ones).
pub(crate) const MAX_LITERAL: usize = 1 << 30;
/// The longest line accepted from the server outside literals.
const MAX_LINE: usize = 16 << 20;
/// How long one read may wait.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(300);
/// The system's CA bundle (Debian), trusted when no `--ca-file` is given.
pub(crate) const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (port 993).
    Implicit,
    /// Cleartext, then STARTTLS before logging in (port 143).
    StartTls,
    /// Cleartext all the way: only for a server on this machine or a trusted network.
    None,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// One piece of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// An atom (or number), with any `[...]` section kept in it (`BODY[]`).
    Atom(String),
    /// A quoted string or a literal.
    Bytes(Vec<u8>),
    /// `NIL`.
    Nil,
    /// A parenthesised list.
    List(Vec<Token>),
}

impl Token {
    /// The text of an atom or string.
    pub(crate) fn text(&self) -> Option<String> {
        match self {
            Token::Atom(a) => Some(a.clone()),
            Token::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Token::Nil | Token::List(_) => None,
        }
    }
}

/// One response: its text (literals replaced by a marker) and the literals.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    text: Vec<u8>,
    literals: Vec<Vec<u8>>,
}

impl Response {
    /// The line as text, literals shown as `{n}`.
    pub(crate) fn line(&self) -> String {
        String::from_utf8_lossy(&self.text).into_owned()
    }

    /// The tokens of the line.
    pub(crate) fn tokens(&self) -> Vec<Token> {
        let mut at = 0;
        let mut out = Vec::new();
        while let Some(token) = self.token(&mut at) {
            out.push(token);
        }
        out
    }

    fn token(&self, at: &mut usize) -> Option<Token> {
        let t = &self.text;
        while *at < t.len() && t[*at] == b' ' {
            *at += 1;
        }
        let c = *t.get(*at)?;
        match c {
            b')' => None,
            b'(' => {
                *at += 1;
                let mut items = Vec::new();
                while let Some(token) = self.token(at) {
                    items.push(token);
                }
                // The closing parenthesis.
                if t.get(*at) == Some(&b')') {
                    *at += 1;
                }
                Some(Token::List(items))
            }
            b'"' => {
                *at += 1;
                let mut s = Vec::new();
                while let Some(&b) = t.get(*at) {
                    *at += 1;
                    match b {
                        b'\\' => {
                            if let Some(&e) = t.get(*at) {
                                s.push(e);
                                *at += 1;
                            }
                        }
                        b'"' => break,
                        _ => s.push(b),
                    }
                }
                Some(Token::Bytes(s))
            }
            0 => {
                // A literal marker: NUL, its index, NUL.
                *at += 1;
                let start = *at;
                while *at < t.len() && t[*at] != 0 {
                    *at += 1;
                }
                let index: usize = std::str::from_utf8(&t[start..*at]).ok()?.parse().ok()?;
                *at += 1;
                Some(Token::Bytes(self.literals.get(index)?.clone()))
            }
            _ => {
                let start = *at;
                let mut depth = 0usize;
                while let Some(&b) = t.get(*at) {
                    match b {
                        b'[' => depth += 1,
                        b']' => depth = depth.saturating_sub(1),
                        b' ' | b'(' | b')' if depth == 0 => break,
                        _ => {}
                    }
                    *at += 1;
                }
                let atom = String::from_utf8_lossy(&t[start..*at]).into_owned();
                Some(if atom.eq_ignore_ascii_case("NIL") { Token::Nil } else { Token::Atom(atom) })
            }
        }
    }
}

/// A connection to an IMAP server.
pub(crate) struct Client {
    /// Taken only while STARTTLS moves it into TLS.
    stream: Option<Stream>,
    pending: Vec<u8>,
    tag: u32,
    /// The capabilities the server announced last.
    pub(crate) capabilities: Vec<String>,
}

impl Client {
    /// Connects, protects the connection as asked and reads the greeting.
    pub(crate) fn connect(
        host: &str,
        port: u16,
        security: Security,
        ca_file: Option<&Path>,
    ) -> Result<Client> {
        let tcp = TcpStream::connect((host, port))
            .map_err(|e| Error::Imap(format!("connecting to {host}:{port}: {e}")))?;
        tcp.set_read_timeout(Some(TIMEOUT)).map_err(|e| Error::Imap(e.to_string()))?;
        tcp.set_write_timeout(Some(TIMEOUT)).map_err(|e| Error::Imap(e.to_string()))?;
        let tls = match security {
            Security::None | Security::StartTls => None,
            Security::Implicit => Some(tls_config(ca_file)?),
        };
        let stream = match tls {
            Some(config) => Stream::Tls(Box::new(tls_stream(tcp, host, config)?)),
            None => Stream::Plain(tcp),
        };
        let mut client =
            Client { stream: Some(stream), pending: Vec::new(), tag: 0, capabilities: Vec::new() };
        let greeting = client.read_response()?.line();
        if !greeting.starts_with("* OK") && !greeting.starts_with("* PREAUTH") {
            return Err(Error::Imap(format!("the server does not greet: {greeting}")));
        }
        client.note_capabilities(&greeting);
        if security == Security::StartTls {
            client.command("STARTTLS")?;
            let Some(Stream::Plain(tcp)) = client.stream.take() else {
                return Err(Error::Imap("STARTTLS on a TLS connection".to_owned()));
            };
            if !client.pending.is_empty() {
                return Err(Error::Imap("the server sent data after the STARTTLS response".to_owned()));
            }
            client.stream = Some(Stream::Tls(Box::new(tls_stream(tcp, host, tls_config(ca_file)?)?)));
            client.capabilities.clear();
        }
        Ok(client)
    }

    /// Logs in (LOGIN; the password goes as a literal when it is not a plain quoted string).
    pub(crate) fn login(&mut self, user: &str, password: &str) -> Result<()> {
        self.tag += 1;
        let tag = format!("m{}", self.tag);
        let mut line = format!("{tag} LOGIN {} ", quote(user));
        if password.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            line.push_str(&quote(password));
            line.push_str("\r\n");
            self.send(line.as_bytes())?;
        } else {
            line.push_str(&format!("{{{}}}\r\n", password.len()));
            self.send(line.as_bytes())?;
            let go = self.read_response()?.line();
            if !go.starts_with('+') {
                return Err(Error::Imap(format!("LOGIN refused: {go}")));
            }
            self.send(password.as_bytes())?;
            self.send(b"\r\n")?;
        }
        let (status, _) = self.finish(&tag)?;
        if !status.starts_with("OK") {
            return Err(Error::Imap(format!("LOGIN failed: {status}")));
        }
        self.note_capabilities(&status);
        if self.capabilities.is_empty() {
            self.command("CAPABILITY")?;
        }
        Ok(())
    }

    /// Whether the server announced `capability`.
    pub(crate) fn has(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c.eq_ignore_ascii_case(capability))
    }

    /// Runs a command; returns its untagged responses. Fails unless the answer is OK.
    pub(crate) fn command(&mut self, command: &str) -> Result<Vec<Response>> {
        self.tag += 1;
        let tag = format!("m{}", self.tag);
        self.send(format!("{tag} {command}\r\n").as_bytes())?;
        let (status, untagged) = self.finish(&tag)?;
        if !status.starts_with("OK") {
            let shown = if command.len() > 80 { &command[..80] } else { command };
            return Err(Error::Imap(format!("{shown}: {status}")));
        }
        Ok(untagged)
    }

    /// Reads up to the tagged response: (its text after the tag, the untagged responses).
    fn finish(&mut self, tag: &str) -> Result<(String, Vec<Response>)> {
        let prefix = format!("{tag} ");
        let mut untagged = Vec::new();
        loop {
            let response = self.read_response()?;
            let line = response.line();
            if let Some(status) = line.strip_prefix(&prefix) {
                return Ok((status.to_owned(), untagged));
            }
            if line.starts_with("* CAPABILITY ") {
                self.note_capabilities(&line);
            }
            if line.starts_with("* BYE") {
                return Err(Error::Imap(format!("the server closed the connection: {line}")));
            }
            untagged.push(response);
        }
    }

    fn note_capabilities(&mut self, line: &str) {
        let text = match line.find("CAPABILITY ") {
            Some(at) => &line[at + "CAPABILITY ".len()..],
            None => return,
        };
        let text = text.split(']').next().unwrap_or(text);
        self.capabilities = text.split_ascii_whitespace().map(str::to_owned).collect();
    }

    fn stream(&mut self) -> Result<&mut Stream> {
        self.stream.as_mut().ok_or_else(|| Error::Imap("the connection is gone".to_owned()))
    }

    fn send(&mut self, bytes: &[u8]) -> Result<()> {
        let stream = self.stream()?;
        stream
            .write_all(bytes)
            .and_then(|()| stream.flush())
            .map_err(|e| Error::Imap(format!("sending: {e}")))
    }

    /// One response, with its literals.
    fn read_response(&mut self) -> Result<Response> {
        let mut text = Vec::new();
        let mut literals = Vec::new();
        loop {
            let line = self.read_line()?;
            match literal_size(&line) {
                Some((size, open)) => {
                    if size > MAX_LITERAL {
                        return Err(Error::Imap(format!("the server sent a literal of {size} bytes")));
                    }
                    text.extend_from_slice(&line[..open]);
                    text.extend_from_slice(format!("\0{}\0", literals.len()).as_bytes());
                    literals.push(self.read_exact(size)?);
                }
                None => {
                    text.extend_from_slice(&line);
                    return Ok(Response { text, literals });
                }
            }
        }
    }

    /// The next line without CRLF.
    fn read_line(&mut self) -> Result<Vec<u8>> {
        loop {
            if let Some(end) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line = self.pending[..end].to_vec();
                self.pending.drain(..end + 2);
                return Ok(line);
            }
            if self.pending.len() > MAX_LINE {
                return Err(Error::Imap("the server sent an endless line".to_owned()));
            }
            self.fill()?;
        }
    }

    fn read_exact(&mut self, n: usize) -> Result<Vec<u8>> {
        while self.pending.len() < n {
            self.fill()?;
        }
        Ok(self.pending.drain(..n).collect())
    }

    fn fill(&mut self) -> Result<()> {
        let mut buf = [0u8; 64 * 1024];
        match self.stream()?.read(&mut buf) {
            Ok(0) => Err(Error::Imap("the server closed the connection".to_owned())),
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                Ok(())
            }
            Err(e) => Err(Error::Imap(format!("reading: {e}"))),
        }
    }
}

/// `{n}` at the end of a line: (n, where the `{` is).
fn literal_size(line: &[u8]) -> Option<(usize, usize)> {
    if !line.ends_with(b"}") {
        return None;
    }
    let open = line.iter().rposition(|b| *b == b'{')?;
    let digits = &line[open + 1..line.len() - 1];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some((std::str::from_utf8(digits).ok()?.parse().ok()?, open))
}

/// A quoted string (RFC 9051 `quoted`).
pub(crate) fn quote(s: &str) -> String {
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

fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>> {
    let path = ca_file.unwrap_or(Path::new(SYSTEM_CA_FILE));
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| Error::Imap(format!("reading CA certificates from {}: {e}", path.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| Error::Imap(format!("{}: {e}", path.display())))?;
        // A bundle may hold certificates this verifier cannot use; the others still count.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(Error::Imap(format!("no usable CA certificate in {}", path.display())));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Imap(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn tls_stream(
    tcp: TcpStream,
    host: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let name = ServerName::try_from(host.to_owned()).map_err(|e| Error::Imap(format!("{host}: {e}")))?;
    let conn = rustls::ClientConnection::new(config, name).map_err(|e| Error::Imap(e.to_string()))?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| Error::Imap(format!("TLS with {host}: {e}")))?;
    }
    Ok(stream)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn response(text: &[u8], literals: Vec<Vec<u8>>) -> Response {
        Response { text: text.to_vec(), literals }
    }

    #[test]
    fn tokens_of_a_fetch_with_a_literal() {
        let r = response(
            b"* 3 FETCH (UID 7 FLAGS (\\Seen $Forwarded) INTERNALDATE \" 3-Mar-2022 12:00:00 +0000\" BODY[] \x000\x00 MODSEQ (12))",
            vec![b"Subject: x\r\n\r\ny".to_vec()],
        );
        let tokens = r.tokens();
        assert_eq!(tokens[0], Token::Atom("*".into()));
        let Token::List(items) = &tokens[3] else { panic!("{tokens:?}") };
        assert_eq!(items[0], Token::Atom("UID".into()));
        assert_eq!(
            items[3],
            Token::List(vec![Token::Atom("\\Seen".into()), Token::Atom("$Forwarded".into())])
        );
        assert_eq!(items[5], Token::Bytes(b" 3-Mar-2022 12:00:00 +0000".to_vec()));
        assert_eq!(items[6], Token::Atom("BODY[]".into()));
        assert_eq!(items[7], Token::Bytes(b"Subject: x\r\n\r\ny".to_vec()));
        assert_eq!(items[9], Token::List(vec![Token::Atom("12".into())]));
    }

    #[test]
    fn list_lines_and_sections() {
        let r = response(b"* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"", vec![]);
        let tokens = r.tokens();
        assert_eq!(tokens[3], Token::Bytes(b"/".to_vec()));
        assert_eq!(tokens[4], Token::Bytes(b"Sent Items".to_vec()));
        let r = response(b"* 1 FETCH (BODY[HEADER.FIELDS (A B)] NIL)", vec![]);
        let Token::List(items) = &r.tokens()[3] else { panic!() };
        assert_eq!(items, &vec![Token::Atom("BODY[HEADER.FIELDS (A B)]".into()), Token::Nil]);
        assert_eq!(literal_size(b"* 1 FETCH (BODY[] {42}"), Some((42, 18)));
        assert_eq!(literal_size(b"* OK {x}"), None);
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
