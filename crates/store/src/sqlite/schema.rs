//! The SQLite schema and its hand-written migrations.
//!
//! The schema version lives in `PRAGMA user_version`; opening the store applies the missing
//! migration steps in one `BEGIN IMMEDIATE` transaction, so two processes opening a fresh
//! database at once cannot both migrate it. A database newer than this program is refused.
//!
//! # Tables (version 1)
//!
//! - `accounts(id, name, name_key, password_hash, created)`: `name_key` is the lowercased login
//!   name and is UNIQUE, which makes login names unique case-insensitively. `id` is
//!   AUTOINCREMENT so an id is never handed out twice.
//! - `uid_validity_counter(id = 1, last_issued)`: one row; every new mailbox takes
//!   `max(now, last_issued + 1)` as UIDVALIDITY in the same transaction, so a re-created mailbox
//!   never sees an old value again, not even after a clock step backwards.
//! - `mailboxes(id, account_id, name, special_use, uid_validity, uid_next, highest_modseq,
//!   recent_from_uid, messages, unseen, deleted, size, recent)`: one row per mailbox. `name` is
//!   the full `/`-separated path, UNIQUE per account. `uid_next` and `highest_modseq` change in
//!   the same transaction as the rows they number, so neither goes backwards after a crash. The
//!   counters (`messages` … `recent`) are maintained by every write so that STATUS is one row
//!   read. `recent_from_uid` is the IMAP4rev1 `\Recent` boundary: messages with a UID at or
//!   above it have not been claimed by a SELECT yet; `recent` counts them. `id` is
//!   AUTOINCREMENT: it doubles as RFC 8474 MAILBOXID and must never be reused.
//! - `mailbox_keywords(mailbox_id, keyword)`: every keyword ever set in the mailbox (FLAGS,
//!   PERMANENTFLAGS); case-insensitive (`COLLATE NOCASE`), first spelling kept.
//! - `subscriptions(account_id, name)`: by name, independent of mailboxes (RFC 9051 §6.3.7).
//! - `bodies(id, refcount, size, summary, raw)`: the message bytes exactly as appended plus the
//!   serialised `MessageSummary` (JSON). COPY shares a body; a trigger deletes a body when its
//!   last `messages` row goes (since version 13 by looking for another row, not by counting:
//!   `refcount` is a leftover, see [`V13`]). The body row is written once, never updated: an
//!   UPDATE would rewrite the blob. The blobs are the last columns so that reading `size` does
//!   not walk the overflow pages.
//! - `messages(mailbox_id, uid, body_id, flags, keywords, internal_date, date_offset, size,
//!   modseq)`: WITHOUT ROWID, clustered by `(mailbox_id, uid)`, so a UID range is one b-tree
//!   range scan. `flags` is the [`SystemFlags`](crate::SystemFlags) bitmask; `keywords` the
//!   normalised keywords separated by single spaces (keywords are atoms: no spaces).
//!   `internal_date` is Unix seconds, `date_offset` the zone in minutes east of UTC.
//!   `body_id` has no FOREIGN KEY clause on purpose: SQLite would then scan `messages` for
//!   every deleted body, and the triggers keep the reference straight anyway.
//! - `expunged(mailbox_id, uid, modseq)`: every expunged UID with the modseq of its expunge,
//!   kept as long as the mailbox lives so that "what changed since X" is exact for any X.
//!
//! # Indexes
//! - `messages(mailbox_id, modseq)` and `expunged(mailbox_id, modseq)`: changes since a modseq
//!   cost what the changes cost.
//! - partial `messages(mailbox_id, uid) WHERE (flags & 1) = 0`: first unseen message without
//!   scanning the seen ones.
//! - partial `messages(mailbox_id, uid) WHERE (flags & 8) <> 0`: EXPUNGE visits only the
//!   `\Deleted` messages.

use rusqlite::Connection;

use super::conn::DbResult;
use crate::{StoreError, StoreResult};

/// The migration steps; step `i` brings the database from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] =
    &[V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12, V13, V14, V15, V16];

const V1: &str = "
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL,
    name_key      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created       INTEGER NOT NULL
);

CREATE TABLE uid_validity_counter (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    last_issued INTEGER NOT NULL
);
INSERT INTO uid_validity_counter (id, last_issued) VALUES (1, 0);

CREATE TABLE mailboxes (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    special_use     TEXT,
    uid_validity    INTEGER NOT NULL,
    uid_next        INTEGER NOT NULL,
    highest_modseq  INTEGER NOT NULL,
    recent_from_uid INTEGER NOT NULL,
    messages        INTEGER NOT NULL DEFAULT 0,
    unseen          INTEGER NOT NULL DEFAULT 0,
    deleted         INTEGER NOT NULL DEFAULT 0,
    size            INTEGER NOT NULL DEFAULT 0,
    recent          INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, name)
);

CREATE TABLE mailbox_keywords (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    keyword    TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (mailbox_id, keyword)
) WITHOUT ROWID;

CREATE TABLE subscriptions (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
) WITHOUT ROWID;

CREATE TABLE bodies (
    id       INTEGER PRIMARY KEY,
    refcount INTEGER NOT NULL DEFAULT 0,
    size     INTEGER NOT NULL,
    summary  BLOB NOT NULL,
    raw      BLOB NOT NULL
);

