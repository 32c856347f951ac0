//! SEARCH through the full-text index, SORT/ESORT/THREAD and the OBJECTID, SAVEDATE and
//! PREVIEW fetch items, as a client sees them: session transcripts against a real SQLite store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use postfach_imap::ServerContext;

use common::Client;

struct Harness {
    ctx: Arc<ServerContext>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Harness {
        let (dir, ctx) = common::context(1024 * 1024).await;
        Harness { ctx, _dir: dir }
    }

    async fn logged_in(&self) -> Client {
        Client::logged_in(&self.ctx).await
    }
}

impl Client {
    /// Appends with one fixed internal date, so ARRIVAL ties whatever the clock does meanwhile.
    async fn append(&mut self, msg: &str) {
        let date = "\"01-Feb-2024 10:00:00 +0000\"";
        let r = self.raw(format!("ap APPEND INBOX {date} {{{}}}\r\n{msg}", msg.len()).into_bytes()).await;
        assert!(r.last().unwrap().starts_with("ap OK"), "{r:?}");
    }
}

/// Six messages: subjects, dates, senders and threads chosen so every SORT key orders them
/// differently.
const MESSAGES: [&str; 6] = [
    "From: Carol <carol@example.org>\r\nTo: dave@example.org\r\nSubject: Budget 2024\r\nDate: Mon, 1 Jan 2024 09:00:00 +0000\r\nMessage-ID: <1@x>\r\n\r\nPlease review the numbers.\r\n",
    "From: Dave <dave@example.org>\r\nTo: carol@example.org\r\nSubject: Re: Budget 2024\r\nDate: Tue, 2 Jan 2024 09:00:00 +0000\r\nMessage-ID: <2@x>\r\nReferences: <1@x>\r\n\r\nThe numbers look wrong.\r\n",
    "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: Lunch\r\nDate: Sun, 31 Dec 2023 12:00:00 +0000\r\nMessage-ID: <3@x>\r\n\r\nPizza or sushi?\r\n",
    "From: Bob <bob@example.org>\r\nTo: alice@example.org\r\nCc: carol@example.org\r\nSubject: Re: Lunch\r\nDate: Sun, 31 Dec 2023 13:00:00 +0000\r\nMessage-ID: <4@x>\r\nIn-Reply-To: <3@x>\r\n\r\nSushi, obviously. Café after?\r\n",
    "From: Carol <carol@example.org>\r\nTo: dave@example.org\r\nSubject: Re: Re: Budget 2024\r\nDate: Wed, 3 Jan 2024 09:00:00 +0000\r\nMessage-ID: <5@x>\r\nReferences: <1@x> <2@x>\r\n\r\nFixed, see attachment.\r\n",
    "From: =?utf-8?q?=C3=89mile?= <emile@example.org>\r\nTo: carol@example.org\r\nSubject: =?utf-8?q?Caf=C3=A9?=\r\nDate: Thu, 4 Jan 2024 09:00:00 +0000\r\nMessage-ID: <6@x>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Le <b>café</b> est prêt.</p>\r\n",
];

async fn mailbox() -> (Harness, Client) {
    let h = Harness::new().await;
    let mut c = h.logged_in().await;
    for m in MESSAGES {
        c.append(m).await;
    }
    let r = c.cmd("s SELECT INBOX").await;
    assert!(r.last().unwrap().starts_with("s OK"), "{r:?}");
    (h, c)
}

#[tokio::test]
async fn capabilities_name_the_new_extensions() {
    let h = Harness::new().await;
    let mut c = h.logged_in().await;
    let caps = c.line("c CAPABILITY", "* CAPABILITY").await;
    for cap in [
        "SORT",
        "SORT=DISPLAY",
        "ESORT",
        "THREAD=ORDEREDSUBJECT",
        "THREAD=REFERENCES",
        "OBJECTID",
        "SAVEDATE",
        "PREVIEW",
        "WITHIN",
        "ESEARCH",
        "SEARCHRES",
    ] {
        assert!(caps.split(' ').any(|c| c == cap), "{cap} missing: {caps}");
    }
}

