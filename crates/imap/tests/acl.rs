//! ACL (RFC 4314), namespaces (RFC 2342) and QUOTA (RFC 9208) through in-process sessions:
//! several users on one store, a team made through the store.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::Client;
use postfach_imap::{ServerContext, Transport};
use postfach_secret::Secret;
use postfach_store::{QuotaLimits, Rights, SeenMode};

/// A context with alice (from `common`), bob and eve, and a team `support` where alice has
/// `lrswipkxte` and bob `lrsw`.
async fn world() -> (tempfile::TempDir, Arc<ServerContext>) {
    let (dir, ctx) = common::context(1024 * 1024).await;
    let hash = postfach_auth::password::hash(&Secret::from(b"secret".to_vec())).unwrap();
    let bob = ctx.accounts.create_account("bob", &hash).await.unwrap();
    ctx.accounts.create_account("eve", &hash).await.unwrap();
    let alice = ctx.accounts.account_by_name("alice").await.unwrap().unwrap().id;
    let team = ctx.share.create_team("support", Some("support@example.org")).await.unwrap();
    ctx.share.set_team_member(team, alice, Rights::parse("lrswipkxte").unwrap()).await.unwrap();
    ctx.share.set_team_member(team, bob, Rights::parse("lrsw").unwrap()).await.unwrap();
    (dir, ctx)
}

async fn login(ctx: &Arc<ServerContext>, user: &str) -> Client {
    let mut c = Client::new(ctx, Transport::Tls);
    let r = c.cmd(&format!("l LOGIN {user} secret")).await;
    assert!(r.last().unwrap().starts_with("l OK"), "{r:?}");
    c
}

fn tagged(r: &[String]) -> &str {
    r.last().unwrap()
}

#[tokio::test]
async fn namespaces_list_and_rights() {
    let (_dir, ctx) = world().await;
    let mut alice = login(&ctx, "alice").await;
    let ns = alice.line("n NAMESPACE", "* NAMESPACE").await;
    assert_eq!(ns, "* NAMESPACE ((\"\" \"/\")) ((\"Other Users/\" \"/\")) ((\"Shared/\" \"/\"))");
    let r = alice.cmd("a LIST \"\" \"Shared/*\" RETURN (MYRIGHTS)").await;
    // Names are astrings: compared without quotes.
    let all = r.join("\n").replace('"', "");
    assert!(all.contains("* LIST (\\Noselect \\HasChildren) / Shared/support\n"), "{all}");
    assert!(all.contains("/ Shared/support/INBOX\n"), "{all}");
    assert!(all.contains("* MYRIGHTS Shared/support/INBOX lrswipkxtecd"), "{all}");
    let r = alice.cmd("b LIST \"\" %").await.join("\n");
    assert!(r.contains("(\\Noselect \\HasChildren) \"/\" Shared"), "{r}");

    let mut bob = login(&ctx, "bob").await;
    let r = bob.cmd("s SELECT \"Shared/support/INBOX\"").await;
    assert!(tagged(&r).starts_with("s OK [READ-WRITE]"), "{r:?}");
    // PERMANENTFLAGS: no \Deleted without `t`.
    let perm = r.iter().find(|l| l.contains("PERMANENTFLAGS")).unwrap();
    assert!(!perm.contains("\\Deleted") && perm.contains("\\Seen") && perm.contains("\\*"), "{perm}");
    let r = bob.cmd("x EXPUNGE").await;
    assert!(tagged(&r).starts_with("x NO [NOPERM]"), "{r:?}");
    let r = bob.cmd("g GETACL \"Shared/support/INBOX\"").await;
    assert!(tagged(&r).starts_with("g NO [NOPERM]"), "{r:?}");
    let r = bob.cmd("c CREATE \"Shared/support/Mine\"").await;
    assert!(tagged(&r).starts_with("c NO [NOPERM]"), "{r:?}");
    let r = alice.cmd("c CREATE \"Shared/support/Cases\"").await;
    assert!(tagged(&r).starts_with("c OK"), "{r:?}");
    // Alice has no `a` there (a member, not an administrator of the team)...
    let r = alice.cmd("g GETACL \"Shared/support/Cases\"").await;
    assert!(tagged(&r).starts_with("g NO [NOPERM]"), "{r:?}");
    // ...and the new team mailbox carries the members' rights.
    let r = bob.line("m MYRIGHTS \"Shared/support/Cases\"", "* MYRIGHTS").await;
    assert_eq!(r, "* MYRIGHTS Shared/support/Cases lrsw");

    let mut eve = login(&ctx, "eve").await;
    for cmd in [
        "a SELECT \"Shared/support/INBOX\"",
        "a STATUS \"Shared/support/INBOX\" (MESSAGES)",
        "a MYRIGHTS \"Shared/support/INBOX\"",
        "a GETQUOTAROOT \"Shared/support/INBOX\"",
        "a DELETE \"Shared/support/Cases\"",
    ] {
        let r = eve.cmd(cmd).await;
        assert!(tagged(&r).starts_with("a NO [NONEXISTENT]"), "{cmd}: {r:?}");
    }
    let r = eve.cmd("b LIST \"\" *").await.join("\n");
    assert!(!r.contains("Shared"), "{r}");
    let r = eve.cmd("c GETQUOTA support").await;
    assert!(tagged(&r).starts_with("c NO [NONEXISTENT]"), "{r:?}");
}