CREATE TABLE messages (
    mailbox_id    INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid           INTEGER NOT NULL,
    body_id       INTEGER NOT NULL,
    flags         INTEGER NOT NULL,
    keywords      TEXT NOT NULL,
    internal_date INTEGER NOT NULL,
    date_offset   INTEGER NOT NULL,
    size          INTEGER NOT NULL,
    modseq        INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;

CREATE INDEX messages_by_modseq ON messages (mailbox_id, modseq);
CREATE INDEX messages_unseen ON messages (mailbox_id, uid) WHERE (flags & 1) = 0;
CREATE INDEX messages_deleted ON messages (mailbox_id, uid) WHERE (flags & 8) <> 0;

CREATE TABLE expunged (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid        INTEGER NOT NULL,
    modseq     INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;

CREATE INDEX expunged_by_modseq ON expunged (mailbox_id, modseq);

CREATE TRIGGER messages_hold_body AFTER INSERT ON messages BEGIN
    UPDATE bodies SET refcount = refcount + 1 WHERE id = NEW.body_id;
END;

CREATE TRIGGER messages_release_body AFTER DELETE ON messages BEGIN
    UPDATE bodies SET refcount = refcount - 1 WHERE id = OLD.body_id;
    DELETE FROM bodies WHERE id = OLD.body_id AND refcount <= 0;
END;
";

/// Version 2: the full-text index and per-body facts (see [`super::index`]), save dates
/// (RFC 8514) and the backfill cursor for messages stored before version 2.
///
/// - `body_text`: FTS5, contentless with tombstone deletes, trigram tokenizer without case
///   folding (the text is folded before it is inserted, so index and scan agree). Columns:
///   the values of Subject, From, To, Cc and Bcc, all header lines, and the body text.
///   `rowid` = `bodies.id`: copies share one entry.
/// - `body_index(body_id, text_state, ...)`: a row per indexed body: 1 = the FTS row holds all
///   of the text, 2 = the text was cut at the size limit. No row: not indexed (searches scan).
///   Also the PREVIEW text, the SORT/THREAD keys and the RFC 8474 EMAILID, computed once at
///   append.
/// - `saved_at(mailbox_id, uid, unix)`: when a message was put into its mailbox (RFC 8514
///   SAVEDATE); written by a trigger on every insert into `messages` (APPEND, COPY, MOVE).
///   Messages stored before version 2 have no row (SAVEDATE NIL).
/// - `messages_by_body`: finds the messages of a body (full-text hits → UIDs).
/// - `index_backfill(next_body, last_body)`: bodies up to `last_body` predate the index; a
///   background thread indexed them in batches and deleted the row when done. Replaced by the
///   re-derivation range in version 8.
const V2: &str = "
CREATE VIRTUAL TABLE body_text USING fts5(
    h_subject, h_from, h_to, h_cc, h_bcc, headers, body,
    content = '', contentless_delete = 1, tokenize = 'trigram case_sensitive 1'
);

CREATE TABLE body_index (
    body_id        INTEGER PRIMARY KEY,
    text_state     INTEGER NOT NULL,
    preview        TEXT,
    sent_date      INTEGER,
    base_subject   TEXT NOT NULL,
    is_reply       INTEGER NOT NULL,
    sort_from      TEXT NOT NULL,
    sort_to        TEXT NOT NULL,
    sort_cc        TEXT NOT NULL,
    display_from   TEXT NOT NULL,
    display_to     TEXT NOT NULL,
    message_id     TEXT,
    refs           TEXT NOT NULL,
    email_id       TEXT NOT NULL
);

CREATE TABLE saved_at (
    mailbox_id INTEGER NOT NULL,
    uid        INTEGER NOT NULL,
    unix       INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;

CREATE INDEX messages_by_body ON messages (body_id);

CREATE TRIGGER messages_record_save AFTER INSERT ON messages BEGIN
    INSERT OR REPLACE INTO saved_at (mailbox_id, uid, unix) VALUES (NEW.mailbox_id, NEW.uid, unixepoch());
END;

CREATE TRIGGER messages_forget_save AFTER DELETE ON messages BEGIN
    DELETE FROM saved_at WHERE mailbox_id = OLD.mailbox_id AND uid = OLD.uid;
END;

CREATE TRIGGER bodies_unindex AFTER DELETE ON bodies BEGIN
    DELETE FROM body_text WHERE rowid = OLD.id;
    DELETE FROM body_index WHERE body_id = OLD.id;
END;

CREATE TABLE index_backfill (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    next_body INTEGER NOT NULL,
    last_body INTEGER NOT NULL
);
INSERT INTO index_backfill (id, next_body, last_body)
    SELECT 1, (SELECT min(id) FROM bodies), (SELECT max(id) FROM bodies) WHERE EXISTS (SELECT 1 FROM bodies);
";

/// Version 3: delivery state (see [`super::sieve`]).
///
/// - `sieve_scripts(account_id, name, script, active, updated)`: a user's Sieve scripts; the
///   partial UNIQUE index lets at most one per account be active.
/// - `vacation_sent(account_id, handle, sender, sent_at, expires)`: vacation replies sent
///   (RFC 5230 §4.2), one row per (handle, sender), forgotten after `expires`.
/// - `delivery_settings(account_id, detail_mailbox)`: whether mail to `user+detail` goes to the
///   mailbox named `detail` (1) or to INBOX (0, also when there is no row).
const V3: &str = "
CREATE TABLE sieve_scripts (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    script     TEXT NOT NULL,
    active     INTEGER NOT NULL DEFAULT 0,
    updated    INTEGER NOT NULL,
    PRIMARY KEY (account_id, name)
) WITHOUT ROWID;
CREATE UNIQUE INDEX sieve_scripts_one_active ON sieve_scripts (account_id) WHERE active = 1;

CREATE TABLE vacation_sent (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    handle     TEXT NOT NULL,
    sender     TEXT NOT NULL,
    sent_at    INTEGER NOT NULL,
    expires    INTEGER NOT NULL,
    PRIMARY KEY (account_id, handle, sender)
) WITHOUT ROWID;
CREATE INDEX vacation_sent_by_expiry ON vacation_sent (account_id, expires);

CREATE TABLE delivery_settings (
    account_id     INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    detail_mailbox INTEGER NOT NULL DEFAULT 0
);
";

/// Version 4: credentials beside the password and login blocks (see [`super::credentials`]).
///
/// - `scram_credentials(account_id, ...)`: the password's SCRAM-SHA-256 verifier (RFC 5802
///   §3), written with the argon2id hash; never the password.
/// - `totp(account_id, secret, confirmed, password_plus_code, last_step, created)`: the second
///   factor; `last_step` is the time step of the last accepted code (replay protection).
/// - `app_passwords(id, account_id, label, hash, created, last_used, last_address)`: labels
///   unique per account, case-insensitively; `id` AUTOINCREMENT so a revoked id never returns.
/// - `credentials_generation(id = 1, value)`: bumped by revocations, TOTP changes and account
///   deletion (trigger), so running servers notice with one small read.
/// - `address_blocks(address, until, created, reason)`: client addresses blocked after too
///   many failed logins; kept here so `postfach ban list/remove` sees the server's blocks.
const V4: &str = "
CREATE TABLE scram_credentials (
    account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    iterations INTEGER NOT NULL,
    salt       BLOB NOT NULL,
    stored_key BLOB NOT NULL,
    server_key BLOB NOT NULL
);

CREATE TABLE totp (
    account_id         INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    secret             BLOB NOT NULL,
    confirmed          INTEGER NOT NULL,
    password_plus_code INTEGER NOT NULL,
    last_step          INTEGER,
    created            INTEGER NOT NULL
);

CREATE TABLE app_passwords (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    label        TEXT NOT NULL COLLATE NOCASE,
    hash         TEXT NOT NULL,
    created      INTEGER NOT NULL,
    last_used    INTEGER,
    last_address TEXT,
    UNIQUE (account_id, label)
);

CREATE TABLE credentials_generation (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO credentials_generation (id, value) VALUES (1, 0);

CREATE TRIGGER accounts_end_sessions AFTER DELETE ON accounts BEGIN
    UPDATE credentials_generation SET value = value + 1 WHERE id = 1;
END;

CREATE TABLE address_blocks (
    address TEXT PRIMARY KEY,
    until   INTEGER NOT NULL,
    created INTEGER NOT NULL,
    reason  TEXT NOT NULL
) WITHOUT ROWID;
";

/// Version 5: which bodies the full-text index does not hold completely (see
/// [`super::search`]), so that a text search visits the index's hits and these bodies instead
/// of every message of the mailbox.
///
/// - `unindexed_bodies(body_id)`: a row from the moment a body is inserted until its complete
///   index entry is written in the same transaction; it stays when indexing failed or the text
///   was cut at the size limit, and for bodies stored before version 2 until the backfill (the
///   re-derivation since version 8) reaches them. The `bodies_unindex` trigger (recreated) also
///   removes it.
const V5: &str = "
CREATE TABLE unindexed_bodies (
    body_id INTEGER PRIMARY KEY
);
INSERT INTO unindexed_bodies (body_id)
    SELECT id FROM bodies b
    WHERE NOT EXISTS (SELECT 1 FROM body_index bi WHERE bi.body_id = b.id AND bi.text_state = 1);

DROP TRIGGER bodies_unindex;
CREATE TRIGGER bodies_unindex AFTER DELETE ON bodies BEGIN
    DELETE FROM body_text WHERE rowid = OLD.id;
    DELETE FROM body_index WHERE body_id = OLD.id;
    DELETE FROM unindexed_bodies WHERE body_id = OLD.id;
END;
";

/// Version 6: each mailbox's UIDs as runs of consecutive UIDs, so that SELECT reads one row
/// per run instead of one per message (a million-message mailbox with a few holes is a few
/// rows).
///
/// - `uid_runs(mailbox_id, first_uid, last_uid)`: the runs never overlap and together hold
///   exactly the UIDs in `messages` (two runs may touch; readers merge them). Kept by triggers
///   on every insert into and delete from `messages`, whatever the path (APPEND, COPY, MOVE,
///   EXPUNGE, RENAME INBOX, cascades). An insert extends the run that ends just below its UID
///   (UIDs are taken in ascending order, so that is the last run) or starts a new one; a delete
///   cuts the run that holds the UID in two. Each costs a few probes of the primary key.
const V6: &str = "
CREATE TABLE uid_runs (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    first_uid  INTEGER NOT NULL,
    last_uid   INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, first_uid)
) WITHOUT ROWID;

INSERT INTO uid_runs (mailbox_id, first_uid, last_uid)
    SELECT mailbox_id, min(uid), max(uid)
    FROM (SELECT mailbox_id, uid, uid - row_number() OVER (PARTITION BY mailbox_id ORDER BY uid) AS run
          FROM messages)
    GROUP BY mailbox_id, run;

CREATE TRIGGER messages_join_run AFTER INSERT ON messages BEGIN
    UPDATE uid_runs SET last_uid = NEW.uid
    WHERE mailbox_id = NEW.mailbox_id AND last_uid = NEW.uid - 1
      AND first_uid = (SELECT max(first_uid) FROM uid_runs
                       WHERE mailbox_id = NEW.mailbox_id AND first_uid < NEW.uid);
    INSERT INTO uid_runs (mailbox_id, first_uid, last_uid)
    SELECT NEW.mailbox_id, NEW.uid, NEW.uid
    WHERE NOT EXISTS (SELECT 1 FROM uid_runs
                      WHERE mailbox_id = NEW.mailbox_id AND last_uid >= NEW.uid
                        AND first_uid = (SELECT max(first_uid) FROM uid_runs
                                         WHERE mailbox_id = NEW.mailbox_id AND first_uid <= NEW.uid));
END;

CREATE TRIGGER messages_cut_run AFTER DELETE ON messages BEGIN
    INSERT INTO uid_runs (mailbox_id, first_uid, last_uid)
    SELECT mailbox_id, OLD.uid + 1, last_uid FROM uid_runs
    WHERE mailbox_id = OLD.mailbox_id AND last_uid > OLD.uid
      AND first_uid = (SELECT max(first_uid) FROM uid_runs
                       WHERE mailbox_id = OLD.mailbox_id AND first_uid <= OLD.uid);
    UPDATE uid_runs SET last_uid = OLD.uid - 1
    WHERE mailbox_id = OLD.mailbox_id AND last_uid >= OLD.uid
      AND first_uid = (SELECT max(first_uid) FROM uid_runs
                       WHERE mailbox_id = OLD.mailbox_id AND first_uid <= OLD.uid);
    DELETE FROM uid_runs WHERE mailbox_id = OLD.mailbox_id AND first_uid = OLD.uid AND last_uid < first_uid;
END;
";

/// Version 7: FTS5 merges its index segments 16 at a time instead of 4 (`automerge`, stored in
/// the table's own configuration). With one index for the whole installation, merging at 4
/// rewrote large segments over and over (and checked every entry against the tombstones of
/// deleted messages): on a database holding 1.1 million messages APPEND ran at 53 msg/s (one
/// client) and 55 msg/s (ten); with 16, 272–309 and 342–406, as on an empty database, and
/// `UID SEARCH TEXT` on the million-message mailbox stayed at 160 ms.
const V7: &str = "
INSERT INTO body_text (body_text, rank) VALUES ('automerge', 16);
";

/// Version 8: which version of the parser derived each body's stored results (see
/// [`super::rederive`]), so that bodies stored by an older one are derived again.
///
/// - `derived(id = 1, version, next_body, last_body)`: every body's summary, `body_index` row and
///   `body_text` row were made by [`super::rederive::DERIVED_VERSION`] `version`, except the
///   bodies with an id in `next_body..=last_body` (both NULL: none), which a background thread
///   derives again in batches, moving `next_body` past each. Written here with version 0 ("before
///   versions were kept"), so the first start after the upgrade derives every body again.
/// - `index_backfill` goes: the bodies it still listed (no index entry yet) are in that range.
const V8: &str = "
CREATE TABLE derived (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    version   INTEGER NOT NULL,
    next_body INTEGER,
    last_body INTEGER
);
INSERT INTO derived (id, version, next_body, last_body) VALUES (1, 0, NULL, NULL);

DROP TABLE index_backfill;
";

/// Version 9: teams, groups, ACLs (RFC 4314), per-user `\Seen` and quotas (RFC 9208) (see
/// [`super::shares`], [`super::seen`], [`super::quota`]).
///
/// - `accounts.kind`: 0 a user, 1 a team (cannot log in). `accounts.address`: a team's delivery
///   address, unique case-insensitively (ASCII folding, `lower()`); NULL for users.
/// - `mailboxes.seen_mode`: 0 one `\Seen` for everybody, 1 one per account (`private_seen`).
/// - `acl(mailbox_id, identifier, rights)`: a mailbox's entries; `identifier` is the canonical
///   text of an [`Identifier`](crate::Identifier) (`name`, `-name`, `$group`, `anyone`,
///   `authenticated`; an account by its `accounts.name`), compared case-insensitively;
///   `rights` the [`Rights`](crate::Rights) bits. `acl_by_identifier` is the "shared with me"
///   index: grantee → mailboxes, kept by SQLite in the transaction of every ACL change, so
///   nothing ever rebuilds it.
/// - `team_members(team_id, account_id, rights)`: the rights a membership grants on every
///   mailbox of the team (written into `acl` as the member's entry).
/// - `group_members(account_id, group_name)`: who is in `$group`.
/// - `private_seen(mailbox_id, uid, account_id, seen, modseq)`: one row per (message, viewer)
///   whose private `\Seen` was ever set; `seen = 0` rows keep the modseq of the unset. The
///   primary key serves the delete trigger (a message's rows go with it), the index a viewer's
///   rows and their changes since a modseq (and an account's deletion).
/// - `quota(account_id, *_limit, *_used, *_level)`: one row per account. Limits NULL: the
///   installation's default. `storage_used`/`messages_used` move in the transaction of every
///   write that stores or frees messages (checked and incremented in one UPDATE); filled here
///   from the mailboxes' counters. `*_level` is the highest threshold (80/90/100 %) the usage
///   is at or above, so a warning is recorded once per upward crossing and re-armed when the
///   usage falls below it again.
/// - `quota_warnings(id, account_id, resource, percent, used, limit_value, created,
///   delivered)`: recorded crossings; `resource` 0 storage, 1 messages, 2 mailboxes.
const V9: &str = "
ALTER TABLE accounts ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN address TEXT;
CREATE UNIQUE INDEX accounts_by_address ON accounts (lower(address));

ALTER TABLE mailboxes ADD COLUMN seen_mode INTEGER NOT NULL DEFAULT 0;

CREATE TABLE acl (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    identifier TEXT NOT NULL COLLATE NOCASE,
    rights     INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, identifier)
) WITHOUT ROWID;
CREATE INDEX acl_by_identifier ON acl (identifier, mailbox_id);

CREATE TABLE team_members (
    team_id    INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    rights     INTEGER NOT NULL,
    PRIMARY KEY (team_id, account_id)
) WITHOUT ROWID;
CREATE INDEX team_members_by_account ON team_members (account_id);

CREATE TABLE group_members (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    group_name TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (account_id, group_name)
) WITHOUT ROWID;

CREATE TABLE private_seen (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid        INTEGER NOT NULL,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    seen       INTEGER NOT NULL,
    modseq     INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid, account_id)
) WITHOUT ROWID;
CREATE INDEX private_seen_by_viewer ON private_seen (account_id, mailbox_id, modseq);

CREATE TRIGGER messages_forget_private_seen AFTER DELETE ON messages BEGIN
    DELETE FROM private_seen WHERE mailbox_id = OLD.mailbox_id AND uid = OLD.uid;
END;

CREATE TABLE quota (
    account_id     INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    storage_limit  INTEGER,
    message_limit  INTEGER,
    mailbox_limit  INTEGER,
    storage_used   INTEGER NOT NULL DEFAULT 0,
    messages_used  INTEGER NOT NULL DEFAULT 0,
    storage_level  INTEGER NOT NULL DEFAULT 0,
    messages_level INTEGER NOT NULL DEFAULT 0
);
INSERT INTO quota (account_id, storage_used, messages_used)
    SELECT a.id, coalesce(sum(m.size), 0), coalesce(sum(m.messages), 0)
    FROM accounts a LEFT JOIN mailboxes m ON m.account_id = a.id
    GROUP BY a.id;

CREATE TABLE quota_warnings (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    resource    INTEGER NOT NULL,
    percent     INTEGER NOT NULL,
    used        INTEGER NOT NULL,
    limit_value INTEGER NOT NULL,
    created     INTEGER NOT NULL,
    delivered   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX quota_warnings_by_account ON quota_warnings (account_id);
CREATE INDEX quota_warnings_pending ON quota_warnings (id) WHERE delivered = 0;
";

/// Version 10: automatic clean-up of Trash and Junk by save date (see [`super::cleanup`]).
///
/// - `saved_at_by_time(mailbox_id, unix)`: "messages of mailbox M saved before T" is a range
///   scan, however many messages the mailbox holds.
/// - `saved_at` gets a row for every message that had none (stored before version 2), holding
///   its internal date: what FETCH SAVEDATE and SEARCH SAVEDBEFORE already used for them. The
///   instant is the same; FETCH now shows it in UTC instead of the internal date's zone.
/// - `cleanup_settings(account_id, trash_days, junk_days)`: an account's own limits (days; 0:
///   never), NULL: the installation's default. No row: both defaults.
const V10: &str = "
INSERT INTO saved_at (mailbox_id, uid, unix)
    SELECT m.mailbox_id, m.uid, m.internal_date FROM messages m
    WHERE NOT EXISTS (SELECT 1 FROM saved_at s WHERE s.mailbox_id = m.mailbox_id AND s.uid = m.uid);
CREATE INDEX saved_at_by_time ON saved_at (mailbox_id, unix);

CREATE TABLE cleanup_settings (
    account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    trash_days INTEGER,
    junk_days  INTEGER
);
";

/// Version 11: the outbound queue (see [`crate::queue`], `super::queue`).
///
/// - `outbound_queue(id, owner_id, kind, reverse_path, recipients, data, dedup_key, created,
///   expires, next_attempt, attempts, last_error, lease_until, done)`: one row per message
///   Postfach sends (vacation reply, redirect, bounce). `recipients` one per line. A row is
///   waiting while `done = 0`; `lease_until` (when set and in the future) says a sender holds
///   it. A finished row (`done = 1`) loses its message and stays until `expires` only so its
///   `dedup_key` keeps a repeated delivery from queueing it again.
/// - `outbound_due` serves the sender's claim (waiting rows by due time), `outbound_key` the
///   idempotency check (NULL keys never collide).
const V11: &str = "
CREATE TABLE outbound_queue (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id     INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    reverse_path TEXT NOT NULL,
    recipients   TEXT NOT NULL,
    dedup_key    TEXT,
    created      INTEGER NOT NULL,
    expires      INTEGER NOT NULL,
    next_attempt INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    lease_until  INTEGER,
    done         INTEGER NOT NULL DEFAULT 0,
    data         BLOB NOT NULL
);
CREATE INDEX outbound_due ON outbound_queue (next_attempt) WHERE done = 0;
CREATE INDEX outbound_done ON outbound_queue (expires) WHERE done = 1;
CREATE UNIQUE INDEX outbound_key ON outbound_queue (owner_id, dedup_key);
";

/// Version 12: who administers the web pages (issue 19).
/// - `web_admins(account_id)`: a row per account with the admin flag (`postfach user set NAME
///   --admin true`); it goes with the account.
const V12: &str = "
CREATE TABLE web_admins (
    account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE
);
";

/// Version 13: bodies are no longer counted, they are looked up. The `refcount` column cost a
/// rewrite of the whole body row on every APPEND and COPY (SQLite rebuilds the record, blob
/// included, for `UPDATE bodies SET refcount = …`): twice the message written to the WAL and
/// two more copies of it in memory. Now the delete trigger drops a body when no `messages` row
/// points at it any more (`messages_by_body` answers that). The column stays, unused, because
/// dropping it would rewrite every body of an existing database.
const V13: &str = "
DROP TRIGGER messages_hold_body;
DROP TRIGGER messages_release_body;
CREATE TRIGGER messages_release_body AFTER DELETE ON messages BEGIN
    DELETE FROM bodies WHERE id = OLD.body_id
        AND NOT EXISTS (SELECT 1 FROM messages WHERE body_id = OLD.body_id);
END;
";

/// Version 14: METADATA entries (RFC 5464, `super::metadata`). Names are lowercase paths
/// starting `/shared` or `/private`.
/// - `mailbox_metadata(mailbox_id, account_id, name, value)`: a mailbox's entries; `account_id`
///   0 for shared ones, else whose private entry it is. They go with the mailbox (the foreign
///   key) and with the account a private one belongs to (the trigger); a RENAME keeps the row id.
/// - `account_metadata(account_id, name, value)`: an account's private server entries.
/// - `server_metadata(name, value)`: the installation's shared server entries.
const V14: &str = "
CREATE TABLE mailbox_metadata (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL,
    name       TEXT NOT NULL,
    value      BLOB NOT NULL,
    PRIMARY KEY (mailbox_id, account_id, name)
) WITHOUT ROWID;
CREATE INDEX mailbox_metadata_by_account ON mailbox_metadata (account_id) WHERE account_id <> 0;

CREATE TABLE account_metadata (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    value      BLOB NOT NULL,
    PRIMARY KEY (account_id, name)
) WITHOUT ROWID;

CREATE TABLE server_metadata (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER accounts_forget_private_metadata AFTER DELETE ON accounts BEGIN
    DELETE FROM mailbox_metadata WHERE account_id = OLD.id AND account_id <> 0;
END;
";

/// Version 15: URLAUTH mailbox access keys (RFC 4467 §6, `super::urlauth`): one random key per
/// user and mailbox, made by GENURLAUTH, dropped by RESETKEY; gone with the account or the
/// mailbox (a mailbox made again under the old name has no key, so old URLs stay invalid).
const V15: &str = "
CREATE TABLE urlauth_keys (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    key        BLOB NOT NULL,
    PRIMARY KEY (account_id, mailbox_id)
) WITHOUT ROWID;
CREATE INDEX urlauth_keys_by_mailbox ON urlauth_keys (mailbox_id);
";

/// Version 16: the full-text index moves out of the database into one file per account
/// (`super::text`). `body_index.text_account` says whose file holds a body's text (set at
/// APPEND); `text_shards(account_id, token)` which generation of that file the database trusts;
/// `dead_texts(account_id, body_id, email_id)` the texts of deleted bodies still to be removed
/// from a file (the `bodies_unindex` trigger, recreated, records them). Every body is pending
/// again: the indexer writes the account files from the stored messages in the background,
/// and SEARCH scans what it has not reached yet. The old `body_text` table is dropped.
const V16: &str = "
ALTER TABLE body_index ADD COLUMN text_account INTEGER;

CREATE TABLE text_shards (
    account_id INTEGER PRIMARY KEY,
    token      INTEGER NOT NULL
);

CREATE TABLE dead_texts (
    account_id INTEGER NOT NULL,
    body_id    INTEGER NOT NULL,
    email_id   TEXT NOT NULL,
    PRIMARY KEY (account_id, body_id, email_id)
) WITHOUT ROWID;

UPDATE body_index SET text_state = 0 WHERE text_state <> 0;
INSERT OR IGNORE INTO unindexed_bodies (body_id) SELECT body_id FROM body_index;

DROP TRIGGER bodies_unindex;
CREATE TRIGGER bodies_unindex AFTER DELETE ON bodies BEGIN
    INSERT OR IGNORE INTO dead_texts (account_id, body_id, email_id)
        SELECT text_account, body_id, email_id FROM body_index
        WHERE body_id = OLD.id AND text_account IS NOT NULL;
    DELETE FROM body_index WHERE body_id = OLD.id;
    DELETE FROM unindexed_bodies WHERE body_id = OLD.id;
END;

CREATE TRIGGER accounts_forget_text_index AFTER DELETE ON accounts BEGIN
    DELETE FROM text_shards WHERE account_id = OLD.id;
END;

DROP TABLE body_text;
";

/// Brings the database to the newest schema version. Runs on the writer connection before the
/// writer thread starts.
pub(crate) fn migrate(conn: &Connection) -> StoreResult<()> {
    // BEGIN IMMEDIATE takes the write lock before reading the version: a second process that
    // opens the database at the same moment waits here and then sees the migrated version.
    conn.execute_batch("BEGIN IMMEDIATE").db()?;
    let outcome = apply_missing(conn);
    match outcome {
        Ok(()) => conn.execute_batch("COMMIT").db(),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn apply_missing(conn: &Connection) -> StoreResult<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).db()?;
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if current > known {
        return Err(StoreError::Backend(format!(
            "database schema version {current} is newer than this program (knows {known})"
        )));
    }
    let start = usize::try_from(current).unwrap_or(0);
    for (index, step) in MIGRATIONS.iter().enumerate().skip(start) {
        conn.execute_batch(step).db()?;
        // PRAGMA does not take bound parameters; the value is our own integer.
        conn.execute_batch(&format!("PRAGMA user_version = {}", index + 1)).db()?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_is_idempotent() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        migrate(&conn).unwrap();
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
    }

    #[test]
    fn v5_lists_the_bodies_the_index_does_not_hold() {
        let conn = Connection::open_in_memory().unwrap();
        for step in &MIGRATIONS[..4] {
            conn.execute_batch(step).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO bodies (id, size, summary, raw) VALUES (1, 1, x'', x'00'), (2, 1, x'', x'00'),
                                                              (3, 1, x'', x'00');
             INSERT INTO body_index (body_id, text_state, base_subject, is_reply, sort_from, sort_to, sort_cc,
                                     display_from, display_to, refs, email_id)
                 VALUES (1, 1, '', 0, '', '', '', '', '', '', 'E1'), (2, 2, '', 0, '', '', '', '', '', '', 'E2');
             PRAGMA user_version = 4;",
        )
        .unwrap();
        // Version 5 alone: version 16 marks every body pending again.
        conn.execute_batch(MIGRATIONS[4]).unwrap();
        let listed: Vec<i64> = conn
            .prepare("SELECT body_id FROM unindexed_bodies ORDER BY body_id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // 2 was cut at the size limit, 3 has no entry at all.
        assert_eq!(listed, vec![2, 3]);
    }

    /// The runs as the table holds them, merged where they touch.
    fn runs(conn: &Connection, mailbox: i64) -> Vec<(i64, i64)> {
        let stored: Vec<(i64, i64)> = conn
            .prepare("SELECT first_uid, last_uid FROM uid_runs WHERE mailbox_id = ?1 ORDER BY first_uid")
            .unwrap()
            .query_map([mailbox], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut merged: Vec<(i64, i64)> = Vec::new();
        for (a, b) in stored {
            assert!(a <= b, "empty run {a}..{b}");
            match merged.last_mut() {
                Some(last) if last.1 + 1 == a => last.1 = b,
                Some(last) => {
                    assert!(last.1 < a, "overlapping runs");
                    merged.push((a, b));
                }
                None => merged.push((a, b)),
            }
        }
        merged
    }

    /// The runs of the UIDs `messages` holds.
    fn truth(conn: &Connection, mailbox: i64) -> Vec<(i64, i64)> {
        let uids: Vec<i64> = conn
            .prepare("SELECT uid FROM messages WHERE mailbox_id = ?1 ORDER BY uid")
            .unwrap()
            .query_map([mailbox], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut out: Vec<(i64, i64)> = Vec::new();
        for u in uids {
            match out.last_mut() {
                Some(last) if last.1 + 1 == u => last.1 = u,
                _ => out.push((u, u)),
            }
        }
        out
    }

    #[test]
    fn uid_runs_follow_inserts_and_deletes() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        conn.execute_batch(
            "PRAGMA foreign_keys = ON;
             INSERT INTO accounts (name, name_key, password_hash, created) VALUES ('a', 'a', '', 0);
             INSERT INTO mailboxes (account_id, name, uid_validity, uid_next, highest_modseq,
                                    recent_from_uid) VALUES (1, 'INBOX', 1, 1, 1, 1);
             INSERT INTO mailboxes (account_id, name, uid_validity, uid_next, highest_modseq,
                                    recent_from_uid) VALUES (1, 'Other', 2, 1, 1, 1);
             INSERT INTO bodies (id, size, summary, raw) VALUES (1, 1, x'', x'00');",
        )
        .unwrap();
        let insert = |mailbox: i64, uid: i64| {
            conn.execute("INSERT INTO messages VALUES (?1, ?2, 1, 0, '', 0, 0, 1, 1)", [mailbox, uid])
                .unwrap();
        };
        let delete = |mailbox: i64, uid: i64| {
            conn.execute("DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2", [mailbox, uid]).unwrap();
        };
        // A small deterministic generator: variety, not randomness.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n) as i64
        };
        let mut top = [0i64; 3];
        for step in 0..600 {
            let mailbox = 1 + next(2);
            if next(3) > 0 {
                // Ascending, sometimes with gaps (UIDs of expunged messages are not reused).
                top[mailbox as usize] += 1 + next(2);
                insert(mailbox, top[mailbox as usize]);
            } else {
                let victim = 1 + next(top[mailbox as usize].max(1) as u64);
                delete(mailbox, victim);
            }
            if step % 50 == 0 {
                // A whole range at once, as EXPUNGE of many does.
                conn.execute(
                    "DELETE FROM messages WHERE mailbox_id = 1 AND uid BETWEEN ?1 AND ?1 + 4",
                    [next(40)],
                )
                .unwrap();
            }
            for m in [1, 2] {
                assert_eq!(runs(&conn, m), truth(&conn, m), "mailbox {m} after step {step}");
            }
        }
        // An insert below the top (not done by Postfach, but it must not corrupt the runs).
        delete(1, 3);
        insert(1, 3);
        assert_eq!(runs(&conn, 1), truth(&conn, 1));
        // Deleting the mailbox takes its runs along.
        conn.execute_batch("DELETE FROM mailboxes WHERE id = 2").unwrap();
        assert!(runs(&conn, 2).is_empty());
    }

    #[test]
    fn v6_builds_the_runs_of_existing_messages() {
        let conn = Connection::open_in_memory().unwrap();
        for step in &MIGRATIONS[..5] {
            conn.execute_batch(step).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO accounts (name, name_key, password_hash, created) VALUES ('a', 'a', '', 0);
             INSERT INTO mailboxes (account_id, name, uid_validity, uid_next, highest_modseq,
                                    recent_from_uid) VALUES (1, 'INBOX', 1, 1, 1, 1);
             INSERT INTO bodies (id, size, summary, raw) VALUES (1, 1, x'', x'00');
             INSERT INTO messages VALUES (1, 1, 1, 0, '', 0, 0, 1, 1), (1, 2, 1, 0, '', 0, 0, 1, 1),
                                         (1, 3, 1, 0, '', 0, 0, 1, 1), (1, 7, 1, 0, '', 0, 0, 1, 1),
                                         (1, 9, 1, 0, '', 0, 0, 1, 1), (1, 10, 1, 0, '', 0, 0, 1, 1);
             PRAGMA user_version = 5;",
        )
        .unwrap();
        migrate(&conn).unwrap();
        assert_eq!(runs(&conn, 1), vec![(1, 3), (7, 7), (9, 10)]);
    }

    #[test]
    fn index_files_merge_segments_sixteen_at_a_time() {
        // Version 7 set this for the index in the database; the account files (version 16)
        // keep it.
        let conn = super::super::text::in_memory();
        let automerge: i64 =
            conn.query_row("SELECT v FROM body_text_config WHERE k = 'automerge'", [], |r| r.get(0)).unwrap();
        assert_eq!(automerge, 16);
    }

    #[test]
    fn v16_moves_the_text_index_out_and_marks_every_body_pending() {
        let conn = Connection::open_in_memory().unwrap();
        for step in &MIGRATIONS[..15] {
            conn.execute_batch(step).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO accounts (name, name_key, password_hash, created) VALUES ('a', 'a', '', 0);
             INSERT INTO mailboxes (account_id, name, uid_validity, uid_next, highest_modseq,
                                    recent_from_uid) VALUES (1, 'INBOX', 1, 1, 1, 1);
             INSERT INTO bodies (id, size, summary, raw) VALUES (1, 1, x'', x'00'), (2, 1, x'', x'00');
             INSERT INTO messages VALUES (1, 1, 1, 0, '', 0, 0, 1, 1), (1, 2, 2, 0, '', 0, 0, 1, 1);
             INSERT INTO body_index (body_id, text_state, base_subject, is_reply, sort_from, sort_to, sort_cc,
                                     display_from, display_to, refs, email_id)
                 VALUES (1, 1, '', 0, '', '', '', '', '', '', 'E1'), (2, 1, '', 0, '', '', '', '', '', '', 'E2');
             DELETE FROM unindexed_bodies;
             PRAGMA user_version = 15;",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let pending: i64 = conn
            .query_row(
                "SELECT count(*) FROM body_index bi JOIN unindexed_bodies u ON u.body_id = bi.body_id
                 WHERE bi.text_state = 0",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(pending, 2);
        let old: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema WHERE name LIKE 'body_text%'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(old, 0);
        // A body whose text has an account leaves a note for that account's file when it goes.
        conn.execute_batch(
            "UPDATE body_index SET text_account = 1 WHERE body_id = 1;
             DELETE FROM messages WHERE uid IN (1, 2);",
        )
        .unwrap();
        let dead: Vec<(i64, i64, String)> = conn
            .prepare("SELECT account_id, body_id, email_id FROM dead_texts")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(dead, vec![(1, 1, "E1".to_owned())]);
        let left: i64 = conn.query_row("SELECT count(*) FROM body_index", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn v8_records_no_derived_version_and_drops_the_backfill_cursor() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        // Bodies stored before the index: version 2 lists them for the backfill.
        conn.execute_batch(
            "INSERT INTO bodies (id, size, summary, raw) VALUES (4, 1, x'', x'00'), (9, 1, x'', x'00');",
        )
        .unwrap();
        for step in &MIGRATIONS[1..7] {
            conn.execute_batch(step).unwrap();
        }
        conn.execute_batch("PRAGMA user_version = 7").unwrap();
        let listed: i64 = conn.query_row("SELECT count(*) FROM index_backfill", [], |r| r.get(0)).unwrap();
        assert_eq!(listed, 1);
        migrate(&conn).unwrap();
        let derived: (i64, Option<i64>, Option<i64>) = conn
            .query_row("SELECT version, next_body, last_body FROM derived", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(derived, (0, None, None));
        let gone: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema WHERE name = 'index_backfill'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(gone, 0);
        // Version 0 is older than any parser: the first start derives every body again.
        let range = super::super::rederive::plan(&conn).unwrap();
        assert_eq!(range, Some(super::super::rederive::Range { next: 4, last: 9 }));
    }

    #[test]
    fn v9_fills_quota_usage_from_existing_mailboxes() {
        let conn = Connection::open_in_memory().unwrap();
        for step in &MIGRATIONS[..8] {
            conn.execute_batch(step).unwrap();
        }
        // A version 8 database: two accounts, one with mail in two mailboxes (the counters are
        // what every write keeps), one without; bodies behind the messages.
        conn.execute_batch(
            "INSERT INTO accounts (name, name_key, password_hash, created) VALUES ('Ann', 'ann', 'h', 0),
                                                                            ('bo', 'bo', 'h', 0);
             INSERT INTO mailboxes (account_id, name, uid_validity, uid_next, highest_modseq, recent_from_uid,
                                    messages, size)
                 VALUES (1, 'INBOX', 1, 4, 3, 1, 3, 3000), (1, 'Archive', 2, 2, 1, 1, 1, 500),
                        (2, 'INBOX', 3, 1, 1, 1, 0, 0);
             INSERT INTO bodies (id, size, summary, raw) VALUES (1, 1000, x'', x'00'), (2, 500, x'', x'00');
             INSERT INTO messages VALUES (1, 1, 1, 0, '', 0, 0, 1000, 1), (1, 2, 1, 0, '', 0, 0, 1000, 2),
                                         (1, 3, 1, 0, '', 0, 0, 1000, 3), (2, 1, 2, 0, '', 0, 0, 500, 1);
             PRAGMA user_version = 8;",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let quota: Vec<(i64, i64, i64, Option<i64>)> = conn
            .prepare(
                "SELECT account_id, storage_used, messages_used, storage_limit FROM quota
                 ORDER BY account_id",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(quota, vec![(1, 3500, 4, None), (2, 0, 0, None)]);
        let kinds: Vec<(i64, Option<String>)> = conn
            .prepare("SELECT kind, address FROM accounts ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(kinds, vec![(0, None), (0, None)]);
        let modes: i64 = conn.query_row("SELECT sum(seen_mode) FROM mailboxes", [], |r| r.get(0)).unwrap();
        assert_eq!(modes, 0);
        // Expunging an old message also runs the new trigger (no private rows: nothing to do).
        conn.execute_batch("DELETE FROM messages WHERE mailbox_id = 1 AND uid = 1").unwrap();
    }

    #[test]
    fn v10_gives_every_message_a_save_date_and_indexes_it() {
        let conn = Connection::open_in_memory().unwrap();
        for step in &MIGRATIONS[..9] {
            conn.execute_batch(step).unwrap();
        }
        // Message 1 predates save dates (no row); message 2 has one.
        conn.execute_batch(
            "INSERT INTO accounts (name, name_key, password_hash, created) VALUES ('a', 'a', 'h', 0);
             INSERT INTO mailboxes (account_id, name, uid_validity, uid_next, highest_modseq, recent_from_uid)
                 VALUES (1, 'Trash', 1, 3, 2, 1);
             INSERT INTO bodies (id, size, summary, raw) VALUES (1, 1, x'', x'00');
             INSERT INTO messages VALUES (1, 1, 1, 0, '', 500, 120, 1, 1), (1, 2, 1, 0, '', 600, 0, 1, 2);
             UPDATE saved_at SET unix = 700 WHERE uid = 2;
             DELETE FROM saved_at WHERE uid = 1;
             PRAGMA user_version = 9;",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let saved: Vec<(i64, i64)> = conn
            .prepare("SELECT uid, unix FROM saved_at ORDER BY uid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(saved, vec![(1, 500), (2, 700)]);
        // "Saved before T in mailbox M" is a range of the new index.
        let p = plan_with(
            &conn,
            "SELECT uid FROM saved_at INDEXED BY saved_at_by_time WHERE mailbox_id = ?1 AND unix < ?2",
            2,
        );
        assert!(p.iter().any(|p| p.contains("saved_at_by_time") && p.contains("unix<?")), "{p:?}");
    }

    fn plan_with(conn: &Connection, sql: &str, params: usize) -> Vec<String> {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(rusqlite::params_from_iter(std::iter::repeat_n(1, params)), |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn share_queries_use_their_indexes() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        // Grantee → mailboxes: the "shared with me" lookup (INDEXED BY refuses to prepare
        // when the index cannot serve it).
        let p = plan_with(
            &conn,
            "SELECT DISTINCT mailbox_id FROM acl INDEXED BY acl_by_identifier
             WHERE identifier IN (?1, ?2, ?3)",
            3,
        );
        assert!(p.iter().any(|p| p.contains("acl_by_identifier")), "{p:?}");
        let p = plan_with(&conn, "DELETE FROM acl WHERE identifier IN (?1, ?2)", 2);
        assert!(p.iter().any(|p| p.contains("acl_by_identifier")), "{p:?}");
        let p = plan_with(&conn, "SELECT id FROM accounts WHERE lower(address) = lower(?1) AND kind = 1", 1);
        assert!(p.iter().any(|p| p.contains("accounts_by_address")), "{p:?}");
        // The expunge trigger's delete is a primary-key range, not a scan.
        let p = plan_with(&conn, "DELETE FROM private_seen WHERE mailbox_id = ?1 AND uid = ?2", 2);
        assert!(p.iter().any(|p| p.contains("PRIMARY KEY")), "{p:?}");
        let p = plan_with(&conn, "DELETE FROM private_seen WHERE account_id = ?1", 1);
        assert!(p.iter().any(|p| p.contains("private_seen_by_viewer")), "{p:?}");
    }

    #[test]
    fn refuses_newer_database() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
        assert!(matches!(migrate(&conn), Err(StoreError::Backend(_))));
    }

    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map([1, 1, 9], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn queries_use_the_partial_indexes() {
        // INDEXED BY fails to prepare when the index cannot serve the query, so these would
        // catch a WHERE clause that drifted away from the index definition.
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        let p = plan(
            &conn,
            "SELECT uid FROM messages INDEXED BY messages_unseen
             WHERE mailbox_id = ?1 AND (flags & 1) = 0 AND ?2 AND ?3 ORDER BY uid LIMIT 1",
        );
        assert!(p.iter().any(|p| p.contains("messages_unseen")), "{p:?}");
        let p = plan(
            &conn,
            "SELECT uid FROM messages INDEXED BY messages_deleted
             WHERE mailbox_id = ?1 AND (flags & 8) <> 0 AND uid BETWEEN ?2 AND ?3 ORDER BY uid",
        );
        assert!(p.iter().any(|p| p.contains("messages_deleted")), "{p:?}");
        let p = plan(
            &conn,
            "SELECT uid FROM expunged INDEXED BY expunged_by_modseq
             WHERE mailbox_id = ?1 AND modseq > ?2 AND uid < ?3",
        );
        assert!(p.iter().any(|p| p.contains("expunged_by_modseq")), "{p:?}");
        let p = plan(
            &conn,
            "SELECT uid FROM messages INDEXED BY messages_by_modseq
             WHERE mailbox_id = ?1 AND modseq > ?2 AND uid < ?3",
        );
        assert!(p.iter().any(|p| p.contains("messages_by_modseq")), "{p:?}");
    }

    #[test]
    fn a_body_goes_with_its_last_message() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        conn.execute_batch(
            "INSERT INTO accounts (name, name_key, password_hash, created) VALUES ('a', 'a', '', 0);
             INSERT INTO mailboxes (account_id, name, uid_validity, uid_next, highest_modseq,
                                    recent_from_uid) VALUES (1, 'INBOX', 1, 1, 1, 1);
             INSERT INTO bodies (id, size, summary, raw) VALUES (7, 1, x'', x'00');
             INSERT INTO messages VALUES (1, 1, 7, 0, '', 0, 0, 1, 1);
             INSERT INTO messages VALUES (1, 2, 7, 0, '', 0, 0, 1, 1);",
        )
        .unwrap();
        let bodies = |conn: &Connection| -> i64 {
            conn.query_row("SELECT COUNT(*) FROM bodies", [], |r| r.get(0)).unwrap()
        };
        conn.execute_batch("DELETE FROM messages WHERE uid = 1").unwrap();
        assert_eq!(bodies(&conn), 1, "a message still uses the body");
        // The cascade from the mailbox row fires the trigger too.
        conn.execute_batch("PRAGMA foreign_keys = ON; DELETE FROM accounts").unwrap();
        assert_eq!(bodies(&conn), 0);
    }

    #[test]
    fn adding_a_message_leaves_its_body_row_alone() {
        // Version 13: nothing updates a body row (that would rewrite the blob).
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        let triggers: Vec<String> = conn
            .prepare("SELECT sql FROM sqlite_master WHERE type = 'trigger'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(triggers.iter().all(|t| !t.contains("UPDATE bodies")), "{triggers:?}");
    }
}
