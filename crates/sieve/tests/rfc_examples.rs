//! The example scripts of RFC 5228 and its extensions, run against the RFCs' example messages.

#![allow(clippy::unwrap_used)]

mod support;

use postfach_sieve::vacation::{Decision, should_reply};
use postfach_sieve::{Action, Settings, compile, evaluate};
use support::*;

// ---------------------------------------------------------------- RFC 5228 (base)

#[test]
fn rfc5228_2_10_2_implicit_keep() {
    let out = run("if size :over 500K { discard; }", &message_a());
    assert_eq!(out.actions, vec![keep()]);
    assert!(!out.explicit_decision);
    assert_eq!(out.error, None);
}

#[test]
fn rfc5228_2_3_comments() {
    let big = TestMsg { size: 200 * 1024, ..message_a() };
    let s = "if size :over 100k { # this is a comment\n discard;\n}";
    assert_eq!(actions(s, &big), vec![Action::Discard]);
    let s = "if size :over 100K { /* this is a comment\n this is still a comment */ discard /* this is a comment\n */ ;\n}";
    assert_eq!(actions(s, &big), vec![Action::Discard]);
    assert_eq!(actions(s, &message_a()), vec![keep()]);
}

#[test]
fn rfc5228_2_5_1_test_lists() {
    let s = r#"if anyof (not exists ["From", "Date"],
                   header :contains "from" "fool@example.com") {
                discard;
             }"#;
    assert_eq!(actions(s, &message_a()), vec![keep()]);
    let fool = TestMsg::parse("From: The Fool <fool@example.com>\nDate: today\n\nhi\n");
    assert_eq!(actions(s, &fool), vec![Action::Discard]);
    let undated = TestMsg::parse("From: x@example.com\n\nhi\n");
    assert_eq!(actions(s, &undated), vec![Action::Discard]);
}

#[test]
fn rfc5228_2_7_3_comparator_octet() {
    let s = r#"if header :contains :comparator "i;octet" "Subject"
                   "MAKE MONEY FAST" {
                discard;
             }"#;
    let loud = TestMsg::parse("Subject: You can MAKE MONEY FAST\n\nx\n");
    let quiet = TestMsg::parse("Subject: You can Make Money Fast\n\nx\n");
    assert_eq!(actions(s, &loud), vec![Action::Discard]);
    assert_eq!(actions(s, &quiet), vec![keep()]);
    // The default comparator is i;ascii-casemap.
    let s = r#"if header :contains "Subject" "MAKE MONEY FAST" { discard; }"#;
    assert_eq!(actions(s, &quiet), vec![Action::Discard]);
}

