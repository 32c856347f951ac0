//! Posted forms (`application/x-www-form-urlencoded`) and query strings, read under named
//! limits: the body is bounded before it is read (`MAX_FORM_BODY`, enforced by axum's body
//! limit), then at most [`MAX_FIELDS`] fields, each name at most [`MAX_NAME`] bytes, each value
//! at most its own limit ([`Fields::text`]), and no field twice. Anything else is a clear 400,
//! never a panic.

use std::collections::HashMap;

/// Largest form body, bytes (the Sieve editor's script, URL-encoded, is the largest field).
pub(crate) const MAX_FORM_BODY: usize = 1024 * 1024;
/// Most fields in one form or query string.
pub(crate) const MAX_FIELDS: usize = 32;
/// Longest field name, bytes.
const MAX_NAME: usize = 64;
/// Longest value of a one-line field (names, labels, codes, passwords), bytes.
pub(crate) const MAX_LINE: usize = 4096;

/// The fields of one form.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    values: HashMap<String, String>,
}

/// Why a form was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FormError(pub(crate) String);

impl Fields {
    /// Parses a form body or query string.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, FormError> {
        let mut values = HashMap::new();
        for (name, value) in form_urlencoded::parse(bytes) {
            if values.len() >= MAX_FIELDS {
                return Err(FormError(format!("more than {MAX_FIELDS} fields")));
            }
            if name.len() > MAX_NAME {
                return Err(FormError("a field name is too long".to_owned()));
            }
            if values.insert(name.clone().into_owned(), value.into_owned()).is_some() {
                return Err(FormError(format!("the field {name:?} appears twice")));
            }
        }
        Ok(Self { values })
    }

    /// A field's value, at most `limit` bytes; `""` when missing.
    pub(crate) fn text(&self, name: &str, limit: usize) -> Result<&str, FormError> {
        let value = self.values.get(name).map_or("", String::as_str);
        if value.len() > limit {
            return Err(FormError(format!("{name} is longer than {limit} bytes")));
        }
        Ok(value)
    }

    /// A one-line field, trimmed, without control characters.
    pub(crate) fn line(&self, name: &str) -> Result<&str, FormError> {
        let value = self.text(name, MAX_LINE)?.trim();
        if value.chars().any(char::is_control) {
            return Err(FormError(format!("{name} must be one line of text")));
        }
        Ok(value)
    }

    /// Whether a checkbox is ticked.
    pub(crate) fn checked(&self, name: &str) -> bool {
        self.values.get(name).is_some_and(|v| !v.is_empty())
    }

    /// Takes a secret field out of the form (so only one copy is left, in the caller's hands).
    pub(crate) fn take(&mut self, name: &str) -> String {
        self.values.remove(name).unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_bounded_and_unambiguous() {
        let f = Fields::parse(b"name=al%20ice&code=123456&box=on").unwrap();
        assert_eq!(f.line("name").unwrap(), "al ice");
        assert_eq!(f.text("missing", 10).unwrap(), "");
        assert!(f.checked("box"));
        assert!(!f.checked("other"));
        assert!(f.text("code", 3).is_err());
        assert!(Fields::parse(b"a=1&a=2").is_err());
        let many: String = (0..=MAX_FIELDS).map(|i| format!("f{i}=x&")).collect();
        assert!(Fields::parse(many.as_bytes()).is_err());
        let long = format!("{}=1", "n".repeat(MAX_NAME + 1));
        assert!(Fields::parse(long.as_bytes()).is_err());
        let f = Fields::parse(b"l=a%0Ab").unwrap();
        assert!(f.line("l").is_err());
        assert_eq!(f.text("l", 10).unwrap(), "a\nb");
        // Bytes that are not UTF-8 become U+FFFD, not a panic.
        assert!(Fields::parse(b"x=%FF%FE").is_ok());
    }
}
