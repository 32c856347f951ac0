//! `postfach deliver --recipient ADDR [--from ADDR]`: one message on standard input, for MTAs
//! that pipe mail to a command (Postfix `pipe`/`mailbox_command`, Exim, fetchmail's `--mda`).
//!
//! When the server runs, the message goes to it over LMTP (the configured unix socket, else the
//! first TCP address): the server stores it, and its IDLE clients see it at once. When nothing
//! answers there, this process opens the store and delivers itself, through the same
//! [`postfach_delivery::Deliverer`]; a running server's IDLE clients then see the message only
//! at their next command (the store's in-process notifier cannot reach another process).
//!
//! Exit codes are the sysexits MTAs understand: 0 delivered, 64 usage, 65 data error (message
//! refused for good, e.g. too large), 67 unknown user, 73 over quota for good (`quota.over_quota
//! = "permanent"`, or a message larger than the whole quota), 75 temporary failure (try again
//! later; also over quota by default). Anything unexpected is 75, so the MTA keeps the message.
//!
//! Input: a leading mbox `From ` line is dropped and bare LF line ends become CRLF (pipes
//! usually carry LF; IMAP serves CRLF). The message is bounded by `imap.max_message_size`.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use postfach_delivery::{DeliveryStatus, Envelope, OverQuotaAnswer, Protocol, RecipientError, dot_stuff};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::time::timeout;
use tracing::{info, warn};

use crate::config::{Config, LogConfig};
use crate::relay::read_reply;

/// Success.
pub(crate) const EX_OK: u8 = 0;
/// Bad command line (sysexits.h).
pub(crate) const EX_USAGE: u8 = 64;
/// The message was refused for good (sysexits.h EX_DATAERR).
pub(crate) const EX_DATAERR: u8 = 65;
/// No such recipient (sysexits.h EX_NOUSER).
pub(crate) const EX_NOUSER: u8 = 67;
/// The recipient's mailbox is over quota and stays so (sysexits.h EX_CANTCREAT: the output
/// cannot be created; Postfix bounces it).
pub(crate) const EX_CANTCREAT: u8 = 73;
/// Try again later (sysexits.h EX_TEMPFAIL).
pub(crate) const EX_TEMPFAIL: u8 = 75;

/// How long to wait for a running server to answer a connection attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one LMTP reply may take (the last one includes the fsync).
const REPLY_TIMEOUT: Duration = Duration::from_secs(300);

/// The arguments of `postfach deliver`.
#[derive(Debug, clap::Args)]
pub(crate) struct DeliverArgs {
    /// The envelope recipient (user, user@domain or user+detail@domain).
    #[arg(long, value_name = "ADDR")]
    recipient: String,
    /// The envelope sender (Return-Path); default: $SENDER, else the null sender.
    #[arg(long, value_name = "ADDR")]
    from: Option<String>,
}

/// True when the command line asks for `deliver` (so a usage error exits with 64, not 2).
pub(crate) fn invoked() -> bool {
    std::env::args_os().skip(1).any(|a| a == "deliver")
}

/// Runs `postfach deliver`; never returns an error, only an exit code.
pub(crate) fn main(config: Option<&Path>, args: DeliverArgs) -> ExitCode {
    let config = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("postfach: {e}");
            return ExitCode::from(EX_TEMPFAIL);
        }
    };
    let _ = crate::init_logging(&LogConfig { level: "warn".to_owned(), format: config.log.format });
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("postfach: starting the runtime: {e}");
            return ExitCode::from(EX_TEMPFAIL);
        }
    };
    ExitCode::from(runtime.block_on(deliver(config, args)))
}

async fn deliver(config: Config, args: DeliverArgs) -> u8 {
    let rcpt = args.recipient.trim().to_owned();
    let from = args.from.or_else(|| std::env::var("SENDER").ok()).unwrap_or_default().trim().to_owned();
    for (what, addr) in [("recipient", &rcpt), ("sender", &from)] {
        if addr.len() > postfach_delivery::address::MAX_PATH_LEN
            || addr.chars().any(|c| c.is_control() || c == '<' || c == '>')
        {
            eprintln!("postfach: the {what} address is not valid: {addr:?}");
            return EX_USAGE;
        }
    }
    if rcpt.is_empty() {
        eprintln!("postfach: --recipient must not be empty");
        return EX_USAGE;
    }
    let max = usize::try_from(config.imap.max_message_size).unwrap_or(usize::MAX);
    let message = match tokio::task::spawn_blocking(move || read_message(max)).await {
        Ok(Ok(Some(m))) => m,
        Ok(Ok(None)) => {
            eprintln!("postfach: the message is larger than {max} bytes (imap.max_message_size)");
            return EX_DATAERR;
        }
        Ok(Err(e)) => {
            eprintln!("postfach: reading the message: {e}");
            return EX_TEMPFAIL;
        }
        Err(_) => return EX_TEMPFAIL,
    };

    match via_server(&config, &from, &rcpt, &message).await {
        Ok(code) => return code,
        Err(why) => info!(reason = %why, "no server answered over LMTP; delivering directly"),
    }
    direct(&config, from, &rcpt, message).await
}

