//! Differential test: FETCH answers of the real binary against Dovecot's, over a corpus of
//! real-world messages.
//!
//! `bench/compare-fetch.py` appends every message to a private Postfach (this binary) and a
//! private Dovecot (`imap` in PREAUTH mode on a pipe, as the `dovebench` user) and compares
//! ENVELOPE, BODYSTRUCTURE, BODY, RFC822.SIZE, the header and text sections, and for every part
//! `BODY[n]`, `BODY[n.MIME]`, `BODY[n.HEADER]`, `BINARY[n]` and `BINARY.SIZE[n]`, plus a few
//! SEARCHes. Each difference it finds, as a (message, item, cause) triple, must be in the
//! allowlist `bench/dovecot-known-differences.txt`, whose causes are explained, with the RFC
//! text that decides them, in `docs/dovecot-differences.md` ("Real-world corpus"). A new
//! difference fails the test with the details; an allowlisted one that no longer occurs is
//! printed as a note, so the list can shrink.
//!
//! The corpus: the test messages of the `mail-parser` 1.0.1 package (202 files, fetched by
//! `bench/fetch-corpus.sh` into `$POSTFACH_CORPUS`, default `/var/cache/postfach-corpus`) and
//! Python's `test_email` messages from Debian's `libpython3.11-testsuite`. Running Dovecot as
//! `dovebench` needs root. Without root the test skips; without the corpus, Dovecot, Python or
//! the `dovebench` user it skips too, unless `POSTFACH_REQUIRE_CLIENTS=1` (CI), which turns that
//! skip into a failure. `.ci/run` installs and prepares all of them.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{available, binary, clients_required, read_allowlist_lines, run_program};

/// The mail-parser 1.0.1 corpus directories, under `<corpus>/mail-parser/resources/eml`.
const MAIL_PARSER_DIRS: [&str; 6] = ["regressions", "legacy", "malformed", "thirdparty", "issues", "rfc"];

/// Python's email test messages (`msg_*.txt`), as Debian's `libpython3.11-testsuite` installs them.
const PYTHON_DATA: &str = "/usr/lib/python3.11/test/test_email/data";

/// The corpus must stay at least this large (the issue asks for 200 messages).
const MINIMUM_MESSAGES: usize = 200;

/// One run of the comparison script over a few hundred messages takes seconds; this only guards
/// against a hung server.
const DEADLINE: Duration = Duration::from_secs(600);

/// A difference as the allowlist names it: message (`dir/file`), item, cause.
type Key = (String, String, String);

#[test]
fn fetch_answers_match_dovecot_or_are_known_differences() {
    let Some(corpus) = corpus() else { return };
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut found: BTreeMap<Key, Vec<String>> = BTreeMap::new();
    for (name, args) in &corpus.runs {
        let json = dir.path().join(format!("{name}.json"));
        let mut command = Command::new("python3");
        command
            .arg(root().join("bench/compare-fetch.py"))
            .arg("--postfach")
            .arg(binary())
            .arg("-q")
            .arg("--json")
            .arg(&json)
            .args(args);
        let finished = run_program(&mut command, dir.path(), name, DEADLINE);
        assert!(
            finished.status.success(),
            "compare-fetch.py ({name}) failed ({:?}):\n{}",
            finished.status,
            finished.output()
        );
        read_report(&json, &mut found);
    }

    let allowlist_path = root().join("bench/dovecot-known-differences.txt");
    // One `message | item | cause` per line. A cause starting with `bug:` (a Postfach bug not
    // fixed yet) stands for any cause of that message and item.
    let allowed: BTreeSet<Key> = read_allowlist_lines(&allowlist_path, 3)
        .into_iter()
        .map(|f| (f[0].clone(), f[1].clone(), f[2].clone()))
        .collect();
    let bugs: BTreeSet<(&str, &str)> =
        allowed.iter().filter(|k| k.2.starts_with("bug:")).map(|k| (k.0.as_str(), k.1.as_str())).collect();
    let known = |key: &Key| allowed.contains(key) || bugs.contains(&(key.0.as_str(), key.1.as_str()));

    let mut by_cause: BTreeMap<&str, usize> = BTreeMap::new();
    for key in found.keys() {
        *by_cause.entry(key.2.as_str()).or_default() += 1;
    }
    eprintln!(
        "{} messages compared with Dovecot in {:.1} s; differing (message, item, cause): {}; by cause: {:?}",
        corpus.messages,
        started.elapsed().as_secs_f64(),
        found.len(),
        by_cause
    );

    let gone: Vec<&Key> = allowed
        .iter()
        .filter(|k| {
            if k.2.starts_with("bug:") {
                !found.keys().any(|f| f.0 == k.0 && f.1 == k.1)
            } else {
                !found.contains_key(*k)
            }
        })
        .collect();
    if !gone.is_empty() {
        let mut note = format!(
            "note: {} allowlisted difference(s) no longer occur; remove them from {}:\n",
            gone.len(),
            allowlist_path.display()
        );
        for k in gone {
            let _ = writeln!(note, "  {} | {} | {}", k.0, k.1, k.2);
        }
        eprintln!("{note}");
    }

    let new: Vec<(&Key, &Vec<String>)> = found.iter().filter(|(k, _)| !known(k)).collect();
    if !new.is_empty() {
        let mut message = format!(
            "{} difference(s) from Dovecot are not in {} (explain each in \
             docs/dovecot-differences.md, then allowlist it as `message | item | cause`):\n",
            new.len(),
            allowlist_path.display()
        );
        for ((msg, item, cause), details) in new {
            let _ = writeln!(message, "  {msg} | {item} | {cause}");
            for d in details {
                let _ = writeln!(message, "      {d}");
            }
        }
        panic!("{message}");
    }
}

