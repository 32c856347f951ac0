//! The IMAP session fed arbitrary command sequences, as the connection driver would feed it:
//! bytes → framer → `Session::handle`, with AUTHENTICATE and IDLE lines, against a SQLite
//! store in a temporary directory shared by all runs. The first input byte chooses whether the
//! session logs in first (as `fuzz`, whose password hash is made cheap to verify, so runs stay
//! fast) and whether the connection counts as TLS. Output is discarded as it is produced.

#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use argon2::password_hash::PasswordHasher;
use argon2::{Algorithm, Argon2, Params, Version};
use libfuzzer_sys::fuzz_target;
use postfach_auth::Authenticator;
use postfach_imap::{ConnInfo, Out, Outcome, ServerContext, Session, SessionConfig, Transport};
use postfach_proto::{FrameEvent, Framer, FramingLimits};
use postfach_store::{AccountStore, MailStore};

/// What every run shares: the runtime, the store and its directory.
struct World {
    runtime: tokio::runtime::Runtime,
    ctx: Arc<ServerContext>,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let (runtime, store, dir) = postfach_fuzz::runtime_and_store();
        // Minimal argon2id cost: the fuzzer should spend its time in the session, not hashing.
        let params = Params::new(8, 1, 1, None).expect("params");
        let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"fuzz")
            .expect("hash")
            .to_string();
        runtime.block_on(store.create_account("fuzz", &hash)).expect("account");
        let mail: Arc<dyn MailStore> = store.clone();
        let share: Arc<dyn postfach_store::ShareStore> = store.clone();
        let accounts: Arc<dyn AccountStore> = store;
        let ctx = ServerContext {
            store: mail,
            share,
            auth: Authenticator::new(Arc::clone(&accounts)),
            accounts,
            config: SessionConfig { max_message_size: 64 * 1024, ..SessionConfig::default() },
        };
        World { runtime, ctx: Arc::new(ctx), _dir: dir }
    })
}

const LIMITS: FramingLimits = FramingLimits {
    max_line: 8 * 1024,
    max_literal: 64 * 1024,
    max_command: 128 * 1024,
    max_literals: 16,
    max_text: 16 * 1024,
    max_skip_literal: 128 * 1024,
};

/// Most commands one run executes, so a run stays short.
const MAX_COMMANDS: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else { return };
    let world = world();
    world.runtime.block_on(async {
        let transport = if mode & 2 == 0 { Transport::Tls } else { Transport::Plain };
        let peer = SocketAddr::from(([192, 0, 2, 1], 40000));
        let mut session = Session::new(Arc::clone(&world.ctx), ConnInfo { peer, transport });
        let mut out = Out::new();
        session.greeting(&mut out);
        if mode & 1 == 1 {
            session.handle(b"l LOGIN fuzz fuzz".to_vec(), &mut out).await;
        }
        let mut framer = Framer::new(LIMITS);
        framer.push(input);
        let mut commands = 0;
        'run: while let Some(event) = framer.next() {
            let _ = out.take();
            let command = match event {
                FrameEvent::Command(c) => c,
                FrameEvent::NeedContinuation => continue,
                // Only with `gate_literals` (the server's literal budget), which this target
                // leaves off; take the literal if it ever comes.
                FrameEvent::LiteralAnnounced { .. } => {
                    framer.accept_literal();
                    continue;
                }
                FrameEvent::Rejected { tag, error, fatal } => {
                    let tag = tag.as_ref().map(|t| t.as_str().as_bytes());
                    session.rejected(tag, &error.to_string(), &mut out);
                    if fatal {
                        break;
                    }
                    continue;
                }
            };
            commands += 1;
            if commands > MAX_COMMANDS {
                break;
            }
            let mut outcome = session.handle(command, &mut out).await;
            loop {
                let _ = out.take();
                outcome = match outcome {
                    Outcome::Continue => break,
                    Outcome::Close => break 'run,
                    Outcome::StartTls => {
                        framer.discard_buffered();
                        session.tls_started();
                        break;
                    }
                    // The session's side of COMPRESS is done; the fuzz input stays uncompressed.
                    Outcome::Compress => break,
                    Outcome::AuthContinue => match framer.next_line() {
                        Some(Ok(line)) => {
                            session.auth_line(postfach_secret::Secret::from(line), &mut out).await
                        }
                        _ => break 'run,
                    },
                    Outcome::Idle => {
                        session.idle_update(&mut out).await;
                        session.idle_keepalive(&mut out);
                        match framer.next_line() {
                            Some(Ok(line)) => session.idle_line(line, &mut out).await,
                            _ => break 'run,
                        }
                    }
                };
            }
        }
        session.bye("fuzz run over", &mut out);
    });
});
