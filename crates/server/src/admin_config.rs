//! `postfach config check [FILE]`: loads a configuration file the way `serve` does and lists
//! every problem in it (each with its key path), not just the first. Exit code 0 when the file
//! is valid, 1 when not (or when it cannot be read).
//!
//! Limits: what is checked is what `Config::load` checks: syntax, keys, types, ranges, and that
//! the files `[tls]` names exist. Whether the addresses can be bound or the certificates parse
//! shows only when the server starts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use serde::Serialize;

use crate::admin_output::print_json;
use crate::config::{Config, ConfigError};

/// `postfach config …`
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Check a configuration file and list every problem; exit code 0 when it is valid, 1 when
    /// not.
    Check {
        /// The file (default: the one given with --config).
        file: Option<PathBuf>,
        /// Print one JSON document: {"file", "valid", "errors": [{"path", "problem"}]}.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Serialize)]
struct Checked {
    file: String,
    valid: bool,
    errors: Vec<Problem>,
}

#[derive(Debug, Serialize)]
struct Problem {
    /// The key path (`imap.listen[1]`); empty for a problem with the whole file.
    path: String,
    problem: String,
}

/// Runs a `config` command; `global` is the `--config` file.
pub(crate) fn run(command: ConfigCommand, global: Option<&Path>) -> ExitCode {
    let ConfigCommand::Check { file, json } = command;
    let Some(file) = file.as_deref().or(global) else {
        eprintln!("postfach: give the file to check (postfach config check FILE)");
        return ExitCode::from(2);
    };
    let errors = problems(file);
    let valid = errors.is_empty();
    if json {
        let checked = Checked { file: file.display().to_string(), valid, errors };
        if let Err(e) = print_json(&checked) {
            eprintln!("postfach: {e:#}");
            return ExitCode::FAILURE;
        }
    } else if valid {
        eprintln!("postfach: {} is valid", file.display());
    } else {
        println!("{}: {} problem(s)", file.display(), errors.len());
        for p in &errors {
            if p.path.is_empty() {
                println!("  {}", p.problem);
            } else {
                println!("  {}: {}", p.path, p.problem);
            }
        }
    }
    if valid { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Every problem of the file, none when it loads.
fn problems(file: &Path) -> Vec<Problem> {
    match Config::load(Some(file)) {
        Ok(_) => Vec::new(),
        Err(ConfigError::Invalid { issues, .. }) => {
            issues.into_iter().map(|i| Problem { path: i.path, problem: i.problem }).collect()
        }
        Err(ConfigError::Syntax { message, .. }) => {
            vec![Problem { path: String::new(), problem: format!("not valid TOML: {}", message.trim_end()) }]
        }
        Err(ConfigError::Read { source, .. }) => {
            vec![Problem { path: String::new(), problem: format!("cannot be read: {source}") }]
        }
    }
}
