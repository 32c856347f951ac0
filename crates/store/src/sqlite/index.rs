//! What is derived from a message body once and kept beside it: the full-text index entry
//! (SEARCH TEXT/BODY/HEADER), the PREVIEW text (RFC 8970) and the SORT/THREAD keys (RFC 5256,
//! RFC 5957).
//!
//! # When entries are written
//! - At APPEND, in the same transaction as the message ([`record_appended`]): the facts, with the
//!   text pending. The text is extracted beforehand on the blocking pool
//!   ([`IndexEntry::extract`]) and goes to the account's own index file after the commit
//!   ([`super::indexer`], [`super::text`]). Facts are written in their own savepoint: if that
//!   fails, the message is stored anyway and simply has no `body_index` row, which makes every
//!   search scan it instead.
//! - For bodies derived by an older parser, again by the re-derivation thread
//!   ([`super::rederive`], [`rewrite_entry`]), which replaces the facts and marks the text
//!   pending again.
//! - COPY and MOVE within an account share the body and so its entry (a transfer to another
//!   account copies the body); the `bodies_unindex` trigger removes the entry with the last
//!   reference to the body and queues its text's removal from the account file.
//!
//! # Semantics
//! What the text, preview, keys and EMAILID of a message are is decided by `postfach_message`
//! ([`MessageText`], [`BodyFacts`], [`email_id`]); this module only writes them. The index
//! holds the folded text ([`postfach_message::fold`]) and the search folds the client's needle
//! the same way, so the index (substring search with the FTS5 trigram tokenizer) and the
//! fallback scan answer alike.
//!
//! # Limits
//! At most [`MAX_BODY_TEXT`] bytes of body text and [`MAX_HEADER_TEXT`] bytes of header text
//! are indexed per message ([`limit`]); a cut entry is marked (`text_state = 2`) and searches
//! that miss in the index scan such a message to be sure. The limits are this backend's: they
//! bound the FTS table, and the marker that makes search rescan is in its schema.

use postfach_message::{BodyFacts, MessageSummary, MessageText, email_id};
use rusqlite::{Connection, OptionalExtension};

use super::conn::DbResult;
use crate::StoreResult;
use crate::types::{Appended, MailboxId};

/// Most bytes of folded body text indexed per message.
pub(crate) const MAX_BODY_TEXT: usize = 2 * 1024 * 1024;
/// Most bytes of folded header text indexed per message.
pub(crate) const MAX_HEADER_TEXT: usize = 256 * 1024;

/// `text_state`: the facts are written, the text waits for the [`super::indexer`].
pub(crate) const TEXT_PENDING: i64 = 0;
/// `text_state`: the index holds all of the message's text.
pub(crate) const TEXT_COMPLETE: i64 = 1;
/// `text_state`: the index holds a prefix of the message's text.
pub(crate) const TEXT_TRUNCATED: i64 = 2;

/// Cuts `text` to what the index keeps of one message ([`MAX_HEADER_TEXT`], [`MAX_BODY_TEXT`]),
/// marking it truncated when something went.
pub(crate) fn limit(text: &mut MessageText) {
    text.limit(MAX_HEADER_TEXT, MAX_BODY_TEXT);
}

/// Everything stored for one body.
#[derive(Debug, Clone)]
pub(crate) struct IndexEntry {
    pub(crate) text: MessageText,
    pub(crate) preview: String,
    pub(crate) facts: BodyFacts,
    pub(crate) email_id: String,
}

impl IndexEntry {
    /// Extracts the entry of a raw message. CPU-bound: call it off the writer thread.
    pub(crate) fn extract(raw: &[u8]) -> IndexEntry {
        IndexEntry::of(raw, &postfach_message::parse(raw))
    }

    /// As [`IndexEntry::extract`], from the summary `postfach_message::parse` made of `raw`.
    pub(crate) fn of(raw: &[u8], summary: &MessageSummary) -> IndexEntry {
        // Only what the index keeps is decoded: a huge message is not copied into text.
        let (mut text, preview) = MessageText::of_bounded(raw, summary, MAX_BODY_TEXT);
        limit(&mut text);
        IndexEntry { text, preview, facts: BodyFacts::of(summary), email_id: email_id(raw) }
    }
}

/// Replaces the facts of `body_id` (PREVIEW, SORT/THREAD keys, EMAILID) with `entry`'s, or
/// writes them when there are none, and marks its text pending: the indexer writes it into the
/// account's file again (the file's row is replaced then). The caller knows the body exists.
/// SQL only.
pub(crate) fn rewrite_entry(conn: &Connection, body_id: i64, entry: &IndexEntry) -> StoreResult<()> {
    put_facts(conn, UPSERT_FACTS, body_id, TEXT_PENDING, None, entry)?;
    conn.prepare_cached("INSERT OR IGNORE INTO unindexed_bodies (body_id) VALUES (?1)")
        .db()?
        .execute([body_id])
        .db()?;
    Ok(())
}