#[tokio::test]
async fn setacl_getacl_listrights_and_revocation() {
    let (_dir, ctx) = world().await;
    let mut alice = login(&ctx, "alice").await;
    alice.cmd("c CREATE Projects").await;
    assert!(tagged(&alice.cmd("s SETACL Projects bob lr").await).starts_with("s OK"));
    assert!(tagged(&alice.cmd("s2 SETACL Projects bob +s").await).starts_with("s2 OK"));
    let acl = alice.line("g GETACL Projects", "* ACL").await;
    assert_eq!(acl, "* ACL Projects alice lrswipkxteacd bob lrs");
    let lr = alice.line("l LISTRIGHTS Projects bob", "* LISTRIGHTS").await;
    assert_eq!(lr, "* LISTRIGHTS Projects bob \"\" l r s w i p k x t e a c d");
    let lr = alice.line("l2 LISTRIGHTS Projects alice", "* LISTRIGHTS").await;
    assert_eq!(lr, "* LISTRIGHTS Projects alice lrswipkxtea");
    assert!(tagged(&alice.cmd("b SETACL Projects bob lrz").await).starts_with("b BAD"));
    assert!(tagged(&alice.cmd("b2 SETACL Projects nobody lr").await).starts_with("b2 NO"));
    assert!(tagged(&alice.cmd("b3 SETACL Projects alice lr").await).starts_with("b3 NO [CANNOT]"));

    let mut bob = login(&ctx, "bob").await;
    let r = bob.cmd("l LIST \"\" \"Other Users/*\"").await.join("\n");
    assert!(r.contains("Other Users/alice/Projects"), "{r}");
    let r = bob.cmd("s SELECT \"Other Users/alice/Projects\"").await;
    // RFC 4314 §5.2: `s` is a flag right: READ-WRITE.
    assert!(tagged(&r).starts_with("s OK [READ-WRITE]"), "{r:?}");
    let r = bob.cmd("a APPEND \"Other Users/alice/Projects\" {3+}\r\nhi!").await;
    assert!(tagged(&r).starts_with("a NO [NOPERM]"), "{r:?}");

    // Revoked: bob's next command ends the session.
    assert!(tagged(&alice.cmd("d DELETEACL Projects bob").await).starts_with("d OK"));
    let (r, outcome) = bob.handle(b"n NOOP".to_vec()).await;
    assert!(r.iter().any(|l| l.starts_with("* BYE")), "{r:?}");
    assert_eq!(outcome, postfach_imap::Outcome::Close);

    // Negative rights subtract; anyone grants.
    alice.cmd("e SETACL Projects anyone lr").await;
    alice.cmd("f SETACL Projects -eve r").await;
    let mut eve = login(&ctx, "eve").await;
    let r = eve.line("m MYRIGHTS \"Other Users/alice/Projects\"", "* MYRIGHTS").await;
    assert_eq!(r, "* MYRIGHTS \"Other Users/alice/Projects\" l");
    let r = eve.cmd("s EXAMINE \"Other Users/alice/Projects\"").await;
    assert!(tagged(&r).starts_with("s NO [NOPERM]"), "{r:?}");
}

