//! Postfach's own Sieve interpreter (RFC 5228): check a user's script when it is uploaded,
//! run it for each delivered message, and say what to do with the message.
//!
//! ```
//! use postfach_sieve::{compile, evaluate, Action, BodyTransform, Message, Settings};
//!
//! struct Mail;
//! impl Message for Mail {
//!     fn header(&self, name: &str) -> Vec<String> {
//!         if name.eq_ignore_ascii_case("subject") { vec!["[acme-users] hello".into()] } else { vec![] }
//!     }
//!     fn envelope_from(&self) -> Option<&str> { Some("coyote@desert.example.org") }
//!     fn envelope_to(&self) -> Option<&str> { Some("me@example.com") }
//!     fn size(&self) -> u64 { 1234 }
//!     fn body_text(&self, _: &BodyTransform) -> Vec<String> { vec![] }
//! }
//!
//! let script = compile(r#"
//!     require ["fileinto", "variables"];
//!     if header :matches "Subject" "[*] *" { fileinto "lists.${1}"; }
//! "#).expect("valid script");
//! let outcome = evaluate(&script, &Mail, &Settings::default());
//! let filed = Action::FileInto { mailbox: "lists.acme-users".into(), flags: vec![], create: false };
//! assert_eq!(outcome.actions, [filed]);
//! assert!(outcome.explicit_decision);
//! ```
//!
//! # Layout
//! - `lexer`, `parser`: text → tokens → the generic syntax tree of RFC 5228 §8.
//! - `compile`: syntax tree → checked `ir` (commands, tests, tags, `require`); all compile
//!   errors come from these three, with line and column.
//! - `eval`: runs the `ir` against a [`Message`] → [`Outcome`]; `matching` (comparators, match
//!   types, relational), `address`, `flags` (imap4flags), `template` (variables and
//!   encoded-character) and `spamtest` are its helpers.
//! - [`vacation`]: the pure send/skip decision for vacation replies and the reply text.
//!
//! # Extensions
//! See [`CAPABILITIES`]: fileinto, envelope, encoded-character, body (RFC 5173), relational
//! (RFC 5231), subaddress (RFC 5233), copy (RFC 3894), variables (RFC 5229), imap4flags
//! (RFC 5232), spamtest and spamtestplus (RFC 5235), vacation (RFC 5230), mailbox (RFC 5490) and
//! the comparators i;octet, i;ascii-casemap and i;ascii-numeric. Not supported: regex, reject,
//! include, virustest, date and the rest.
//!
//! # Deliberate choices
//! - Bare LF (and CR) line ends are accepted like CRLF; line ends inside strings become CRLF.
//! - `?` in :matches stands for one Unicode character, not one octet.
//! - `allof` / `anyof` also accept a single bare test (RFC 5232 §9's example writes one).
//! - Scripts must be UTF-8 (see [`compile_bytes`]); encoded octets that are not UTF-8 become
//!   U+FFFD.
//! - Execution is all-or-nothing: after a run-time error only the implicit keep remains.
//!
//! # Limits
//! Pure library: no I/O, no async, no panics on any input. A script is at most
//! [`MAX_SCRIPT_SIZE`] bytes with blocks and tests nested at most [`MAX_NESTING`] deep; its
//! evaluation is bounded in steps, string sizes and actions by [`Limits`]. A run-time error never
//! loses mail: the [`Outcome`] then holds only the implicit keep and the error to log.

mod address;
mod compile;
mod date;
mod error;
mod eval;
mod flags;
mod ir;
mod lexer;
mod matching;
mod message;
mod parser;
mod spamtest;
mod template;
pub mod vacation;

pub use error::{CompileError, Position, RuntimeError};
pub use eval::{Action, Limits, Outcome, Settings, VacationAction};
pub use message::{BodyTransform, Message, content_type_matches};
pub use spamtest::SpamTestSettings;

/// Largest script accepted, in bytes (1 MiB).
pub const MAX_SCRIPT_SIZE: usize = 1 << 20;

