//! A small SMTP client (RFC 5321) to the configured relay (`[vacation] smtp_relay`): how
//! vacation replies and Sieve redirects leave. It implements [`postfach_delivery::Relay`].
//!
//! One connection per message: EHLO (HELO if refused), MAIL, RCPT for each recipient, DATA,
//! QUIT. A 4xx reply or a broken connection is "unreachable" (try later), a 5xx is a refusal.
//!
//! Limits: no STARTTLS and no AUTH, so the relay must accept us as a trusted client (the local
//! MTA on loopback). Every read waits at most [`STEP_TIMEOUT`], the whole exchange at most
//! [`TOTAL_TIMEOUT`]; replies are bounded in line length and line count.

use std::time::Duration;

use async_trait::async_trait;
use postfach_delivery::{OutgoingMail, Relay, RelayError, dot_stuff};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Longest wait for one reply (RFC 5321 §4.5.3.2 suggests minutes; a local relay answers fast).
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest time for one message from connect to QUIT.
const TOTAL_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest reply line accepted (RFC 5321 §4.5.3.1.5: 512 octets).
const MAX_REPLY_LINE: usize = 2048;
/// Most lines of one multi-line reply.
const MAX_REPLY_LINES: usize = 100;

/// The SMTP relay client.
#[derive(Debug, Clone)]
pub(crate) struct SmtpRelay {
    /// `host:port`.
    address: String,
    /// Our name for EHLO.
    hostname: String,
}

impl SmtpRelay {
    /// A client for the relay at `address` (`host:port`), greeting with `hostname`.
    pub(crate) fn new(address: String, hostname: String) -> Self {
        Self { address, hostname }
    }
}

#[async_trait]
impl Relay for SmtpRelay {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), RelayError> {
        let connect = timeout(STEP_TIMEOUT, TcpStream::connect(&self.address));
        let tcp = match connect.await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => {
                return Err(RelayError::Unreachable(format!("connecting to {}: {e}", self.address)));
            }
            Err(_) => {
                return Err(RelayError::Unreachable(format!("connecting to {} timed out", self.address)));
            }
        };
        match timeout(TOTAL_TIMEOUT, transaction(tcp, &self.hostname, mail)).await {
            Ok(result) => result,
            Err(_) => Err(RelayError::Unreachable("the relay took too long".to_owned())),
        }
    }
}

/// One SMTP transaction on a connected stream.
pub(crate) async fn transaction<S>(stream: S, hostname: &str, mail: &OutgoingMail) -> Result<(), RelayError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut conn = BufReader::new(stream);
    expect(&mut conn, 2, "greeting").await?;
    command(&mut conn, &format!("EHLO {hostname}")).await?;
    if let Err(RelayError::Refused(_)) = expect(&mut conn, 2, "EHLO").await {
        // RFC 5321 §3.2: fall back to HELO for an old server.
        command(&mut conn, &format!("HELO {hostname}")).await?;
        expect(&mut conn, 2, "HELO").await?;
    }
    command(&mut conn, &format!("MAIL FROM:<{}>", mail.reverse_path)).await?;
    expect(&mut conn, 2, "MAIL").await?;
    for rcpt in &mail.recipients {
        command(&mut conn, &format!("RCPT TO:<{rcpt}>")).await?;
        expect(&mut conn, 2, "RCPT").await?;
    }
    command(&mut conn, "DATA").await?;
    expect(&mut conn, 3, "DATA").await?;
    conn.get_mut().write_all(&dot_stuff(&mail.data)).await.map_err(broken)?;
    conn.get_mut().flush().await.map_err(broken)?;
    expect(&mut conn, 2, "end of data").await?;
    // The message is accepted; a failing QUIT changes nothing.
    let _ = command(&mut conn, "QUIT").await;
    Ok(())
}

fn broken(e: std::io::Error) -> RelayError {
    RelayError::Unreachable(format!("connection to the relay broke: {e}"))
}

async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut BufReader<S>,
    line: &str,
) -> Result<(), RelayError> {
    let stream = conn.get_mut();
    stream.write_all(line.as_bytes()).await.map_err(broken)?;
    stream.write_all(b"\r\n").await.map_err(broken)?;
    stream.flush().await.map_err(broken)
}

/// Reads one (possibly multi-line) reply and checks its first digit.
async fn expect<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut BufReader<S>,
    class: u8,
    what: &str,
) -> Result<String, RelayError> {
    let reply = read_reply(conn).await?;
    match reply.as_bytes().first() {
        Some(d) if *d == b'0' + class => Ok(reply),
        Some(b'4') => Err(RelayError::Unreachable(format!("{what}: {reply}"))),
        _ => Err(RelayError::Refused(format!("{what}: {reply}"))),
    }
}