#[tokio::test]
async fn search_text_keys_use_decoded_folded_text() {
    let (_h, mut c) = mailbox().await;
    assert_eq!(c.line("a SEARCH BODY numbers", "* SEARCH").await, "* SEARCH 1 2");
    assert_eq!(c.line("b SEARCH TEXT \"LUNCH\"", "* SEARCH").await, "* SEARCH 3 4");
    // Encoded-word subject, HTML body, 8-bit body, all case-insensitive.
    assert_eq!(c.line("c SEARCH CHARSET UTF-8 SUBJECT {5+}\r\nCAFÉ", "* SEARCH").await, "* SEARCH 6");
    assert_eq!(c.line("d SEARCH CHARSET UTF-8 BODY {5+}\r\ncafé", "* SEARCH").await, "* SEARCH 4 6");
    assert_eq!(c.line("e SEARCH CHARSET UTF-8 FROM {6+}\r\nÉMILE", "* SEARCH").await, "* SEARCH 6");
    // Short needles fall back to scanning and agree with the index.
    assert_eq!(c.line("f SEARCH BODY or", "* SEARCH").await, "* SEARCH 3");
    assert_eq!(c.line("g SEARCH HEADER Message-ID 3@x", "* SEARCH").await, "* SEARCH 3");
    assert_eq!(c.line("h UID SEARCH NOT TEXT budget", "* SEARCH").await, "* SEARCH 3 4 6");
    assert_eq!(c.line("i SEARCH OR CC carol BODY fixed", "* SEARCH").await, "* SEARCH 4 5");
    let r = c.cmd("j SEARCH CHARSET KOI8-R BODY x").await;
    assert!(r.last().unwrap().starts_with("j NO [BADCHARSET"), "{r:?}");
}

#[tokio::test]
async fn sort_orders_by_every_key() {
    let (_h, mut c) = mailbox().await;
    // RFC 5256: base subjects "budget 2024" ×3, "café", "lunch" ×2; ties by sequence number.
    assert_eq!(c.line("a SORT (SUBJECT) UTF-8 ALL", "* SORT").await, "* SORT 1 2 5 6 3 4");
    assert_eq!(c.line("b SORT (SUBJECT REVERSE DATE) UTF-8 ALL", "* SORT").await, "* SORT 5 2 1 6 4 3");
    assert_eq!(c.line("c SORT (DATE) UTF-8 ALL", "* SORT").await, "* SORT 3 4 1 2 5 6");
    // One internal date for all: REVERSE leaves the implicit sequence order of ties alone.
    assert_eq!(c.line("d SORT (REVERSE ARRIVAL) UTF-8 ALL", "* SORT").await, "* SORT 1 2 3 4 5 6");
    assert_eq!(c.line("e SORT (FROM) UTF-8 ALL", "* SORT").await, "* SORT 3 4 1 5 2 6");
    assert_eq!(c.line("f SORT (TO SUBJECT) UTF-8 ALL", "* SORT").await, "* SORT 4 3 2 6 1 5");
    // Only message 4 has a Cc; the empty string sorts first.
    assert_eq!(c.line("g SORT (REVERSE CC) UTF-8 ALL", "* SORT").await, "* SORT 4 1 2 3 5 6");
    // RFC 5957: display names, decoded ("Émile" after "Dave" by code point).
    assert_eq!(c.line("h SORT (DISPLAYFROM) UTF-8 ALL", "* SORT").await, "* SORT 3 4 1 5 2 6");
    assert_eq!(c.line("i SORT (SIZE) UTF-8 ALL", "* SORT").await.split(' ').count(), 8);
    assert_eq!(c.line("j UID SORT (SUBJECT) UTF-8 BODY numbers", "* SORT").await, "* SORT 1 2");
    assert_eq!(c.line("k SORT (SUBJECT) US-ASCII TEXT \"not in mailbox\"", "* SORT").await, "* SORT");
    let r = c.cmd("l SORT (SUBJECT) ISO-2022-JP ALL").await;
    assert!(r.last().unwrap().starts_with("l NO [BADCHARSET"), "{r:?}");
}

#[tokio::test]
async fn esort_returns_esearch_in_sort_order() {
    let (_h, mut c) = mailbox().await;
    let line = c.line("a UID SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 ALL", "* ESEARCH").await;
    assert_eq!(line, "* ESEARCH (TAG \"a\") UID MIN 1 MAX 4 ALL 1:2,5:6,3:4 COUNT 6");
    let line = c.line("b SORT RETURN () (REVERSE DATE) UTF-8 ALL", "* ESEARCH").await;
    assert_eq!(line, "* ESEARCH (TAG \"b\") ALL 6,5,2,1,4,3");
    // SAVE keeps the result for $ (RFC 5182).
    let r = c.cmd("c SORT RETURN (SAVE) (DATE) UTF-8 SUBJECT lunch").await;
    assert_eq!(r, vec!["c OK SORT completed"]);
    assert_eq!(c.line("d SEARCH $", "* SEARCH").await, "* SEARCH 3 4");
}

