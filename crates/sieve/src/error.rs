//! Errors a script can cause: [`CompileError`] when it is uploaded, [`RuntimeError`] when it runs.
//!
//! Both carry the script position (1-based line and column, columns counted in characters) so the
//! message a user sees points at the spot to fix, e.g. `3:14: expected ';' after "keep"`.

use std::borrow::Cow;
use std::fmt;

/// At most 100 characters of `s` for an error message (values can be megabytes long).
pub(crate) fn excerpt(s: &str) -> Cow<'_, str> {
    match s.char_indices().nth(100) {
        Some((at, _)) => Cow::Owned(format!("{}...", &s[..at])),
        None => Cow::Borrowed(s),
    }
}

/// A place in the script text: 1-based line and 1-based column (counted in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    /// Line number, starting at 1.
    pub line: u32,
    /// Column number in characters, starting at 1.
    pub column: u32,
}

impl Position {
    /// A position at `line`:`column` (both 1-based).
    #[must_use]
    pub const fn new(line: u32, column: u32) -> Self {
        Self { line, column }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Why a script was refused when it was compiled (uploaded).
///
/// `Display` gives `line:column: message`, ready to show to the user; the message says what was
/// expected or what is wrong, never how the parser works inside.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct CompileError {
    /// Line of the offending token (1-based).
    pub line: u32,
    /// Column of the offending token in characters (1-based).
    pub column: u32,
    /// What was expected or what is wrong, e.g. `expected ';' after "keep"`.
    pub message: String,
}

impl CompileError {
    pub(crate) fn new(pos: Position, message: impl Into<String>) -> Self {
        Self { line: pos.line, column: pos.column, message: message.into() }
    }

    /// Where the error is.
    #[must_use]
    pub fn position(&self) -> Position {
        Position::new(self.line, self.column)
    }
}

/// Why a running script stopped early. The interpreter then falls back to the implicit keep.
///
/// RFC 5228 §2.10.6: "When an error happens, implementations MUST notify the user that an error
/// occurred and which actions (if any) were taken, and do an implicit keep."
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct RuntimeError {
    /// Line of the command that failed (1-based).
    pub line: u32,
    /// Column of the command that failed (1-based).
    pub column: u32,
    /// What went wrong, e.g. `too many redirects (limit 4)`.
    pub message: String,
}

impl RuntimeError {
    pub(crate) fn new(pos: Position, message: impl Into<String>) -> Self {
        Self { line: pos.line, column: pos.column, message: message.into() }
    }
}
