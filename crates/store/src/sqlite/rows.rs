//! Row-level helpers shared by the read and write paths: the mailbox row with its counters,
//! flag encoding, keyword checks, and integer conversions between SQLite's `i64` and
//! the domain types.
//!
//! Counter arithmetic saturates instead of overflowing: a wrong counter is a bug to log, a panic
//! in the writer thread would stop every write.

use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, Row};

use super::conn::DbResult;
use crate::types::{
    AccountId, Flags, InternalDate, MailboxId, MailboxInfo, MailboxStatus, ModSeq, SpecialUse, SystemFlags,
    Uid, UidValidity,
};
use crate::{StoreError, StoreResult};

/// UIDs are stored as SQLite integers; a row never holds 0 (UIDs start at 1), so reading one
/// is a conversion error rather than a UID.
impl rusqlite::types::FromSql for Uid {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let n = u32::column_result(value)?;
        Uid::new(n).ok_or(rusqlite::types::FromSqlError::OutOfRange(0))
    }
}

impl rusqlite::types::ToSql for Uid {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::from(self.get()))
    }
}

/// Longest keyword accepted, in bytes.
pub(crate) const MAX_KEYWORD_LEN: usize = 250;

/// Most distinct keywords one mailbox remembers; they all go into every FLAGS response.
pub(crate) const MAX_MAILBOX_KEYWORDS: i64 = 1000;

/// Seconds since the Unix epoch now (0 if the clock is before 1970).
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A modseq as SQLite stores it. Values above `i64::MAX` (only possible from a client's
/// argument, RFC 7162 limits mod-sequences to 63 bits) compare like `i64::MAX`.
pub(crate) fn sql_modseq(m: ModSeq) -> i64 {
    i64::try_from(m.0).unwrap_or(i64::MAX)
}

/// A stored modseq (never negative; a negative value would be corruption and reads as 0).
pub(crate) fn modseq_of(v: i64) -> ModSeq {
    ModSeq(u64::try_from(v).unwrap_or(0))
}

/// The keywords column: normalised keywords joined by single spaces.
pub(crate) fn keywords_text(flags: &Flags) -> String {
    flags.keywords.join(" ")
}

/// Flags from the two stored columns.
pub(crate) fn flags_of(system: i64, keywords: &str) -> Flags {
    Flags {
        system: SystemFlags(u8::try_from(system & 0x1f).unwrap_or(0)),
        keywords: keywords.split_ascii_whitespace().map(str::to_owned).collect(),
    }
}

/// An internal date from the two stored columns.
pub(crate) fn date_of(unix: i64, offset_minutes: i64) -> InternalDate {
    InternalDate { unix, offset_minutes: i16::try_from(offset_minutes).unwrap_or(0) }
}

/// Checks keywords (RFC 9051 §9: `flag-keyword = atom`: ASCII, no atom-specials) and returns
/// the flags normalised. The check also guarantees the space-separated column stays parseable.
pub(crate) fn checked_flags(flags: &Flags) -> StoreResult<Flags> {
    for k in &flags.keywords {
        let atom = !k.is_empty()
            && k.len() <= MAX_KEYWORD_LEN
            && k.bytes().all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b));
        if !atom {
            return Err(StoreError::InvalidName(format!("not a valid keyword: {k:?}")));
        }
    }
    let mut out = Flags { system: SystemFlags(flags.system.0 & 0x1f), keywords: flags.keywords.clone() };
    out.normalise();
    Ok(out)
}

/// Remembers `keywords` as used in `mailbox` (for FLAGS/PERMANENTFLAGS). Fails with
/// [`StoreError::Limit`] when the mailbox would know more than [`MAX_MAILBOX_KEYWORDS`].
pub(crate) fn register_keywords<'a>(
    conn: &Connection,
    mailbox: MailboxId,
    keywords: impl IntoIterator<Item = &'a String>,
) -> StoreResult<()> {
    let mut insert = conn
        .prepare_cached("INSERT OR IGNORE INTO mailbox_keywords (mailbox_id, keyword) VALUES (?1, ?2)")
        .db()?;
    let mut added = false;
    for k in keywords {
        added |= insert.execute(rusqlite::params![mailbox.0, k]).db()? > 0;
    }
    if added {
        let count: i64 = conn
            .query_row("SELECT COUNT(*) FROM mailbox_keywords WHERE mailbox_id = ?1", [mailbox.0], |r| {
                r.get(0)
            })
            .db()?;
        if count > MAX_MAILBOX_KEYWORDS {
            return Err(StoreError::Limit(format!(
                "a mailbox can hold at most {MAX_MAILBOX_KEYWORDS} distinct keywords"
            )));
        }
    }
    Ok(())
}

