//! REPLACE (RFC 8508) and UNAUTHENTICATE (RFC 8437) through an in-process session.

#![allow(clippy::unwrap_used)]

mod common;

use common::Client;

fn tagged(r: &[String]) -> &str {
    r.last().unwrap()
}

#[tokio::test]
async fn replace_appends_then_expunges_the_old_draft() {
    let (_dir, ctx) = common::context(1024 * 1024).await;
    let mut c = Client::logged_in(&ctx).await;
    let caps = c.cmd("c CAPABILITY").await.join(" ");
    assert!(caps.contains(" REPLACE") && caps.contains(" UNAUTHENTICATE"), "{caps}");
    for n in 1..=3 {
        let msg = format!("Subject: draft {n}\r\n\r\nv{n}\r\n");
        let r = c.cmd(&format!("a APPEND Drafts (\\Draft) {{{}+}}\r\n{msg}", msg.len())).await;
        assert!(tagged(&r).starts_with("a OK"), "{r:?}");
    }
    c.cmd("s SELECT Drafts").await;
    // RFC 8508 §6: the new message is stored, APPENDUID comes untagged before the EXPUNGE.
    let msg = "Subject: draft 2, edited\r\n\r\nv2b\r\n";
    let r = c.cmd(&format!("r REPLACE 2 Drafts (\\Draft) {{{}+}}\r\n{msg}", msg.len())).await;
    assert!(r[0].starts_with("* OK [APPENDUID "), "{r:?}");
    let expunge = r.iter().position(|l| l == "* 2 EXPUNGE").unwrap();
    let exists = r.iter().position(|l| l == "* 3 EXISTS").unwrap();
    assert!(expunge < exists, "{r:?}");
    assert!(tagged(&r).starts_with("r OK"), "{r:?}");
    let r = c.cmd("f UID FETCH 1:* (UID FLAGS)").await.join("\n");
    assert!(
        r.contains("UID 1 ") && !r.contains("UID 2 ") && r.contains("UID 3 ") && r.contains("UID 4 "),
        "{r}"
    );
    // UID REPLACE of a UID that is not there: NO, nothing stored.
    let r = c.cmd(&format!("u UID REPLACE 99 Drafts {{{}+}}\r\n{msg}", msg.len())).await;
    assert!(tagged(&r).starts_with("u NO"), "{r:?}");
    let st = c.line("t STATUS Drafts (MESSAGES)", "* STATUS").await;
    assert!(st.contains("MESSAGES 3"), "{st}");
    // Into another mailbox: the old one leaves Drafts, the new one is in Sent.
    let r = c.cmd(&format!("v UID REPLACE 4 Sent {{{}+}}\r\n{msg}", msg.len())).await;
    assert!(tagged(&r).starts_with("v OK") && r.iter().any(|l| l.ends_with(" EXPUNGE")), "{r:?}");
    let st = c.line("w STATUS Sent (MESSAGES)", "* STATUS").await;
    assert!(st.contains("MESSAGES 1"), "{st}");
    // A target that does not exist: TRYCREATE, and the draft stays.
    let r = c.cmd(&format!("x REPLACE 1 Nowhere {{{}+}}\r\n{msg}", msg.len())).await;
    assert!(tagged(&r).starts_with("x NO [TRYCREATE]"), "{r:?}");
    let st = c.line("y STATUS Drafts (MESSAGES)", "* STATUS").await;
    assert!(st.contains("MESSAGES 2"), "{st}");
}

#[tokio::test]
async fn unauthenticate_returns_to_the_not_authenticated_state() {
    let (_dir, ctx) = common::context(1024 * 1024).await;
    let mut c = Client::logged_in(&ctx).await;
    c.cmd("e ENABLE CONDSTORE").await;
    c.cmd("s SELECT INBOX").await;
    let r = c.cmd("u UNAUTHENTICATE").await;
    assert_eq!(r, vec!["u OK UNAUTHENTICATE completed"]);
    let r = c.cmd("s SELECT INBOX").await;
    assert!(tagged(&r).starts_with("s BAD"), "{r:?}");
    let r = c.cmd("u2 UNAUTHENTICATE").await;
    assert!(tagged(&r).starts_with("u2 BAD"), "{r:?}");
    // A new login, as on a new connection: CONDSTORE is off again.
    let r = c.cmd("l LOGIN alice secret").await;
    assert!(tagged(&r).starts_with("l OK"), "{r:?}");
    let r = c.cmd("s2 SELECT INBOX").await.join("\n");
    assert!(!r.contains("HIGHESTMODSEQ"), "{r}");
}