#[tokio::test]
async fn thread_both_algorithms() {
    let (_h, mut c) = mailbox().await;
    assert_eq!(c.line("a THREAD ORDEREDSUBJECT UTF-8 ALL", "* THREAD").await, "* THREAD (3 4)(1 (2)(5))(6)");
    assert_eq!(c.line("b THREAD REFERENCES UTF-8 ALL", "* THREAD").await, "* THREAD (3 4)(1 2 5)(6)");
    assert_eq!(
        c.line("c UID THREAD REFERENCES UTF-8 NOT SUBJECT lunch", "* THREAD").await,
        "* THREAD (1 2 5)(6)"
    );
    assert_eq!(c.line("d THREAD REFERENCES UTF-8 SUBJECT nothing", "* THREAD").await, "* THREAD");
    let r = c.cmd("e THREAD XYZ UTF-8 ALL").await;
    assert!(r[0].starts_with("e BAD"), "{r:?}");
    // Not in the authenticated state.
    let r = c.cmd("f UNSELECT").await;
    assert!(r[0].starts_with("f OK"), "{r:?}");
    let r = c.cmd("g SORT (DATE) UTF-8 ALL").await;
    assert!(r[0].starts_with("g BAD"), "{r:?}");
}

#[tokio::test]
async fn objectid_savedate_and_preview() {
    let h = Harness::new().await;
    let mut c = h.logged_in().await;
    let r = c.cmd("a CREATE Projects").await;
    assert!(r[0].starts_with("a OK [MAILBOXID (M"), "{r:?}");
    for m in &MESSAGES[..2] {
        c.append(m).await;
    }
    c.append(MESSAGES[5]).await;
    let r = c.cmd("s SELECT INBOX").await;
    assert!(r.iter().any(|l| l.starts_with("* OK [MAILBOXID (M")), "{r:?}");
    let id = r.iter().find(|l| l.starts_with("* OK [MAILBOXID (")).unwrap().clone();
    let status = c.line("t STATUS INBOX (MAILBOXID)", "* STATUS").await;
    assert!(status.contains(&id[7..id.find(')').unwrap() + 1]), "{status} vs {id}");

    let r = c.cmd("f FETCH 1:3 (EMAILID THREADID PREVIEW SAVEDATE)").await;
    // IMAP4rev1 without UTF8=ACCEPT: the non-ASCII preview comes as a literal.
    assert_eq!(r.len(), 5, "{r:?}");
    assert!(r[0].starts_with("* 1 FETCH (EMAILID (E"), "{r:?}");
    assert!(r[0].contains("THREADID NIL PREVIEW \"Please review the numbers.\" SAVEDATE \""), "{r:?}");
    assert!(r[2].ends_with("PREVIEW {19}") && r[3].starts_with("Le café est prêt. SAVEDATE"), "{r:?}");
    let email_id =
        |line: &str| line[line.find("EMAILID (").unwrap() + 9..].split(')').next().unwrap().to_owned();
    let first = email_id(&r[0]);
    assert_ne!(first, email_id(&r[1]));

    // A copy keeps its EMAILID.
    let r = c.cmd("c COPY 1 Projects").await;
    assert!(r.last().unwrap().starts_with("c OK"), "{r:?}");
    let r = c.cmd("e EXAMINE Projects").await;
    assert!(r.last().unwrap().starts_with("e OK"), "{r:?}");
    let line = c.line("g FETCH 1 (EMAILID PREVIEW (LAZY))", "* 1 FETCH").await;
    assert_eq!(email_id(&line), first);
    assert!(line.contains("PREVIEW \"Please review"), "{line}");
}

#[tokio::test]
async fn binary_unknown_cte_fails_a_single_message_fetch() {
    let h = Harness::new().await;
    let mut c = h.logged_in().await;
    c.append("Subject: odd\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n").await;
    c.append("Subject: plain\r\n\r\nhello\r\n").await;
    c.cmd("s SELECT INBOX").await;
    let r = c.cmd("a FETCH 1 (BINARY.PEEK[1])").await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].starts_with("a NO [UNKNOWN-CTE]"), "{r:?}");
    let r = c.cmd("b FETCH 1 (BINARY.SIZE[1])").await;
    assert!(r[0].starts_with("b NO [UNKNOWN-CTE]"), "{r:?}");
    // Nothing was marked \Seen by the failed fetch.
    assert_eq!(c.line("c FETCH 1 FLAGS", "* 1 FETCH").await, "* 1 FETCH (FLAGS (\\Recent))");
    // In a multi-message fetch the part reads NIL and the others are served.
    let r = c.cmd("d FETCH 1:2 (BINARY.PEEK[1])").await;
    assert!(r[0].contains("BINARY[1] NIL"), "{r:?}");
    assert!(r.last().unwrap().starts_with("d OK"), "{r:?}");
}

