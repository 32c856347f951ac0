//! TLS on IMAP connections through rustls' unbuffered API, with buffers this module owns.
//!
//! rustls' buffered connection (what tokio-rustls drives) keeps a receive buffer of at least
//! 4 KiB for the whole life of a connection: it sizes it before every read, including the read
//! that waits for a silent client, and never frees it. With thousands of connections in IDLE
//! that was a third of a TLS connection's cost. [`TlsConn`] instead drives an
//! [`UnbufferedServerConnection`] and keeps three buffers of its own, each freed the moment it
//! is empty:
//! - `incoming`: TLS bytes read from the socket and not yet processed (at most one record,
//!   [`MAX_RECORD`]; a read borrows a temporary buffer of that size only while it is polled);
//! - `received`: decrypted bytes the reader has not taken yet;
//! - `outgoing`: encrypted records not yet written to the socket (at most one write's worth,
//!   [`MAX_WRITE`] of plaintext, plus what rustls asks to send on its own: session tickets, a
//!   key update, alerts, close_notify; reading pauses while a record's worth of that waits).
//!
//! A connection waiting for its client therefore holds rustls' state (record keys, the TLS 1.3
//! key schedule) and no buffer at all.
//!
//! [`accept`] runs the handshake. It first reads the ClientHello through rustls' [`Acceptor`]
//! (which parses it without choosing a configuration), for two things: an ACME TLS-ALPN-01
//! validation (RFC 8737) is answered with its own configuration through tokio-rustls, replaying
//! the bytes already read; and the name the client asked for (SNI) is kept for the TLS 1.2
//! channel binding. The unbuffered connection has no keying-material exporter, so for the TLS
//! 1.3 channel binding (`tls-exporter`, RFC 9266) each handshake gets a copy of the server
//! configuration whose key log keeps the exporter secret of that one connection; `binding`
//! derives the binding from it and the secret is dropped (the copy of the configuration is
//! released with the handshake state).
//!
//! Errors: a peer that sends something rustls refuses gets `InvalidData` (the connection ends; no
//! alert is sent); a peer that closes in the middle of a record gets `UnexpectedEof`; a closed
//! transport without close_notify between records is an ordinary end of stream (IMAP frames
//! its own data, so truncation cannot go unnoticed).
//!
//! POP3 and ManageSieve connections still use tokio-rustls (their idle connections are few).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use rustls::server::{Acceptor, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
};
use rustls::{KeyLog, ProtocolVersion, ServerConfig, SupportedCipherSuite};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tracing::debug;

use postfach_auth::scram::ChannelBinding;

use crate::acme::Challenges;
use crate::binding;
use crate::tls::Certificates;

/// The largest TLS record rustls accepts (5 bytes of header, 2^14 bytes of plaintext and the
/// 2048 bytes of expansion TLS 1.2 allows): the most the receive buffer holds, a ClientHello
/// included.
pub(crate) const MAX_RECORD: usize = 5 + (1 << 14) + 2048;
/// Most plaintext one write encrypts: one full record. It bounds `outgoing` together with the
/// rule that a write first sends what is left of the previous one.
const MAX_WRITE: usize = 1 << 14;
/// Room per record for header, tag and TLS 1.3 content type; `encrypt` says if it needs more.
const RECORD_OVERHEAD: usize = 5 + 16 + 1 + 8;

/// What an IMAPS or STARTTLS handshake turned out to be.
pub(crate) enum Accepted<S> {
    /// A client: serve it, with the channel binding of the connection if it has one.
    Connection(Box<TlsConn<S>>, Option<ChannelBinding>),
    /// A CA's TLS-ALPN-01 validation, answered and closed.
    Challenge,
}

/// A TLS connection after its handshake: [`AsyncRead`] and [`AsyncWrite`] of plaintext over
/// the transport `S`.
pub(crate) struct TlsConn<S> {
    io: S,
    conn: UnbufferedServerConnection,
    /// TLS bytes received and not processed yet (a partial record); no allocation when empty.
    incoming: Vec<u8>,
    /// Decrypted bytes the reader has not taken yet, from `received_from`.
    received: Vec<u8>,
    received_from: usize,
    /// TLS records to send, from `sent_to`.
    outgoing: Vec<u8>,
    sent_to: usize,
    /// The client sent close_notify or closed the transport: reads return end of stream.
    read_closed: bool,
    /// close_notify is queued (shutdown).
    close_notify_queued: bool,
}