/// The keywords remembered for a mailbox, sorted case-insensitively.
pub(crate) fn mailbox_keywords(conn: &Connection, mailbox: MailboxId) -> StoreResult<Vec<String>> {
    let mut stmt = conn
        .prepare_cached("SELECT keyword FROM mailbox_keywords WHERE mailbox_id = ?1 ORDER BY keyword")
        .db()?;
    let rows = stmt.query_map([mailbox.0], |r| r.get(0)).db()?;
    rows.collect::<rusqlite::Result<Vec<String>>>().db()
}

/// Takes the next UIDVALIDITY: `max(now, last issued + 1)`, recorded in the same transaction
/// (RFC 9051 §2.3.1.1: a re-created mailbox must not reuse an old UIDVALIDITY).
pub(crate) fn next_uid_validity(conn: &Connection) -> StoreResult<UidValidity> {
    let last: i64 =
        conn.query_row("SELECT last_issued FROM uid_validity_counter WHERE id = 1", [], |r| r.get(0)).db()?;
    let value = unix_now().max(last.saturating_add(1)).max(1);
    let v32 =
        u32::try_from(value).map_err(|_| StoreError::Limit("UIDVALIDITY values exhausted".to_owned()))?;
    conn.execute("UPDATE uid_validity_counter SET last_issued = ?1 WHERE id = 1", [value]).db()?;
    Ok(UidValidity(v32))
}

/// Inserts a fresh, empty mailbox row and returns its id.
pub(crate) fn insert_mailbox(
    conn: &Connection,
    account: AccountId,
    name: &str,
    special_use: Option<SpecialUse>,
) -> StoreResult<MailboxId> {
    let uid_validity = next_uid_validity(conn)?;
    let inserted = conn.execute(
        "INSERT INTO mailboxes (account_id, name, special_use, uid_validity, uid_next, highest_modseq,
                                recent_from_uid)
         VALUES (?1, ?2, ?3, ?4, 1, 1, 1)",
        rusqlite::params![account.0, name, special_use.map(SpecialUse::as_str), uid_validity.0],
    );
    match inserted {
        Ok(_) => Ok(MailboxId(conn.last_insert_rowid())),
        Err(e) if super::conn::is_unique_violation(&e) => Err(StoreError::AlreadyExists),
        Err(e) => Err(super::conn::backend(e)),
    }
}

/// True when the account exists.
pub(crate) fn account_exists(conn: &Connection, account: AccountId) -> StoreResult<bool> {
    conn.query_row("SELECT 1 FROM accounts WHERE id = ?1", [account.0], |_| Ok(()))
        .optional()
        .db()
        .map(|r| r.is_some())
}

/// Columns of [`MailboxRow`], in the order [`MailboxRow::from_row`] reads them.
pub(crate) const MAILBOX_COLUMNS: &str = "id, account_id, name, uid_validity, uid_next, highest_modseq, \
     recent_from_uid, messages, unseen, deleted, size, recent";

/// Whether a message counts towards the `\Recent` counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recency {
    /// Its UID is at or above `recent_from_uid`.
    Recent,
    /// Already claimed by a SELECT.
    Claimed,
}

/// One `mailboxes` row, changed in memory and written back with [`MailboxRow::save`].
#[derive(Debug, Clone)]
pub(crate) struct MailboxRow {
    pub(crate) id: MailboxId,
    pub(crate) account: AccountId,
    pub(crate) name: String,
    pub(crate) uid_validity: UidValidity,
    pub(crate) uid_next: u32,
    pub(crate) highest_modseq: u64,
    pub(crate) recent_from_uid: u32,
    pub(crate) messages: u32,
    pub(crate) unseen: u32,
    pub(crate) deleted: u32,
    pub(crate) size: u64,
    pub(crate) recent: u32,
}