#[test]
fn rfc5228_2_7_1_match_types() {
    let m = TestMsg::parse("X-Word: frobnitzm\n\nx\n");
    let yes = |t: &str| actions(&format!("if {t} {{ discard; }}"), &m) == vec![Action::Discard];
    assert!(yes(r#"header :contains "X-Word" "frob""#));
    assert!(yes(r#"header :contains "X-Word" "nit""#));
    assert!(!yes(r#"header :contains "X-Word" "fbm""#));
    assert!(yes(r#"header :contains "X-Word" """#));
    assert!(yes(r#"header :is "X-Word" "frobnitzm""#));
    assert!(!yes(r#"header :is "X-Word" "frob""#));
    assert!(!yes(r#"header :is "X-Word" """#));
    assert!(yes(r#"header :matches "X-Word" "frob*""#));
    assert!(yes(r#"header :matches "X-Word" "?rob?itz?""#));
    assert!(!yes(r#"header :matches "X-Word" "frob""#));
    assert!(yes(r#"header "X-Word" "FROBNITZM""#));
    let star = TestMsg::parse("X-Word: a*b?\n\nx\n");
    let yes = |t: &str| actions(&format!("if {t} {{ discard; }}"), &star) == vec![Action::Discard];
    assert!(yes(r#"header :matches "X-Word" "a\\*b\\?""#));
    assert!(!yes(r#"header :matches "X-Word" "a\\*c\\?""#));
}

#[test]
fn rfc5228_3_1_if_elsif_else() {
    let s = r#"require "fileinto";
             if header :contains "from" "coyote" {
                discard;
             } elsif header :contains ["subject"] ["$$$"] {
                discard;
             } else {
                fileinto "INBOX";
             }"#;
    assert_eq!(actions(s, &message_a()), vec![Action::Discard]);
    assert_eq!(actions(s, &message_b()), vec![Action::Discard]);
    let other = TestMsg::parse("From: friend@example.com\nSubject: hi\n\nx\n");
    let out = run(s, &other);
    assert_eq!(out.actions, vec![fileinto("INBOX")]);
    assert!(out.explicit_decision);

    let s = r#"if header :contains ["From"] ["coyote"] {
                redirect "acm@example.com";
             } elsif header :contains "Subject" "$$$" {
                redirect "postmaster@example.com";
             } else {
                redirect "field@example.com";
             }"#;
    assert_eq!(actions(s, &message_a()), vec![redirect("acm@example.com")]);
    assert_eq!(actions(s, &message_b()), vec![redirect("postmaster@example.com")]);
    assert_eq!(actions(s, &other), vec![redirect("field@example.com")]);
}

#[test]
fn rfc5228_3_2_require_forms() {
    compiled(r#"require ["fileinto", "vacation"];"#);
    compiled("require \"fileinto\";\nrequire \"vacation\";");
    // Capability strings are case-sensitive (RFC 5228 §6).
    assert!(compile(r#"require "FileInto";"#).is_err());
}

#[test]
fn rfc5228_3_3_stop() {
    let s = r#"require "fileinto"; if true { fileinto :copy "x"; } stop; discard;"#;
    assert!(compile(s).is_err(), ":copy needs require");
    let s =
        r#"require "fileinto"; if header :contains "from" "coyote" { fileinto "a"; stop; } fileinto "b";"#;
    assert_eq!(actions(s, &message_a()), vec![fileinto("a")]);
    assert_eq!(actions(s, &message_b()), vec![fileinto("b")]);
    // stop keeps the implicit keep.
    assert_eq!(actions("stop; discard;", &message_a()), vec![keep()]);
}

#[test]
fn rfc5228_4_actions() {
    let s = "require \"fileinto\";\nif header :contains [\"from\"] \"coyote\" {\n   fileinto \"INBOX.harassment\";\n}";
    assert_eq!(actions(s, &message_a()), vec![fileinto("INBOX.harassment")]);
    assert_eq!(actions(s, &message_b()), vec![keep()]);

    let out = run(r#"redirect "bart@example.com";"#, &message_a());
    assert_eq!(out.actions, vec![redirect("bart@example.com")]);
    assert!(out.explicit_decision, "redirect cancels the implicit keep");

    let big = TestMsg { size: 2 << 20, ..message_a() };
    for s in ["if size :under 1M { keep; } else { discard; }", "if not size :under 1M { discard; }"] {
        assert_eq!(actions(s, &message_a()), vec![keep()]);
        assert_eq!(actions(s, &big), vec![Action::Discard]);
    }
    assert!(run("keep;", &message_a()).explicit_decision);
    assert!(!run("if false { keep; }", &message_a()).explicit_decision);

    let s = r#"if header :contains ["from"] ["idiot@example.com"] { discard; }"#;
    let idiot = TestMsg::parse("From: idiot@example.com\n\nx\n");
    let out = run(s, &idiot);
    assert_eq!(out.actions, vec![Action::Discard]);
    assert!(out.explicit_decision);
    // fileinto + discard is fileinto (RFC 5228 §4.4).
    assert_eq!(
        actions(r#"require "fileinto"; fileinto "a"; discard;"#, &idiot),
        vec![fileinto("a"), Action::Discard]
    );
}

#[test]
fn rfc5228_2_10_3_no_duplicate_delivery() {
    let s = r#"require "fileinto"; fileinto "a"; fileinto "a"; keep; fileinto "INBOX"; keep;"#;
    assert_eq!(actions(s, &message_a()), vec![fileinto("a"), keep()]);
    let s = r#"redirect "x@example.com"; redirect "X@example.com";"#;
    assert_eq!(actions(s, &message_a()), vec![redirect("x@example.com")]);
}

#[test]
fn rfc5228_5_1_address() {
    let s = r#"if address :is :all "from" "tim@example.com" { discard; }"#;
    let tim = TestMsg::parse("From: Tim <tim@example.com>\n\nx\n");
    assert_eq!(actions(s, &tim), vec![Action::Discard]);
    assert_eq!(actions(s, &message_a()), vec![keep()]);
    let m = TestMsg::parse("To: \"Coyote, Wile\" <Coyote@Desert.Example.ORG>, road@acme.example.com\n\nx\n");
    let yes = |t: &str| actions(&format!("if {t} {{ discard; }}"), &m) == vec![Action::Discard];
    assert!(yes(r#"address :localpart "to" "coyote""#));
    assert!(yes(r#"address :domain "to" "desert.example.org""#));
    assert!(yes(r#"address :domain :comparator "i;octet" "to" "Desert.Example.ORG""#));
    assert!(!yes(r#"address :localpart :comparator "i;octet" "to" "coyote""#));
    assert!(yes(r#"address :all "to" "road@acme.example.com""#));
    assert!(!yes(r#"address :contains "to" "Wile""#), "display names are never matched");
    let yes_b = |t: &str| actions(&format!("if {t} {{ discard; }}"), &message_b()) == vec![Action::Discard];
    assert!(yes_b(r#"address :localpart "from" "youcouldberich!""#));
    assert!(yes_b(r#"address :domain "sender" "de.res.example.com""#));
    // Invalid addresses are not matched by :localpart / :domain (RFC 5228 §2.7.4).
    let bad = TestMsg::parse("From: not-an-address\n\nx\n");
    let yes_bad = |t: &str| actions(&format!("if {t} {{ discard; }}"), &bad) == vec![Action::Discard];
    assert!(!yes_bad(r#"address :localpart "from" "not-an-address""#));
    assert!(!yes_bad(r#"address :matches :domain "from" "*""#));
    assert!(yes_bad(r#"address :all "from" "not-an-address""#));
}

#[test]
fn rfc5228_5_4_envelope() {
    let s = r#"require "envelope";
             if envelope :all :is "from" "tim@example.com" {
                discard;
             }"#;
    let m = TestMsg::parse("Subject: x\n\nx\n").envelope("<tim@example.com>", "me@example.com");
    assert_eq!(actions(s, &m), vec![Action::Discard]);
    assert_eq!(actions(s, &message_a()), vec![keep()]);
    // Source routes are dropped; the null reverse-path matches "" whatever the address part.
    let routed = TestMsg::parse("\nx\n").envelope("<@relay.example:tim@example.com>", "me@example.com");
    assert_eq!(actions(s, &routed), vec![Action::Discard]);
    let bounce = TestMsg::parse("\nx\n").envelope("<>", "me@example.com");
    let s = r#"require "envelope"; if envelope :domain :is "from" "" { discard; }"#;
    assert_eq!(actions(s, &bounce), vec![Action::Discard]);
    let s = r#"require "envelope"; if envelope :localpart :is ["to", "from"] "me" { discard; }"#;
    assert_eq!(actions(s, &bounce), vec![Action::Discard]);
    // Unknown envelope part is an error.
    assert!(compile(r#"require "envelope"; if envelope "auth" "x" {}"#).is_err());
}

#[test]
fn rfc5228_5_5_exists() {
    let s = r#"if not exists ["From","Date"] { discard; }"#;
    assert_eq!(actions(s, &message_a()), vec![keep()]);
    assert_eq!(actions(s, &TestMsg::parse("From: a@b.c\n\nx\n")), vec![Action::Discard]);
}

#[test]
fn rfc5228_5_7_header() {
    let m = TestMsg::parse("X-Caffeine: C8H10N4O2\n\nx\n");
    let yes = |t: &str| actions(&format!("if {t} {{ discard; }}"), &m) == vec![Action::Discard];
    assert!(!yes(r#"header :is ["X-Caffeine"] [""]"#));
    assert!(yes(r#"header :contains ["X-Caffeine"] [""]"#));
    assert!(yes(r#"not header :matches "Cc" "?*""#));
    // Invalid header names match nothing and are no error.
    assert!(!yes(r#"header :contains "X-Caffeine:" """#));
    assert!(!yes(r#"exists "bad name""#));
    // Leading and trailing whitespace is ignored.
    let padded = TestMsg::parse("Subject:    spaced out   \n\nx\n");
    assert_eq!(
        actions(r#"if header :is "subject" "spaced out" { discard; }"#, &padded),
        vec![Action::Discard]
    );
}

#[test]
fn rfc5228_5_9_size() {
    let m = TestMsg { size: 4000, ..message_a() };
    assert_eq!(actions("if size :over 4000 { discard; }", &m), vec![keep()]);
    assert_eq!(actions("if size :under 4000 { discard; }", &m), vec![keep()]);
    assert_eq!(actions("if size :under 4001 { discard; }", &m), vec![Action::Discard]);
}

#[test]
fn rfc5228_9_extended_example() {
    let s = r#"#
    # Example Sieve Filter
    # Declare any optional features or extension used by the script
    #
    require ["fileinto"];
    #
    # Handle messages from known mailing lists
    # Move messages from IETF filter discussion list to filter mailbox
    #
    if header :is "Sender" "owner-ietf-mta-filters@imc.org"
            {
            fileinto "filter";  # move to "filter" mailbox
            }
    #
    # Keep all messages to or from people in my company
    #
    elsif address :DOMAIN :is ["From", "To"] "example.com"
            {
            keep;               # keep in "In" mailbox
            }
    #
    # Try and catch unsolicited email.  If a message is not to me,
    # or it contains a subject known to be spam, file it away.
    #
    elsif anyof (NOT address :all :contains
                   ["To", "Cc", "Bcc"] "me@example.com",
                 header :matches "subject"
                   ["*make*money*fast*", "*university*dipl*mas*"])
            {
            fileinto "spam";   # move to "spam" mailbox
            }
    else
            {
            # Move all other (non-company) mail to "personal"
            # mailbox.
            fileinto "personal";
            }
"#;
    let list = TestMsg::parse("Sender: owner-ietf-mta-filters@imc.org\nTo: me@example.com\n\nx\n");
    assert_eq!(actions(s, &list), vec![fileinto("filter")]);
    let colleague = TestMsg::parse("From: boss@example.com\nTo: me@example.com\n\nx\n");
    assert_eq!(actions(s, &colleague), vec![keep()]);
    let not_me = TestMsg::parse("From: x@other.example\nTo: someone@other.example\n\nx\n");
    assert_eq!(actions(s, &not_me), vec![fileinto("spam")]);
    let spam = TestMsg::parse(
        "From: x@other.example\nTo: l@other.example\nCc: me@example.com\nSubject: MAKE MONEY FAST now\n\nx\n",
    );
    assert_eq!(actions(s, &spam), vec![fileinto("spam")]);
    let friend = TestMsg::parse("From: x@other.example\nCc: me@example.com\nSubject: lunch\n\nx\n");
    assert_eq!(actions(s, &friend), vec![fileinto("personal")]);
}

#[test]
fn rfc5228_multi_line_strings() {
    let s = "require \"vacation\";\nvacation text:\nline one\n..dotted\n.\n;\n";
    let out = run(s, &message_a());
    let Some(Action::Vacation(v)) = out.actions.first() else { panic!("{out:?}") };
    assert_eq!(v.reason, "line one\r\n.dotted\r\n");
}

// ---------------------------------------------------------------- RFC 5229 (variables)

#[test]
fn rfc5229_3_2_match_variables() {
    let s = r#"require ["fileinto", "variables"];
      if header :matches "List-ID" "*<*@*" {
          fileinto "INBOX.lists.${2}"; stop;
      }
      # Imagine the header
      # Subject: [acme-users] [fwd] version 1.0 is out
      if header :matches "Subject" "[*] *" {
          # ${1} will hold "acme-users",
          # ${2} will hold "[fwd] version 1.0 is out"
          fileinto "INBOX.lists.${1}"; stop;
      }
      # Imagine the header
      # To: coyote@ACME.Example.COM
      if address :matches ["To", "Cc"] ["coyote@**.com",
              "wile@**.com"] {
          # ${0} is the matching address
          # ${1} is always the empty string
          # ${2} is part of the domain name ("ACME.Example")
          fileinto "INBOX.business.${2}"; stop;
      } else {
          # Control wouldn't reach this block if any match was
          # successful, so no match variables are set at this
          # point.
      }
      if anyof (true, address :domain :matches "To" "*.com") {
          # The second test is never evaluated, so there are
          # still no match variables set.
          fileinto "INBOX.unmatched.${1}";
          stop;
      }"#;
    let list = TestMsg::parse("List-ID: Sieve list <sieve.example.org@lists.example>\n\nx\n");
    assert_eq!(actions(s, &list), vec![fileinto("INBOX.lists.sieve.example.org")]);
    let subj = TestMsg::parse("Subject: [acme-users] [fwd] version 1.0 is out\n\nx\n");
    assert_eq!(actions(s, &subj), vec![fileinto("INBOX.lists.acme-users")]);
    let to = TestMsg::parse("To: coyote@ACME.Example.COM\n\nx\n");
    assert_eq!(actions(s, &to), vec![fileinto("INBOX.business.ACME.Example")]);
    let other = TestMsg::parse("To: someone@example.org\n\nx\n");
    assert_eq!(actions(s, &other), vec![fileinto("INBOX.unmatched.")]);
}

#[test]
fn rfc5229_3_strings_and_quoting() {
    let s = r#"require ["variables", "fileinto"];
      set "company" "ACME";
      set "foo" "F";
      fileinto "${full}|${company}|${BAD${Company}|${President, ${Company} Inc.}";
      fileinto "${fo\o}|${fo\\o}|\${foo}|\\${foo}";
      set "dollar" "$";
      set "text" "regarding ${dollar}{beep}";
      fileinto "${text}";"#;
    assert_eq!(
        actions(s, &message_a()),
        vec![
            fileinto("|ACME|${BADACME|${President, ACME Inc.}"),
            fileinto("F|${fo\\o}|F|\\F"),
            fileinto("regarding ${beep}"),
        ]
    );
}

#[test]
fn rfc5229_3_1_encoded_character_before_variables() {
    let s = r#"require ["encoded-character", "variables"];
      set "name" "Ethelbert";
      if header :contains "Subject" "dear${hex:20 24 7b 4e}ame}" {
          discard;
      }"#;
    let m = TestMsg::parse("Subject: Oh dear Ethelbert, again\n\nx\n");
    assert_eq!(actions(s, &m), vec![Action::Discard]);
}

#[test]
fn rfc5229_4_set_and_modifiers() {
    let s = r#"require ["variables", "fileinto"];
      set "honorific"  "Mr";
      set "first_name" "Wile";
      set "last_name"  "Coyote";
      set "vacation" text:
Dear ${HONORIFIC} ${last_name},
I'm out, please leave a message after the meep.
.
;
      set "a" "juMBlEd lETteRS";
      set :length "b" "${a}"; fileinto "${b}";
      set :lower "b" "${a}"; fileinto "${b}";
      set :upperfirst "b" "${a}"; fileinto "${b}";
      set :upperfirst :lower "b" "${a}"; fileinto "${b}";
      set :quotewildcard "b" "Rock*"; fileinto "${b}";
      if string :is "${vacation}" "Dear Mr Coyote,${dollar}" { discard; }
      if string :matches "${vacation}" "Dear Mr Coyote,*meep.*" { fileinto "letter"; }"#;
    assert_eq!(
        actions(s, &message_a()),
        vec![
            fileinto("15"),
            fileinto("jumbled letters"),
            fileinto("JuMBlEd lETteRS"),
            fileinto("Jumbled letters"),
            fileinto("Rock\\*"),
            fileinto("letter"),
        ]
    );
    // "set" does not affect the implicit keep.
    let out = run(r#"require "variables"; set "x" "y";"#, &message_a());
    assert_eq!(out.actions, vec![keep()]);
    assert!(!out.explicit_decision);
}

#[test]
fn rfc5229_5_string_test() {
    let s = r#"require ["variables"];
      set "state" "${state} pending";
      if string :matches " ${state} " "* pending *" {
          discard;
      }"#;
    assert_eq!(actions(s, &message_a()), vec![Action::Discard]);
    // :count of strings: empty strings count 0 (RFC 5229 §5).
    let s = r#"require ["variables", "relational", "comparator-i;ascii-numeric"];
      set "a" "x";
      if string :count "eq" :comparator "i;ascii-numeric" ["${a}", "", "${b}", "y"] "2" { discard; }"#;
    assert_eq!(actions(s, &message_a()), vec![Action::Discard]);
}

#[test]
fn rfc5229_errors() {
    for (s, want) in [
        (r#"require "variables"; set "1" "x";"#, "not a valid variable name"),
        (r#"require "variables"; set "a.b" "x";"#, "not a valid variable name"),
        (r#"require "variables"; set :lower :upper "a" "x";"#, "cannot combine :upper with :lower"),
        (r#"require "variables"; set :bogus "a" "x";"#, "does not accept tag :bogus"),
        (r#"require "variables"; set "a" "${10}";"#, "out of range"),
        (r#"require "variables"; set "a" "${env.x}";"#, "namespace"),
        (r#"set "a" "b";"#, "needs 'require \"variables\";'"),
        (r#"if string "a" "b" {}"#, "needs 'require \"variables\";'"),
    ] {
        let e = compile(s).expect_err(s);
        assert!(e.message.contains(want), "{s}: {e}");
    }
    // Without "variables", "${x}" is plain text.
    assert_eq!(actions(r#"require "fileinto"; fileinto "${x}";"#, &message_a()), vec![fileinto("${x}")]);
}

#[test]
fn rfc5229_6_long_values_are_truncated() {
    let s = r#"require ["variables", "fileinto"];
      set "a" "0123456789";
      set "b" "${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}";
      set "c" "${b}${b}${b}${b}${b}${b}${b}${b}${b}${b}";
      set "d" "${c}${c}${c}${c}${c}${c}${c}${c}${c}${c}";
      set "e" "${d}${d}${d}${d}${d}${d}${d}${d}${d}${d}";
      set "f" "${e}${e}${e}${e}${e}${e}${e}${e}${e}${e}";
      set :length "len" "${f}";
      fileinto "${len}";"#;
    let out = run(s, &message_a());
    assert_eq!(out.error, None);
    assert_eq!(out.actions[0], fileinto(&Settings::default().limits.max_variable_len.to_string()));
}

// ---------------------------------------------------------------- RFC 5232 (imap4flags)

#[test]
fn rfc5232_9_extended_example() {
    let script = r#"
   require ["fileinto", "imap4flags", "variables"];
   if size :over 1M
           {
           addflag "MyFlags" "Big";
           if header :is "From" "boss@company.example.com"
                      {
                      addflag "MyFlags" "\\Flagged";
                      }
           fileinto :flags "${MyFlags}" "Big messages";
           }
   if header :is "From" "grandma@example.net"
           {
           addflag "MyFlags" ["\\Answered", "$MDNSent"];
           fileinto :flags "${MyFlags}" "GrandMa";
           }
   if header :is "Sender" "owner-ietf-mta-filters@example.org"
           {
           set "MyFlags" "\\Flagged $Work";
           keep :flags "${MyFlags}";
           }
   elsif anyof address :domain :is ["From", "To"] "company.example.com"
           {
           keep :flags "${MyFlags}"; # keep in "Inbox" folder
           }
   elsif anyof (not address :all :contains
                  ["To", "Cc"] "me@company.example.com",
                header :matches "subject"
                  ["*make*money*fast*", "*university*dipl*mas*"])
           {
           REMOVE "MyFlags" "\\Flagged";
           fileinto :flags "${MyFlags}" "spam";
           }
   else
           {
           fileinto :flags "${MyFlags}" "personal";
           }"#;
    // The RFC's text says "remove", an erratum for "removeflag": it is rejected as unknown.
    let e = compile(script).unwrap_err();
    assert!(e.message.contains("unknown command \"remove\""), "{e}");
    assert_eq!(e.line, 31);
    let script = script.replace("REMOVE", "removeflag");

    let mut boss = TestMsg::parse("From: boss@company.example.com\nTo: me@company.example.com\n\nx\n");
    boss.size = 2 << 20;
    assert_eq!(
        actions(&script, &boss),
        vec![fileinto_flags("Big messages", &["Big", "\\Flagged"]), keep_flags(&["Big", "\\Flagged"]),]
    );
    let mut grandma = TestMsg::parse("From: grandma@example.net\nTo: me@company.example.com\n\nx\n");
    grandma.size = 2 << 20;
    assert_eq!(
        actions(&script, &grandma),
        vec![
            fileinto_flags("Big messages", &["Big"]),
            fileinto_flags("GrandMa", &["Big", "\\Answered", "$MDNSent"]),
            keep_flags(&["Big", "\\Answered", "$MDNSent"]),
        ]
    );
    let small_grandma = TestMsg::parse("From: grandma@example.net\nCc: me@company.example.com\n\nx\n");
    assert_eq!(
        actions(&script, &small_grandma),
        vec![
            fileinto_flags("GrandMa", &["\\Answered", "$MDNSent"]),
            fileinto_flags("personal", &["\\Answered", "$MDNSent"]),
        ]
    );
    let list = TestMsg::parse("Sender: owner-ietf-mta-filters@example.org\n\nx\n");
    assert_eq!(actions(&script, &list), vec![keep_flags(&["\\Flagged", "$Work"])]);
    let spam = TestMsg::parse("From: x@y.example\nTo: other@y.example\n\nx\n");
    assert_eq!(actions(&script, &spam), vec![fileinto_flags("spam", &[])]);
    let personal =
        TestMsg::parse("From: x@y.example\nTo: other@y.example\nCc: me@company.example.com\n\nx\n");
    assert_eq!(actions(&script, &personal), vec![fileinto_flags("personal", &[])]);
}

#[test]
fn rfc5232_internal_variable_and_flags_tag() {
    let s = r#"require ["imap4flags", "fileinto"];
        if size :over 500K { setflag "\\Deleted"; }
        addflag ["\\Seen", "Junk"];
        removeflag "junk";
        fileinto "a";
        fileinto :flags "\\Flagged \\Recent bad(flag" "b";"#;
    let big = TestMsg { size: 600 * 1024, ..message_a() };
    assert_eq!(
        actions(s, &big),
        vec![fileinto_flags("a", &["\\Deleted", "\\Seen"]), fileinto_flags("b", &["\\Flagged"])]
    );
    // The internal variable applies to the implicit keep (RFC 5232 §3).
    let s = r#"require "imap4flags"; addflag "$Label1"; addflag "\\seen";"#;
    let out = run(s, &message_a());
    assert_eq!(out.actions, vec![keep_flags(&["$Label1", "\\Seen"])]);
    assert!(!out.explicit_decision);
    // The last flag list wins when deliveries merge (RFC 5232 §3).
    let s = r#"require ["imap4flags", "fileinto"]; fileinto :flags "A" "x"; fileinto :flags "B" "x";"#;
    assert_eq!(actions(s, &message_a()), vec![fileinto_flags("x", &["B"])]);
    // Without "variables" the variable-name form is an error (RFC 5232 §1).
    assert!(compile(r#"require "imap4flags"; setflag "v" "\\Seen";"#).is_err());
    assert!(compile(r#"if true { keep :flags "x"; }"#).is_err());
}

#[test]
fn rfc5232_4_hasflag() {
    let base = r#"require ["imap4flags", "variables", "relational", "comparator-i;ascii-numeric"];
        setflag "A B";
        set "MyVar" "NonJunk Junk gnus-forward $Forwarded NotJunk JunkRecorded $Junk $NotJunk";
        set "MyFlags" "A B";
    "#;
    let yes = |t: &str| {
        let s = format!("{base} if {t} {{ discard; }}");
        actions(&s, &message_a()) == vec![Action::Discard]
    };
    assert!(yes(r#"hasflag :is "b A""#));
    assert!(yes(r#"hasflag ["b","A"]"#));
    assert!(yes(r#"hasflag :contains "MyVar" "Junk""#));
    assert!(yes(r#"hasflag :contains "MyVar" "forward""#));
    assert!(yes(r#"hasflag :contains "MyVar" ["label", "forward"]"#));
    assert!(yes(r#"hasflag :contains "MyVar" ["junk", "forward"]"#));
    assert!(yes(r#"hasflag :contains "MyVar" "junk forward""#));
    assert!(!yes(r#"hasflag :contains "MyVar" "label""#));
    assert!(!yes(r#"hasflag :contains "MyVar" ["label1", "label2"]"#));
    assert!(yes(r#"hasflag :count "ge" :comparator "i;ascii-numeric" "MyFlags" "2""#));
    assert!(!yes(r#"hasflag :count "gt" :comparator "i;ascii-numeric" "MyFlags" "2""#));
    assert!(!yes(r#"hasflag "C""#));
}

// ---------------------------------------------------------------- RFC 5173 (body)

fn mime_message() -> TestMsg {
    let mut m = TestMsg::parse(
        "From: Whomever\nTo: Someone\nDate: Whenever\nSubject: whatever\nContent-Type: multipart/mixed; boundary=outer\n\nThis is a multi-part message in MIME format.\n\n--outer\nContent-Type: multipart/alternative; boundary=inner\n\nThis is a nested multi-part message in MIME format.\n\n--inner\nContent-Type: text/plain; charset=\"us-ascii\"\n\nHello\n\n--inner\nContent-Type: text/html; charset=\"us-ascii\"\n\n<html><body>Hello</body></html>\n\n--inner--\n\nThis is the end of the inner MIME multipart.\n\n--outer\nContent-Type: message/rfc822\n\nFrom: Someone Else\nSubject: hello request\n\nPlease say Hello\n\n--outer--\n\nThis is the end of the outer MIME multipart.\n",
    );
    // What a MIME-aware Message implementation hands out per part (RFC 5173 §5.2 example).
    m.parts = vec![
        ("multipart/mixed".into(), "This is a multi-part message in MIME format.\r\n".into()),
        ("multipart/mixed".into(), "This is the end of the outer MIME multipart.\r\n".into()),
        ("multipart/alternative".into(), "This is a nested multi-part message in MIME format.\r\n".into()),
        ("multipart/alternative".into(), "This is the end of the inner MIME multipart.\r\n".into()),
        ("text/plain; charset=\"us-ascii\"".into(), "Hello\r\n".into()),
        ("text/html; charset=\"us-ascii\"".into(), "<html><body>Hello</body></html>\r\n".into()),
        ("message/rfc822".into(), "From: Someone Else\r\nSubject: hello request\r\n".into()),
        ("text/plain".into(), "Please say Hello\r\n".into()),
    ];
    m
}

#[test]
fn rfc5173_body_transforms() {
    let m = mime_message();
    let yes =
        |t: &str| actions(&format!("require \"body\"; if {t} {{ discard; }}"), &m) == vec![Action::Discard];
    assert!(yes(r#"body :content "multipart" :contains "MIME""#));
    assert!(yes(r#"body :content "text/plain" :contains "Hello""#));
    assert!(yes(r#"body :content "text/html" :contains "Hello""#));
    assert!(yes(r#"body :content "text" :contains "Hello""#));
    // Only the nested header is searched, and "hello request" matches case-insensitively.
    assert!(yes(r#"body :content "message/rfc822" :contains "Hello""#));
    assert!(!yes(r#"body :content "message/rfc822" :comparator "i;octet" :contains "Hello""#));
    assert!(!yes(r#"body :content "message/rfc822" :contains "Please""#));
    assert!(!yes(r#"body :content "audio/mp3" :contains """#));
    assert!(yes(r#"body :raw :contains "Content-Type: message/rfc822""#));
    assert!(!yes(r#"body :text :contains "Content-Type""#));
    assert!(yes(r#"body :contains "say hello""#));
    assert!(yes(r#"body :content "text" :matches "Please*""#));
    // Parts are matched one by one: no match across part boundaries.
    assert!(!yes(r#"body :text :contains "Hello</body></html>\r\nPlease""#));

    let s = r#"require ["body", "fileinto"];
        if body :raw :contains "MAKE MONEY FAST" { discard; }
        if body :content "text" :contains ["missile", "coordinates"] { fileinto "secrets"; }
        if body :content "audio/mp3" :contains "" { fileinto "jukebox"; }
        if body :text :contains "project schedule" { fileinto "project/schedule"; }"#;
    let plain = TestMsg::parse("Subject: x\n\nThe project schedule has the missile coordinates.\n");
    assert_eq!(actions(s, &plain), vec![fileinto("secrets"), fileinto("project/schedule")]);
    let mut song = TestMsg::parse("Subject: x\n\n...\n");
    song.parts = vec![("audio/mp3".into(), "ID3".into())];
    assert_eq!(actions(s, &song), vec![fileinto("jukebox")]);
    let spam = TestMsg::parse("Subject: x\n\nTotally MAKE MONEY FAST\n");
    assert_eq!(actions(s, &spam), vec![Action::Discard]);
}

#[test]
fn rfc5173_4_header_only_message_never_matches() {
    let m = TestMsg::parse("Subject: no body");
    assert_eq!(m.body, None);
    let s = r#"require "body"; if anyof (body :raw :contains "", body :is "") { discard; }"#;
    assert_eq!(actions(s, &m), vec![keep()]);
}

#[test]
fn rfc5173_6_body_sets_no_match_variables() {
    let s = r#"require ["body", "variables", "fileinto"];
        if header :matches "Subject" "*" { }
        if body :matches "* world*" { fileinto "got-${1}"; }"#;
    let m = TestMsg::parse("Subject: subj\n\nhello world\n");
    assert_eq!(actions(s, &m), vec![fileinto("got-subj")]);
}

// ---------------------------------------------------------------- RFC 5231 (relational)

#[test]
fn rfc5231_6_examples() {
    let m = TestMsg::parse(
        "received: a\nreceived: b\nsubject: example\nto: foo@example.com, baz@example.com\ncc: qux@example.com\n\nx\n",
    );
    let req = r#"require ["relational", "comparator-i;ascii-numeric"];"#;
    let yes = |t: &str| actions(&format!("{req} if {t} {{ discard; }}"), &m) == vec![Action::Discard];
    assert!(yes(r#"address :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] ["3"]"#));
    assert!(!yes(r#"anyof ( address :count "ge" :comparator "i;ascii-numeric" ["to"] ["3"],
                   address :count "ge" :comparator "i;ascii-numeric" ["cc"] ["3"] )"#));
    assert!(!yes(r#"header :count "ge" :comparator "i;ascii-numeric" ["received"] ["3"]"#));
    assert!(yes(r#"header :count "ge" :comparator "i;ascii-numeric" ["received", "subject"] ["3"]"#));
    assert!(!yes(r#"header :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] ["3"]"#));
}

#[test]
fn rfc5231_7_extended_example() {
    let s = r#"require ["relational", "comparator-i;ascii-numeric", "fileinto"];
      if header :value "lt" :comparator "i;ascii-numeric"
                ["x-priority"] ["3"]
      {
         fileinto "Priority";
      }
      elsif address :count "gt" :comparator "i;ascii-numeric"
                 ["to"] ["5"]
      {
         # everything with more than 5 recipients in the "to" field
         # is considered SPAM
         fileinto "SPAM";
      }
      elsif address :value "gt" :all :comparator "i;ascii-casemap"
                 ["from"] ["M"]
      {
         fileinto "From N-Z";
      } else {
         fileinto "From A-M";
      }
      if allof ( address :count "eq" :comparator "i;ascii-numeric"
                         ["to", "cc"] ["1"] ,
                 address :all :comparator "i;ascii-casemap"
                         ["to", "cc"] ["me@foo.example.com"] )
      {
         fileinto "Only me";
      }"#;
    let urgent =
        TestMsg::parse("X-Priority: 1 (Highest)\nFrom: zed@x.example\nTo: me@foo.example.com\n\nx\n");
    assert_eq!(actions(s, &urgent), vec![fileinto("Priority"), fileinto("Only me")]);
    let many = TestMsg::parse("From: a@x.example\nTo: a@x, b@x, c@x, d@x, e@x, f@x\n\nx\n");
    assert_eq!(actions(s, &many), vec![fileinto("SPAM")]);
    let zed = TestMsg::parse("From: zed@x.example\nTo: me@foo.example.com, other@x.example\n\nx\n");
    assert_eq!(actions(s, &zed), vec![fileinto("From N-Z")]);
    let amy = TestMsg::parse("From: amy@x.example\nX-Priority: 5\nTo: me@foo.example.com\n\nx\n");
    assert_eq!(actions(s, &amy), vec![fileinto("From A-M"), fileinto("Only me")]);
}

#[test]
fn rfc5231_requires() {
    // :value needs "relational"; i;ascii-numeric needs its comparator capability.
    let e = compile(r#"if header :value "lt" "x" "3" {}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "1:11: match type :value needs 'require \"relational\";' at the top of the script"
    );
    let e =
        compile(r#"require "relational"; if header :value "lt" :comparator "i;ascii-numeric" "x" "3" {}"#)
            .unwrap_err();
    assert!(e.message.contains("comparator \"i;ascii-numeric\" needs"), "{e}");
    let e = compile(r#"require "relational"; if header :value "lte" "x" "3" {}"#).unwrap_err();
    assert!(e.message.contains("relational operator"), "{e}");
    let e = compile(r#"require "comparator-i;ascii-numeric"; if header :contains :comparator "i;ascii-numeric" "x" "3" {}"#)
        .unwrap_err();
    assert!(e.message.contains("cannot be used with :contains"), "{e}");
}

// ---------------------------------------------------------------- RFC 5233 (subaddress)

#[test]
fn rfc5233_4_example() {
    let s = r#"require ["envelope", "subaddress", "fileinto"];
      if envelope :user "to" "postmaster" {
          fileinto "inbox.postmaster";
          stop;
      }
      if envelope :detail "to" "mta-filters" {
          fileinto "inbox.ietf-mta-filters";
      }
      if envelope :detail "to" "foo" {
          redirect "ken@example.net";
      }"#;
    let m = |to: &str| TestMsg::parse("Subject: x\n\nx\n").envelope("a@b.example", to);
    assert_eq!(actions(s, &m("postmaster+x@example.com")), vec![fileinto("inbox.postmaster")]);
    assert_eq!(actions(s, &m("postmaster@example.com")), vec![fileinto("inbox.postmaster")]);
    assert_eq!(actions(s, &m("ken+mta-filters@example.org")), vec![fileinto("inbox.ietf-mta-filters")]);
    assert_eq!(actions(s, &m("ken+foo@example.org")), vec![redirect("ken@example.net")]);
    assert_eq!(actions(s, &m("ken@example.org")), vec![keep()]);
    // :detail of "user+" is the empty string; without a separator nothing matches.
    let s = r#"require ["envelope", "subaddress"]; if envelope :detail "to" "" { discard; }"#;
    assert_eq!(actions(s, &m("ken+@example.org")), vec![Action::Discard]);
    assert_eq!(actions(s, &m("ken@example.org")), vec![keep()]);
    // The separator is configurable.
    let compiled =
        compiled(r#"require ["envelope", "subaddress"]; if envelope :user "to" "ken" { discard; }"#);
    let settings = Settings { subaddress_separator: "--".into(), ..Settings::default() };
    assert_eq!(evaluate(&compiled, &m("ken--lists@example.org"), &settings).actions, vec![Action::Discard]);
    assert!(compile(r#"if address :user "to" "ken" {}"#).is_err());
}

// ---------------------------------------------------------------- RFC 3894 (copy)

#[test]
fn rfc3894_copy() {
    let s = "require [\"copy\", \"fileinto\"];\nfileinto :copy \"incoming\";";
    let out = run(s, &message_a());
    assert_eq!(out.actions, vec![fileinto("incoming"), keep()]);
    assert!(!out.explicit_decision, ":copy leaves the decision to the implicit keep");
    let s = "require \"copy\";\nredirect :copy \"x@example.com\";";
    let out = run(s, &message_a());
    assert_eq!(out.actions, vec![Action::Redirect { address: "x@example.com".into(), copy: true }, keep()]);
    // The RFC's motivating case: with keep the discard is ineffective.
    let s = r#"require "fileinto"; fileinto "unfiltered"; keep; if header "Subject" "MAKE MONEY FAST!!!" { discard; }"#;
    let spam = TestMsg::parse("Subject: MAKE MONEY FAST!!!\n\nx\n");
    assert_eq!(actions(s, &spam), vec![fileinto("unfiltered"), keep(), Action::Discard]);
}

// ---------------------------------------------------------------- RFC 5235 (spamtest)

#[test]
fn rfc5235_3_2_1_spamtest() {
    let s = r#"require ["spamtest", "fileinto", "relational", "comparator-
                    i;ascii-numeric"];"#;
    // The example's line break inside the capability is an artefact of RFC formatting.
    assert!(compile(s).is_err());
    let s = r#"require ["spamtest", "fileinto", "relational", "comparator-i;ascii-numeric"];
           if spamtest :value "eq" :comparator "i;ascii-numeric" "0"
           {
               fileinto "INBOX.unclassified";
           }
           elsif spamtest :value "ge" :comparator "i;ascii-numeric" "3"
           {
               fileinto "INBOX.spam-trap";
           }"#;
    let untested = TestMsg::parse("Subject: x\n\nx\n");
    assert_eq!(actions(s, &untested), vec![fileinto("INBOX.unclassified")]);
    let spam = untested.clone().with_header("X-Spam-Score", "7.5");
    assert_eq!(actions(s, &spam), vec![fileinto("INBOX.spam-trap")]);
    let ham = untested.clone().with_header("X-Spam-Status", "No, score=0.3 required=5.0");
    assert_eq!(actions(s, &ham), vec![keep()]);
}

#[test]
fn rfc5235_3_2_2_spamtest_percent() {
    let body = r#"
           if spamtest :value "eq"
                       :comparator "i;ascii-numeric" "0"
           {
               fileinto "INBOX.unclassified";
           }
           elsif spamtest :percent :value "eq"
                          :comparator "i;ascii-numeric" "0"
           {
               fileinto "INBOX.not-spam";
           }
           elsif spamtest :percent :value "lt"
                          :comparator "i;ascii-numeric" "37"
           {
               fileinto "INBOX.spam-trap";
           }
           else
           {
               discard;
           }"#;
    let count_variant = body.replacen(
        r#"if spamtest :value "eq"
                       :comparator"#,
        r#"if spamtest :percent :count "eq"
                       :comparator"#,
        1,
    );
    let req = r#"require ["spamtestplus", "fileinto", "relational", "comparator-i;ascii-numeric"];"#;
    for s in [format!("{req}{body}"), format!("{req}{count_variant}")] {
        let m = TestMsg::parse("Subject: x\n\nx\n");
        assert_eq!(actions(&s, &m), vec![fileinto("INBOX.unclassified")]);
        assert_eq!(
            actions(&s, &m.clone().with_header("X-Spam-Score", "-1")),
            vec![fileinto("INBOX.not-spam")]
        );
        assert_eq!(
            actions(&s, &m.clone().with_header("X-Spam-Score", "2.5")),
            vec![fileinto("INBOX.spam-trap")]
        );
        assert_eq!(actions(&s, &m.clone().with_header("X-Spam-Flag", "YES")), vec![Action::Discard]);
    }
    let e = compile(r#"require "spamtest"; if spamtest :percent "5" {}"#).unwrap_err();
    assert!(e.message.contains("spamtestplus"), "{e}");
    assert!(compile(r#"if spamtest "5" {}"#).is_err());
}

// ---------------------------------------------------------------- RFC 5230 (vacation)

fn vacation_of(out: &postfach_sieve::Outcome) -> &postfach_sieve::VacationAction {
    out.actions
        .iter()
        .find_map(|a| match a {
            Action::Vacation(v) => Some(v.as_ref()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no vacation in {out:?}"))
}

#[test]
fn rfc5230_4_8_examples() {
    let s = r#"require "vacation";
   vacation :days 23 :addresses ["tjs@example.edu",
                                 "ts4z@landru.example.edu"]
   "I'm away until October 19.
   If it's an emergency, call 911, I guess." ;"#;
    let out = run(s, &message_a());
    assert!(!out.explicit_decision, "vacation does not cancel the implicit keep");
    assert_eq!(out.actions.last(), Some(&keep()));
    let v = vacation_of(&out);
    assert_eq!(v.days, 23);
    assert_eq!(v.to, "coyote@desert.example.org");
    assert_eq!(v.addresses, vec!["tjs@example.edu", "ts4z@landru.example.edu"]);
    assert_eq!(v.reason, "I'm away until October 19.\r\n   If it's an emergency, call 911, I guess.");

    let s = r#"require "vacation";
   if header :contains "from" "boss@example.edu" {
       redirect "pleeb@isp.example.org";
   } else {
       vacation "Sorry, I'm away, I'll read your
   message when I get around to it.";
   }"#;
    let boss = TestMsg::parse("From: boss@example.edu\n\nx\n");
    assert_eq!(actions(s, &boss), vec![redirect("pleeb@isp.example.org")]);
    assert!(matches!(actions(s, &message_a())[0], Action::Vacation(_)));
}

#[test]
fn rfc5230_4_1_days_are_clamped() {
    let days = |arg: &str, settings: &Settings| {
        let s = compiled(&format!("require \"vacation\"; vacation {arg} \"away\";"));
        vacation_of(&evaluate(&s, &message_a(), settings)).days
    };
    let d = Settings::default();
    assert_eq!(days("", &d), 7);
    assert_eq!(days(":days 0", &d), 1);
    assert_eq!(days(":days 1000", &d), 90);
    let strict = Settings { vacation_min_days: 10, vacation_max_days: 30, ..Settings::default() };
    assert_eq!(days("", &strict), 10);
    assert_eq!(days(":days 3", &strict), 10);
}

#[test]
fn rfc5230_4_2_response_tracking_handles() {
    let handle = |s: &str, m: &TestMsg| vacation_of(&run(s, m)).handle.clone();
    let s = r#"require "vacation";
   if header :contains "subject" "cyrus" {
       vacation "I'm out -- send mail to cyrus-bugs";
   } else {
       vacation "I'm out -- call me at +1 304 555 0123";
   }"#;
    let bug = TestMsg::parse("Subject: Cyrus bug\n\nx\n");
    let dinner = TestMsg::parse("Subject: come over for dinner\n\nx\n");
    assert_ne!(handle(s, &bug), handle(s, &dinner), "different responses are tracked apart");

    let s = r#"require ["vacation", "variables"];
   if header :matches "subject" "*" {
       vacation :subject "Automatic response to: ${1}"
                "I'm away -- send mail to foo in my absence";
   }"#;
    let out = run(s, &bug);
    assert_eq!(vacation_of(&out).subject.as_deref(), Some("Automatic response to: Cyrus bug"));
    assert_eq!(handle(s, &bug), handle(s, &dinner), "tracking ignores variable expansion");

    let s = r#"require "vacation";
   if header :contains "subject" "lunch" {
       vacation :handle "ran-away" "I'm out and can't meet for lunch";
   } else {
       vacation :handle "ran-away" "I'm out";
   }"#;
    let lunch = TestMsg::parse("Subject: lunch?\n\nx\n");
    assert_eq!(handle(s, &lunch), "ran-away");
    assert_eq!(handle(s, &dinner), "ran-away");
    // The same text as :subject or as reason must not give the same handle.
    let a = handle(r#"require "vacation"; vacation :subject "x" "y";"#, &bug);
    let b = handle(r#"require "vacation"; vacation :subject "y" "x";"#, &bug);
    assert_ne!(a, b);
}

#[test]
fn rfc5230_4_4_mime_and_4_7_once() {
    let s = "require \"vacation\";\nvacation :mime text:\nContent-Type: multipart/alternative; boundary=foo\n\n--foo\n\nI'm at the beach relaxing.  Mmmm, surf...\n\n--foo--\n.\n;";
    let out = run(s, &message_a());
    let v = vacation_of(&out);
    assert!(v.mime);
    assert!(v.reason.starts_with("Content-Type: multipart/alternative; boundary=foo\r\n\r\n--foo\r\n"));
    let e = compile("require \"vacation\";\nvacation :mime \"Subject: Grüße\n\nbody\";").unwrap_err();
    assert!(e.message.contains("ASCII"), "{e}");

    let out = run(r#"require "vacation"; vacation "a"; vacation "b";"#, &message_a());
    assert!(out.error.unwrap().message.contains("only be executed once"));
    assert_eq!(out.actions, vec![keep()]);
}

#[test]
fn rfc5230_4_3_from_is_checked() {
    let e = compile(r#"require "vacation"; vacation :from "not an address" "x";"#).unwrap_err();
    assert_eq!(e.to_string(), "1:36: vacation :from \"not an address\" is not a valid address");
    let out =
        run(r#"require "vacation"; vacation :from "Road Runner <rr@acme.example.com>" "x";"#, &message_a());
    assert_eq!(vacation_of(&out).from.as_deref(), Some("Road Runner <rr@acme.example.com>"));
}

#[test]
fn vacation_end_to_end_with_should_reply() {
    let s = compiled(r#"require "vacation"; vacation :days 3 "Back Monday.";"#);
    let msg = message_a().with_header("Message-ID", "<anvil@desert.example.org>");
    let out = evaluate(&s, &msg, &Settings::default());
    let v = vacation_of(&out);
    let me = vec!["roadrunner@acme.example.com".to_owned()];
    let Decision::Send(reply) = should_reply(v, &msg, &me, |_, _| None) else { panic!() };
    let text = reply.to_message("Wed, 2 Apr 1997 10:00:00 +0000", "<r@acme.example.com>");
    assert!(text.contains("Subject: Auto: I have a present for you\r\n"), "{text}");
    assert!(text.contains("In-Reply-To: <anvil@desert.example.org>\r\n"));
    assert!(text.ends_with("\r\n\r\nBack Monday.\r\n"));
    // A bounce gets no reply.
    let bounce = msg.clone().envelope("<>", "roadrunner@acme.example.com");
    let v2 = evaluate(&s, &bounce, &Settings::default());
    assert!(matches!(should_reply(vacation_of(&v2), &bounce, &me, |_, _| None), Decision::Skip(_)));
}

// ---------------------------------------------------------------- RFC 5490 (mailbox)

#[test]
fn mailbox_extension() {
    let s = r#"require ["fileinto", "mailbox"];
        if mailboxexists "Lists" { fileinto "Lists"; } else { fileinto :create "New"; }"#;
    let mut m = message_a();
    assert_eq!(actions(s, &m), vec![Action::FileInto { mailbox: "New".into(), flags: vec![], create: true }]);
    m.mailboxes = vec!["Lists".into()];
    assert_eq!(actions(s, &m), vec![fileinto("Lists")]);
}

// ---------------------------------------------------------------- details per test and action

#[test]
fn script_reports_its_requirements() {
    let s = compiled(r#"require ["vacation", "fileinto"]; keep;"#);
    assert_eq!(s.capabilities(), ["fileinto", "vacation"]);
    assert!(s.requires("vacation"));
    assert!(!s.requires("body"));
}

#[test]
fn encoded_character_only_when_required() {
    let s = r#"require ["fileinto"]; fileinto "${hex:41 42}";"#;
    assert_eq!(actions(s, &message_a()), vec![fileinto("${hex:41 42}")]);
    let s = r#"require ["fileinto", "encoded-character"]; fileinto "${hex:41 42}${unicode:e4}";"#;
    assert_eq!(actions(s, &message_a()), vec![fileinto("ABä")]);
    assert!(compile(r#"require "encoded-character"; if header "a" "${unicode:110000}" {}"#).is_err());
}

#[test]
fn logical_tests() {
    let yes = |t: &str| actions(&format!("if {t} {{ discard; }}"), &message_a()) == vec![Action::Discard];
    assert!(!yes("allof (false, false)"));
    assert!(!yes("allof (false, true)"));
    assert!(yes("allof (true, true)"));
    assert!(!yes("anyof (false, false)"));
    assert!(yes("anyof (false, true)"));
    assert!(yes("anyof (true, true)"));
    assert!(yes("not false"));
    assert!(!yes("not true"));
    assert!(yes("anyof true"), "a bare single test is accepted as a list");
    assert!(compile("if not (true) {}").unwrap_err().message.contains("single test"));
    assert!(compile("if anyof {}").unwrap_err().message.contains("expects a test list"));
}

#[test]
fn constant_arguments_are_checked_at_compile_time() {
    for (s, want) in [
        (r#"require "fileinto"; fileinto "";"#, "mailbox name is empty"),
        (r#"require "vacation"; vacation :days "7" "x";"#, "expected a number after :days"),
        (r#"require "vacation"; vacation :addresses ["me"] "x";"#, "is not a valid address"),
        (r#"require "vacation"; vacation :days 1 :days 2 "x";"#, "duplicate tag :days"),
        (r#"if address "subject" "x" {}"#, "does not contain addresses"),
        (r#"if virustest "0" {}"#, "not supported"),
        (
            r#"require "imap4flags"; if hasflag :comparator "i;octet" :comparator "i;octet" "x" {}"#,
            "duplicate",
        ),
        (r#"require "body"; if body :raw :text "x" {}"#, "only one body transform"),
        (r#"if size :over :under 2 {}"#, "only one of :over and :under"),
        (r#"require ["envelope"]; if envelope :all :domain "to" "x" {}"#, "only one address part"),
    ] {
        let e = compile(s).expect_err(s);
        assert!(e.message.contains(want), "{s}: {e}");
    }
}

#[test]
fn match_variables_from_every_matching_test() {
    let s = r#"require ["variables", "fileinto", "envelope", "imap4flags"];
        addflag "$Label7";
        if envelope :matches "from" "*@*" { fileinto "env-${2}"; }
        if hasflag :matches "$Label?" { fileinto "flag-${1}"; }
        if string :matches "a-b-c" "*-*" { fileinto "str-${1}-${2}-${0}"; }
        if address :matches :localpart "to" "road*" { fileinto "addr-${1}"; }"#;
    assert_eq!(
        actions(s, &message_a()),
        vec![
            fileinto_flags("env-desert.example.org", &["$Label7"]),
            fileinto_flags("flag-7", &["$Label7"]),
            fileinto_flags("str-a-b-c-a-b-c", &["$Label7"]),
            fileinto_flags("addr-runner", &["$Label7"]),
        ]
    );
}

#[test]
fn relational_on_strings_and_envelopes() {
    let req = r#"require ["variables", "relational", "envelope", "comparator-i;ascii-numeric"];"#;
    let yes =
        |t: &str, m: &TestMsg| actions(&format!("{req} if {t} {{ discard; }}"), m) == vec![Action::Discard];
    let a = message_a();
    assert!(yes(r#"string :value "gt" "b" "a""#, &a));
    assert!(!yes(r#"string :value "gt" "a" "B""#, &a));
    assert!(yes(r#"string :value "gt" :comparator "i;octet" "a" "B""#, &a));
    assert!(yes(r#"string :value "lt" :comparator "i;ascii-numeric" "9" "10""#, &a));
    assert!(yes(r#"envelope :count "eq" :comparator "i;ascii-numeric" ["from", "to"] "2""#, &a));
    let bounce = TestMsg::parse("\nx\n").envelope("<>", "me@example.com");
    assert!(yes(r#"envelope :count "eq" :comparator "i;ascii-numeric" "from" "0""#, &bounce));
    assert!(yes(r#"header :value "ne" "subject" "other""#, &a));
    assert!(!yes(r#"header :value "ne" "x-missing" "other""#, &a));
}

#[test]
fn redirect_merging_and_copy() {
    let s = r#"require "copy"; redirect :copy "a@example.com"; redirect "A@example.com";"#;
    let out = run(s, &message_a());
    assert_eq!(out.actions, vec![Action::Redirect { address: "a@example.com".into(), copy: false }]);
    assert!(out.explicit_decision);
    let s = r#"redirect "Bart Simpson <bart@example.com>";"#;
    assert_eq!(actions(s, &message_a()), vec![redirect("bart@example.com")]);
}

#[test]
fn discard_is_reported_once() {
    let out = run("discard; discard;", &message_a());
    assert_eq!(out.actions, vec![Action::Discard]);
    assert!(out.explicit_decision);
}

// ---------------------------------------------------------------- RFC 5260 (date, currentdate)

fn at(script: &str, msg: &TestMsg, now: i64) -> Vec<Action> {
    let compiled = compile(script).unwrap_or_else(|e| panic!("{e}\n--- script:\n{script}"));
    let out = evaluate(&compiled, msg, &Settings { now: Some(now), ..Settings::default() });
    assert_eq!(out.error, None, "script:\n{script}");
    out.actions
}

/// 2007-07-03 (a Tuesday) 10:30:00 UTC.
const JULY_3_2007: i64 = 1_183_458_600;

#[test]
fn rfc5260_4_date_in_the_original_zone() {
    let s = r#"require ["date", "relational", "fileinto"];
        if allof(header :is "from" "boss@example.com",
                 date :value "ge" :originalzone "date" "hour" "09",
                 date :value "lt" :originalzone "date" "hour" "17")
        { fileinto "urgent"; }"#;
    // 16:30 in -0700 is 23:30 UTC: within the boss's working hours in their own zone.
    let mut boss = TestMsg::parse("From: boss@example.com\nDate: Tue, 3 Jul 2007 16:30:00 -0700\n\nx\n");
    boss.dates.push(("Date".to_owned(), JULY_3_2007 + 13 * 3600, -7 * 3600));
    assert_eq!(at(s, &boss, JULY_3_2007), vec![fileinto("urgent")]);
    // Read in UTC instead (no :originalzone), the same message is out of hours.
    let utc = s.replace(":originalzone ", "");
    assert_eq!(at(&utc, &boss, JULY_3_2007), vec![keep()]);
    // :zone converts: 23:30 UTC is 01:30 the next day in +0200.
    let s = r#"require ["date"]; if date :zone "+0200" "date" "date" "2007-07-04" { discard; }"#;
    assert_eq!(at(s, &boss, JULY_3_2007), vec![Action::Discard]);
    // No Date field, or one that is not a date: the test fails; :count sees 0.
    let undated = TestMsg::parse("From: boss@example.com\n\nx\n");
    let s = r#"require ["date"]; if date "date" "year" "2007" { discard; }"#;
    assert_eq!(at(s, &undated, JULY_3_2007), vec![keep()]);
    let s = r#"require ["date", "relational"]; if date :count "eq" "date" "year" "0" { discard; }"#;
    assert_eq!(at(s, &undated, JULY_3_2007), vec![Action::Discard]);
}

#[test]
fn rfc5260_5_currentdate() {
    let pager = r#"require ["date", "relational"];
        if anyof(currentdate :is "weekday" "0",
                 currentdate :is "weekday" "6",
                 currentdate :value "lt" "hour" "09",
                 currentdate :value "ge" "hour" "17")
        { redirect "pager@example.com"; }"#;
    let msg = message_a();
    // Tuesday 10:30: no page; Tuesday 18:30 and Saturday 10:30: page.
    assert_eq!(at(pager, &msg, JULY_3_2007), vec![keep()]);
    assert_eq!(at(pager, &msg, JULY_3_2007 + 8 * 3600).len(), 1);
    assert_eq!(at(pager, &msg, JULY_3_2007 + 4 * 86_400).len(), 1);

    let away = r#"require ["date", "relational", "vacation"];
        if allof(currentdate :value "ge" "date" "2007-06-30",
                 currentdate :value "le" "date" "2007-07-07")
        { vacation :days 7 "I'm away during the first week in July."; }"#;
    let to_me = message_a();
    let during = compile(away).unwrap();
    let replies = |now: i64| {
        let out = evaluate(&during, &to_me, &Settings { now: Some(now), ..Settings::default() });
        out.actions.iter().any(|a| matches!(a, Action::Vacation(_)))
    };
    assert!(replies(JULY_3_2007));
    assert!(!replies(JULY_3_2007 - 5 * 86_400), "before the first day");
    assert!(!replies(JULY_3_2007 + 5 * 86_400), "after the last day");
    // Every part, in a zone.
    let s = r#"require ["date"]; if currentdate :zone "-0530" "iso8601" "2007-07-03T05:00:00-05:30" { discard; }"#;
    assert_eq!(at(s, &msg, JULY_3_2007), vec![Action::Discard]);
    let s = r#"require ["date"]; if currentdate "julian" "54284" { discard; }"#;
    assert_eq!(at(s, &msg, JULY_3_2007), vec![Action::Discard]);
}

#[test]
fn rfc5260_errors() {
    for (script, what) in [
        (r#"if currentdate "date" "2007-07-03" { stop; }"#, "require"),
        (r#"require "date"; if currentdate "fortnight" "1" { stop; }"#, "unknown date part"),
        (r#"require "date"; if currentdate :zone "CET" "date" "x" { stop; }"#, "is not a zone"),
        (r#"require "date"; if date :zone "+0100" :originalzone "date" "date" "x" { stop; }"#, "only one"),
        (r#"require "date"; if currentdate :originalzone "date" "x" { stop; }"#, "originalzone"),
    ] {
        let e = compile(script).expect_err(script).to_string();
        assert!(e.contains(what), "{script}: {e}");
    }
}
