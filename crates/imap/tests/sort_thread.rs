//! SORT SUBJECT and THREAD (RFC 5256) over a real session: messages are APPENDed, then the
//! SORT and THREAD answers are checked. The expected answers are the ones Dovecot 2.3 gives for
//! the same messages (each agrees with a hand run of the RFC's steps, noted where it matters).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Client;

impl Client {
    /// A logged-in session on a fresh store holding `messages` in INBOX (selected), the n-th
    /// with internal date 2024-01-01 12:0n (what the sent date falls back to).
    async fn with(messages: &[String]) -> Client {
        let (dir, ctx) = common::context(1024 * 1024).await;
        let mut c = Client::logged_in(&ctx).await;
        c.dir = Some(dir);
        for (i, m) in messages.iter().enumerate() {
            let date = format!("\"01-Jan-2024 12:{:02}:00 +0000\"", i % 60);
            let r = c.raw(format!("ap APPEND INBOX {date} {{{}}}\r\n{m}", m.len()).into_bytes()).await;
            assert!(r.last().unwrap().starts_with("ap OK"), "{r:?}");
        }
        let r = c.cmd("s SELECT INBOX").await;
        assert!(r.last().unwrap().starts_with("s OK"), "{r:?}");
        c
    }

    async fn thread(&mut self, algorithm: &str) -> String {
        self.line(&format!("t THREAD {algorithm} UTF-8 ALL"), "* THREAD").await
    }

    async fn expunge(&mut self, seq: u32) {
        let r = self.cmd(&format!("x STORE {seq} +FLAGS.SILENT (\\Deleted)")).await;
        assert!(r.last().unwrap().starts_with("x OK"), "{r:?}");
        let r = self.cmd("y EXPUNGE").await;
        assert!(r.last().unwrap().starts_with("y OK"), "{r:?}");
    }
}

/// One message of a threading scenario: sent on 2025-07-`day`, with the given Message-ID (at
/// `@t`), References and Subject ("subject `day`" when empty, so that no two subjects merge).
fn mail(day: usize, id: Option<&str>, refs: &[&str], subject: &str) -> String {
    let mut m = format!("Date: Tue, {day} Jul 2025 08:00:00 +0000\r\n");
    if let Some(id) = id {
        m.push_str(&format!("Message-ID: <{id}@t>\r\n"));
    }
    if !refs.is_empty() {
        let refs: Vec<String> = refs.iter().map(|r| format!("<{r}@t>")).collect();
        m.push_str(&format!("References: {}\r\n", refs.join(" ")));
    }
    let subject = if subject.is_empty() { format!("subject {day}") } else { subject.to_owned() };
    m.push_str(&format!("Subject: {subject}\r\n\r\nbody\r\n"));
    m
}

/// Subjects with every kind of artifact RFC 5256 §2.1 removes, and some it must keep. The
/// n-th message is sent on 2024-01-n.
const SUBJECTS: [Option<&str>; 25] = [
    Some("Re: [fwd: Re: Quarterly report]"),
    Some("quarterly report"),
    Some("[team] [draft]"),
    Some("[draft]"),
    Some("Re[3]: quarterly REPORT (fwd)"),
    Some("=?UTF-8?Q?Re=3A_=C3=84pfel?="),
    Some("~tilde"),
    Some("Fwd : Zebra"),
    Some("Re: "),
    Some("(fwd)"),
    Some("[ops] (fwd)"),
    Some("Fw[x]:[y] zebra"),
    Some("[fwd: [note] zebra] (fwd)"),
    Some("Re [a] [b]: yak"),
    Some("[a]re:yak"),
    Some("[fwd: yak"),
    Some("=?utf-8?q?=C3=A4pfel?= =?utf-8?q?_und_birnen?="),
    Some("  lots   of\t spaces  "),
    None,
    Some("_underscore"),
    Some("`backtick"),
    Some("Re: (fwd)"),
    Some("ÄPFEL UND BIRNEN"),
    Some("[ops]"),
    Some("Yak"),
];

fn subject_mailbox() -> Vec<String> {
    SUBJECTS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut m =
                format!("Date: Mon, {} Jan 2024 10:00:00 +0000\r\nMessage-ID: <s{}@t>\r\n", i + 1, i + 1);
            if let Some(s) = s {
                m.push_str(&format!("Subject: {s}\r\n"));
            }
            m.push_str("\r\nbody\r\n");
            m
        })
        .collect()
}