/// What [`TlsConn::process`] should do once rustls can take application data.
enum Action<'a> {
    /// Nothing: only take in what was received.
    Nothing,
    /// Encrypt this plaintext into `outgoing`.
    Encrypt(&'a [u8]),
    /// Queue close_notify.
    CloseNotify,
}

impl<S> TlsConn<S> {
    /// The transport.
    pub(crate) fn get_ref(&self) -> &S {
        &self.io
    }

    /// Runs rustls over the received bytes until it needs more of them: decrypted data goes to
    /// `received`, records rustls wants to send to `outgoing`; then does `action` if rustls
    /// can take application data. Returns whether it could (`false` during the handshake and
    /// after close_notify was sent).
    fn process(&mut self, action: Action<'_>) -> io::Result<bool> {
        loop {
            let UnbufferedStatus { discard, state } = self.conn.process_tls_records(&mut self.incoming);
            let mut done = None;
            match state.map_err(tls_error)? {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.map_err(tls_error)?;
                        self.received.extend_from_slice(record.payload);
                    }
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    append(&mut self.outgoing, 64, |out| match encode.encode(out) {
                        Ok(n) => Ok(Ok(n)),
                        Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size })) => {
                            Ok(Err(required_size))
                        }
                        Err(e) => Err(io::Error::other(e)),
                    })?;
                }
                // `outgoing` is sent before anything queued after it, so the records count as
                // sent: nothing can overtake them.
                ConnectionState::TransmitTlsData(transmit) => transmit.done(),
                ConnectionState::PeerClosed => self.read_closed = true,
                ConnectionState::Closed => {
                    self.read_closed = true;
                    done = Some(false);
                }
                ConnectionState::BlockedHandshake => done = Some(false),
                ConnectionState::WriteTraffic(mut write) => {
                    match action {
                        Action::Nothing => {}
                        Action::Encrypt(data) => {
                            append(&mut self.outgoing, data.len() + RECORD_OVERHEAD, |out| {
                                match write.encrypt(data, out) {
                                    Ok(n) => Ok(Ok(n)),
                                    Err(EncryptError::InsufficientSize(InsufficientSizeError {
                                        required_size,
                                    })) => Ok(Err(required_size)),
                                    Err(e) => Err(io::Error::other(e)),
                                }
                            })?;
                        }
                        Action::CloseNotify => {
                            append(&mut self.outgoing, RECORD_OVERHEAD + 2, |out| {
                                match write.queue_close_notify(out) {
                                    Ok(n) => Ok(Ok(n)),
                                    Err(EncryptError::InsufficientSize(InsufficientSizeError {
                                        required_size,
                                    })) => Ok(Err(required_size)),
                                    Err(e) => Err(io::Error::other(e)),
                                }
                            })?;
                        }
                    }
                    done = Some(true);
                }
                ConnectionState::ReadEarlyData(_) => {
                    // Early data is not enabled (`max_early_data_size` is 0).
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "unexpected TLS early data"));
                }
                _ => return Err(io::Error::other("unknown TLS connection state")),
            }
            self.incoming.drain(..discard);
            if let Some(done) = done {
                if self.incoming.is_empty() {
                    self.incoming = Vec::new();
                }
                return Ok(done);
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsConn<S> {
    /// Writes `outgoing` to the transport; frees it once it is all sent.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent_to < self.outgoing.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.outgoing[self.sent_to..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent_to += n;
        }
        self.outgoing = Vec::new();
        self.sent_to = 0;
        Poll::Ready(Ok(()))
    }

    /// Reads more TLS bytes into `incoming`; 0 at the end of the transport. The read buffer
    /// exists only while the read is polled.
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let room = MAX_RECORD.saturating_sub(self.incoming.len());
        if room == 0 {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "TLS message larger than one record",
            )));
        }
        let mut chunk = Vec::with_capacity(room);
        let mut buf = ReadBuf::uninit(chunk.spare_capacity_mut());
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
        self.incoming.extend_from_slice(buf.filled());
        Poll::Ready(Ok(buf.filled().len()))
    }

    /// Sends what is queued (the rest of a write, session tickets, close_notify).
    async fn send(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_send(cx)).await
    }

    /// Reads more TLS bytes; 0 at the end of the transport.
    async fn receive(&mut self) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_receive(cx)).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsConn<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.received_from < this.received.len() {
                let pending = &this.received[this.received_from..];
                let n = pending.len().min(buf.remaining());
                buf.put_slice(&pending[..n]);
                this.received_from += n;
                if this.received_from == this.received.len() {
                    this.received = Vec::new();
                    this.received_from = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.read_closed {
                return Poll::Ready(Ok(()));
            }
            // What rustls queued while reading (alerts refusing a TLS 1.2 renegotiation, say)
            // goes out. A client that does not read does not stop us reading, until that
            // output reaches a record's worth: then it waits, so it cannot grow the buffer.
            match this.poll_send(cx) {
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending if this.outgoing.len() - this.sent_to >= MAX_RECORD => return Poll::Pending,
                _ => {}
            }
            if ready!(this.poll_receive(cx))? == 0 {
                if !this.incoming.is_empty() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the client closed the connection in the middle of a TLS record",
                    )));
                }
                this.read_closed = true;
                return Poll::Ready(Ok(()));
            }
            this.process(Action::Nothing)?;
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsConn<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // The previous write's records first: at most one write is buffered.
        ready!(this.poll_send(cx))?;
        let data = &data[..data.len().min(MAX_WRITE)];
        if !this.process(Action::Encrypt(data))? {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the TLS connection is closed",
            )));
        }
        // Started now; a full socket is waited for by the next write or the flush.
        if let Poll::Ready(Err(e)) = this.poll_send(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_notify_queued {
            this.close_notify_queued = true;
            this.process(Action::CloseNotify)?;
        }
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// Appends what `fill` writes to `out`, giving it `room` bytes first and as many as it asks
/// for (`Ok(Err(size))`) if that was not enough.
fn append(
    out: &mut Vec<u8>,
    mut room: usize,
    mut fill: impl FnMut(&mut [u8]) -> io::Result<Result<usize, usize>>,
) -> io::Result<()> {
    let start = out.len();
    loop {
        out.resize(start + room, 0);
        match fill(&mut out[start..]) {
            Ok(Ok(n)) => {
                out.truncate(start + n);
                return Ok(());
            }
            Ok(Err(needed)) if needed > room => room = needed,
            Ok(Err(_)) => {
                out.truncate(start);
                return Err(io::Error::other("TLS output does not fit"));
            }
            Err(e) => {
                out.truncate(start);
                return Err(e);
            }
        }
    }
}

/// rustls' refusal of what the peer sent, as an I/O error.
fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Keeps the TLS 1.3 exporter secret of one connection (for the channel binding).
#[derive(Default)]
struct ExporterSecret(Mutex<Option<Vec<u8>>>);

impl std::fmt::Debug for ExporterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExporterSecret")
    }
}