impl MailboxRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<MailboxRow> {
        Ok(MailboxRow {
            id: MailboxId(r.get(0)?),
            account: AccountId(r.get(1)?),
            name: r.get(2)?,
            uid_validity: UidValidity(r.get(3)?),
            // Read as a UID so that a 0 in the row fails here, not later.
            uid_next: r.get::<_, Uid>(4)?.get(),
            highest_modseq: u64::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
            recent_from_uid: r.get(6)?,
            messages: r.get(7)?,
            unseen: r.get(8)?,
            deleted: r.get(9)?,
            size: u64::try_from(r.get::<_, i64>(10)?).unwrap_or(0),
            recent: r.get(11)?,
        })
    }

    /// Loads a mailbox row; [`StoreError::NotFound`] when there is none.
    pub(crate) fn load(conn: &Connection, id: MailboxId) -> StoreResult<MailboxRow> {
        let sql = format!("SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = ?1");
        conn.prepare_cached(&sql)
            .db()?
            .query_row([id.0], MailboxRow::from_row)
            .optional()
            .db()?
            .ok_or(StoreError::NotFound)
    }

    /// Loads a mailbox row by account and exact name.
    pub(crate) fn by_name(
        conn: &Connection,
        account: AccountId,
        name: &str,
    ) -> StoreResult<Option<MailboxRow>> {
        let sql = format!("SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ?1 AND name = ?2");
        conn.prepare_cached(&sql)
            .db()?
            .query_row(rusqlite::params![account.0, name], MailboxRow::from_row)
            .optional()
            .db()
    }

    /// Writes the counters, `uid_next`, `highest_modseq` and `recent_from_uid` back.
    pub(crate) fn save(&self, conn: &Connection) -> StoreResult<()> {
        conn.prepare_cached(
            "UPDATE mailboxes SET uid_next = ?1, highest_modseq = ?2, recent_from_uid = ?3, messages = ?4,
                                  unseen = ?5, deleted = ?6, size = ?7, recent = ?8
             WHERE id = ?9",
        )
        .db()?
        .execute(rusqlite::params![
            self.uid_next,
            i64::try_from(self.highest_modseq).unwrap_or(i64::MAX),
            self.recent_from_uid,
            self.messages,
            self.unseen,
            self.deleted,
            i64::try_from(self.size).unwrap_or(i64::MAX),
            self.recent,
            self.id.0,
        ])
        .db()?;
        Ok(())
    }

    /// UIDNEXT. `from_row` refuses a 0 and the counters only grow (saturating), so the
    /// fallback is never taken.
    pub(crate) fn uid_next(&self) -> Uid {
        Uid::new(self.uid_next).unwrap_or(Uid::MIN)
    }

    /// The counters as STATUS reports them.
    pub(crate) fn status(&self) -> MailboxStatus {
        MailboxStatus {
            id: self.id,
            uid_validity: self.uid_validity,
            uid_next: self.uid_next(),
            messages: self.messages,
            unseen: self.unseen,
            deleted: self.deleted,
            size: self.size,
            recent: self.recent,
            highest_modseq: ModSeq(self.highest_modseq),
        }
    }

    /// Allocates the next modseq of this mailbox.
    pub(crate) fn bump_modseq(&mut self) -> StoreResult<ModSeq> {
        // RFC 7162 §7: mod-sequences are at most 2^63 - 1.
        if self.highest_modseq >= i64::MAX as u64 {
            return Err(StoreError::Limit("mod-sequence space exhausted".to_owned()));
        }
        self.highest_modseq += 1;
        Ok(ModSeq(self.highest_modseq))
    }

    /// Allocates the next UID (RFC 9051 §2.3.1.1: strictly ascending, never reused).
    pub(crate) fn take_uid(&mut self) -> StoreResult<Uid> {
        // UIDNEXT itself must still fit in a u32, so the last usable UID is u32::MAX - 1.
        let uid = match Uid::new(self.uid_next) {
            Some(uid) if uid != Uid::MAX => uid,
            _ => return Err(StoreError::Limit("the mailbox has used up its UIDs".to_owned())),
        };
        self.uid_next += 1;
        Ok(uid)
    }

    /// Whether `uid` still counts as recent.
    pub(crate) fn recency(&self, uid: Uid) -> Recency {
        if uid.get() >= self.recent_from_uid { Recency::Recent } else { Recency::Claimed }
    }

    /// Counts a message in.
    pub(crate) fn count_in(&mut self, flags: SystemFlags, size: u32, recency: Recency) {
        self.messages = self.messages.saturating_add(1);
        self.size = self.size.saturating_add(u64::from(size));
        if !flags.contains(SystemFlags::SEEN) {
            self.unseen = self.unseen.saturating_add(1);
        }
        if flags.contains(SystemFlags::DELETED) {
            self.deleted = self.deleted.saturating_add(1);
        }
        if recency == Recency::Recent {
            self.recent = self.recent.saturating_add(1);
        }
    }

    /// Counts a message out.
    pub(crate) fn count_out(&mut self, flags: SystemFlags, size: u32, recency: Recency) {
        self.messages = self.messages.saturating_sub(1);
        self.size = self.size.saturating_sub(u64::from(size));
        if !flags.contains(SystemFlags::SEEN) {
            self.unseen = self.unseen.saturating_sub(1);
        }
        if flags.contains(SystemFlags::DELETED) {
            self.deleted = self.deleted.saturating_sub(1);
        }
        if recency == Recency::Recent {
            self.recent = self.recent.saturating_sub(1);
        }
    }

    /// Adjusts `unseen`/`deleted` for a flag change of one message.
    pub(crate) fn count_flag_change(&mut self, old: SystemFlags, new: SystemFlags) {
        for (bit, counter, counts_when_set) in
            [(SystemFlags::SEEN, &mut self.unseen, false), (SystemFlags::DELETED, &mut self.deleted, true)]
        {
            let (was, is) = (old.contains(bit) == counts_when_set, new.contains(bit) == counts_when_set);
            match (was, is) {
                (false, true) => *counter = counter.saturating_add(1),
                (true, false) => *counter = counter.saturating_sub(1),
                _ => {}
            }
        }
    }
}