#[tokio::test]
async fn sort_subject_orders_base_subjects_by_unicode_casemap() {
    let mut c = Client::with(&subject_mailbox()).await;
    // Empty base subjects first (9, 10, 19, 22); i;unicode-casemap compares titlecased,
    // decomposed text, so "Äpfel" sorts among the A's and `[`, `_`, `` ` ``, `~` after the
    // letters; equal base subjects keep mailbox order.
    assert_eq!(
        c.line("a SORT (SUBJECT) UTF-8 ALL", "* SORT").await,
        "* SORT 9 10 19 22 6 17 23 18 1 2 5 14 15 25 8 12 13 3 4 16 11 24 20 21 7"
    );
    assert_eq!(
        c.line("b SORT (REVERSE SUBJECT) UTF-8 ALL", "* SORT").await,
        "* SORT 7 21 20 11 24 16 3 4 8 12 13 15 25 14 1 2 5 18 17 23 6 9 10 19 22"
    );
    assert_eq!(c.line("c UID SORT (SUBJECT) US-ASCII SUBJECT yak", "* SORT").await, "* SORT 14 15 25 16");
}

/// More subjects: encoded words that spell out artifacts, folds, nested wrappers, and blobs.
const MORE_SUBJECTS: [&str; 31] = [
    "=?utf-8?q?R?= =?utf-8?q?e=3A_x?=",
    "x",
    "Re: =?utf-8?b?W2Z3ZDogaGVsbG9d?=",
    "hello",
    "Re:\r\n\tfolded   line",
    "folded line",
    "=?utf-8?q?a__b?=",
    "a b",
    "Re: Re[2]: Fwd[x]: re:fw:FW: x",
    "Re : hello",
    "[] hello",
    "[fwd:x] [fwd:y]",
    "y",
    "x [fwd: y]",
    "(fwd) x",
    "Fwd: (fwd)",
    "AW: x",
    "Re: [PATCH 1/2] foo",
    "foo",
    "Re: [fwd: ]",
    "[fwd: Re: x",
    "Re:\u{a0}x",
    "=?bogus?q?x?=",
    "=?utf-8?q?=5Bfwd=3A_x=5D?=",
    "re(fwd):x",
    "Fw:Fwd:x(FWD)",
    "[a][b]",
    "[a] [b] [c]",
    "[c]",
    "Re: _",
    "_",
];

#[tokio::test]
async fn base_subjects_of_encoded_and_nested_artifacts() {
    let messages: Vec<String> = MORE_SUBJECTS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!("Date: Mon, {} Jan 2024 10:00:00 +0000\r\nMessage-ID: <u{i}@t>\r\nSubject: {s}\r\n\r\nbody\r\n", i + 1)
        })
        .collect();
    let mut c = Client::with(&messages).await;
    // Dovecot 2.3 answers the same but for two messages. 22: it folds the text (NBSP becomes a
    // space) before extracting the base subject, so it sees "Re: x"; RFC 5256 §2.1 removes only
    // SP and HTAB, so the base subject here is "\u{a0}x", which sorts as " X". 23: Dovecot
    // turns the unknown charset into replacement characters (sorting last); we decode it as
    // "x", as SEARCH does: in REFERENCES it then meets "x" (2) under a dummy, both being
    // non-replies.
    assert_eq!(
        c.line("a SORT (SUBJECT) UTF-8 ALL", "* SORT").await,
        "* SORT 16 20 22 15 7 8 17 5 6 18 19 3 4 10 11 25 1 2 9 23 24 26 14 12 13 27 28 29 21 30 31"
    );
    assert_eq!(
        c.thread("ORDEREDSUBJECT").await,
        "* THREAD (1 (2)(9)(23)(24)(26))(3 (4)(10)(11))(5 6)(7 8)(12 13)(14)(15)(16 20)(17)(18 19)(21)(22)(25)(27)(28 29)(30 31)"
    );
    assert_eq!(
        c.thread("REFERENCES").await,
        "* THREAD ((2 (1)(9))(23)(24)(26))((4 (3)(10))(11))(6 5)((7)(8))(13 12)(14)(15)(16)(17)(19 18)(20)(21)(22)(25)(27)((28)(29))(31 30)"
    );
}

#[tokio::test]
async fn thread_orderedsubject_groups_by_base_subject() {
    let mut c = Client::with(&subject_mailbox()).await;
    // All empty base subjects are one group, like any other subject.
    assert_eq!(
        c.thread("ORDEREDSUBJECT").await,
        "* THREAD (1 (2)(5))(3 4)(6)(7)(8 (12)(13))(9 (10)(19)(22))(11 24)(14)(15 25)(16)(17 23)(18)(20)(21)"
    );
}