/// The repository's root (this crate is `crates/server`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// What the comparison runs over: one compare-fetch.py argument list per part of the corpus.
struct Corpus {
    runs: Vec<(&'static str, Vec<String>)>,
    messages: usize,
}

/// The corpus, when this machine can run the comparison; otherwise says why the test is skipped
/// (or fails under `POSTFACH_REQUIRE_CLIENTS=1`) and returns `None`.
fn corpus() -> Option<Corpus> {
    // Dovecot's imap runs as `dovebench` through runuser, which only root may do.
    let probe = tempfile::tempdir().unwrap();
    if std::fs::metadata(probe.path()).unwrap().uid() != 0 {
        eprintln!("skipping: the Dovecot comparison runs Dovecot's imap as `dovebench`, which needs root");
        return None;
    }
    if !available("/usr/lib/dovecot/imap", "dovecot-imapd") || !available("python3", "python3") {
        return None;
    }
    let user = Command::new("id").arg("dovebench").output().is_ok_and(|o| o.status.success());
    if !user {
        return skip(
            "no `dovebench` user (useradd --system --no-create-home --shell /usr/sbin/nologin dovebench)",
        );
    }

    let base = std::env::var_os("POSTFACH_CORPUS")
        .map_or_else(|| PathBuf::from("/var/cache/postfach-corpus"), PathBuf::from);
    let eml = base.join("mail-parser/resources/eml");
    if !eml.is_dir() {
        return skip(&format!("no mail-parser corpus in {} (run bench/fetch-corpus.sh)", base.display()));
    }
    if !Path::new(PYTHON_DATA).is_dir() {
        return skip(&format!(
            "no Python test messages in {PYTHON_DATA} (apt-get install libpython3.11-testsuite)"
        ));
    }
    let dirs: Vec<String> = MAIL_PARSER_DIRS.iter().map(|d| eml.join(d).display().to_string()).collect();
    let messages = count(&dirs, "", ".eml") + count(&[PYTHON_DATA.to_owned()], "msg_", ".txt");
    assert!(
        messages >= MINIMUM_MESSAGES,
        "the corpus has only {messages} messages (at least {MINIMUM_MESSAGES} expected)"
    );
    let python = vec!["--pattern".to_owned(), "msg_*.txt".to_owned(), PYTHON_DATA.to_owned()];
    Some(Corpus { runs: vec![("mail-parser", dirs), ("python", python)], messages })
}

fn skip(why: &str) -> Option<Corpus> {
    let message = format!("skipping: {why}");
    assert!(!clients_required(), "POSTFACH_REQUIRE_CLIENTS=1 but {message}");
    eprintln!("{message}");
    None
}

/// Files in `dirs` whose names start with `prefix` and end with `suffix`.
fn count(dirs: &[String], prefix: &str, suffix: &str) -> usize {
    dirs.iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap())
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .count()
}

/// Adds the differences of one `--json` report to `found`, with their details.
fn read_report(path: &Path, found: &mut BTreeMap<Key, Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    let field = |v: &serde_json::Value, name: &str| v[name].as_str().unwrap_or_default().to_owned();
    for entry in report.as_array().unwrap() {
        let (message, item) = (field(entry, "message"), field(entry, "item"));
        let causes = entry["causes"].as_array().unwrap();
        let diffs = entry["diffs"].as_array().unwrap();
        for (cause, diff) in causes.iter().zip(diffs) {
            let key = (message.clone(), item.clone(), cause.as_str().unwrap().to_owned());
            let parts: Vec<&str> =
                diff.as_array().unwrap().iter().map(|v| v.as_str().unwrap_or("")).collect();
            let detail = match parts.as_slice() {
                [path, ours, theirs] => {
                    format!("{}: ours {ours} | dovecot {theirs}", if path.is_empty() { "." } else { path })
                }
                other => format!("{other:?}"),
            };
            found.entry(key).or_default().push(detail);
        }
    }
}
