//! Export reads and exact restore (issue 14): the SQL behind [`crate::RestoreStore`].
//!
//! The reads run on a reader (one snapshot each). The writes run in the writer's transaction,
//! one job per call, and keep the invariants the rest of the store relies on:
//! - a UID is only ever stored at or above UIDNEXT (which then moves past it), except where the
//!   mailbox already holds the same bytes under it: that message is left (or only its flags
//!   follow a newer source MODSEQ), so running a restore again changes nothing;
//! - UIDNEXT and HIGHESTMODSEQ only grow; a kept source MODSEQ raises HIGHESTMODSEQ to it;
//! - a UIDVALIDITY changes only with a new mailbox row ([`recreate_mailbox`]), as DELETE and
//!   CREATE do, so sessions that have the old row selected see it vanish instead of reading
//!   renumbered UIDs under their old UIDVALIDITY.
//!
//! Restored messages are counted in the owner's quota without a check ([`Check::Skip`]): a
//! restore must be complete; the caller reports an account left above its limits.
//!
//! Parsing and text extraction happen before the job ([`prepare`], on the blocking pool), like
//! APPEND's; the job only inserts. The index facts go in with [`super::index::record_appended`].

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension};

use super::conn::{DbResult, backend, is_unique_violation};
use super::mailboxes::{check_account_name, insert_account};
use super::messages::INSERT_MESSAGE;
use super::quota::{self, Check};
use super::rows::{
    MailboxRow, Recency, checked_flags, flags_of, keywords_text, modseq_of, register_keywords, sql_modseq,
};
use super::writer::Effects;
use crate::acl::{AccountKind, QuotaLimits, SeenMode};
use crate::restore::{
    AccountRestore, ExpungedRun, MAX_EXPUNGED_PER_CALL, MailboxDump, MailboxRestore, MessageDump,
    MessageRestore, ModSeqRule, NewUidValidity, PresentUids, PrivateSeenDump, Restored,
};
use crate::types::{
    AccountId, Appended, Flags, InternalDate, MailboxId, MailboxName, ModSeq, SpecialUse, Uid, UidValidity,
};
use crate::{StoreError, StoreResult};

/// The password hash of a restored user until an admin sets one: not a PHC string, so no
/// password verifies against it.
pub(crate) const RESTORED_PASSWORD_HASH: &str = "!restored";

/// Leaves room below `u32::MAX` when a restored UIDVALIDITY raises the issue counter: a source
/// with a huge UIDVALIDITY must not exhaust this store's.
const UID_VALIDITY_HEADROOM: i64 = 1 << 26;

// --- reads ------------------------------------------------------------------------------------

pub(crate) fn dump_mailbox(conn: &Connection, mailbox: MailboxId) -> StoreResult<MailboxDump> {
    let row = MailboxRow::load(conn, mailbox)?;
    let (special, seen_mode): (Option<String>, i64) = conn
        .prepare_cached("SELECT special_use, seen_mode FROM mailboxes WHERE id = ?1")
        .db()?
        .query_row([mailbox.0], |r| Ok((r.get(0)?, r.get(1)?)))
        .db()?;
    Ok(MailboxDump {
        id: row.id,
        name: row.name.clone(),
        special_use: special.as_deref().and_then(SpecialUse::parse),
        uid_validity: row.uid_validity,
        uid_next: row.uid_next(),
        highest_modseq: ModSeq(row.highest_modseq),
        seen_mode: if seen_mode == 0 { SeenMode::Shared } else { SeenMode::Private },
        messages: row.messages,
    })
}