/// The mailbox list entries of an account (optionally only one name), sorted by name.
pub(crate) fn mailbox_infos(
    conn: &Connection,
    account: AccountId,
    only: Option<&str>,
) -> StoreResult<Vec<MailboxInfo>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT m.id, m.name, m.special_use,
                    EXISTS (SELECT 1 FROM subscriptions s WHERE s.account_id = m.account_id AND s.name = m.name)
             FROM mailboxes m
             WHERE m.account_id = ?1 AND (?2 IS NULL OR m.name = ?2)
             ORDER BY m.name",
        )
        .db()?;
    let rows = stmt
        .query_map(rusqlite::params![account.0, only], |r| {
            let special: Option<String> = r.get(2)?;
            Ok(MailboxInfo {
                id: MailboxId(r.get(0)?),
                name: r.get(1)?,
                special_use: special.as_deref().and_then(SpecialUse::parse),
                subscribed: r.get(3)?,
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_must_be_atoms() {
        let ok =
            Flags { system: SystemFlags::SEEN, keywords: vec!["b".into(), "$Forwarded".into(), "B".into()] };
        let f = checked_flags(&ok).expect("valid");
        assert_eq!(f.keywords, vec!["$Forwarded".to_owned(), "b".to_owned()]);
        for bad in ["", "a b", "\\Seen", "a]", "ä", "x(y"] {
            let flags = Flags { system: SystemFlags::default(), keywords: vec![bad.to_owned()] };
            assert!(checked_flags(&flags).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn flags_round_trip_through_columns() {
        let f = Flags {
            system: SystemFlags::SEEN.union(SystemFlags::DRAFT),
            keywords: vec!["$a".into(), "b".into()],
        };
        assert_eq!(flags_of(i64::from(f.system.0), &keywords_text(&f)), f);
        assert_eq!(flags_of(0, ""), Flags::default());
    }

    #[test]
    fn flag_change_counters() {
        let mut row = MailboxRow {
            id: MailboxId(1),
            account: AccountId(1),
            name: "x".into(),
            uid_validity: UidValidity(1),
            uid_next: 1,
            highest_modseq: 1,
            recent_from_uid: 1,
            messages: 0,
            unseen: 0,
            deleted: 0,
            size: 0,
            recent: 0,
        };
        row.count_in(SystemFlags::default(), 10, Recency::Recent);
        assert_eq!((row.messages, row.unseen, row.deleted, row.size, row.recent), (1, 1, 0, 10, 1));
        row.count_flag_change(SystemFlags::default(), SystemFlags::SEEN.union(SystemFlags::DELETED));
        assert_eq!((row.unseen, row.deleted), (0, 1));
        row.count_out(SystemFlags::SEEN.union(SystemFlags::DELETED), 10, Recency::Claimed);
        assert_eq!((row.messages, row.unseen, row.deleted, row.size, row.recent), (0, 0, 0, 0, 1));
        row.uid_next = u32::MAX - 1;
        assert_eq!(row.take_uid().ok(), Uid::new(u32::MAX - 1));
        assert!(matches!(row.take_uid(), Err(StoreError::Limit(_))));
    }
}