/// rustls' name of the exporter secret in the key log (the NSS key log format).
const EXPORTER_SECRET: &str = "EXPORTER_SECRET";

impl KeyLog for ExporterSecret {
    fn log(&self, label: &str, _client_random: &[u8], secret: &[u8]) {
        if label == EXPORTER_SECRET {
            *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(secret.to_vec());
        }
    }

    fn will_log(&self, label: &str) -> bool {
        label == EXPORTER_SECRET
    }
}

impl ExporterSecret {
    fn take(&self) -> Option<Vec<u8>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// A transport whose first bytes are replayed from a buffer (the ClientHello [`accept`] read
/// before it knew an ACME validation was coming).
struct Replay<S> {
    prefix: Vec<u8>,
    at: usize,
    io: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.prefix.len() {
            let n = (this.prefix.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The server side of a TLS handshake on `io` with `config` (implicit TLS or STARTTLS),
/// answering TLS-ALPN-01 validations when `challenges` is given. `certificates` serve the TLS
/// 1.2 channel binding. The caller bounds the time it takes.
pub(crate) async fn accept<S>(
    config: &Arc<ServerConfig>,
    challenges: Option<&Challenges>,
    certificates: Option<&Certificates>,
    mut io: S,
) -> io::Result<Accepted<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // The ClientHello, parsed by rustls without a configuration yet.
    let mut incoming = Vec::new();
    let mut acceptor = Acceptor::default();
    let accepted = loop {
        let room = MAX_RECORD.saturating_sub(incoming.len());
        if room == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "ClientHello larger than one record"));
        }
        let mut chunk = vec![0u8; room];
        let n = tokio::io::AsyncReadExt::read(&mut io, &mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before the ClientHello"));
        }
        incoming.extend_from_slice(&chunk[..n]);
        let mut fresh = &chunk[..n];
        while !fresh.is_empty() {
            acceptor.read_tls(&mut fresh)?;
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => break accepted,
            Ok(None) => {}
            Err((e, mut alert)) => {
                let mut out = Vec::new();
                let _ = alert.write_all(&mut out);
                let _ = io.write_all(&out).await;
                return Err(tls_error(e));
            }
        }
    };
    let hello = accepted.client_hello();
    if let Some(acme) = challenges.and_then(|c| c.alpn_config(&hello)) {
        drop(accepted);
        let replay = Replay { prefix: incoming, at: 0, io };
        let start = tokio_rustls::LazyConfigAcceptor::new(Acceptor::default(), replay).await?;
        let mut tls = start.into_stream(acme).await?;
        // RFC 8737 §3: the handshake is the whole answer; no application data follows.
        let _ = tls.shutdown().await;
        debug!("answered a tls-alpn-01 validation");
        return Ok(Accepted::Challenge);
    }
    let server_name = hello.server_name().map(str::to_owned);
    drop(accepted);