pub(crate) fn dump_messages(
    conn: &Connection,
    mailbox: MailboxId,
    after: u32,
    below: Uid,
    since: ModSeq,
    max_count: usize,
    max_bytes: usize,
) -> StoreResult<Vec<MessageDump>> {
    MailboxRow::load(conn, mailbox)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT m.uid, m.modseq, m.flags, m.keywords, m.internal_date, m.date_offset, s.unix, b.raw
             FROM messages m JOIN bodies b ON b.id = m.body_id
             LEFT JOIN saved_at s ON s.mailbox_id = m.mailbox_id AND s.uid = m.uid
             WHERE m.mailbox_id = ?1 AND m.uid > ?2 AND m.uid < ?3 AND m.modseq > ?4
             ORDER BY m.uid",
        )
        .db()?;
    let mut rows = stmt.query(rusqlite::params![mailbox.0, after, below.get(), sql_modseq(since)]).db()?;
    let (mut out, mut bytes) = (Vec::new(), 0usize);
    while let Some(r) = rows.next().db()? {
        let keywords: String = r.get(3).db()?;
        let raw: Vec<u8> = r.get(7).db()?;
        bytes += raw.len();
        out.push(MessageDump {
            uid: r.get(0).db()?,
            modseq: modseq_of(r.get(1).db()?),
            flags: flags_of(r.get(2).db()?, &keywords),
            internal_date: super::rows::date_of(r.get(4).db()?, r.get(5).db()?),
            save_date: r.get(6).db()?,
            raw,
        });
        if out.len() >= max_count || bytes >= max_bytes {
            break;
        }
    }
    Ok(out)
}