/// Writes the facts of `body_id` (PREVIEW, SORT/THREAD keys, EMAILID) with its text pending in
/// `account`'s file, unless it has an entry already; true when it wrote. SQL only.
pub(crate) fn write_facts(
    conn: &Connection,
    body_id: i64,
    account: i64,
    entry: &IndexEntry,
) -> StoreResult<bool> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM body_index WHERE body_id = ?1")
        .db()?
        .query_row([body_id], |_| Ok(()))
        .optional()
        .db()?
        .is_some();
    if exists {
        return Ok(false);
    }
    put_facts(conn, INSERT_FACTS, body_id, TEXT_PENDING, Some(account), entry)?;
    Ok(true)
}

/// The text of one stored body, on its way to the full-text index.
pub(crate) struct PendingText {
    pub(crate) body_id: i64,
    /// The EMAILID (content hash) of the body the text was taken from. SQLite may give a deleted
    /// body's id to the next body: the text is written only if the body under that id is still
    /// the same content, or a message expunged before it was indexed would lend its text to the
    /// next message stored (whose own text would then never be indexed).
    pub(crate) email_id: String,
    /// Whose file the text goes into; None when the indexer must look it up.
    pub(crate) account: Option<i64>,
    pub(crate) text: MessageText,
}

const INSERT_FACTS: &str = "INSERT INTO body_index
    (body_id, text_state, preview, sent_date, base_subject, is_reply, sort_from, sort_to, sort_cc, display_from,
     display_to, message_id, refs, email_id, text_account)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

const UPSERT_FACTS: &str = "INSERT INTO body_index
    (body_id, text_state, preview, sent_date, base_subject, is_reply, sort_from, sort_to, sort_cc, display_from,
     display_to, message_id, refs, email_id, text_account)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
    ON CONFLICT (body_id) DO UPDATE SET
        text_state = excluded.text_state, preview = excluded.preview, sent_date = excluded.sent_date,
        base_subject = excluded.base_subject, is_reply = excluded.is_reply, sort_from = excluded.sort_from,
        sort_to = excluded.sort_to, sort_cc = excluded.sort_cc, display_from = excluded.display_from,
        display_to = excluded.display_to, message_id = excluded.message_id, refs = excluded.refs,
        email_id = excluded.email_id";

/// Runs `sql` ([`INSERT_FACTS`] or [`UPSERT_FACTS`], which keeps a recorded account) with the
/// facts of `entry`.
fn put_facts(
    conn: &Connection,
    sql: &str,
    body_id: i64,
    state: i64,
    account: Option<i64>,
    entry: &IndexEntry,
) -> StoreResult<()> {
    let f = &entry.facts;
    conn.prepare_cached(sql)
        .db()?
        .execute(rusqlite::params![
            body_id,
            state,
            entry.preview,
            f.sent_date,
            f.base_subject,
            f.is_reply,
            f.sort_from,
            f.sort_to,
            f.sort_cc,
            f.display_from,
            f.display_to,
            f.message_id,
            f.refs.join(" "),
            entry.email_id,
            account,
        ])
        .db()?;
    Ok(())
}

/// Writes the facts of freshly appended messages inside the append's transaction and returns
/// their texts with the body ids, for the [`super::indexer`] (after the commit). Never fails the
/// append: on an error the facts are rolled back, the messages stay unindexed (scanned) and no
/// text is returned.
pub(crate) fn record_appended(
    conn: &Connection,
    mailbox: MailboxId,
    appended: &[Appended],
    entries: Vec<IndexEntry>,
) -> Vec<PendingText> {
    if conn.execute_batch("SAVEPOINT body_index").is_err() {
        return Vec::new();
    }
    let result = (|| -> StoreResult<Vec<PendingText>> {
        let account: i64 = conn
            .prepare_cached("SELECT account_id FROM mailboxes WHERE id = ?1")
            .db()?
            .query_row([mailbox.0], |r| r.get(0))
            .db()?;
        let mut body_of =
            conn.prepare_cached("SELECT body_id FROM messages WHERE mailbox_id = ?1 AND uid = ?2").db()?;
        let mut texts = Vec::with_capacity(entries.len());
        for (a, entry) in appended.iter().zip(entries) {
            let body_id: i64 =
                body_of.query_row(rusqlite::params![mailbox.0, a.uid.get()], |r| r.get(0)).db()?;
            if write_facts(conn, body_id, account, &entry)? {
                texts.push(PendingText {
                    body_id,
                    email_id: entry.email_id,
                    account: Some(account),
                    text: entry.text,
                });
            }
        }
        Ok(texts)
    })();
    let (end, texts) = match result {
        Ok(texts) => ("RELEASE body_index", texts),
        Err(e) => {
            tracing::warn!(error = %e, "indexing appended messages failed; they will be scanned");
            ("ROLLBACK TO body_index; RELEASE body_index", Vec::new())
        }
    };
    if let Err(e) = conn.execute_batch(end) {
        tracing::error!(error = %e, "cannot close the index savepoint");
    }
    texts
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_cut_to_the_index_limits() {
        let mut raw = b"Subject: big\r\n\r\n".to_vec();
        raw.extend(std::iter::repeat_n(b'a', MAX_BODY_TEXT + 10));
        let entry = IndexEntry::extract(&raw);
        assert!(entry.text.truncated);
        assert_eq!(entry.text.body.len(), MAX_BODY_TEXT);
        assert_eq!(entry.email_id, email_id(&raw));
        let (t, _) = MessageText::extract(&raw);
        assert!(!t.truncated);
        assert!(t.body.len() > MAX_BODY_TEXT);
    }
}