/// RFC 3516: BINARY serves the decoded octets (an LF-only base64 attachment keeps its 30 octets),
/// BINARY.SIZE counts them, `<partial>` cuts them, and a part that does not exist reads NIL in
/// BINARY.SIZE as in BINARY and BODY.
#[tokio::test]
async fn binary_serves_the_decoded_octets() {
    let h = Harness::new().await;
    let mut c = h.logged_in().await;
    c.append(
        "Subject: lf attachment\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
         --b\r\nContent-Type: text/plain; name=notes.txt\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         Zmlyc3QgbGluZQpzZWNvbmQgbGluZQp0aGlyZCEK\r\n--b--\r\n",
    )
    .await;
    c.cmd("s SELECT INBOX").await;
    let r = c
        .cmd("a FETCH 1 (BINARY.SIZE[2] BINARY.PEEK[2] BINARY.PEEK[2]<11.12> BINARY.SIZE[3] BINARY.PEEK[3] BODY.PEEK[3])")
        .await
        .join("\r\n");
    assert!(r.contains("BINARY.SIZE[2] 30 "), "{r}");
    assert!(r.contains("BINARY[2] {30}\r\nfirst line\nsecond line\nthird!\n "), "{r}");
    assert!(r.contains("BINARY[2]<11> {12}\r\nsecond line\n "), "{r}");
    assert!(r.contains("BINARY.SIZE[3] NIL BINARY[3] NIL BODY[3] NIL)"), "{r}");
    assert!(r.ends_with("a OK FETCH completed"), "{r}");
}

/// A STORE over more messages than one store call takes (16,384) still answers every message
/// once, with sequence numbers that skip the holes, and sets every flag.
#[tokio::test]
async fn store_over_a_large_mailbox_answers_every_message_once() {
    use postfach_store::{Flags, NewMessage};
    let h = Harness::new().await;
    let account = h.ctx.accounts.account_by_name("alice").await.unwrap().unwrap();
    let inbox = h
        .ctx
        .store
        .mailbox_by_name(account.id, &postfach_store::MailboxName::inbox())
        .await
        .unwrap()
        .unwrap();
    let total = 16_384 + 1_000;
    let raw = bytes::Bytes::from_static(b"Subject: x\r\n\r\nx\r\n");
    let batch: Vec<NewMessage> = (0..total)
        .map(|_| NewMessage { raw: raw.clone(), flags: Flags::default(), internal_date: None })
        .collect();
    h.ctx.store.append(inbox.id, batch).await.unwrap();
    let mut c = h.logged_in().await;
    assert!(c.cmd("s SELECT INBOX").await.last().unwrap().starts_with("s OK"));
    // Holes: UIDs 2, 10 and 16,390 go away.
    let r = c.cmd("d UID STORE 2,10,16390 +FLAGS.SILENT (\\Deleted)").await;
    assert!(r.last().unwrap().starts_with("d OK"), "{r:?}");
    assert!(c.cmd("e EXPUNGE").await.last().unwrap().starts_with("e OK"));
    let exists = total - 3;
    let r = c.cmd("f STORE 1:* +FLAGS (\\Flagged)").await;
    assert!(r.last().unwrap().starts_with("f OK"), "{:?}", r.last());
    let fetches: Vec<&String> = r.iter().filter(|l| l.contains(" FETCH (")).collect();
    assert_eq!(fetches.len(), exists);
    assert!(
        fetches[0].starts_with("* 1 FETCH") && fetches[exists - 1].starts_with(&format!("* {exists} FETCH"))
    );
    let count = c.line("g SEARCH RETURN (COUNT) FLAGGED", "* ESEARCH").await;
    assert_eq!(count, format!("* ESEARCH (TAG \"g\") COUNT {exists}"));
    // Sequence numbers map past the holes: message 2 is UID 3, the last is the last UID.
    assert_eq!(c.line("h FETCH 2 (UID)", "* 2 FETCH").await, "* 2 FETCH (UID 3)");
    let last = c.line(&format!("i FETCH {exists} (UID)"), &format!("* {exists} FETCH")).await;
    assert_eq!(last, format!("* {exists} FETCH (UID {total})"));
}