    let exporter = Arc::new(ExporterSecret::default());
    let mut own = ServerConfig::clone(config);
    own.key_log = exporter.clone();
    let conn = UnbufferedServerConnection::new(Arc::new(own)).map_err(tls_error)?;
    let mut tls = TlsConn {
        io,
        conn,
        incoming,
        received: Vec::new(),
        received_from: 0,
        outgoing: Vec::new(),
        sent_to: 0,
        read_closed: false,
        close_notify_queued: false,
    };
    loop {
        tls.process(Action::Nothing)?;
        tls.send().await?;
        if !tls.conn.is_handshaking() {
            break;
        }
        if tls.receive().await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed during the TLS handshake"));
        }
    }
    let binding = match (tls.conn.protocol_version(), tls.conn.negotiated_cipher_suite()) {
        (Some(ProtocolVersion::TLSv1_3), Some(SupportedCipherSuite::Tls13(suite))) => {
            exporter.take().and_then(|secret| binding::tls_exporter(suite, &secret))
        }
        (Some(ProtocolVersion::TLSv1_2), _) => {
            binding::tls_server_end_point(certificates, server_name.as_deref())
        }
        _ => None,
    };
    Ok(Accepted::Connection(Box::new(tls), binding))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use postfach_auth::scram::ChannelBindingType;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, DuplexStream};
    use tokio::time::timeout;

    use super::*;
    use crate::config::Config;

    const PATIENCE: Duration = Duration::from_secs(5);

    /// The server's TLS setup (a generated certificate) and a client configuration trusting it.
    fn setup(dir: &std::path::Path) -> (crate::tls::Tls, rustls::ClientConfig) {
        let config = Config { data_dir: dir.to_owned(), ..Config::default() };
        let tls = crate::tls::setup(&config).unwrap();
        let client = client_config(dir, &[&rustls::version::TLS13, &rustls::version::TLS12]);
        (tls, client)
    }

    /// A client configuration for `versions` trusting the certificate generated in `dir`.
    fn client_config(
        dir: &std::path::Path,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> rustls::ClientConfig {
        let pem = std::fs::read(dir.join("tls/cert.pem")).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(&pem).unwrap()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth()
    }

    /// Handshakes a tokio-rustls client with [`accept`] over an in-memory pipe of `pipe` bytes.
    async fn pair(
        tls: &crate::tls::Tls,
        client: rustls::ClientConfig,
        pipe: usize,
    ) -> (Box<TlsConn<DuplexStream>>, Option<ChannelBinding>, tokio_rustls::client::TlsStream<DuplexStream>)
    {
        let (client_io, server_io) = tokio::io::duplex(pipe);
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let config = Arc::clone(tls.acceptor.config());
        let certificates = Arc::clone(&tls.certificates);
        let server = tokio::spawn(async move { accept(&config, None, Some(&certificates), server_io).await });
        let name = ServerName::try_from("localhost").unwrap();
        let client = timeout(PATIENCE, connector.connect(name, client_io)).await.unwrap().unwrap();
        match timeout(PATIENCE, server).await.unwrap().unwrap().unwrap() {
            Accepted::Connection(conn, binding) => (conn, binding, client),
            Accepted::Challenge => panic!("not a challenge"),
        }
    }

    #[tokio::test]
    async fn data_flows_both_ways_in_many_records_and_close_notify_ends_it() {
        let dir = tempfile::tempdir().unwrap();
        let (tls, client) = setup(dir.path());
        // A small pipe: writes fill it, so partial sends and flushes are exercised.
        let (mut server, _, mut client) = pair(&tls, client, 1024).await;
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let expected = big.clone();
        let sender = tokio::spawn(async move {
            server.write_all(b"* OK hello\r\n").await.unwrap();
            server.write_all(&big).await.unwrap();
            server.flush().await.unwrap();
            let mut line = vec![0u8; 8];
            server.read_exact(&mut line).await.unwrap();
            assert_eq!(&line, b"a NOOP\r\n");
            let mut upload = vec![0u8; 100_000];
            server.read_exact(&mut upload).await.unwrap();
            assert!(upload.iter().all(|b| *b == b'u'));
            server.shutdown().await.unwrap();
            server
        });
        let mut greeting = [0u8; 12];
        client.read_exact(&mut greeting).await.unwrap();
        assert_eq!(&greeting, b"* OK hello\r\n");
        let mut received = vec![0u8; expected.len()];
        timeout(PATIENCE, client.read_exact(&mut received)).await.unwrap().unwrap();
        assert!(received == expected, "the data arrives unchanged");
        client.write_all(b"a NOOP\r\n").await.unwrap();
        client.write_all(&vec![b'u'; 100_000]).await.unwrap();
        client.flush().await.unwrap();
        // close_notify: a clean end of stream for the client.
        let mut rest = Vec::new();
        timeout(PATIENCE, client.read_to_end(&mut rest)).await.unwrap().unwrap();
        assert!(rest.is_empty());
        let mut server = sender.await.unwrap();
        // The client's close_notify and end of stream: a clean end for the server too.
        client.shutdown().await.unwrap();
        drop(client);
        let mut buf = [0u8; 16];
        assert_eq!(timeout(PATIENCE, server.read(&mut buf)).await.unwrap().unwrap(), 0);
    }

    /// The point of this module: a connection waiting for its client holds no buffer.
    #[tokio::test]
    async fn a_waiting_connection_holds_no_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let (tls, client) = setup(dir.path());
        let (mut server, _, mut client) = pair(&tls, client, 64 * 1024).await;
        server.write_all(b"* OK hello\r\n").await.unwrap();
        server.flush().await.unwrap();
        let mut greeting = [0u8; 12];
        client.read_exact(&mut greeting).await.unwrap();
        client.write_all(b"a IDLE\r\n").await.unwrap();
        client.flush().await.unwrap();
        let mut line = [0u8; 8];
        server.read_exact(&mut line).await.unwrap();
        let mut buf = [0u8; 64];
        assert!(timeout(Duration::from_millis(50), server.read(&mut buf)).await.is_err());
        assert_eq!(server.incoming.capacity(), 0);
        assert_eq!(server.received.capacity(), 0);
        assert_eq!(server.outgoing.capacity(), 0);
    }

    /// SCRAM-SHA-256-PLUS: the binding the server derives is the one the client exports
    /// (TLS 1.3) or the certificate's hash (TLS 1.2).
    #[tokio::test]
    async fn channel_bindings_match_the_clients() {
        let dir = tempfile::tempdir().unwrap();
        let (tls, client) = setup(dir.path());
        let (_server, binding, client_tls) = pair(&tls, client, 64 * 1024).await;
        let exported = client_tls
            .get_ref()
            .1
            .export_keying_material(
                vec![0u8; ChannelBinding::EXPORTER_LEN],
                ChannelBinding::EXPORTER_LABEL,
                None,
            )
            .unwrap();
        assert_eq!(binding, Some(ChannelBinding::new(ChannelBindingType::TlsExporter, exported)));

        let tls12 = client_config(dir.path(), &[&rustls::version::TLS12]);
        let (_server, binding, client_tls) = pair(&tls, tls12, 64 * 1024).await;
        assert_eq!(client_tls.get_ref().1.protocol_version(), Some(ProtocolVersion::TLSv1_2));
        let leaf = client_tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
        assert_eq!(binding, Some(ChannelBinding::tls_server_end_point(&leaf)));
    }

    /// A client that comes back resumes its session (TLS 1.3 tickets, which `accept` sends at the
    /// end of the handshake; the per-handshake copy of the configuration shares the session
    /// store).
    #[tokio::test]
    async fn a_returning_client_resumes_its_session() {
        let dir = tempfile::tempdir().unwrap();
        let (tls, client) = setup(dir.path());
        // Clones share the client's session store.
        for expected in [rustls::HandshakeKind::Full, rustls::HandshakeKind::Resumed] {
            let (mut server, binding, mut client) = pair(&tls, client.clone(), 64 * 1024).await;
            assert_eq!(client.get_ref().1.handshake_kind(), Some(expected));
            assert!(binding.is_some(), "a resumed session binds too");
            // Reading the greeting takes in the tickets sent before it.
            server.write_all(b"* OK\r\n").await.unwrap();
            server.flush().await.unwrap();
            let mut greeting = [0u8; 6];
            client.read_exact(&mut greeting).await.unwrap();
        }
    }

    /// A TLS 1.3 key update from the client (it asks for ours too) keeps the connection going.
    #[tokio::test]
    async fn key_updates_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let (tls, client) = setup(dir.path());
        let (mut server, _, mut client) = pair(&tls, client, 64 * 1024).await;
        for round in 0..3u8 {
            client.get_mut().1.refresh_traffic_keys().unwrap();
            client.write_all(&[b'a' + round; 10]).await.unwrap();
            client.flush().await.unwrap();
            let mut got = [0u8; 10];
            timeout(PATIENCE, server.read_exact(&mut got)).await.unwrap().unwrap();
            assert_eq!(got, [b'a' + round; 10]);
            server.write_all(b"reply\r\n").await.unwrap();
            server.flush().await.unwrap();
            let mut reply = [0u8; 7];
            timeout(PATIENCE, client.read_exact(&mut reply)).await.unwrap().unwrap();
            assert_eq!(&reply, b"reply\r\n");
        }
    }

    /// Not TLS at all: a clear error at once, and the buffer never grew beyond one record.
    #[tokio::test]
    async fn a_client_speaking_cleartext_gets_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (tls, _) = setup(dir.path());
        let (mut client_io, server_io) = tokio::io::duplex(1024);
        let config = Arc::clone(tls.acceptor.config());
        let server = tokio::spawn(async move { accept(&config, None, None, server_io).await.map(|_| ()) });
        client_io.write_all(b"a LOGIN alice secret\r\n").await.unwrap();
        let err = timeout(PATIENCE, server).await.unwrap().unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    }

    /// Garbage after the handshake, a record cut off by the end of the connection, and a record
    /// header announcing more than TLS allows: each a clear error, none a hang.
    #[tokio::test]
    async fn broken_records_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (tls, client) = setup(dir.path());
        let cases: [(&[u8], io::ErrorKind); 3] = [
            (b"\x17\x03\x03\x00\x20not encrypted by any key at all!", io::ErrorKind::InvalidData),
            (b"\x17\x03\x03\x01\x00cut short", io::ErrorKind::UnexpectedEof),
            (b"\x17\x03\x03\xff\xff", io::ErrorKind::InvalidData),
        ];
        for (bytes, kind) in cases {
            let (mut server, _, mut client) = pair(&tls, client.clone(), 64 * 1024).await;
            client.get_mut().0.write_all(bytes).await.unwrap();
            client.get_mut().0.shutdown().await.unwrap();
            let mut buf = [0u8; 64];
            let err = timeout(PATIENCE, server.read(&mut buf)).await.unwrap().unwrap_err();
            assert_eq!(err.kind(), kind, "{err}");
            // And stays an error rather than turning into data or an end of stream.
            assert!(server.read(&mut buf).await.is_err());
        }
    }
}