#[tokio::test]
async fn thread_references_merges_by_subject_with_the_reply_rule() {
    let mut c = Client::with(&subject_mailbox()).await;
    // No references at all: only step 5 links. A non-reply takes replies as children (2 over 1
    // and 5; 24 over 11; 25 over 15); two non-replies or only replies meet under a dummy; empty
    // subjects never merge.
    assert_eq!(
        c.thread("REFERENCES").await,
        "* THREAD (2 (1)(5))((3)(4))(6)(7)((8)(12)(13))(9)(10)(14)(16)((17)(23))(18)(19)(20)(21)(22)(24 11)(25 15)"
    );
}

#[tokio::test]
async fn thread_references_refuses_loops_and_keeps_existing_links() {
    let messages = vec![
        mail(1, Some("a"), &[], ""),
        mail(2, Some("b"), &["a"], ""),
        mail(3, Some("c"), &["b"], ""),
        // 1A: c is already b's child; b keeps its parent a.
        mail(4, Some("d"), &["c", "b"], ""),
        // d→a would make a loop (d descends from a): not made.
        mail(5, Some("e"), &["d", "a"], ""),
        // References itself.
        mail(6, Some("f"), &["f"], ""),
        // 1A makes a its parent, 1B moves it under c.
        mail(7, Some("g"), &["a", "g", "c"], ""),
    ];
    let mut c = Client::with(&messages).await;
    assert_eq!(c.thread("REFERENCES").await, "* THREAD (1 (2 (3 7)(4))(5))(6)");
}

#[tokio::test]
async fn thread_references_breaks_the_old_link_even_when_the_new_one_would_loop() {
    let messages = vec![
        // k0 → k2 (dummy) → k1.
        mail(1, Some("k1"), &["k0", "k2"], ""),
        // 1B: k2's last reference is its own child k1. The link from k0 is broken first, and
        // k1 → k2 would be a loop, so k2 ends with no parent.
        mail(2, Some("k2"), &["k1"], ""),
        mail(3, Some("k3"), &["k0"], ""),
        // A message arriving after its descendants, which reference it.
        mail(4, Some("n2"), &["n1"], ""),
        mail(5, Some("n3"), &["n1", "n2"], ""),
        mail(6, Some("n1"), &["n3"], ""),
        mail(7, Some("p"), &["k3", "k1"], ""),
    ];
    let mut c = Client::with(&messages).await;
    assert_eq!(c.thread("REFERENCES").await, "* THREAD (2 1 7)(3)(6 4 5)");
}

#[tokio::test]
async fn thread_references_duplicates_missing_ids_and_in_reply_to() {
    let messages = vec![
        mail(1, Some("x"), &[], ""),
        // Same Message-ID: gets a unique one, so references to x reach message 1.
        mail(2, Some("x"), &[], ""),
        mail(3, Some("y"), &["x"], ""),
        mail(4, None, &[], ""),
        // In-Reply-To only: its first id is the parent (a dummy here, promoted away).
        "Date: Sat, 5 Jul 2025 08:00:00 +0000\r\nMessage-ID: <m2@t>\r\nIn-Reply-To: <m1@t> (from Bob)\r\nSubject: subject 5\r\n\r\nbody\r\n".to_owned(),
        "Date: Sun, 6 Jul 2025 08:00:00 +0000\r\nMessage-ID: <m3@t>\r\nIn-Reply-To: <m2@t> junk <m9@t>\r\nSubject: subject 6\r\n\r\nbody\r\n".to_owned(),
        // References without a valid id: In-Reply-To is used.
        "Date: Mon, 7 Jul 2025 08:00:00 +0000\r\nMessage-ID: <m4@t>\r\nReferences: <garbage\r\nIn-Reply-To: <m3@t>\r\nSubject: subject 7\r\n\r\nbody\r\n".to_owned(),
        // References win over In-Reply-To.
        "Date: Tue, 8 Jul 2025 08:00:00 +0000\r\nMessage-ID: <m5@t>\r\nReferences: <m3@t>\r\nIn-Reply-To: <x@t>\r\nSubject: subject 8\r\n\r\nbody\r\n".to_owned(),
    ];
    let mut c = Client::with(&messages).await;
    assert_eq!(c.thread("REFERENCES").await, "* THREAD (1 3)(2)(4)(5 6 (7)(8))");
}