/// Deepest nesting of blocks, and separately of tests (RFC 5228 §2.10.7 requires at least 15).
pub const MAX_NESTING: usize = 32;

/// The capability strings this implementation supports, for `require` and for advertising
/// (e.g. the ManageSieve SIEVE capability, RFC 5804 §1.7).
pub const CAPABILITIES: [&str; 17] = [
    "fileinto",
    "envelope",
    "encoded-character",
    "body",
    "relational",
    "subaddress",
    "copy",
    "variables",
    "imap4flags",
    "spamtest",
    "spamtestplus",
    "vacation",
    "mailbox",
    "date",
    "comparator-i;octet",
    "comparator-i;ascii-casemap",
    "comparator-i;ascii-numeric",
];

/// A compiled script: immutable, `Send + Sync`, cheap to keep in a cache and share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub(crate) commands: Vec<ir::Node>,
    /// "variables" was required: match variables are recorded.
    pub(crate) variables: bool,
    /// "imap4flags" was required.
    pub(crate) imap4flags: bool,
    pub(crate) capabilities: Vec<String>,
}

impl Script {
    /// The capabilities the script requires, sorted.
    #[must_use]
    pub fn capabilities(&self) -> &[String] {
        &self.capabilities
    }

    /// Whether the script requires `capability` (e.g. "vacation", to know if a reply history is
    /// worth loading).
    #[must_use]
    pub fn requires(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }
}

/// Checks and compiles a script (on upload, and when loading it for delivery).
///
/// # Errors
/// The first problem found, with its line and column and what was expected, e.g.
/// `3:14: expected ';' after "keep", found identifier "discard"`.
pub fn compile(script: &str) -> Result<Script, CompileError> {
    if script.len() > MAX_SCRIPT_SIZE {
        return Err(CompileError::new(
            Position::new(1, 1),
            format!("script is too large ({} bytes; limit {MAX_SCRIPT_SIZE})", script.len()),
        ));
    }
    // A UTF-8 byte order mark is not part of the language; editors add it.
    let text = script.strip_prefix('\u{feff}').unwrap_or(script);
    let nodes = parser::parse(text)?;
    compile::compile(&nodes)
}

/// [`compile`] for raw bytes (a file, a ManageSieve PUTSCRIPT literal): the script must be UTF-8,
/// and the error for bytes that are not points at the first bad one. RFC 5228 §2.4.2 still
/// allows other octets inside strings, a deprecated feature we do not support.
///
/// # Errors
/// As [`compile`], plus invalid UTF-8.
pub fn compile_bytes(script: &[u8]) -> Result<Script, CompileError> {
    match std::str::from_utf8(script) {
        Ok(text) => compile(text),
        Err(e) => {
            let good = &script[..e.valid_up_to()];
            let line = good.iter().filter(|b| **b == b'\n').count() + 1;
            let line_start = good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
            let to_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            Err(CompileError::new(
                Position::new(to_u32(line), to_u32(column)),
                "the script is not valid UTF-8",
            ))
        }
    }
}

/// Runs `script` for one delivery of `msg`.
///
/// Never fails and never panics: a run-time error (too many actions, an invalid redirect
/// address, the step budget running out, ...) yields the implicit keep with
/// [`Outcome::error`] set (RFC 5228 §2.10.6).
#[must_use]
pub fn evaluate(script: &Script, msg: &dyn Message, settings: &Settings) -> Outcome {
    eval::run(script, msg, settings)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn script_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Script>();
        assert_send_sync::<Outcome>();
    }

    #[test]
    fn bytes_must_be_utf8() {
        assert!(compile_bytes(b"keep;").is_ok());
        let e = compile_bytes(b"keep;\n# caf\xc3\xa9 \xff\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 8));
        assert!(e.message.contains("UTF-8"));
    }

    #[test]
    fn oversized_scripts_are_refused() {
        let big = format!("# {}\nkeep;", "x".repeat(MAX_SCRIPT_SIZE));
        assert!(compile(&big).unwrap_err().message.contains("too large"));
    }
}