/// Reads one SMTP/LMTP reply (all its lines) and returns its first line.
pub(crate) async fn read_reply<S: AsyncRead + Unpin>(conn: &mut BufReader<S>) -> Result<String, RelayError> {
    let mut text = String::new();
    for _ in 0..MAX_REPLY_LINES {
        let mut line = Vec::new();
        let read = timeout(STEP_TIMEOUT, read_line(conn, &mut line)).await;
        match read {
            Ok(Ok(0)) => return Err(RelayError::Unreachable("the relay closed the connection".to_owned())),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(broken(e)),
            Err(_) => return Err(RelayError::Unreachable("the relay did not answer".to_owned())),
        }
        let line = String::from_utf8_lossy(&line).trim_end().to_owned();
        if line.len() < 3 || !line.as_bytes()[..3].iter().all(u8::is_ascii_digit) {
            return Err(RelayError::Unreachable(format!("not an SMTP reply: {line:?}")));
        }
        // RFC 5321 §4.2.1: "250-" continues, "250 " (or a bare code) ends the reply.
        let last = line.as_bytes().get(3) != Some(&b'-');
        if text.is_empty() {
            text = line;
        }
        if last {
            return Ok(text);
        }
    }
    Err(RelayError::Unreachable("reply too long".to_owned()))
}

/// Reads up to and including LF, at most [`MAX_REPLY_LINE`] bytes.
async fn read_line<S: AsyncRead + Unpin>(
    conn: &mut BufReader<S>,
    line: &mut Vec<u8>,
) -> std::io::Result<usize> {
    loop {
        let available = conn.fill_buf().await?;
        if available.is_empty() {
            return Ok(line.len());
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        line.extend_from_slice(&available[..take]);
        conn.consume(take);
        if done {
            return Ok(line.len());
        }
        if line.len() > MAX_REPLY_LINE {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "reply line too long"));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Plays an SMTP server from a script of replies and records what the client sent.
    async fn run(replies: &'static [&'static str]) -> (Result<(), RelayError>, String) {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let mut server = BufReader::new(server);
            let mut seen = String::new();
            let mut replies = replies.iter();
            if let Some(r) = replies.next() {
                server.get_mut().write_all(r.as_bytes()).await.unwrap();
            }
            let mut in_data = false;
            loop {
                let mut line = String::new();
                if server.read_line(&mut line).await.unwrap_or(0) == 0 {
                    break;
                }
                seen.push_str(&line);
                if in_data && line != ".\r\n" {
                    continue;
                }
                in_data = line == "DATA\r\n";
                match replies.next() {
                    // The client may be gone already (it does not wait for QUIT's reply).
                    Some(r) => {
                        let _ = server.get_mut().write_all(r.as_bytes()).await;
                    }
                    None => break,
                }
            }
            seen
        });
        let mail = OutgoingMail {
            reverse_path: String::new(),
            recipients: vec!["a@x".into(), "b@x".into()],
            data: b"Subject: hi\r\n\r\n.dot\r\n".to_vec(),
        };
        let result = transaction(client, "me.example", &mail).await;
        (result, server.await.unwrap())
    }

    #[tokio::test]
    async fn a_whole_transaction() {
        let (result, seen) = run(&[
            "220 relay ESMTP\r\n",
            "250-relay\r\n250 PIPELINING\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "354 go\r\n",
            "250 queued\r\n",
            "221 bye\r\n",
        ])
        .await;
        result.unwrap();
        assert_eq!(
            seen,
            "EHLO me.example\r\nMAIL FROM:<>\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nSubject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n"
        );
    }

    #[tokio::test]
    async fn refusals_and_deferrals() {
        let (result, _) = run(&["220 x\r\n", "250 x\r\n", "250 ok\r\n", "550 no such user\r\n"]).await;
        assert!(matches!(result, Err(RelayError::Refused(r)) if r.contains("550")));
        let (result, _) = run(&["421 busy\r\n"]).await;
        assert!(matches!(result, Err(RelayError::Unreachable(_))));
        let (result, seen) = run(&[
            "220 x\r\n",
            "502 no EHLO\r\n",
            "250 x\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "354 go\r\n",
            "250 ok\r\n",
        ])
        .await;
        result.unwrap();
        assert!(seen.contains("HELO me.example\r\n"));
        let (result, _) = run(&["garbage\r\n"]).await;
        assert!(matches!(result, Err(RelayError::Unreachable(_))));
    }
}