pub(crate) fn dump_expunged(
    conn: &Connection,
    mailbox: MailboxId,
    since: ModSeq,
) -> StoreResult<Vec<(Uid, ModSeq)>> {
    MailboxRow::load(conn, mailbox)?;
    let mut stmt = conn
        .prepare_cached("SELECT uid, modseq FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid")
        .db()?;
    let rows = stmt
        .query_map(rusqlite::params![mailbox.0, sql_modseq(since)], |r| {
            Ok((r.get::<_, Uid>(0)?, modseq_of(r.get(1)?)))
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

pub(crate) fn dump_private_seen(
    conn: &Connection,
    mailbox: MailboxId,
    since: ModSeq,
) -> StoreResult<Vec<PrivateSeenDump>> {
    MailboxRow::load(conn, mailbox)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT p.uid, a.name, p.seen, p.modseq FROM private_seen p JOIN accounts a ON a.id = p.account_id
             WHERE p.mailbox_id = ?1 AND p.modseq > ?2 ORDER BY p.uid, a.name",
        )
        .db()?;
    let rows = stmt
        .query_map(rusqlite::params![mailbox.0, sql_modseq(since)], |r| {
            Ok(PrivateSeenDump {
                uid: r.get(0)?,
                account: r.get(1)?,
                seen: r.get(2)?,
                modseq: modseq_of(r.get(3)?),
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

// --- accounts and mailboxes ---------------------------------------------------------------------

pub(crate) fn restore_account(conn: &Connection, account: &AccountRestore) -> StoreResult<AccountId> {
    check_account_name(&account.name)?;
    let hash = match account.kind {
        AccountKind::User => RESTORED_PASSWORD_HASH,
        AccountKind::Team => super::mailboxes::TEAM_PASSWORD_HASH,
    };
    let address = match account.kind {
        AccountKind::User => None,
        AccountKind::Team => account.address.as_deref(),
    };
    insert_account(conn, &account.name, hash, account.kind, address)
}

/// Records that `value` was handed out, so that fresh UIDVALIDITYs stay above it (unless it is so
/// high that following it would exhaust the counter).
fn note_uid_validity(conn: &Connection, value: UidValidity) -> StoreResult<()> {
    let v = i64::from(value.0);
    if v <= i64::from(u32::MAX) - UID_VALIDITY_HEADROOM {
        conn.prepare_cached(
            "UPDATE uid_validity_counter SET last_issued = max(last_issued, ?1) WHERE id = 1",
        )
        .db()?
        .execute([v])
        .db()?;
    }
    Ok(())
}

/// The MAILBOXID a new row may take: `hint` when no mailbox ever had it (AUTOINCREMENT ids are
/// never reused), else a fresh one.
fn usable_id(conn: &Connection, hint: Option<i64>) -> StoreResult<Option<i64>> {
    let Some(hint) = hint.filter(|h| *h > 0) else { return Ok(None) };
    let highest: Option<i64> = conn
        .query_row("SELECT seq FROM sqlite_sequence WHERE name = 'mailboxes'", [], |r| r.get(0))
        .optional()
        .db()?;
    Ok((hint > highest.unwrap_or(0)).then_some(hint))
}

/// Inserts a mailbox row with the given identity; returns its id.
fn insert_row(
    conn: &Connection,
    account: AccountId,
    name: &str,
    special_use: Option<SpecialUse>,
    uid_validity: Option<UidValidity>,
    id: Option<i64>,
) -> StoreResult<MailboxId> {
    let uid_validity = match uid_validity {
        Some(v) if v.0 > 0 => {
            note_uid_validity(conn, v)?;
            v
        }
        _ => super::rows::next_uid_validity(conn)?,
    };
    let inserted = conn.execute(
        "INSERT INTO mailboxes (id, account_id, name, special_use, uid_validity, uid_next, highest_modseq,
                                recent_from_uid)
         VALUES (?1, ?2, ?3, ?4, ?5, 1, 1, 1)",
        rusqlite::params![id, account.0, name, special_use.map(SpecialUse::as_str), uid_validity.0],
    );
    match inserted {
        Ok(_) => Ok(MailboxId(conn.last_insert_rowid())),
        Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists),
        Err(e) => Err(backend(e)),
    }
}

pub(crate) fn restore_mailbox(
    conn: &Connection,
    account: AccountId,
    name: &MailboxName,
    mailbox: &MailboxRestore,
) -> StoreResult<MailboxId> {
    name.check_creatable()?;
    if !super::rows::account_exists(conn, account)? {
        return Err(StoreError::NotFound);
    }
    let id = usable_id(conn, mailbox.id_hint)?;
    insert_row(conn, account, name.as_str(), mailbox.special_use, mailbox.uid_validity, id)
}

pub(crate) fn recreate_mailbox(
    conn: &Connection,
    fx: &mut Effects,
    mailbox: MailboxId,
    uid_validity: NewUidValidity,
) -> StoreResult<MailboxId> {
    let old = MailboxRow::load(conn, mailbox)?;
    let uid_validity = match uid_validity {
        NewUidValidity::Given(v) if v == old.uid_validity || v.0 == 0 => {
            return Err(StoreError::NotAllowed("a recreated mailbox needs another UIDVALIDITY".to_owned()));
        }
        NewUidValidity::Given(v) => v,
        NewUidValidity::Fresh { avoid } => {
            // The counter only grows, so a second draw differs from the first.
            let mut v = super::rows::next_uid_validity(conn)?;
            while v == old.uid_validity || Some(v) == avoid {
                v = super::rows::next_uid_validity(conn)?;
            }
            v
        }
    };
    let (special, seen_mode): (Option<String>, i64) = conn
        .prepare_cached("SELECT special_use, seen_mode FROM mailboxes WHERE id = ?1")
        .db()?
        .query_row([mailbox.0], |r| Ok((r.get(0)?, r.get(1)?)))
        .db()?;
    // Park the old row's name (control characters cannot be in real names), then make the new.
    conn.execute(
        "UPDATE mailboxes SET name = ?1 WHERE id = ?2",
        rusqlite::params![format!("\u{1}recreate\u{1}{}", mailbox.0), mailbox.0],
    )
    .db()?;
    let special = special.as_deref().and_then(SpecialUse::parse);
    let new = insert_row(conn, old.account, &old.name, special, Some(uid_validity), None)?;
    conn.execute("UPDATE mailboxes SET seen_mode = ?1 WHERE id = ?2", rusqlite::params![seen_mode, new.0])
        .db()?;

    // The messages, renumbered 1..=n in UID order; bodies are shared (the insert trigger counts
    // the references before the delete below releases the old ones).
    let old_uids: Vec<(u32, Option<i64>)> = {
        let mut stmt = conn
            .prepare(
                "SELECT m.uid, s.unix FROM messages m
                 LEFT JOIN saved_at s ON s.mailbox_id = m.mailbox_id AND s.uid = m.uid
                 WHERE m.mailbox_id = ?1 ORDER BY m.uid",
            )
            .db()?;
        let rows = stmt.query_map([mailbox.0], |r| Ok((r.get(0)?, r.get(1)?))).db()?;
        rows.collect::<rusqlite::Result<_>>().db()?
    };
    let mut copy = conn
        .prepare_cached(
            "INSERT INTO messages (mailbox_id, uid, body_id, flags, keywords, internal_date, date_offset, size, modseq)
             SELECT ?1, ?2, body_id, flags, keywords, internal_date, date_offset, size, modseq
             FROM messages WHERE mailbox_id = ?3 AND uid = ?4",
        )
        .db()?;
    let mut saved =
        conn.prepare_cached("UPDATE saved_at SET unix = ?3 WHERE mailbox_id = ?1 AND uid = ?2").db()?;
    let mut unsaved = conn.prepare_cached("DELETE FROM saved_at WHERE mailbox_id = ?1 AND uid = ?2").db()?;
    let mut seen = conn
        .prepare_cached(
            "INSERT INTO private_seen (mailbox_id, uid, account_id, seen, modseq)
             SELECT ?1, ?2, account_id, seen, modseq FROM private_seen WHERE mailbox_id = ?3 AND uid = ?4",
        )
        .db()?;
    for (index, (uid, save)) in old_uids.iter().enumerate() {
        let new_uid =
            u32::try_from(index + 1).map_err(|_| StoreError::Limit("too many messages".to_owned()))?;
        copy.execute(rusqlite::params![new.0, new_uid, mailbox.0, uid]).db()?;
        match save {
            Some(unix) => saved.execute(rusqlite::params![new.0, new_uid, unix]).db()?,
            None => unsaved.execute(rusqlite::params![new.0, new_uid]).db()?,
        };
        seen.execute(rusqlite::params![new.0, new_uid, mailbox.0, uid]).db()?;
    }
    let n = u32::try_from(old_uids.len()).map_err(|_| StoreError::Limit("too many messages".to_owned()))?;
    conn.execute(
        "INSERT INTO mailbox_keywords (mailbox_id, keyword) SELECT ?1, keyword FROM mailbox_keywords
         WHERE mailbox_id = ?2",
        [new.0, mailbox.0],
    )
    .db()?;
    let shared =
        conn.execute("UPDATE acl SET mailbox_id = ?1 WHERE mailbox_id = ?2", [new.0, mailbox.0]).db()? > 0;

    // The old row goes with everything that hangs on it (its expunge history is meaningless
    // under the new UIDVALIDITY). No quota moves: the same messages stay.
    conn.execute("DELETE FROM messages WHERE mailbox_id = ?1", [mailbox.0]).db()?;
    conn.execute("DELETE FROM expunged WHERE mailbox_id = ?1", [mailbox.0]).db()?;
    conn.execute("DELETE FROM mailbox_keywords WHERE mailbox_id = ?1", [mailbox.0]).db()?;
    conn.execute("DELETE FROM mailboxes WHERE id = ?1", [mailbox.0]).db()?;

    let mut row = MailboxRow::load(conn, new)?;
    row.uid_next = n + 1;
    row.recent_from_uid = n + 1;
    row.highest_modseq = old.highest_modseq.max(1);
    row.messages = old.messages;
    row.unseen = old.unseen;
    row.deleted = old.deleted;
    row.size = old.size;
    row.recent = 0;
    row.save(conn)?;
    fx.changed(mailbox, ModSeq(old.highest_modseq.saturating_add(1)));
    fx.changed(new, ModSeq(row.highest_modseq));
    if shared {
        fx.acl_changed(Some(mailbox));
        fx.acl_changed(Some(new));
    }
    Ok(new)
}

// --- messages ---------------------------------------------------------------------------------

/// A message ready for [`restore_messages`]: checked flags and the serialised summary.
pub(crate) struct PreparedRestore {
    uid: Option<Uid>,
    modseq: ModSeq,
    rule: ModSeqRule,
    raw: Arc<[u8]>,
    summary: Vec<u8>,
    flags: Flags,
    date: InternalDate,
    save_date: Option<i64>,
    size: u32,
}

/// Validates, parses and serialises messages. CPU-bound: call it from `spawn_blocking`. Returns
/// the index entries too, one per message.
pub(crate) fn prepare(
    messages: Vec<MessageRestore>,
) -> StoreResult<(Vec<PreparedRestore>, Vec<super::index::IndexEntry>)> {
    let mut prepared = Vec::with_capacity(messages.len());
    let mut entries = Vec::with_capacity(messages.len());
    for m in messages {
        let size = u32::try_from(m.raw.len())
            .map_err(|_| StoreError::Limit("message larger than 4 GiB".to_owned()))?;
        let summary = postfach_message::parse(&m.raw);
        entries.push(super::index::IndexEntry::of(&m.raw, &summary));
        prepared.push(PreparedRestore {
            uid: m.uid,
            modseq: m.modseq,
            rule: m.rule,
            summary: super::summary::encode(&summary)?,
            flags: checked_flags(&m.flags)?,
            raw: m.raw,
            date: m.internal_date,
            save_date: m.save_date,
            size,
        });
    }
    Ok((prepared, entries))
}

/// The one new MODSEQ a job gives everything it changes without a kept one, taken on first use
/// (both backends).
pub(crate) fn fresh_modseq(mb: &mut MailboxRow, fresh: &mut Option<ModSeq>) -> StoreResult<ModSeq> {
    if let Some(m) = *fresh {
        return Ok(m);
    }
    let m = mb.bump_modseq()?;
    *fresh = Some(m);
    Ok(m)
}

/// What the mailbox holds under a UID: its MODSEQ, flags, and whether its bytes equal `raw`.
fn held(
    conn: &Connection,
    mailbox: MailboxId,
    uid: Uid,
    raw: &[u8],
) -> StoreResult<Option<(ModSeq, Flags, bool)>> {
    conn.prepare_cached(
        "SELECT m.modseq, m.flags, m.keywords, b.raw = ?3 FROM messages m JOIN bodies b ON b.id = m.body_id
         WHERE m.mailbox_id = ?1 AND m.uid = ?2",
    )
    .db()?
    .query_row(rusqlite::params![mailbox.0, uid.get(), raw], |r| {
        let keywords: String = r.get(2)?;
        Ok((modseq_of(r.get(0)?), flags_of(r.get(1)?, &keywords), r.get::<_, bool>(3)?))
    })
    .optional()
    .db()
}

/// What [`restore_messages`] did: what became of each message, and for the index the
/// [`Appended`] of those inserted with their positions in the input.
pub(crate) struct RestoreOutcome {
    pub(crate) results: Vec<Restored>,
    pub(crate) inserted: Vec<(usize, Appended)>,
}

/// Stores the prepared messages.
pub(crate) fn restore_messages(
    conn: &Connection,
    fx: &mut Effects,
    mailbox: MailboxId,
    messages: &[PreparedRestore],
    quota_defaults: &QuotaLimits,
) -> StoreResult<RestoreOutcome> {
    let mut mb = MailboxRow::load(conn, mailbox)?;
    let mut fresh: Option<ModSeq> = None;
    let mut insert_message = conn.prepare_cached(INSERT_MESSAGE).db()?;
    let mut mark_unindexed =
        conn.prepare_cached("INSERT INTO unindexed_bodies (body_id) VALUES (?1)").db()?;
    let mut set_saved =
        conn.prepare_cached("UPDATE saved_at SET unix = ?3 WHERE mailbox_id = ?1 AND uid = ?2").db()?;
    let mut drop_saved =
        conn.prepare_cached("DELETE FROM saved_at WHERE mailbox_id = ?1 AND uid = ?2").db()?;
    let mut update_flags = conn
        .prepare_cached(
            "UPDATE messages SET flags = ?1, keywords = ?2, modseq = ?3 WHERE mailbox_id = ?4 AND uid = ?5",
        )
        .db()?;
    let (mut results, mut inserted) = (Vec::with_capacity(messages.len()), Vec::new());
    let (mut bytes, mut count) = (0u64, 0u64);
    let mut highest_kept = 0u64;
    for (index, m) in messages.iter().enumerate() {
        let keep = m.rule == ModSeqRule::Keep && m.modseq.0 > 0;
        if let Some(uid) = m.uid.filter(|u| u.get() < mb.uid_next) {
            let Some((modseq, flags, same)) = held(conn, mailbox, uid, &m.raw)?.filter(|h| h.2) else {
                return Err(StoreError::NotAllowed(format!(
                    "UID {uid} is below UIDNEXT {} and does not hold this message",
                    mb.uid_next
                )));
            };
            debug_assert!(same);
            // The source's flags win when they are newer, or when it cannot tell (no MODSEQ).
            if flags == m.flags || (m.modseq.0 > 0 && m.modseq <= modseq) {
                results.push(Restored::Present(uid));
                continue;
            }
            let new_modseq = if keep { m.modseq } else { fresh_modseq(&mut mb, &mut fresh)? };
            highest_kept = highest_kept.max(new_modseq.0);
            update_flags
                .execute(rusqlite::params![
                    m.flags.system.0,
                    keywords_text(&m.flags),
                    sql_modseq(new_modseq),
                    mailbox.0,
                    uid.get()
                ])
                .db()?;
            mb.count_flag_change(flags.system, m.flags.system);
            results.push(Restored::FlagsUpdated(uid, new_modseq));
            continue;
        }
        let nothing_unclaimed = mb.recent_from_uid >= mb.uid_next;
        let uid = match m.uid {
            Some(uid) => {
                if uid == Uid::MAX {
                    return Err(StoreError::Limit("UID out of range".to_owned()));
                }
                mb.uid_next = uid.get();
                mb.take_uid()?
            }
            None => mb.take_uid()?,
        };
        let modseq = if keep { m.modseq } else { fresh_modseq(&mut mb, &mut fresh)? };
        highest_kept = highest_kept.max(modseq.0);
        let body_id = super::messages::insert_body(conn, &m.raw, &m.summary)?;
        mark_unindexed.execute([body_id]).db()?;
        insert_message
            .execute(rusqlite::params![
                mailbox.0,
                uid.get(),
                body_id,
                m.flags.system.0,
                keywords_text(&m.flags),
                m.date.unix,
                m.date.offset_minutes,
                m.size,
                sql_modseq(modseq),
            ])
            .db()?;
        match m.save_date {
            Some(unix) => set_saved.execute(rusqlite::params![mailbox.0, uid.get(), unix]).db()?,
            None => drop_saved.execute(rusqlite::params![mailbox.0, uid.get()]).db()?,
        };
        // Restored mail is not new mail: it is not \Recent, unless delivered messages nobody
        // has claimed yet sit below it (moving the boundary would take theirs away).
        let recency = if nothing_unclaimed {
            mb.recent_from_uid = uid.get() + 1;
            Recency::Claimed
        } else {
            Recency::Recent
        };
        mb.count_in(m.flags.system, m.size, recency);
        bytes += u64::from(m.size);
        count += 1;
        inserted.push((index, Appended { uid_validity: mb.uid_validity, uid, modseq }));
        results.push(Restored::Inserted(uid, modseq));
    }
    register_keywords(conn, mailbox, messages.iter().flat_map(|m| m.flags.keywords.iter()))?;
    quota::charge(conn, mb.account, bytes, count, quota_defaults, Check::Skip)?;
    mb.highest_modseq = mb.highest_modseq.max(highest_kept);
    mb.save(conn)?;
    if count > 0 || fresh.is_some() || highest_kept > 0 {
        fx.changed(mailbox, ModSeq(mb.highest_modseq));
    }
    Ok(RestoreOutcome { results, inserted })
}

pub(crate) fn restore_expunged(
    conn: &Connection,
    fx: &mut Effects,
    mailbox: MailboxId,
    runs: &[ExpungedRun],
    present: PresentUids,
    quota_defaults: &QuotaLimits,
) -> StoreResult<u64> {
    let total: u64 = runs.iter().map(|r| u64::from(r.last.get().saturating_sub(r.first.get())) + 1).sum();
    if total > MAX_EXPUNGED_PER_CALL {
        return Err(StoreError::Limit(format!("at most {MAX_EXPUNGED_PER_CALL} expunged UIDs per call")));
    }
    let mut mb = MailboxRow::load(conn, mailbox)?;
    let mut fresh: Option<ModSeq> = None;
    let mut record = conn
        .prepare_cached("INSERT OR IGNORE INTO expunged (mailbox_id, uid, modseq) VALUES (?1, ?2, ?3)")
        .db()?;
    let mut remove = conn.prepare_cached("DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2").db()?;
    let mut present_in = conn
        .prepare_cached(
            "SELECT uid, flags, size FROM messages WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 ORDER BY uid",
        )
        .db()?;
    let (mut recorded, mut freed_bytes, mut freed) = (0u64, 0u64, 0u64);
    for run in runs {
        if run.first > run.last {
            continue;
        }
        // A run without its own MODSEQ takes the call's fresh one, but only if it records
        // something: a run that is all there already must not move HIGHESTMODSEQ.
        let given = run.modseq.filter(|m| m.0 > 0);
        let modseq = given.unwrap_or_else(|| fresh.unwrap_or(ModSeq(mb.highest_modseq.saturating_add(1))));
        let changed_before = (recorded, freed);
        let here: Vec<(u32, i64, u32)> = present_in
            .query_map(rusqlite::params![mailbox.0, run.first.get(), run.last.get()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .db()?
            .collect::<rusqlite::Result<_>>()
            .db()?;
        let mut here = here.into_iter().peekable();
        for uid in run.first.get()..=run.last.get() {
            if let Some(&(held, flags, size)) = here.peek().filter(|h| h.0 == uid) {
                here.next();
                if present == PresentUids::Keep {
                    continue;
                }
                remove.execute(rusqlite::params![mailbox.0, held]).db()?;
                let recency = mb.recency(Uid::new(held).unwrap_or(Uid::MIN));
                let system = flags_of(flags, "").system;
                mb.count_out(system, size, recency);
                freed_bytes += u64::from(size);
                freed += 1;
                // A record with an older modseq would hide this later expunge.
                conn.prepare_cached("DELETE FROM expunged WHERE mailbox_id = ?1 AND uid = ?2")
                    .db()?
                    .execute(rusqlite::params![mailbox.0, held])
                    .db()?;
            }
            recorded += record.execute(rusqlite::params![mailbox.0, uid, sql_modseq(modseq)]).db()? as u64;
        }
        if (recorded, freed) != changed_before {
            if given.is_none() {
                fresh_modseq(&mut mb, &mut fresh)?;
            }
            mb.highest_modseq = mb.highest_modseq.max(modseq.0);
        }
        if run.last.get() >= mb.uid_next {
            if run.last == Uid::MAX {
                return Err(StoreError::Limit("UID out of range".to_owned()));
            }
            mb.uid_next = run.last.get() + 1;
        }
    }
    quota::release(conn, mb.account, freed_bytes, freed, quota_defaults)?;
    mb.save(conn)?;
    fx.changed(mailbox, ModSeq(mb.highest_modseq));
    Ok(recorded)
}

pub(crate) fn restore_counters(
    conn: &Connection,
    fx: &mut Effects,
    mailbox: MailboxId,
    uid_next: Uid,
    highest_modseq: ModSeq,
) -> StoreResult<()> {
    let mut mb = MailboxRow::load(conn, mailbox)?;
    if highest_modseq.0 > i64::MAX as u64 {
        return Err(StoreError::Limit("mod-sequence out of range".to_owned()));
    }
    let before = (mb.uid_next, mb.highest_modseq);
    mb.uid_next = mb.uid_next.max(uid_next.get());
    mb.highest_modseq = mb.highest_modseq.max(highest_modseq.0);
    if (mb.uid_next, mb.highest_modseq) != before {
        mb.save(conn)?;
        fx.changed(mailbox, ModSeq(mb.highest_modseq));
    }
    Ok(())
}

pub(crate) fn restore_private_seen(
    conn: &Connection,
    fx: &mut Effects,
    mailbox: MailboxId,
    rows: &[(Uid, AccountId, bool, Option<ModSeq>)],
) -> StoreResult<u64> {
    let mut mb = MailboxRow::load(conn, mailbox)?;
    let mut fresh: Option<ModSeq> = None;
    let mut exists = conn.prepare_cached("SELECT 1 FROM messages WHERE mailbox_id = ?1 AND uid = ?2").db()?;
    let mut write = conn
        .prepare_cached(
            "INSERT INTO private_seen (mailbox_id, uid, account_id, seen, modseq) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (mailbox_id, uid, account_id) DO UPDATE SET seen = excluded.seen,
                                                                     modseq = excluded.modseq",
        )
        .db()?;
    let mut written = 0u64;
    for (uid, account, seen, modseq) in rows {
        if exists.query_row(rusqlite::params![mailbox.0, uid.get()], |_| Ok(())).optional().db()?.is_none()
            || !super::rows::account_exists(conn, *account)?
        {
            continue;
        }
        let modseq = match modseq {
            Some(m) if m.0 > 0 => *m,
            _ => fresh_modseq(&mut mb, &mut fresh)?,
        };
        mb.highest_modseq = mb.highest_modseq.max(modseq.0);
        write.execute(rusqlite::params![mailbox.0, uid.get(), account.0, seen, sql_modseq(modseq)]).db()?;
        written += 1;
    }
    if written > 0 {
        mb.save(conn)?;
        fx.changed(mailbox, ModSeq(mb.highest_modseq));
    }
    Ok(written)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn restored_accounts_keep_their_kind_and_cannot_log_in() {
        let conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&conn).unwrap();
        let team = AccountRestore {
            name: "support".into(),
            kind: AccountKind::Team,
            address: Some("s@x.org".into()),
        };
        let team = restore_account(&conn, &team).unwrap();
        let user =
            AccountRestore { name: "ann".into(), kind: AccountKind::User, address: Some("ignored@x".into()) };
        let user = restore_account(&conn, &user).unwrap();
        let row = |id: AccountId| -> (i64, String, Option<String>) {
            conn.query_row("SELECT kind, password_hash, address FROM accounts WHERE id = ?1", [id.0], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap()
        };
        assert_eq!(row(team), (1, "!team".to_owned(), Some("s@x.org".to_owned())));
        assert_eq!(row(user), (0, RESTORED_PASSWORD_HASH.to_owned(), None));
        let mailboxes: i64 = conn.query_row("SELECT count(*) FROM mailboxes", [], |r| r.get(0)).unwrap();
        assert_eq!(mailboxes, 0);
    }
}