/// Reads standard input: `None` when it is over `max` bytes.
fn read_message(max: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut raw = Vec::new();
    let bound = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    std::io::stdin().lock().take(bound).read_to_end(&mut raw)?;
    if raw.len() > max {
        return Ok(None);
    }
    Ok(Some(normalize(&raw)))
}

/// Drops an mbox `From ` line and turns bare LF into CRLF.
pub(crate) fn normalize(raw: &[u8]) -> Vec<u8> {
    let body = if raw.starts_with(b"From ") {
        raw.iter().position(|&b| b == b'\n').map_or(&[][..], |i| &raw[i + 1..])
    } else {
        raw
    };
    let mut out = Vec::with_capacity(body.len() + body.len() / 32);
    let mut previous = 0u8;
    for &b in body {
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        previous = b;
    }
    out
}

/// Delivers through a running server's LMTP socket. `Err` (with the reason) when no server
/// answers, so the caller delivers directly; `Ok(code)` once a server took part, whatever the
/// result.
async fn via_server(config: &Config, from: &str, rcpt: &str, message: &[u8]) -> Result<u8, String> {
    if let Some(path) = &config.lmtp.listen_unix {
        match timeout(CONNECT_TIMEOUT, tokio::net::UnixStream::connect(path)).await {
            Ok(Ok(stream)) => return lmtp_client(stream, from, rcpt, message).await,
            Ok(Err(e)) => info!(path = %path.display(), error = %e, "LMTP socket not reachable"),
            Err(_) => info!(path = %path.display(), "LMTP socket did not answer"),
        }
    }
    for addr in &config.lmtp.listen {
        if addr.port() == 0 {
            continue;
        }
        // A wildcard listener is reached through loopback.
        let mut target = *addr;
        if target.ip().is_unspecified() {
            target.set_ip(if target.is_ipv4() {
                [127, 0, 0, 1].into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        match timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(target)).await {
            Ok(Ok(stream)) => return lmtp_client(stream, from, rcpt, message).await,
            Ok(Err(e)) => info!(%target, error = %e, "LMTP port not reachable"),
            Err(_) => info!(%target, "LMTP port did not answer"),
        }
    }
    Err("no LMTP listener answered".to_owned())
}

/// The exit code for an LMTP reply line.
fn exit_code(reply: &str) -> u8 {
    match reply.as_bytes().first() {
        Some(b'2') => EX_OK,
        Some(b'4') => EX_TEMPFAIL,
        // RFC 3463 X.1.1: bad destination mailbox address.
        Some(b'5') if reply.starts_with("550") || reply.contains(" 5.1.1 ") => EX_NOUSER,
        // RFC 3463 X.2.2: mailbox full.
        Some(b'5') if reply.contains(" 5.2.2 ") => EX_CANTCREAT,
        Some(b'5') => EX_DATAERR,
        _ => EX_TEMPFAIL,
    }
}

async fn lmtp_client<S>(stream: S, from: &str, rcpt: &str, message: &[u8]) -> Result<u8, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut conn = BufReader::new(stream);
    // Something that does not greet like an LMTP server is not ours: deliver directly.
    match step(&mut conn, None).await {
        Ok(greeting) if greeting.starts_with("220") => {}
        Ok(other) => return Err(format!("unexpected greeting {other:?}")),
        Err(e) => return Err(e),
    }
    // From here on the server took part: any failure is temporary (exit 75), never "direct",
    // so a message cannot be delivered twice.
    let host = crate::lmtp_conn::hostname();
    let mut expect = async |line: String, want: u8| -> Result<(), u8> {
        let reply = step(&mut conn, Some(line.as_bytes())).await.map_err(|e| {
            warn!(error = %e, "LMTP conversation with the server failed");
            EX_TEMPFAIL
        })?;
        if reply.as_bytes().first() == Some(&(b'0' + want)) {
            Ok(())
        } else {
            eprintln!("postfach: the server answered {reply:?}");
            Err(exit_code(&reply))
        }
    };
    let steps = [
        (format!("LHLO {host}"), 2),
        (format!("MAIL FROM:<{from}>"), 2),
        (format!("RCPT TO:<{rcpt}>"), 2),
        ("DATA".to_owned(), 3),
    ];
    for (line, want) in steps {
        if let Err(code) = expect(line, want).await {
            return Ok(code);
        }
    }
    let data = dot_stuff(message);
    let reply = match conn.get_mut().write_all(&data).await {
        Ok(()) => step(&mut conn, None).await,
        Err(e) => Err(e.to_string()),
    };
    let code = match reply {
        Ok(reply) => {
            if !reply.starts_with('2') {
                eprintln!("postfach: the server answered {reply:?}");
            }
            exit_code(&reply)
        }
        Err(e) => {
            warn!(error = %e, "LMTP conversation broke off after the message was sent");
            EX_TEMPFAIL
        }
    };
    let _ = conn.get_mut().write_all(b"QUIT\r\n").await;
    Ok(code)
}

/// Sends `line` (if any) and reads one reply.
async fn step<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut BufReader<S>,
    line: Option<&[u8]>,
) -> Result<String, String> {
    if let Some(line) = line {
        let stream = conn.get_mut();
        stream.write_all(line).await.map_err(|e| e.to_string())?;
        stream.write_all(b"\r\n").await.map_err(|e| e.to_string())?;
        stream.flush().await.map_err(|e| e.to_string())?;
    }
    match timeout(REPLY_TIMEOUT, read_reply(conn)).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the server did not answer in time".to_owned()),
    }
}

