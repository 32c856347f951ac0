//! The LMTP session (sans-I/O, `postfach_delivery::LmtpSession`) fed arbitrary client bytes, as
//! the connection driver would feed it, against a SQLite store in a temporary directory shared
//! by all runs, with two accounts (`alice`, `bob`) so that RCPT and DATA reach real deliveries.
//! The first input byte chooses how the rest is cut into reads (1 to 64 bytes each, or all at
//! once), so command lines, dot-stuffing and the end line are split at every place. Every
//! reply must be a CRLF-terminated line starting with a three-digit code and ' ' or '-'.

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use postfach_delivery::{Deliverer, DeliveryConfig, Flow, LmtpLimits, LmtpSession, Stores};
use postfach_store::AccountStore;

/// What every run shares: the runtime, the deliverer and the store's directory.
struct World {
    runtime: tokio::runtime::Runtime,
    deliverer: Arc<Deliverer>,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let (runtime, store, dir) = postfach_fuzz::runtime_and_store();
        for user in ["alice", "bob"] {
            runtime.block_on(store.create_account(user, "not-a-hash")).expect("account");
        }
        let stores = Stores { mail: store.clone(), accounts: store.clone(), sieve: store.clone(), share: store };
        let config = DeliveryConfig {
            hostname: "mx.fuzz".into(),
            max_message_size: LIMITS.max_message_size,
            ..DeliveryConfig::default()
        };
        // No relay: vacation replies and redirects have nowhere to go, deliveries still run.
        let deliverer = Arc::new(Deliverer::new(stores, config, None));
        World { runtime, deliverer, _dir: dir }
    })
}

/// Small bounds, so that the limits are reached within libFuzzer's input sizes.
const LIMITS: LmtpLimits =
    LmtpLimits { max_line: 512, max_recipients: 8, max_message_size: 16 * 1024, max_errors: 20 };

/// Checks that `out` holds only well-formed reply lines.
fn check_replies(out: &[u8]) {
    let Some(body) = out.strip_suffix(b"\r\n") else {
        assert!(out.is_empty(), "reply without CRLF: {:?}", String::from_utf8_lossy(out));
        return;
    };
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let ok = line.len() >= 4
            && line[..3].iter().all(u8::is_ascii_digit)
            && matches!(line[3], b' ' | b'-')
            && !line.contains(&b'\r');
        assert!(ok, "malformed reply line: {:?}", String::from_utf8_lossy(line));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else { return };
    let world = world();
    let chunk = match mode & 0x3f {
        0 => input.len().max(1),
        n => usize::from(n),
    };
    world.runtime.block_on(async {
        let mut session = LmtpSession::new(Arc::clone(&world.deliverer), LIMITS, Some("127.0.0.1".into()));
        let greeting = session.greeting();
        check_replies(&greeting);
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            out.clear();
            let flow = session.input(piece, &mut out).await;
            check_replies(&out);
            if flow == Flow::Close {
                return;
            }
        }
        check_replies(&session.timeout_reply());
    });
});