/// RFC 9394: PARTIAL for SEARCH (from the first and from the last result, beyond the end,
/// with SAVE and MIN), for ESORT (positions in sort order) and as a UID FETCH modifier, and
/// the refusals.
#[tokio::test]
async fn partial_pages_search_sort_and_uid_fetch() {
    let (_h, mut c) = mailbox().await;
    let r = c.cmd("c CAPABILITY").await;
    assert!(r[0].contains(" PARTIAL"), "{r:?}");

    // Six messages, UIDs 1..=6; the odd ones and 6 are found.
    let r = c.cmd("a UID SEARCH RETURN (PARTIAL 1:2) ALL").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"a\") UID PARTIAL (1:2 1:2)");
    let r = c.cmd("b UID SEARCH RETURN (PARTIAL -1:-2) ALL").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"b\") UID PARTIAL (-1:-2 5:6)");
    let r = c.cmd("c SEARCH RETURN (PARTIAL 5:3 COUNT) ALL").await;
    // RFC 9394 §4: 5:3 is the range 3:5, and is answered so.
    assert_eq!(r[0], "* ESEARCH (TAG \"c\") PARTIAL (3:5 3:5) COUNT 6");
    let r = c.cmd("d SEARCH RETURN (PARTIAL 5:10) ALL").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"d\") PARTIAL (5:10 5:6)");
    let r = c.cmd("e SEARCH RETURN (PARTIAL 7:9) ALL").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"e\") PARTIAL (7:9 NIL)");
    let r = c.cmd("f SEARCH RETURN (PARTIAL -1:-1) NOT ALL").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"f\") PARTIAL (-1:-1 NIL)");

    // SAVE with PARTIAL and MIN keeps both (RFC 9394 Table 1).
    let r = c.cmd("g UID SEARCH RETURN (SAVE PARTIAL -1:-1 MIN) ALL").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"g\") UID MIN 1 PARTIAL (-1:-1 6)");
    let r = c.cmd("h UID SEARCH $").await;
    assert!(r[0] == "* ESEARCH (TAG \"h\") UID ALL 1,6" || r[0] == "* SEARCH 1 6", "{r:?}");

    // ESORT: positions count in sort order.
    let all = c.cmd("i UID SORT RETURN (ALL) (SUBJECT) UTF-8 ALL").await;
    let sorted: Vec<&str> = all[0].rsplit(' ').next().unwrap().split(',').collect();
    let r = c.cmd("j UID SORT RETURN (PARTIAL 1:1) (SUBJECT) UTF-8 ALL").await;
    assert_eq!(
        r[0],
        format!("* ESEARCH (TAG \"j\") UID PARTIAL (1:1 {})", sorted[0].split(':').next().unwrap())
    );

    // UID FETCH with PARTIAL: only the messages of the set, in UID order.
    let r = c.cmd("k UID FETCH 2:100 (FLAGS) (PARTIAL -1:-2)").await;
    let uids: Vec<&str> = r
        .iter()
        .filter(|l| l.starts_with("* ") && l.contains(" FETCH ("))
        .map(|l| l.split("UID ").nth(1).unwrap().split(' ').next().unwrap())
        .collect();
    assert_eq!(uids, ["5", "6"], "{r:?}");
    let r = c.cmd("l UID FETCH 1:* (FLAGS) (PARTIAL 2:3)").await;
    assert_eq!(r.iter().filter(|l| l.contains(" FETCH (")).count(), 2, "{r:?}");

    // Refusals: PARTIAL with ALL, two PARTIALs, mixed signs, zero, plain FETCH.
    for bad in [
        "m SEARCH RETURN (PARTIAL 1:2 ALL) ALL",
        "m SEARCH RETURN (PARTIAL 1:2 PARTIAL 3:4) ALL",
        "m SEARCH RETURN (PARTIAL -1:2) ALL",
        "m SEARCH RETURN (PARTIAL 0:2) ALL",
        "m FETCH 1:* (FLAGS) (PARTIAL 1:2)",
    ] {
        let r = c.cmd(bad).await;
        assert!(r.last().unwrap().starts_with("m BAD"), "{bad}: {r:?}");
    }
}