/// Delivers in this process (no server answered).
async fn direct(config: &Config, from: String, rcpt: &str, message: Vec<u8>) -> u8 {
    let store = match crate::open_store(config).await {
        Ok(store) => store,
        Err(e) => {
            eprintln!("postfach: {e:#}");
            return EX_TEMPFAIL;
        }
    };
    // Vacation replies and redirects go into the store's queue; the server sends them.
    let outbox = crate::queue::outbox(config, &store);
    let deliverer = crate::lmtp_conn::deliverer(config, store, None, outbox);
    let recipient = match deliverer.resolve(rcpt).await {
        Ok(r) => r,
        Err(RecipientError::Unknown) => {
            eprintln!("postfach: no such user: {rcpt}");
            return EX_NOUSER;
        }
        Err(RecipientError::BadAddress(why)) => {
            eprintln!("postfach: {why}");
            return EX_USAGE;
        }
        Err(RecipientError::Temporary(e)) => {
            eprintln!("postfach: looking up {rcpt}: {e}");
            return EX_TEMPFAIL;
        }
    };
    let envelope = Envelope { reverse_path: from, helo: None, peer: None, protocol: Protocol::Local };
    let statuses = deliverer.deliver(&envelope, message, &[recipient]).await;
    match statuses.first() {
        Some(DeliveryStatus::Delivered { .. } | DeliveryStatus::NotStored) => {
            info!(
                "delivered without the server: IDLE clients of a running server see it at their next command"
            );
            EX_OK
        }
        Some(DeliveryStatus::PermanentFailure(why)) => {
            eprintln!("postfach: {why}");
            EX_DATAERR
        }
        Some(DeliveryStatus::TemporaryFailure(why)) => {
            eprintln!("postfach: {why}");
            EX_TEMPFAIL
        }
        Some(DeliveryStatus::OverQuota(answer)) => {
            eprintln!("postfach: the mailbox of {rcpt} is over quota");
            match answer {
                OverQuotaAnswer::Temporary => EX_TEMPFAIL,
                OverQuotaAnswer::Permanent => EX_CANTCREAT,
            }
        }
        None => EX_TEMPFAIL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_normalisation() {
        assert_eq!(normalize(b"From a@b Mon Jan 1\nSubject: x\n\nbody\n"), b"Subject: x\r\n\r\nbody\r\n");
        assert_eq!(normalize(b"Subject: x\r\n\r\nalready\r\n"), b"Subject: x\r\n\r\nalready\r\n");
        assert_eq!(normalize(b"From: a@b\n"), b"From: a@b\r\n");
        assert_eq!(normalize(b""), b"");
    }

    #[test]
    fn reply_codes_map_to_sysexits() {
        assert_eq!(exit_code("250 2.0.0 <a@b> Delivered"), EX_OK);
        assert_eq!(exit_code("550 5.1.1 <a@b> User unknown"), EX_NOUSER);
        assert_eq!(exit_code("451 4.3.0 <a@b> Temporary failure"), EX_TEMPFAIL);
        assert_eq!(exit_code("552 5.3.4 too big"), EX_DATAERR);
        assert_eq!(exit_code("452 4.2.2 <a@b> Mailbox over quota"), EX_TEMPFAIL);
        assert_eq!(exit_code("552 5.2.2 <a@b> Mailbox over quota"), EX_CANTCREAT);
        assert_eq!(exit_code(""), EX_TEMPFAIL);
    }
}
