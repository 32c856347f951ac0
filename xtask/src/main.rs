//! Postfach's everyday commands, run as `cargo xtask COMMAND [ARGS...]` (the alias is in
//! `.cargo/config.toml`). Each command is a short list of the cargo and script invocations it
//! stands for, printed before it runs; the first one that fails stops it.
//!
//! `ci` runs what `.ci/run` runs, minus its installs (Debian packages, the `dovebench` user, the
//! corpus, cargo-deny, cargo-fuzz): keep the two in step. The fuzz and deny steps are skipped
//! with a note when their cargo plugin is missing.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: cargo xtask COMMAND [ARGS...]

commands:
  ci             what .ci/run does, minus installs: lint, deny, fuzz-smoke, test
  test [ARGS]    cargo test --workspace; with ARGS, cargo test ARGS
  lint           cargo fmt --all -- --check; cargo clippy --workspace --all-targets -- -D warnings
  deny           cargo deny check (licenses, bans and sources only if the advisory DB is unreachable)
  fuzz-smoke     build every fuzz target and run each from its seed corpus for
                 $POSTFACH_FUZZ_SECONDS seconds (default 20)
  bench-dovecot [ARGS]
                 bench/compare-dovecot.sh [ARGS] (Postfach against Dovecot)
  serve [ARGS]   cargo run --release -p postfach -- serve [ARGS]";

/// A failed step, already reported on stderr.
struct Failed;

type Step = Result<(), Failed>;

fn main() -> ExitCode {
    let mut args = env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let result = match command.as_str() {
        "ci" => ci(),
        "test" => test(&rest),
        "lint" => lint(),
        "deny" => deny(),
        "fuzz-smoke" => fuzz_smoke(),
        "bench-dovecot" => run(Command::new("bench/compare-dovecot.sh").args(&rest)),
        "serve" => cargo(&["run", "--release", "-p", "postfach", "--", "serve"], &rest),
        "" | "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => {
            eprintln!("xtask: unknown command {other:?}\n\n{USAGE}");
            Err(Failed)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failed) => ExitCode::FAILURE,
    }
}

fn ci() -> Step {
    lint()?;
    deny()?;
    fuzz_smoke()?;
    // Last, so that the test runner's summary closes the log.
    test(&[])
}

/// The README's `cargo test --workspace`; with arguments, `cargo test ARGS` (they choose the scope,
/// e.g. `-p postfach-store`: `--workspace` would override `-p`).
fn test(rest: &[String]) -> Step {
    if rest.is_empty() { cargo(&["test", "--workspace"], &[]) } else { cargo(&["test"], rest) }
}

fn lint() -> Step {
    cargo(&["fmt", "--all", "--", "--check"], &[])?;
    cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"], &[])
}

fn deny() -> Step {
    if !has_plugin("deny") {
        eprintln!("note: cargo-deny is not installed (cargo install cargo-deny --locked); skipped");
        return Ok(());
    }
    let fetched = Command::new("cargo")
        .args(["deny", "fetch", "db"])
        .current_dir(root())
        .output()
        .is_ok_and(|out| out.status.success());
    if fetched {
        cargo(&["deny", "--locked", "check"], &[])
    } else {
        eprintln!("note: the RustSec advisory database cannot be fetched: ADVISORIES NOT CHECKED");
        cargo(&["deny", "--locked", "check", "licenses", "bans", "sources"], &[])
    }
}

fn fuzz_smoke() -> Step {
    if !has_plugin("fuzz") {
        eprintln!("note: cargo-fuzz is not installed (cargo install cargo-fuzz --locked); skipped");
        return Ok(());
    }
    let fuzz = root().join("fuzz");
    let seconds = env::var("POSTFACH_FUZZ_SECONDS").unwrap_or_else(|_| "20".to_owned());
    run(Command::new("cargo").args(["fuzz", "build", "-s", "none"]).current_dir(&fuzz))?;
    let list = Command::new("cargo").args(["fuzz", "list"]).current_dir(&fuzz).output().map_err(|e| {
        eprintln!("xtask: cargo fuzz list: {e}");
        Failed
    })?;
    for target in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        // New corpus entries go to a scratch directory; the seed corpus stays as committed.
        let scratch = env::temp_dir().join(format!("postfach-fuzz-{target}-{}", std::process::id()));
        std::fs::create_dir_all(&scratch).map_err(|e| {
            eprintln!("xtask: {}: {e}", scratch.display());
            Failed
        })?;
        let result = run(Command::new("cargo")
            .args(["fuzz", "run", "-s", "none", target])
            .arg(&scratch)
            .arg(Path::new("corpus").join(target))
            .args(["--", &format!("-max_total_time={seconds}"), "-timeout=10", "-print_final_stats=1"])
            .current_dir(&fuzz));
        let _ = std::fs::remove_dir_all(&scratch);
        result?;
    }
    Ok(())
}

/// Runs `cargo ARGS REST` in the repository root.
fn cargo(args: &[&str], rest: &[String]) -> Step {
    run(Command::new("cargo").args(args).args(rest))
}

/// Runs a command (in the repository root unless it says otherwise), echoing it first.
fn run(command: &mut Command) -> Step {
    if command.get_current_dir().is_none() {
        command.current_dir(root());
    }
    let shown: Vec<String> = command.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    eprintln!("== {} {}", command.get_program().to_string_lossy(), shown.join(" "));
    match command.status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => {
            eprintln!("xtask: failed ({status})");
            Err(Failed)
        }
        Err(e) => {
            eprintln!("xtask: could not start {:?}: {e}", command.get_program());
            Err(Failed)
        }
    }
}

/// Whether `cargo NAME` is installed (as the `cargo-NAME` binary cargo would run).
fn has_plugin(name: &str) -> bool {
    Command::new(format!("cargo-{name}")).arg("--version").output().is_ok_and(|out| out.status.success())
}

/// The repository root: the parent of this crate's directory.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}
