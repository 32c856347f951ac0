//! Importers from where users come from. Each converts its source into an export directory
//! (the format of [`crate::format`]), keeping what the source knows, and
//! [`crate::import::import`] takes it from there: one import path for every source.
//!
//! - [`maildir`]: Dovecot Maildir(++) (`dovecot-uidlist`, `dovecot-keywords`, subscriptions)
//!   and plain Maildir.
//! - [`mbox`]: mbox files and trees of them (`Status`, `X-Status`, `X-Keywords`, `X-UID`).
//! - [`imap`]: a live IMAP server (every folder, UIDs, flags, INTERNALDATE, MODSEQs), through
//!   `imap_client`, a small blocking client of our own over rustls.
//!
//! The export directory is a work directory: converting again reuses the blobs already there
//! (they are named by their content), so an interrupted import run again redoes little.

pub mod imap;
mod imap_client;
pub mod maildir;
pub mod mbox;

use std::path::Path;

use crate::format;
use crate::{Error, Result};

/// What a conversion read and what it could not.
#[derive(Debug, Clone, Default)]
pub struct ConvertReport {
    /// Folders (mailboxes) written.
    pub mailboxes: u64,
    /// Messages written.
    pub messages: u64,
    /// Messages left out, each with where it is and why.
    pub bad: Vec<String>,
    /// Anything else worth knowing.
    pub notes: Vec<String>,
    /// `maildir` or `dovecot-maildir`.
    pub source: String,
}

/// Makes `dir` ready for a conversion: created when missing; the files of an earlier
/// conversion go except the blobs, which a new one reuses.
pub fn prepare_work_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for name in [format::MANIFEST].iter().chain(format::JSONL_FILES.iter()) {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    Ok(())
}