#[tokio::test]
async fn thread_references_dummies_reparenting_and_expunged_parents() {
    let messages = vec![
        // Two children of a missing message, one with a grandchild.
        mail(1, Some("p1"), &["gone"], ""),
        mail(2, Some("p2"), &["gone"], ""),
        mail(3, Some("p3"), &["gone2", "p1"], ""),
        // 1B: q2's own references move it away from q0, where q1's References had put it.
        mail(4, Some("q1"), &["q0", "q2"], ""),
        mail(5, Some("q2"), &["q3"], ""),
        // 1B: a message with no references ends with no parent.
        mail(6, Some("r1"), &["r0", "r2"], ""),
        mail(7, Some("r2"), &[], ""),
        mail(8, Some("r5"), &["r0"], ""),
        mail(9, Some("root"), &[], ""),
        mail(10, Some("kid"), &["root"], ""),
        mail(11, Some("kid2"), &["root"], ""),
    ];
    let mut c = Client::with(&messages).await;
    assert_eq!(c.thread("REFERENCES").await, "* THREAD ((1 3)(2))(5 4)(7 6)(8)(9 (10)(11))");
    // A parent outside the search result is a dummy too.
    assert_eq!(
        c.line("n THREAD REFERENCES UTF-8 NOT SUBJECT \"subject 9\"", "* THREAD").await,
        "* THREAD ((1 3)(2))(5 4)(7 6)(8)((10)(11))"
    );
    // Only the searched messages are threaded (Dovecot agrees): without 6, 7 stands alone.
    assert_eq!(
        c.line("m THREAD REFERENCES UTF-8 NOT SUBJECT \"subject 6\"", "* THREAD").await,
        "* THREAD ((1 3)(2))(5 4)(7)(8)(9 (10)(11))"
    );
    // So is an expunged one.
    c.expunge(9).await;
    assert_eq!(c.thread("REFERENCES").await, "* THREAD ((1 3)(2))(5 4)(7 6)(8)((9)(10))");
    assert_eq!(
        c.line("u UID THREAD REFERENCES UTF-8 ALL", "* THREAD").await,
        "* THREAD ((1 3)(2))(5 4)(7 6)(8)((10)(11))"
    );
}

#[tokio::test]
async fn thread_orders_by_sent_date_with_ties_in_mailbox_order() {
    let dated = |date: &str, id: &str, refs: &str, subject: &str| {
        let date = if date.is_empty() { String::new() } else { format!("Date: {date}\r\n") };
        let refs = if refs.is_empty() { String::new() } else { format!("References: <{refs}@t>\r\n") };
        format!("{date}Message-ID: <{id}@t>\r\n{refs}Subject: {subject}\r\n\r\nbody\r\n")
    };
    let messages = vec![
        dated("Wed, 2 Jul 2025 10:00:00 +0000", "s1", "", "same"),
        dated("Wed, 2 Jul 2025 10:00:00 +0000", "s2", "s0", "Re: tie"),
        dated("Wed, 2 Jul 2025 09:00:00 +0000", "s3", "s0", "Re: tie"),
        dated("Wed, 2 Jul 2025 10:00:00 +0000", "s4", "s0", "Re: tie"),
        // No Date: the internal date (2024) stands in.
        dated("", "s5", "", "no date"),
        // The same instant as 1 (and 2, 4) in another zone.
        dated("Wed, 2 Jul 2025 12:00:00 +0200", "s6", "", "Re: same"),
        dated("Tue, 1 Jul 2025 10:00:00 +0000", "s7", "", "Fwd: tie"),
        dated("garbage", "s8", "", "[fwd: same]"),
        dated("Mon, 30 Jun 2025 10:00:00 +0000", "s9", "", "same"),
    ];
    let mut c = Client::with(&messages).await;
    assert_eq!(c.line("d SORT (DATE) UTF-8 ALL", "* SORT").await, "* SORT 5 8 9 7 3 1 2 4 6");
    // The dummy parent of 2, 3, 4 sorts as its first child; "same" gathers 9 (taking the reply
    // 8), 1 and 6 under a new dummy: 9 and 1 are both non-replies.
    assert_eq!(c.thread("REFERENCES").await, "* THREAD (5)((9 8)(1)(6))((7)(3)(2)(4))");
    assert_eq!(c.thread("ORDEREDSUBJECT").await, "* THREAD (5)(8 (9)(1)(6))(7 (3)(2)(4))");
}

#[tokio::test]
async fn thread_references_links_only_through_searched_messages() {
    let messages =
        vec![mail(1, Some("A"), &[], ""), mail(2, Some("B"), &[], ""), mail(3, Some("C"), &["A", "B"], "")];
    let mut c = Client::with(&messages).await;
    assert_eq!(c.thread("REFERENCES").await, "* THREAD (1 2 3)");
    // 3's References chain A to B only when 3 is searched (Dovecot 2.3 answers the same).
    assert_eq!(
        c.line("n THREAD REFERENCES UTF-8 NOT SUBJECT \"subject 3\"", "* THREAD").await,
        "* THREAD (1)(2)"
    );
}
