//! Parser ↔ response writer round trips where one applies: what the writer produces for a
//! string, an astring (ACL identifiers and rights, quota roots) or a mailbox name, put into a
//! command, must parse back to the same value. Also,
//! a mailbox name parsed from arbitrary input, written and parsed again, stays the same.

#![no_main]

use libfuzzer_sys::fuzz_target;
use postfach_proto::types::{CommandBody, WireMailboxName};
use postfach_proto::{parse_command, write_astring, write_mailbox, write_string};

/// Parses `t <verb> <arg>` and returns the body.
fn reparse(verb: &[u8], arg: &[u8]) -> CommandBody {
    let mut cmd = b"t ".to_vec();
    cmd.extend_from_slice(verb);
    cmd.extend_from_slice(arg);
    match parse_command(&cmd) {
        Ok(c) => c.body,
        Err(e) => panic!("the writer's output does not parse: {e}; {:?}", String::from_utf8_lossy(&cmd)),
    }
}

fn selected_name(body: CommandBody) -> WireMailboxName {
    match body {
        CommandBody::Select { mailbox, .. } => mailbox,
        other => panic!("expected SELECT, got {}", other.name()),
    }
}

fuzz_target!(|data: &[u8]| {
    // Strings: NUL cannot travel in an IMAP string (RFC 9051 §9 CHAR8 excludes %x00).
    if !data.contains(&0) {
        let mut arg = Vec::new();
        write_astring(&mut arg, data);
        arg.push(b' ');
        write_string(&mut arg, data);
        match reparse(b"LOGIN ", &arg) {
            CommandBody::Login { username, password } => {
                assert_eq!(username, data);
                assert_eq!(password.expose_secret(), data);
            }
            other => panic!("expected LOGIN, got {}", other.name()),
        }
        // ACL identifiers and rights, quota roots: astrings that must be UTF-8 (RFC 4314 §7,
        // RFC 9208 §7), as the response writer writes them.
        if let Ok(text) = std::str::from_utf8(data) {
            let mut arg = b"INBOX ".to_vec();
            write_astring(&mut arg, data);
            arg.push(b' ');
            write_astring(&mut arg, data);
            match reparse(b"SETACL ", &arg) {
                CommandBody::SetAcl { identifier, rights, .. } => {
                    assert_eq!(identifier, text);
                    assert_eq!(rights, text);
                }
                other => panic!("expected SETACL, got {}", other.name()),
            }
            let mut arg = Vec::new();
            write_astring(&mut arg, data);
            assert_eq!(reparse(b"GETQUOTA ", &arg), CommandBody::GetQuota(text.to_owned()));
        }
    }

    // Mailbox names, in modified UTF-7 and in UTF-8. Names with control characters are not
    // mailbox names (the parser refuses them), and INBOX in any case is normalised to INBOX.
    if let Ok(name) = std::str::from_utf8(data) {
        let inbox = name.len() >= 5
            && name.as_bytes()[..5].eq_ignore_ascii_case(b"INBOX")
            && (name.len() == 5 || name.as_bytes()[5] == b'/');
        if !name.chars().any(char::is_control) && !inbox {
            for utf8 in [false, true] {
                let mut arg = Vec::new();
                write_mailbox(&mut arg, name, utf8);
                let parsed = selected_name(reparse(b"SELECT ", &arg));
                assert_eq!(parsed.decode(utf8).ok().as_deref(), Some(name), "utf8 {utf8}");
            }
        }
    }

    // Parsed from arbitrary input, then written and parsed again.
    if let Ok(command) = parse_command(data) {
        if let CommandBody::Select { mailbox, .. } = command.body {
            for utf8 in [false, true] {
                if let Ok(name) = mailbox.decode(utf8) {
                    let mut arg = Vec::new();
                    write_mailbox(&mut arg, &name, utf8);
                    let again = selected_name(reparse(b"SELECT ", &arg));
                    assert_eq!(again.decode(utf8).ok(), Some(name));
                }
            }
        }
    }
});