#[tokio::test]
async fn private_seen_and_quota() {
    let (_dir, ctx) = world().await;
    let team = ctx.accounts.account_by_name("support").await.unwrap().unwrap().id;
    let inbox =
        ctx.store.mailbox_by_name(team, &postfach_store::MailboxName::inbox()).await.unwrap().unwrap();
    ctx.share.set_seen_mode(inbox.id, SeenMode::Private).await.unwrap();
    let mut alice = login(&ctx, "alice").await;
    let mut bob = login(&ctx, "bob").await;
    let r = alice.cmd("a APPEND \"Shared/support/INBOX\" {3+}\r\nhi!").await;
    assert!(tagged(&r).starts_with("a OK [APPENDUID"), "{r:?}");
    for c in [&mut alice, &mut bob] {
        c.cmd("e ENABLE CONDSTORE").await;
        let r = c.cmd("s SELECT \"Shared/support/INBOX\"").await;
        assert!(tagged(&r).starts_with("s OK"), "{r:?}");
    }
    let r = alice.cmd("f STORE 1 +FLAGS (\\Seen)").await.join("\n");
    assert!(r.contains("FLAGS (\\Seen"), "{r}");
    let r = bob.cmd("f FETCH 1 FLAGS").await.join("\n");
    assert!(!r.contains("\\Seen"), "{r}");
    let r = bob.cmd("g SEARCH UNSEEN").await.join("\n");
    assert!(r.contains("* SEARCH 1"), "{r}");
    let r = alice.cmd("g SEARCH SEEN").await.join("\n");
    assert!(r.contains("* SEARCH 1"), "{r}");
    let st = alice.line("t STATUS \"Shared/support/INBOX\" (UNSEEN)", "* STATUS").await;
    assert!(st.contains("UNSEEN 0"), "{st}");
    let st = bob.line("t STATUS \"Shared/support/INBOX\" (UNSEEN)", "* STATUS").await;
    assert!(st.contains("UNSEEN 1"), "{st}");

    // Quota: the team's root; over it, OVERQUOTA and nothing stored.
    ctx.share
        .set_quota(team, QuotaLimits { storage: Some(2048), messages: Some(2), mailboxes: None })
        .await
        .unwrap();
    let r = alice.cmd("q GETQUOTAROOT \"Shared/support/INBOX\"").await;
    assert_eq!(r[0], "* QUOTAROOT Shared/support/INBOX support");
    assert!(r[1].starts_with("* QUOTA support (STORAGE 1 2 MESSAGE 1 2 MAILBOX 5 "), "{r:?}");
    let big = "x".repeat(3000);
    let r = alice.cmd(&format!("a APPEND \"Shared/support/INBOX\" {{{}+}}\r\n{big}", big.len())).await;
    assert!(tagged(&r).starts_with("a NO [OVERQUOTA]"), "{r:?}");
    let st = alice.line("t STATUS \"Shared/support/INBOX\" (MESSAGES DELETED-STORAGE)", "* STATUS").await;
    assert!(st.contains("MESSAGES 1") && st.contains("DELETED-STORAGE 0"), "{st}");
    let r = alice.cmd("x SETQUOTA support (STORAGE 10)").await;
    assert!(tagged(&r).starts_with("x NO [NOPERM]"), "{r:?}");
}
