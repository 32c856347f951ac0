//! Compile errors users will actually make (with exact positions), run-time errors, resource
//! limits and hostile input.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use postfach_sieve::{Action, Limits, MAX_NESTING, Settings, compile, evaluate};
use support::*;

fn error(script: &str) -> String {
    match compile(script) {
        Ok(_) => panic!("compiled but should not:\n{script}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn typical_mistakes_have_exact_positions() {
    let cases: &[(&str, &str)] = &[
        // Missing semicolon before the next command.
        (
            "require \"fileinto\";\nif header :contains \"subject\" \"x\" {\n  fileinto \"a\"\n  stop;\n}\n",
            "3:15: expected ';' after \"fileinto\", found identifier \"stop\"",
        ),
        // Missing semicolon before '}'.
        ("if true { keep }", "1:15: expected ';' after \"keep\", found '}'"),
        ("keep\ndiscard;", "1:5: expected ';' after \"keep\", found identifier \"discard\""),
        // Unknown command.
        ("fileinot \"x\";", "1:1: unknown command \"fileinot\""),
        (
            "if true { header \"a\" \"b\"; }",
            "1:11: unknown command \"header\" (it is a test; use it inside \"if\")",
        ),
        // Missing require.
        (
            "fileinto \"x\";",
            "1:1: command \"fileinto\" needs 'require \"fileinto\";' at the top of the script",
        ),
        (
            "if envelope \"from\" \"a@b.c\" {}",
            "1:4: test \"envelope\" needs 'require \"envelope\";' at the top of the script",
        ),
        (
            "require \"fileinto\";\nfileinto :copy \"a\";",
            "2:10: tag :copy needs 'require \"copy\";' at the top of the script",
        ),
        // Bad or misplaced tag.
        ("if header :contain \"subject\" \"x\" {}", "1:11: \"header\" does not accept tag :contain"),
        (
            "if header :is :contains \"a\" \"b\" {}",
            "1:15: only one match type (:is, :contains, :matches, ...) may be given",
        ),
        (
            "require [\"fileinto\", \"copy\"];\nfileinto \"a\" :copy;",
            "2:14: tag :copy must come before the other arguments of \"fileinto\"",
        ),
        ("if header :regex \"a\" \"b\" {}", "1:11: match type :regex is not supported; use :matches"),
        // Unterminated string, comment, text block, block.
        ("if header \"subject\" \"x {\n  keep;\n}\n", "1:21: unterminated string: expected '\"' to close it"),
        ("keep; /* note", "1:7: unterminated comment: expected '*/' to close the '/*' here"),
        (
            "require \"vacation\";\nvacation text:\nI'm away\n",
            "2:10: unterminated multi-line string: expected a line with only '.' to end it",
        ),
        ("if true {\n  keep;\n", "3:1: expected '}' to close the block opened at 1:9, found end of script"),
        // Structure.
        (
            "keep;\nrequire \"fileinto\";",
            "2:1: \"require\" must come before any other command (RFC 5228 §3.2)",
        ),
        ("keep;\nelsif true {}", "2:1: \"elsif\" without a preceding \"if\""),
        ("if true;", "1:8: expected '{' after the test of \"if\", found ';'"),
        ("if true keep;", "1:9: unexpected \"keep\" after test \"true\" (missing '{', ',' or ')'?)"),
        ("if {}", "1:3: \"if\" expects a test"),
        ("if true {} else false {}", "1:17: \"else\" takes no test; use \"elsif\" for a test"),
        ("if foo {}", "1:4: unknown test \"foo\""),
        ("if anyof(true, fals) {}", "1:16: unknown test \"fals\""),
        // Arguments.
        ("if size 100 {}", "1:9: size: expected :over or :under"),
        ("if size :over \"1M\" {}", "1:15: size: expected a size limit (a number), found a string"),
        ("require \"fileinto\"; fileinto 5;", "1:30: fileinto: expected a mailbox name, found number 5"),
        ("require \"fileinto\"; fileinto;", "1:29: fileinto: expected a mailbox name, found nothing"),
        ("redirect \"not an address\";", "1:10: redirect: \"not an address\" is not a valid address"),
        ("if header \"subject\" {}", "1:20: header: expected a key or list of keys, found nothing"),
        ("if exists \"a\" \"b\" {}", "1:15: too many arguments for \"exists\": unexpected a string"),
        ("if header :comparator \"i;foo\" \"a\" \"b\" {}", "1:23: unknown comparator \"i;foo\""),
        // Extensions we do not have.
        ("require \"foo\";", "1:9: unsupported extension \"foo\""),
        (
            "require [\"fileinto\", \"regex\"];",
            "1:22: unsupported extension \"regex\": regular expressions are not supported; use :matches",
        ),
        (
            "require \"variables\";\nset \"a\" \"${12}\";",
            "2:9: match variable ${12} is out of range (only ${0} to ${9})",
        ),
        // Lexical.
        ("keep; @", "1:7: unexpected character '@'"),
        ("if size :over 99999999999999999999 {}", "1:15: number too large"),
    ];
    for (script, want) in cases {
        assert_eq!(error(script), *want, "script:\n{script}");
    }
}

#[test]
fn runtime_errors_fall_back_to_implicit_keep() {
    let s = "require \"variables\";\nset \"to\" \"not an address\";\nredirect \"${to}\";";
    let out = run(s, &message_a());
    assert_eq!(out.actions, vec![keep()]);
    assert!(!out.explicit_decision);
    let e = out.error.unwrap();
    assert_eq!(e.to_string(), "3:1: redirect: \"not an address\" is not a valid address");

    // Actions before the error are dropped: execution is all or nothing.
    let s = "require [\"fileinto\", \"variables\"];\nfileinto \"a\";\nset \"m\" \"\";\nfileinto \"${m}\";";
    let out = run(s, &message_a());
    assert_eq!(out.actions, vec![keep()]);
    assert_eq!(out.error.unwrap().to_string(), "4:1: fileinto: the mailbox name is empty");
}

#[test]
fn redirect_and_action_limits() {
    let five = (0..5).map(|i| format!("redirect \"u{i}@example.com\";")).collect::<String>();
    let out = run(&five, &message_a());
    assert_eq!(out.actions, vec![keep()]);
    assert!(out.error.unwrap().message.contains("too many redirects (limit 4)"));
    let four = (0..4).map(|i| format!("redirect \"u{i}@example.com\";")).collect::<String>();
    assert_eq!(run(&four, &message_a()).actions.len(), 4);

    let many = format!(
        "require \"fileinto\";\n{}",
        (0..33).map(|i| format!("fileinto \"box{i}\";\n")).collect::<String>()
    );
    let out = run(&many, &message_a());
    assert_eq!(out.error.unwrap().to_string(), "34:1: too many actions (limit 32)");
    let settings =
        Settings { limits: Limits { max_actions: 40, ..Limits::default() }, ..Settings::default() };
    let out = evaluate(&compiled(&many), &message_a(), &settings);
    assert_eq!(out.error, None);
    assert_eq!(out.actions.len(), 33);
    // The implicit keep is always allowed on top of the limit.
    let settings = Settings { limits: Limits { max_actions: 1, ..Limits::default() }, ..Settings::default() };
    let s = compiled("require [\"fileinto\", \"copy\"]; fileinto :copy \"a\";");
    let out = evaluate(&s, &message_a(), &settings);
    assert_eq!(out.error, None);
    assert_eq!(out.actions, vec![fileinto("a"), keep()]);
}

#[test]
fn step_budget_stops_expensive_matching() {
    let long = "a".repeat(200_000);
    let msg = message_a().with_header("X-Long", &long);
    let pattern = format!("*{}b", "a".repeat(60));
    let s = compiled(&format!("if header :matches \"X-Long\" [\"{pattern}\", \"{pattern}\"] {{ discard; }}"));
    // A tenth of the default budget keeps this test fast in debug builds; the work is the same
    // kind (each glob step is charged).
    let settings =
        Settings { limits: Limits { max_steps: 1_000_000, ..Limits::default() }, ..Settings::default() };
    let started = Instant::now();
    let out = evaluate(&s, &msg, &settings);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(out.actions, vec![keep()]);
    assert!(out.error.unwrap().message.contains("too much work"));
    // A small budget stops even cheap scripts.
    let settings = Settings { limits: Limits { max_steps: 3, ..Limits::default() }, ..Settings::default() };
    let out = evaluate(&compiled("keep; keep; keep; keep;"), &message_a(), &settings);
    assert!(out.error.is_some());
}

#[test]
fn expansion_is_bounded() {
    let doubling = (0..40).map(|_| "set \"a\" \"${a}${a}\";\n").collect::<String>();
    let keys = vec!["\"${a}\""; 200].join(", ");
    let s = format!(
        "require \"variables\";\nset \"a\" \"xy\";\n{doubling}if header :contains \"subject\" [{keys}] {{ discard; }}"
    );
    let out = run(&s, &message_a());
    assert_eq!(out.actions, vec![keep()]);
    assert!(out.error.unwrap().message.contains("too long"), "capped variables times many keys");
    // Without the key list the doubling itself is harmless: values are truncated.
    let s = format!(
        "require [\"variables\", \"fileinto\"];\nset \"a\" \"xy\";\n{doubling}set :length \"n\" \"${{a}}\"; fileinto \"${{n}}\";"
    );
    assert_eq!(actions(&s, &message_a()), vec![fileinto("16384")]);
}

#[test]
fn variable_count_is_bounded() {
    let sets = |n: usize| (0..n).map(|i| format!("set \"v{i}\" \"x\";\n")).collect::<String>();
    let ok = format!("require \"variables\";\n{}set \"v0\" \"again\";", sets(256));
    assert!(compile(&ok).is_ok());
    let e = error(&format!("require \"variables\";\n{}", sets(257)));
    assert_eq!(e, "258:5: too many different variables (limit 256)");
}

#[test]
fn nesting_limits() {
    let ok = format!("{}keep;{}", "if true {".repeat(MAX_NESTING), "}".repeat(MAX_NESTING));
    assert_eq!(actions(&ok, &message_a()), vec![keep()]);
    let deep = format!("{}keep;{}", "if true {".repeat(MAX_NESTING + 1), "}".repeat(MAX_NESTING + 1));
    assert!(error(&deep).contains("nested too deeply"));
    // RFC 5228 §2.10.7: at least 15 levels of nested test lists.
    let tests = format!("if {}true{} {{ discard; }}", "anyof(".repeat(15), ")".repeat(15));
    assert_eq!(actions(&tests, &message_a()), vec![Action::Discard]);
    for hostile in [
        "not ".repeat(100_000) + "true",
        "anyof(".repeat(100_000),
        "[".repeat(100_000),
        "if true {".repeat(100_000),
    ] {
        let _ = compile(&format!("if {hostile} {{}}"));
    }
}

/// Scripts whose every prefix must compile or fail cleanly, and run without panics.
const CORPUS: &[&str] = &[
    "require [\"fileinto\", \"imap4flags\", \"variables\", \"relational\", \"comparator-i;ascii-numeric\", \"envelope\", \"subaddress\", \"copy\", \"body\", \"vacation\", \"spamtestplus\", \"mailbox\", \"encoded-character\"];\n\
     # comment\n/* block\n comment */\n\
     if anyof (header :matches \"Subject\" \"[*] *\", address :detail :is \"to\" \"x\") { fileinto :copy :flags \"\\\\Seen ${1}\" \"lists.${1}\"; stop; }\n\
     elsif envelope :user :count \"ge\" :comparator \"i;ascii-numeric\" \"from\" \"1\" { setflag \"v\" \"$Junk\"; addflag \"\\\\Flagged\"; removeflag \"x\"; }\n\
     elsif body :content [\"text\", \"\"] :contains \"x\" { redirect :copy \"a@b.example\"; }\n\
     elsif spamtest :percent :value \"gt\" :comparator \"i;ascii-numeric\" \"50\" { discard; }\n\
     elsif hasflag :contains \"v\" \"Junk\" { keep :flags [\"a\", \"b\"]; }\n\
     elsif mailboxexists \"x\" { fileinto :create \"${hex:41}\"; }\n\
     else { set :upperfirst :quotewildcard \"n\" text:\nline\n..dot\n.\n; vacation :days 3 :subject \"s\" :from \"a@b.example\" :addresses [\"c@d.example\"] :handle \"h\" \"${n}\"; }\n",
    "if size :over 100K { discard; } elsif not exists [\"From\",\"Date\"] { keep; } else { redirect \"x@y.example\"; }",
    // RFC 5228 §9.
    r#"require ["fileinto"];
    if header :is "Sender" "owner-ietf-mta-filters@imc.org"
            {
            fileinto "filter";  # move to "filter" mailbox
            }
    elsif address :DOMAIN :is ["From", "To"] "example.com"
            {
            keep;               # keep in "In" mailbox
            }
    elsif anyof (NOT address :all :contains
                   ["To", "Cc", "Bcc"] "me@example.com",
                 header :matches "subject"
                   ["*make*money*fast*", "*university*dipl*mas*"])
            {
            fileinto "spam";   # move to "spam" mailbox
            }
    else
            {
            fileinto "personal";
            }"#,
    // RFC 5232 §9 (with its "remove" erratum fixed).
    r#"require ["fileinto", "imap4flags", "variables"];
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
   else
           {
           removeflag "MyFlags" "\\Flagged";
           fileinto :flags "${MyFlags}" "personal";
           }"#,
];

#[test]
fn every_prefix_compiles_or_fails_cleanly() {
    let msg = message_a().with_header("X-Spam-Score", "6");
    for script in CORPUS {
        let full = compile(script).unwrap_or_else(|e| panic!("{e}"));
        let _ = evaluate(&full, &msg, &Settings::default());
        for (i, _) in script.char_indices() {
            if let Ok(s) = compile(&script[..i]) {
                let _ = evaluate(&s, &msg, &Settings::default());
            }
        }
    }
}

/// A small deterministic generator (xorshift) so the fuzz-style tests are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_bytes_and_token_soup_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let msg = message_b().with_header("X-Spam-Flag", "YES");
    for _ in 0..2000 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if let Ok(s) = compile(&String::from_utf8_lossy(&bytes)) {
            let _ = evaluate(&s, &msg, &Settings::default());
        }
    }
    const TOKENS: &[&str] = &[
        "if",
        "elsif",
        "else",
        "require",
        "\"fileinto\"",
        "\"variables\"",
        "\"imap4flags\"",
        "\"relational\"",
        "\"copy\"",
        "\"body\"",
        "\"envelope\"",
        "\"subaddress\"",
        "\"vacation\"",
        "\"spamtest\"",
        "fileinto",
        "keep",
        "discard",
        "stop",
        "redirect",
        "set",
        "addflag",
        "setflag",
        "hasflag",
        "vacation",
        "header",
        "address",
        "envelope",
        "body",
        "string",
        "exists",
        "size",
        "not",
        "anyof",
        "allof",
        "true",
        "false",
        "spamtest",
        ":is",
        ":contains",
        ":matches",
        ":value",
        ":count",
        "\"gt\"",
        ":comparator",
        "\"i;octet\"",
        ":all",
        ":localpart",
        ":domain",
        ":user",
        ":detail",
        ":over",
        ":under",
        ":copy",
        ":flags",
        ":days",
        ":raw",
        ":text",
        ":content",
        ":lower",
        ":length",
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        ",",
        ";",
        "\"x\"",
        "\"${1}\"",
        "\"*a?\"",
        "\"a@b.example\"",
        "\"subject\"",
        "\"to\"",
        "\"from\"",
        "10K",
        "0",
        "text:\nx\n.\n",
        "#c\n",
        "/*c*/",
        "\n",
    ];
    for _ in 0..3000 {
        let n = 1 + rng.below(40);
        let script = (0..n).map(|_| TOKENS[rng.below(TOKENS.len())]).collect::<Vec<_>>().join(" ");
        if let Ok(s) = compile(&script) {
            let _ = evaluate(&s, &msg, &Settings::default());
        }
    }
}

#[test]
fn mutated_scripts_never_panic() {
    let mut rng = Rng(42);
    let msg = message_a();
    for _ in 0..1500 {
        let base = CORPUS[rng.below(CORPUS.len())];
        let mut bytes = base.as_bytes().to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len() + 1);
            match rng.below(3) {
                0 if at < bytes.len() => {
                    bytes.remove(at);
                }
                1 => bytes.insert(at, b"\"{}[]();:,\\*$\n#/"[rng.below(16)]),
                _ if at < bytes.len() => bytes[at] = rng.next() as u8,
                _ => {}
            }
        }
        if let Ok(s) = compile(&String::from_utf8_lossy(&bytes)) {
            let _ = evaluate(&s, &msg, &Settings::default());
        }
    }
}
