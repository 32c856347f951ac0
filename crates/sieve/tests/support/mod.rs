//! A small [`Message`] for tests: parses "Name: value" headers (with folding) and a body; MIME
//! parts for `body :content` are given explicitly.

#![allow(dead_code, clippy::unwrap_used)]

use postfach_sieve::{
    Action, BodyTransform, Message, Outcome, Script, Settings, compile, content_type_matches, evaluate,
};

#[derive(Debug, Clone, Default)]
pub(crate) struct TestMsg {
    pub(crate) headers: Vec<(String, String)>,
    /// `None`: header only, no empty line.
    pub(crate) body: Option<String>,
    /// (content type, decoded text) of MIME parts, for :content and :text.
    pub(crate) parts: Vec<(String, String)>,
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) size: u64,
    pub(crate) mailboxes: Vec<String>,
    /// (field name, Unix seconds, zone offset in seconds) of fields readable as dates.
    pub(crate) dates: Vec<(String, i64, i32)>,
}

impl TestMsg {
    /// Parses a message written with "\n" line ends.
    pub(crate) fn parse(raw: &str) -> Self {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = match raw.split_once("\n\n") {
            Some((h, b)) => (h.to_owned(), Some(b.replace('\n', "\r\n"))),
            None => (raw.trim_end_matches('\n').to_owned(), None),
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = headers.last_mut() {
                    last.1.push_str(line);
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim_end().to_owned(), value.trim_start().to_owned()));
            }
        }
        let size = raw.len() as u64;
        Self { headers, body, size, ..Self::default() }
    }

    pub(crate) fn envelope(mut self, from: &str, to: &str) -> Self {
        self.from = Some(from.to_owned());
        self.to = Some(to.to_owned());
        self
    }

    pub(crate) fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

impl Message for TestMsg {
    fn header(&self, name: &str) -> Vec<String> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()).collect()
    }
    fn header_date(&self, name: &str) -> Option<(i64, i32)> {
        self.dates.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(name)).map(|(_, t, z)| (*t, *z))
    }
    fn envelope_from(&self) -> Option<&str> {
        self.from.as_deref()
    }
    fn envelope_to(&self) -> Option<&str> {
        self.to.as_deref()
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn body_text(&self, transform: &BodyTransform) -> Vec<String> {
        let Some(body) = &self.body else { return Vec::new() };
        let parts: Vec<(String, String)> = if self.parts.is_empty() {
            vec![("text/plain".to_owned(), body.clone())]
        } else {
            self.parts.clone()
        };
        match transform {
            BodyTransform::Raw => vec![body.clone()],
            BodyTransform::Text => {
                parts.into_iter().filter(|(t, _)| content_type_matches("text", t)).map(|(_, b)| b).collect()
            }
            BodyTransform::Content(types) => parts
                .into_iter()
                .filter(|(t, _)| types.iter().any(|spec| content_type_matches(spec, t)))
                .map(|(_, b)| b)
                .collect(),
        }
    }
    fn mailbox_exists(&self, name: &str) -> bool {
        self.mailboxes.iter().any(|m| m == name)
    }
}

/// RFC 5228 §1.2 message A.
pub(crate) const MESSAGE_A: &str = "Date: Tue, 1 Apr 1997 09:06:31 -0800 (PST)
From: coyote@desert.example.org
To: roadrunner@acme.example.com
Subject: I have a present for you

Look, I'm sorry about the whole anvil thing, and I really
didn't mean to try and drop it on you from the top of the
cliff.  I want to try to make it up to you.  I've got some
great birdseed over here at my place--top of the line
stuff--and if you come by, I'll have it all wrapped up
for you.  I'm really sorry for all the problems I've caused
for you over the years, but I know we can work this out.
--
Wile E. Coyote   \"Super Genius\"   coyote@desert.example.org
";

/// RFC 5228 §1.2 message B.
pub(crate) const MESSAGE_B: &str = "From: youcouldberich!@reply-by-postal-mail.invalid
Sender: b1ff@de.res.example.com
To: rube@landru.example.com
Date:  Mon, 31 Mar 1997 18:26:10 -0800
Subject: $$$ YOU, TOO, CAN BE A MILLIONAIRE! $$$

YOU MAY HAVE ALREADY WON TEN MILLION DOLLARS, BUT I DOUBT
IT!  SO JUST POST THIS TO SIX HUNDRED NEWSGROUPS!  IT WILL
GUARANTEE THAT YOU GET AT LEAST FIVE RESPONSES WITH MONEY!
MONEY! MONEY! COLD HARD CASH!  YOU WILL RECEIVE OVER
$20,000 IN LESS THAN TWO MONTHS!  AND IT'S LEGAL!!!!!!!!!
!!!!!!!!!!!!!!!!!!111111111!!!!!!!11111111111!!1  JUST
SEND $5 IN SMALL, UNMARKED BILLS TO THE ADDRESSES BELOW!
";

pub(crate) fn message_a() -> TestMsg {
    TestMsg::parse(MESSAGE_A).envelope("coyote@desert.example.org", "roadrunner@acme.example.com")
}

pub(crate) fn message_b() -> TestMsg {
    TestMsg::parse(MESSAGE_B).envelope("b1ff@de.res.example.com", "rube@landru.example.com")
}

/// Compiles (panicking with the error on failure) and runs with default settings.
pub(crate) fn run(script: &str, msg: &TestMsg) -> Outcome {
    let compiled = compile(script).unwrap_or_else(|e| panic!("{e}\n--- script:\n{script}"));
    evaluate(&compiled, msg, &Settings::default())
}

/// Like [`run`] but asserts there was no run-time error and returns the actions.
pub(crate) fn actions(script: &str, msg: &TestMsg) -> Vec<Action> {
    let out = run(script, msg);
    assert_eq!(out.error, None, "script:\n{script}");
    out.actions
}

pub(crate) fn compiled(script: &str) -> Script {
    compile(script).unwrap_or_else(|e| panic!("{e}\n--- script:\n{script}"))
}

pub(crate) fn keep() -> Action {
    Action::Keep { flags: vec![] }
}

pub(crate) fn keep_flags(flags: &[&str]) -> Action {
    Action::Keep { flags: flags.iter().map(|s| (*s).to_owned()).collect() }
}

pub(crate) fn fileinto(mailbox: &str) -> Action {
    Action::FileInto { mailbox: mailbox.to_owned(), flags: vec![], create: false }
}

pub(crate) fn fileinto_flags(mailbox: &str, flags: &[&str]) -> Action {
    Action::FileInto {
        mailbox: mailbox.to_owned(),
        flags: flags.iter().map(|s| (*s).to_owned()).collect(),
        create: false,
    }
}

pub(crate) fn redirect(address: &str) -> Action {
    Action::Redirect { address: address.to_owned(), copy: false }
}
