//! RFC 9051 over the wire: the examples of sections 6 and 7 replayed against the real binary.
//!
//! Each test starts its own server (port 0, temporary data directory), adds an account and speaks
//! raw IMAP over implicit TLS (or cleartext + STARTTLS where that is the point) with the
//! harness's line client. Most sessions first `ENABLE IMAP4rev2`, since these are RFC 9051's
//! examples; a few stay IMAP4rev1 on purpose (`* SEARCH`, `\Recent`, modified UTF-7 names).
//! The examples are adapted to our data: tags and command shapes are the RFC's, numbers are
//! ours. Where the RFC fixes a response's syntax (`* LIST (\Noselect) "/" ""`, the ESEARCH return
//! data, `[APPENDUID v u]`, `[COPYUID v from to]`, ENVELOPE) the test compares it in full;
//! where it leaves room (response text, order of untagged data or of ESEARCH items, extra
//! attributes, quoted string versus literal, lower- or higher-first EXPUNGE numbering) it checks
//! the meaning only.
//!
//! Limits: responses are read as lines and decoded as UTF-8, so message data must be valid UTF-8
//! (it is ASCII here, apart from mailbox names and search strings); a small IMAP value parser
//! (`Value`) understands atoms, quoted strings, literals, literal8, NIL and lists, which is
//! enough to pick FETCH, LIST, STATUS and ESEARCH responses apart.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{Client, TestServer};

const USER: &str = "alice";
const PASSWORD: &str = "wonderland rabbit";

// ---------------------------------------------------------------------------------------------
// Test messages
// ---------------------------------------------------------------------------------------------

/// The message of the RFC 9051 §6.3.12 APPEND example.
const FRED: &str = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\
From: Fred Foobar <foobar@Blurdybloop.example>\r\n\
Subject: afternoon meeting\r\n\
To: mooch@owatagu.siam.edu.example\r\n\
Message-Id: <B27397-0100000@Blurdybloop.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
\r\n\
Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";

/// The header of the RFC 9051 §8 sample session (`a004 fetch 12 body[header]`), with a short body.
const TERRY_HEADER: &str = "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n\
From: Terry Gray <gray@cac.washington.edu>\r\n\
Subject: IMAP4rev2 WG mtg summary and minutes\r\n\
To: imap@cac.washington.edu\r\n\
cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n\
Message-Id: <B27397-0100000@cac.washington.edu>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
\r\n";
const TERRY_BODY: &str = "Minutes of the meeting.\r\nSecond line.\r\nThird line.\r\n";

/// A multipart/mixed message with a text part and a base64 attachment.
const MULTIPART: &str = "From: Carol <carol@example.org>\r\n\
To: alice@example.com\r\n\
Subject: report attached\r\n\
Date: Tue, 1 Mar 2022 10:00:00 +0000\r\n\
Message-ID: <multi-1@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"xyz\"\r\n\
\r\n\
preamble\r\n\
--xyz\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
See the attachment.\r\n\
--xyz\r\n\
Content-Type: application/octet-stream; name=\"r.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"r.bin\"\r\n\
\r\n\
AAECAwQFBgcICQ==\r\n\
--xyz--\r\n";

/// A small plain message.
fn mail(from: &str, subject: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: alice@example.com\r\nSubject: {subject}\r\n\
         Date: Wed, 2 Mar 2022 09:00:00 +0000\r\nMessage-ID: <{}@test>\r\n\r\n{body}",
        subject.replace(' ', "-")
    )
}

// ---------------------------------------------------------------------------------------------
// Reading responses
// ---------------------------------------------------------------------------------------------

/// One server response: its text with each literal's data cut out (the `{n}` stays in place),
/// and the literals' data in order.
#[derive(Debug, Clone)]
struct Resp {
    text: String,
    literals: Vec<String>,
}

impl Resp {
    /// The response parsed into values (literals substituted).
    fn values(&self) -> Vec<Value> {
        parse_values(&self.text, &self.literals)
    }
}

/// The answer to one command: untagged responses and the tagged completion.
#[derive(Debug)]
struct Reply {
    untagged: Vec<Resp>,
    /// The tagged line without the tag: `OK [READ-WRITE] SELECT completed`.
    done: String,
}

impl Reply {
    fn status(&self) -> &str {
        self.done.split(' ').next().unwrap_or("")
    }

    /// Untagged response texts.
    fn lines(&self) -> Vec<&str> {
        self.untagged.iter().map(|r| r.text.as_str()).collect()
    }

    /// The untagged responses whose text starts with `prefix`.
    fn starting(&self, prefix: &str) -> Vec<&Resp> {
        self.untagged.iter().filter(|r| r.text.starts_with(prefix)).collect()
    }

    /// True if some untagged response text equals `line`.
    fn has(&self, line: &str) -> bool {
        self.untagged.iter().any(|r| r.text == line)
    }

    /// Sequence numbers of `* n EXPUNGE`, in order.
    fn expunges(&self) -> Vec<u32> {
        self.untagged.iter().filter_map(|r| number_before(&r.text, " EXPUNGE")).collect()
    }

    /// `* n EXISTS`, the last one.
    fn exists(&self) -> Option<u32> {
        self.untagged.iter().rev().find_map(|r| number_before(&r.text, " EXISTS"))
    }

    /// FETCH responses: (sequence number, items).
    fn fetches(&self) -> Vec<(u32, Fetch)> {
        self.untagged.iter().filter_map(fetch_of).collect()
    }
}

/// `* <n><suffix>` → n.
fn number_before(text: &str, suffix: &str) -> Option<u32> {
    text.strip_prefix("* ")?.strip_suffix(suffix)?.parse().ok()
}

/// The data of a literal announced at the end of `line`, if any: `{12}` or `{12+}` → 12.
fn literal_len(line: &str) -> Option<usize> {
    let open = line.rfind('{')?;
    let inner = line[open + 1..].strip_suffix('}')?;
    inner.strip_suffix('+').unwrap_or(inner).parse().ok()
}

/// Reads one complete response, literals included.
fn read_resp(client: &mut Client) -> Resp {
    let mut text = String::new();
    let mut literals = Vec::new();
    let mut line = client.read_line();
    loop {
        let Some(n) = literal_len(&line) else {
            text.push_str(&line);
            return Resp { text, literals };
        };
        text.push_str(&line);
        // The line client splits on CRLF: put the pieces of the literal back together.
        let mut data = String::new();
        while data.len() < n {
            data.push_str(&client.read_line());
            data.push_str("\r\n");
        }
        assert!(data.is_char_boundary(n), "non-ASCII literal data in a test that expects ASCII");
        literals.push(data[..n].to_owned());
        if data.len() == n {
            // The literal ended with CRLF: the response goes on with the next line.
            line = client.read_line();
        } else {
            // The rest of the last piece (without the CRLF added above) continues the response.
            line = data[n..data.len() - 2].to_owned();
        }
    }
}

/// A logged-in (or not) IMAP connection with command helpers.
struct Imap {
    client: Client,
    next_tag: u32,
}

impl Imap {
    /// Connects over implicit TLS and reads the greeting.
    fn connect(server: &TestServer) -> Self {
        let mut client = server.connect_tls();
        let greeting = client.read_line();
        assert!(greeting.starts_with("* OK"), "greeting: {greeting:?}");
        Self { client, next_tag: 1 }
    }

    /// Connects over implicit TLS and logs in as the test user.
    fn login(server: &TestServer) -> Self {
        let mut imap = Self::connect(server);
        imap.ok(&format!("LOGIN {USER} \"{PASSWORD}\""));
        imap
    }

    /// Logs in and enables IMAP4rev2 (RFC 9051 §6.3.1), the protocol whose examples these are:
    /// no `\Recent`, ESEARCH for SEARCH, LIST in SELECT.
    fn login_rev2(server: &TestServer) -> Self {
        let mut imap = Self::login(server);
        let enabled = imap.ok("ENABLE IMAP4rev2");
        assert_eq!(enabled.lines(), vec!["* ENABLED IMAP4rev2"]);
        imap
    }

    /// Sends `tag command` and reads up to the tagged completion.
    fn run_tagged(&mut self, tag: &str, command: &str) -> Reply {
        self.client.send(&format!("{tag} {command}"));
        self.reply(tag)
    }

    /// Runs `command` with a fresh tag.
    fn run(&mut self, command: &str) -> Reply {
        let tag = format!("T{}", self.next_tag);
        self.next_tag += 1;
        self.run_tagged(&tag, command)
    }

    /// Runs `command` and asserts a tagged OK.
    fn ok(&mut self, command: &str) -> Reply {
        let reply = self.run(command);
        assert_eq!(reply.status(), "OK", "{command} → {reply:#?}");
        reply
    }

    /// Runs `command` and asserts the tagged status (`NO`, `BAD`).
    fn expect(&mut self, status: &str, command: &str) -> Reply {
        let reply = self.run(command);
        assert_eq!(reply.status(), status, "{command} → {reply:#?}");
        reply
    }

    /// Reads responses up to the one tagged `tag`.
    fn reply(&mut self, tag: &str) -> Reply {
        let prefix = format!("{tag} ");
        let mut untagged = Vec::new();
        loop {
            let resp = read_resp(&mut self.client);
            if let Some(done) = resp.text.strip_prefix(&prefix) {
                return Reply { untagged, done: done.to_owned() };
            }
            untagged.push(resp);
        }
    }

    /// APPENDs `message` with a non-synchronizing literal; returns (UIDVALIDITY, UID).
    fn append(&mut self, mailbox: &str, flags_and_date: &str, message: &str) -> (u32, u32) {
        self.append_reply(mailbox, flags_and_date, message).0
    }

    /// Like [`Imap::append`], also returning the whole reply.
    fn append_reply(&mut self, mailbox: &str, flags_and_date: &str, message: &str) -> ((u32, u32), Reply) {
        let tag = format!("T{}", self.next_tag);
        self.next_tag += 1;
        let sep = if flags_and_date.is_empty() { "" } else { " " };
        let command =
            format!("{tag} APPEND {mailbox}{sep}{flags_and_date} {{{}+}}\r\n{message}\r\n", message.len());
        self.client.send_raw(command.as_bytes());
        let reply = self.reply(&tag);
        assert_eq!(reply.status(), "OK", "APPEND to {mailbox}: {reply:#?}");
        let uids = append_uid(&reply.done).unwrap_or_else(|| panic!("no APPENDUID in {:?}", reply.done));
        (uids, reply)
    }
}

/// `OK [APPENDUID 38505 3955] ...` → (38505, 3955).
fn append_uid(done: &str) -> Option<(u32, u32)> {
    let rest = done.split("[APPENDUID ").nth(1)?;
    let mut words = rest.split([' ', ']']);
    Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
}

/// `[COPYUID v from to]` anywhere in `text` → (v, from, to) as written.
fn copy_uid(text: &str) -> Option<(u32, String, String)> {
    let rest = text.split("[COPYUID ").nth(1)?;
    let inner = rest.split(']').next()?;
    let mut words = inner.split(' ');
    Some((words.next()?.parse().ok()?, words.next()?.to_owned(), words.next()?.to_owned()))
}

/// A server with the test account.
fn server() -> TestServer {
    let server = TestServer::start();
    server.add_user(USER, PASSWORD);
    server
}

// ---------------------------------------------------------------------------------------------
// IMAP values
// ---------------------------------------------------------------------------------------------

/// A parsed IMAP value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Atom(String),
    Str(String),
    Nil,
    List(Vec<Value>),
}

impl Value {
    fn atom(&self) -> &str {
        match self {
            Value::Atom(a) => a,
            other => panic!("expected an atom, got {other:?}"),
        }
    }

    fn string(&self) -> &str {
        match self {
            Value::Str(s) => s,
            other => panic!("expected a string, got {other:?}"),
        }
    }

    fn list(&self) -> &[Value] {
        match self {
            Value::List(l) => l,
            other => panic!("expected a list, got {other:?}"),
        }
    }

    /// Canonical text: strings always quoted, so that literal-vs-quoted choices compare equal.
    fn canonical(&self) -> String {
        match self {
            Value::Atom(a) => a.clone(),
            Value::Str(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
            Value::Nil => "NIL".to_owned(),
            Value::List(items) => {
                format!("({})", items.iter().map(Value::canonical).collect::<Vec<_>>().join(" "))
            }
        }
    }
}

/// Parses the values of a response text; `{n}` markers take the next literal.
fn parse_values(text: &str, literals: &[String]) -> Vec<Value> {
    let mut parser = Parser { s: text.as_bytes(), i: 0, literals: literals.iter() };
    let mut out = Vec::new();
    while let Some(v) = parser.value() {
        out.push(v);
    }
    out
}

/// Canonical text of an expected value written in IMAP syntax.
fn canonical(text: &str) -> String {
    let values = parse_values(text, &[]);
    assert_eq!(values.len(), 1, "one value expected in {text:?}");
    values[0].canonical()
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    literals: std::slice::Iter<'a, String>,
}

impl Parser<'_> {
    fn value(&mut self) -> Option<Value> {
        while self.s.get(self.i) == Some(&b' ') {
            self.i += 1;
        }
        let c = *self.s.get(self.i)?;
        match c {
            b')' => None,
            b'(' => {
                self.i += 1;
                let mut items = Vec::new();
                while let Some(v) = self.value() {
                    items.push(v);
                }
                assert_eq!(
                    self.s.get(self.i),
                    Some(&b')'),
                    "unclosed list in {:?}",
                    String::from_utf8_lossy(self.s)
                );
                self.i += 1;
                Some(Value::List(items))
            }
            b'"' => {
                self.i += 1;
                // Bytes first: a quoted string may hold UTF-8 (RFC 9051 §4.3).
                let mut bytes = Vec::new();
                loop {
                    let c = self.s[self.i];
                    self.i += 1;
                    match c {
                        b'"' => break,
                        b'\\' => {
                            bytes.push(self.s[self.i]);
                            self.i += 1;
                        }
                        _ => bytes.push(c),
                    }
                }
                Some(Value::Str(String::from_utf8_lossy(&bytes).into_owned()))
            }
            // A literal, or a literal8 (`~{n}`, RFC 3516) as BINARY returns it.
            b'{' | b'~' if c == b'{' || self.s.get(self.i + 1) == Some(&b'{') => {
                let close = self.s[self.i..].iter().position(|&b| b == b'}').unwrap();
                self.i += close + 1;
                Some(Value::Str(self.literals.next().expect("a literal for {n}").clone()))
            }
            _ => {
                // An atom; brackets may hold spaces (BODY[HEADER.FIELDS (DATE FROM)]).
                let start = self.i;
                let mut depth = 0;
                while let Some(&c) = self.s.get(self.i) {
                    match c {
                        b'[' => depth += 1,
                        b']' => depth -= 1,
                        b' ' | b'(' | b')' if depth == 0 => break,
                        _ => {}
                    }
                    self.i += 1;
                }
                let atom = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                Some(if atom.eq_ignore_ascii_case("NIL") { Value::Nil } else { Value::Atom(atom) })
            }
        }
    }
}

/// The items of one FETCH response, by upper-cased name.
#[derive(Debug)]
struct Fetch(Vec<(String, Value)>);

impl Fetch {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    fn item(&self, name: &str) -> &Value {
        self.get(name).unwrap_or_else(|| panic!("no {name} in {self:?}"))
    }

    fn uid(&self) -> u32 {
        self.item("UID").atom().parse().unwrap()
    }

    fn flags(&self) -> BTreeSet<String> {
        self.item("FLAGS").list().iter().map(|f| f.atom().to_owned()).collect()
    }
}

/// `* 12 FETCH (...)` → (12, items).
fn fetch_of(resp: &Resp) -> Option<(u32, Fetch)> {
    let values = resp.values();
    match values.as_slice() {
        [Value::Atom(star), Value::Atom(seq), Value::Atom(word), Value::List(items)]
            if star == "*" && word.eq_ignore_ascii_case("FETCH") =>
        {
            let pairs =
                items.chunks(2).map(|kv| (kv[0].atom().to_ascii_uppercase(), kv[1].clone())).collect();
            Some((seq.parse().ok()?, Fetch(pairs)))
        }
        _ => None,
    }
}

/// A flag set from `\Seen \Flagged`.
fn flags(text: &str) -> BTreeSet<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// The mailbox names of LIST (or LSUB) responses, with their attributes.
fn listed(reply: &Reply, kind: &str) -> Vec<(BTreeSet<String>, String)> {
    reply
        .untagged
        .iter()
        .filter(|r| r.text.starts_with(&format!("* {kind} ")))
        .map(|r| {
            let v = r.values();
            let attrs = v[2].list().iter().map(|a| a.atom().to_ascii_lowercase()).collect();
            let name = match &v[4] {
                Value::Str(s) | Value::Atom(s) => s.clone(),
                other => panic!("mailbox name {other:?}"),
            };
            (attrs, name)
        })
        .collect()
}

fn names(reply: &Reply, kind: &str) -> BTreeSet<String> {
    listed(reply, kind).into_iter().map(|(_, n)| n).collect()
}

fn attrs_of(reply: &Reply, name: &str) -> BTreeSet<String> {
    listed(reply, "LIST")
        .into_iter()
        .find(|(_, n)| n == name)
        .unwrap_or_else(|| panic!("{name} not listed: {reply:#?}"))
        .0
}

/// The items of the `* STATUS <name> (...)` response for `name`.
fn status_of(reply: &Reply, name: &str) -> BTreeMap<String, u64> {
    for resp in reply.starting("* STATUS ") {
        let v = resp.values();
        let listed = match &v[2] {
            Value::Str(s) | Value::Atom(s) => s.as_str(),
            _ => continue,
        };
        if listed == name {
            let items = v[3].list();
            return items
                .chunks(2)
                .map(|kv| (kv[0].atom().to_ascii_uppercase(), kv[1].atom().parse().unwrap()))
                .collect();
        }
    }
    panic!("no STATUS for {name}: {reply:#?}");
}

/// `[("MESSAGES", 2), ...]` as a map, to compare with [`status_of`].
fn items(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// An ESEARCH response (RFC 9051 §7.3.4): its tag, whether it is about UIDs, and its return data.
#[derive(Debug, PartialEq, Eq)]
struct Esearch {
    tag: String,
    uid: bool,
    data: BTreeMap<String, String>,
}

/// The one ESEARCH response of `reply`.
fn esearch(reply: &Reply) -> Esearch {
    let found = reply.starting("* ESEARCH");
    assert_eq!(found.len(), 1, "one ESEARCH response expected: {reply:#?}");
    let v = found[0].values();
    let mut rest = &v[2..];
    let mut tag = String::new();
    if let Some(Value::List(correlator)) = rest.first() {
        assert_eq!(correlator[0].atom().to_ascii_uppercase(), "TAG");
        tag = correlator[1].string().to_owned();
        rest = &rest[1..];
    }
    let uid = matches!(rest.first(), Some(Value::Atom(a)) if a.eq_ignore_ascii_case("UID"));
    if uid {
        rest = &rest[1..];
    }
    let data =
        rest.chunks(2).map(|kv| (kv[0].atom().to_ascii_uppercase(), kv[1].atom().to_owned())).collect();
    Esearch { tag, uid, data }
}

/// The expected ESEARCH response.
fn es(tag: &str, uid: bool, data: &[(&str, &str)]) -> Esearch {
    Esearch {
        tag: tag.to_owned(),
        uid,
        data: data.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
    }
}

/// The numbers of a sequence set without `*`: `3,5:7` → [3, 5, 6, 7].
fn expand(set: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in set.split(',') {
        match part.split_once(':') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().unwrap(), b.parse().unwrap());
                out.extend(a.min(b)..=a.max(b));
            }
            None => out.push(part.parse().unwrap()),
        }
    }
    out
}

/// The original sequence numbers of the messages a series of EXPUNGE responses removed from a
/// mailbox of `count` messages (each EXPUNGE renumbers the rest, §7.5.1), sorted.
fn expunged_originals(expunges: &[u32], count: u32) -> Vec<u32> {
    let mut live: Vec<u32> = (1..=count).collect();
    let mut gone: Vec<u32> = expunges.iter().map(|&n| live.remove(n as usize - 1)).collect();
    gone.sort_unstable();
    gone
}

/// Seconds since the epoch of an IMAP date-time `"17-Jul-1996 02:44:25 -0700"`.
fn date_time_seconds(text: &str) -> i64 {
    let (date, rest) = text.trim().split_once(' ').unwrap();
    let (time, zone) = rest.split_once(' ').unwrap();
    let mut d = date.split('-');
    let day: i64 = d.next().unwrap().trim().parse().unwrap();
    let month_name = d.next().unwrap();
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| *m == month_name)
        .unwrap() as i64
        + 1;
    let year: i64 = d.next().unwrap().parse().unwrap();
    let t: Vec<i64> = time.split(':').map(|x| x.parse().unwrap()).collect();
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let offset = sign * (zone[1..3].parse::<i64>().unwrap() * 3600 + zone[3..5].parse::<i64>().unwrap() * 60);
    days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2] - offset
}

/// Standard base64 (RFC 4648 §4) for SASL.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * k)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Not authenticated state (RFC 9051 §6.1, §6.2)
// ---------------------------------------------------------------------------------------------

/// RFC 9051 §6.2.1-6.2.3: on cleartext LOGINDISABLED is advertised and LOGIN is refused with
/// `[PRIVACYREQUIRED]`; after STARTTLS the same session logs in.
#[test]
fn cleartext_login_is_refused_until_starttls() {
    let server = server();
    let mut client = server.connect();
    let greeting = client.read_line();
    assert!(greeting.starts_with("* OK"), "{greeting}");
    let mut imap = Imap { client, next_tag: 1 };

    // RFC 9051 §6.1.1 example: abcd CAPABILITY.
    let caps = imap.run_tagged("abcd", "CAPABILITY");
    assert_eq!(caps.status(), "OK");
    let line = caps.starting("* CAPABILITY ")[0].text.clone();
    let words: BTreeSet<&str> = line.split(' ').collect();
    for needed in ["IMAP4rev2", "STARTTLS", "LOGINDISABLED"] {
        assert!(words.contains(needed), "cleartext CAPABILITY lacks {needed}: {line}");
    }
    assert!(!words.contains("AUTH=PLAIN"), "no mechanism may be offered in cleartext: {line}");

    let refused = imap.expect("NO", &format!("LOGIN {USER} \"{PASSWORD}\""));
    assert!(refused.done.starts_with("NO [PRIVACYREQUIRED]"), "{:?}", refused.done);
    let refused = imap
        .expect("NO", &format!("AUTHENTICATE PLAIN {}", base64(format!("\0{USER}\0{PASSWORD}").as_bytes())));
    assert!(refused.done.starts_with("NO [PRIVACYREQUIRED]"), "{:?}", refused.done);

    // RFC 9051 §6.2.1 example: STARTTLS, then CAPABILITY again.
    let tls = imap.run_tagged("a002", "STARTTLS");
    assert_eq!(tls.status(), "OK", "{tls:?}");
    imap.client.start_tls(&server.cert_path());
    let caps = imap.run_tagged("a003", "CAPABILITY");
    let line = caps.starting("* CAPABILITY ")[0].text.clone();
    let words: BTreeSet<&str> = line.split(' ').collect();
    assert!(words.contains("AUTH=PLAIN"), "{line}");
    assert!(!words.contains("LOGINDISABLED"), "{line}");
    assert!(!words.contains("STARTTLS"), "STARTTLS is not offered twice: {line}");
    imap.expect("BAD", "STARTTLS");

    // RFC 9051 §6.2.3: a wrong password is NO (RFC 5530 AUTHENTICATIONFAILED), then LOGIN works.
    let wrong = imap.expect("NO", &format!("LOGIN {USER} \"not the password\""));
    assert!(wrong.done.starts_with("NO [AUTHENTICATIONFAILED]"), "{:?}", wrong.done);
    let nobody = imap.expect("NO", "LOGIN nobody whatever");
    assert!(nobody.done.starts_with("NO [AUTHENTICATIONFAILED]"), "unknown users read like wrong passwords");
    let login = imap.run_tagged("a001", &format!("LOGIN {USER} \"{PASSWORD}\""));
    assert_eq!(login.status(), "OK", "{login:?}");
    imap.expect("BAD", &format!("LOGIN {USER} \"{PASSWORD}\""));

    let caps = imap.ok("CAPABILITY");
    let line = caps.starting("* CAPABILITY ")[0].text.clone();
    for needed in ["IMAP4rev2", "IDLE", "NAMESPACE", "UIDPLUS", "MOVE", "ESEARCH", "SEARCHRES", "LITERAL+"] {
        assert!(line.split(' ').any(|w| w == needed), "logged-in CAPABILITY lacks {needed}: {line}");
    }
    assert!(line.split(' ').any(|w| w.starts_with("APPENDLIMIT=")), "{line}");

    // RFC 9051 §6.1.3 example: LOGOUT gets BYE, then the tagged OK, then the close.
    let bye = imap.run_tagged("A023", "LOGOUT");
    assert_eq!(bye.status(), "OK");
    assert!(bye.untagged.iter().any(|r| r.text.starts_with("* BYE")), "{bye:?}");
    imap.client.expect_closed();
}

/// RFC 9051 §6.2.2 with RFC 4959 (SASL-IR) and RFC 4616 (PLAIN): the initial response on the
/// command line, or after an empty continuation request; `*` cancels with BAD.
#[test]
fn authenticate_plain_with_initial_response_and_continuation() {
    let server = server();
    let credentials = base64(format!("\0{USER}\0{PASSWORD}").as_bytes());

    let mut imap = Imap::connect(&server);
    let done = imap.run_tagged("a001", &format!("AUTHENTICATE PLAIN {credentials}"));
    assert_eq!(done.status(), "OK", "SASL-IR: {done:?}");
    imap.ok("SELECT INBOX");

    let mut imap = Imap::connect(&server);
    imap.client.send("A001 AUTHENTICATE PLAIN");
    let go_ahead = imap.client.read_line();
    assert!(go_ahead == "+ " || go_ahead == "+", "expected an empty continuation, got {go_ahead:?}");
    imap.client.send(&credentials);
    let done = imap.reply("A001");
    assert_eq!(done.status(), "OK", "continuation: {done:?}");
    imap.ok("SELECT INBOX");

    // Cancelled exchange (RFC 9051 §6.2.2: "*" → BAD), then a wrong password, then success.
    let mut imap = Imap::connect(&server);
    imap.client.send("c1 AUTHENTICATE PLAIN");
    assert!(imap.client.read_line().starts_with('+'));
    imap.client.send("*");
    let cancelled = imap.reply("c1");
    assert_eq!(cancelled.status(), "BAD", "{cancelled:?}");
    let wrong = base64(format!("\0{USER}\0nope").as_bytes());
    let failed = imap.expect("NO", &format!("AUTHENTICATE PLAIN {wrong}"));
    assert!(failed.done.starts_with("NO [AUTHENTICATIONFAILED]"), "{:?}", failed.done);
    let garbage = imap.run("AUTHENTICATE PLAIN !!!notbase64");
    assert!(garbage.status() == "BAD" || garbage.status() == "NO", "{garbage:?}");
    imap.ok(&format!("AUTHENTICATE PLAIN {credentials}"));
}

/// RFC 9051 §6 and §7.1.3: a command not valid in the current state, an unknown command and
/// malformed arguments each get BAD, and the connection keeps working.
#[test]
fn bad_commands_get_bad_and_the_session_goes_on() {
    let server = server();
    let mut imap = Imap::connect(&server);
    // Not authenticated: mailbox commands are not valid yet.
    imap.expect("BAD", "SELECT INBOX");
    imap.expect("BAD", "LIST \"\" *");
    imap.ok(&format!("LOGIN {USER} \"{PASSWORD}\""));

    // Authenticated, nothing selected: message commands are not valid.
    for command in ["FETCH 1 FLAGS", "STORE 1 +FLAGS (\\Seen)", "SEARCH ALL", "EXPUNGE", "CLOSE", "UNSELECT"]
    {
        imap.expect("BAD", command);
    }
    // Syntax errors.
    for command in [
        "FROBNICATE",
        "SELECT",
        "FETCH",
        "LIST \"\"",
        "STATUS INBOX MESSAGES",
        "APPEND INBOX (\\Seen \"x\"",
        "CREATE \"unterminated",
    ] {
        imap.expect("BAD", command);
    }
    // A line with no usable tag gets an untagged BAD.
    imap.client.send(")))");
    let line = imap.client.read_line();
    assert!(line.starts_with("* BAD"), "{line:?}");

    imap.ok("SELECT INBOX");
    imap.expect("BAD", "FETCH 1:* FLAGS BODY[");
    imap.expect("BAD", "FETCH x FLAGS");
    imap.expect("BAD", "STORE 1 FLAGS");
    imap.expect("BAD", "SEARCH NOTACRITERION");
    imap.expect("BAD", "UID FROBNICATE 1");
    imap.ok("NOOP");
    imap.ok("FETCH 1:* FLAGS");
}

// ---------------------------------------------------------------------------------------------
// Authenticated state (RFC 9051 §6.3)
// ---------------------------------------------------------------------------------------------

/// RFC 9051 §6.3.2 and §6.3.3 examples: SELECT returns EXISTS, UIDVALIDITY, UIDNEXT, FLAGS,
/// PERMANENTFLAGS, LIST and `[READ-WRITE]`; EXAMINE returns `[READ-ONLY]`; selecting another
/// mailbox closes the first with `[CLOSED]`; a failed SELECT leaves nothing selected.
#[test]
fn select_and_examine() {
    let server = server();
    // An IMAP4rev1 client (no ENABLE) gets the RFC 3501 shape: RECENT, no LIST needed.
    let mut old = Imap::login(&server);
    let (validity, uid) = old.append("INBOX", "", FRED);
    old.append("INBOX", "", &mail("a@b.example", "second", "x\r\n"));
    let select = old.ok("SELECT INBOX");
    assert!(select.has("* 2 EXISTS"), "{select:#?}");
    assert!(select.has("* 2 RECENT"), "RFC 3501 §6.3.1: RECENT is required for IMAP4rev1: {select:#?}");
    assert!(select.done.starts_with("OK [READ-WRITE]"), "{:?}", select.done);

    let mut imap = Imap::login_rev2(&server);

    let select = imap.run_tagged("A142", "SELECT INBOX");
    assert!(select.done.starts_with("OK [READ-WRITE]"), "{:?}", select.done);
    assert!(select.has("* 2 EXISTS"), "{select:#?}");
    assert!(
        select.lines().iter().any(|l| l.starts_with(&format!("* OK [UIDVALIDITY {validity}]"))),
        "{select:#?}"
    );
    assert!(
        select.lines().iter().any(|l| l.starts_with(&format!("* OK [UIDNEXT {}]", uid + 2))),
        "{select:#?}"
    );
    let flags_line = select.starting("* FLAGS (")[0].text.clone();
    for f in ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"] {
        assert!(flags_line.contains(f), "{flags_line}");
    }
    assert!(select.lines().iter().any(|l| l.starts_with("* OK [PERMANENTFLAGS (")), "{select:#?}");
    assert!(
        !select.lines().iter().any(|l| l.ends_with(" RECENT")),
        "§7.4: no RECENT for IMAP4rev2: {select:#?}"
    );
    let list = select.starting("* LIST ");
    assert_eq!(list.len(), 1, "RFC 9051 §6.3.2: SELECT returns LIST: {select:#?}");
    assert!(
        list[0].text.ends_with("\"/\" INBOX") || list[0].text.ends_with("\"/\" \"INBOX\""),
        "{:?}",
        list[0].text
    );

    let examine = imap.run_tagged("A932", "EXAMINE INBOX");
    assert!(examine.done.starts_with("OK [READ-ONLY]"), "{:?}", examine.done);
    assert!(examine.lines().iter().any(|l| l.starts_with("* OK [CLOSED]")), "§6.3.2: {examine:#?}");
    assert!(examine.has("* 2 EXISTS"));
    // Read-only: FETCH BODY[] does not set \Seen, STORE is refused.
    imap.ok("FETCH 1 BODY[]");
    let flags = imap.ok("FETCH 1 FLAGS").fetches();
    assert!(!flags[0].1.flags().contains("\\Seen"), "EXAMINE must not change state: {flags:?}");
    imap.expect("NO", "STORE 1 +FLAGS (\\Flagged)");

    let drafts = imap.run_tagged("A143", "SELECT Drafts");
    assert!(drafts.done.starts_with("OK [READ-WRITE]"));
    assert!(drafts.lines().iter().any(|l| l.starts_with("* OK [CLOSED]")), "{drafts:#?}");
    assert!(drafts.has("* 0 EXISTS"));

    // §6.4.3: EXPUNGE of a read-only mailbox fails.
    imap.ok("EXAMINE INBOX");
    imap.expect("NO", "EXPUNGE");
    // §5.1: INBOX is case-insensitive.
    let lower = imap.ok("SELECT inbox");
    assert!(lower.has("* 2 EXISTS"), "{lower:#?}");
    imap.ok("CHECK");
    // §6.3.12: an APPEND to the selected mailbox SHOULD be announced at once.
    let (_, third) = imap.append_reply("INBOX", "", FRED);
    assert!(third.has("* 3 EXISTS"), "EXISTS with the APPEND: {third:#?}");

    let missing = imap.expect("NO", "SELECT blurdybloop");
    assert!(!missing.lines().iter().any(|l| l.contains("EXISTS")));
    // RFC 9051 §6.3.2: a failed SELECT leaves no mailbox selected.
    imap.expect("BAD", "FETCH 1 FLAGS");
}

/// RFC 9051 §6.3.4-6.3.6 examples: CREATE with hierarchy, DELETE of a parent, RENAME with
/// inferiors, and the errors.
#[test]
fn create_delete_rename_with_hierarchy() {
    let server = server();
    let mut imap = Imap::login_rev2(&server);

    // §6.3.4: a trailing delimiter is only a declaration; superiors are created as needed.
    let created = imap.run_tagged("A003", "CREATE owatagusiam/");
    assert_eq!(created.status(), "OK");
    imap.ok("CREATE owatagusiam/blurdybloop");
    imap.ok("CREATE foo/bar/zap");
    let list = imap.ok("LIST \"\" *");
    let all = names(&list, "LIST");
    for name in ["owatagusiam", "owatagusiam/blurdybloop", "foo", "foo/bar", "foo/bar/zap"] {
        assert!(all.contains(name), "{name} missing: {all:?}");
    }
    assert!(!all.contains("owatagusiam/"), "the trailing delimiter is not part of the name");
    let exists = imap.expect("NO", "CREATE owatagusiam");
    assert!(exists.done.starts_with("NO [ALREADYEXISTS]"), "{:?}", exists.done);
    imap.expect("NO", "CREATE INBOX");

    // §6.3.5: a parent with inferiors may be refused (with HASCHILDREN) or kept as \Noselect.
    imap.ok("CREATE blurdybloop");
    assert_eq!(imap.run_tagged("A683", "DELETE blurdybloop").status(), "OK");
    let parent = imap.run_tagged("A684", "DELETE foo");
    match parent.status() {
        "NO" => assert!(parent.done.starts_with("NO [HASCHILDREN]"), "{:?}", parent.done),
        "OK" => {
            let attrs = attrs_of(&imap.ok("LIST \"\" foo"), "foo");
            assert!(attrs.contains("\\noselect"), "a deleted parent must become \\Noselect: {attrs:?}");
        }
        other => panic!("DELETE foo: {other}"),
    }
    imap.ok("DELETE foo/bar/zap");
    imap.ok("DELETE foo/bar");
    imap.ok("DELETE foo");
    let all = names(&imap.ok("LIST \"\" *"), "LIST");
    assert!(!all.iter().any(|n| n == "blurdybloop" || n.starts_with("foo")), "{all:?}");
    let missing = imap.expect("NO", "DELETE foo");
    assert!(missing.done.starts_with("NO [NONEXISTENT]"), "{:?}", missing.done);
    imap.expect("NO", "DELETE INBOX");

    // §6.3.6: RENAME carries inferiors and messages, keeps UIDs, refuses existing targets.
    imap.ok("CREATE blurdybloop");
    imap.ok("CREATE foo/bar");
    let (validity, uid) = imap.append("foo/bar", "", FRED);
    imap.ok("RENAME blurdybloop sarasoop");
    assert_eq!(imap.run_tagged("A684", "RENAME foo zowie").status(), "OK");
    let all = names(&imap.ok("LIST \"\" *"), "LIST");
    for name in ["sarasoop", "zowie", "zowie/bar"] {
        assert!(all.contains(name), "{name} missing after RENAME: {all:?}");
    }
    for name in ["blurdybloop", "foo", "foo/bar"] {
        assert!(!all.contains(name), "{name} still listed after RENAME: {all:?}");
    }
    let status = imap.ok("STATUS zowie/bar (MESSAGES UIDVALIDITY UIDNEXT)");
    assert_eq!(
        status_of(&status, "zowie/bar"),
        items(&[("MESSAGES", 1), ("UIDVALIDITY", u64::from(validity)), ("UIDNEXT", u64::from(uid) + 1)])
    );
    let target = imap.expect("NO", "RENAME sarasoop zowie");
    assert!(target.done.starts_with("NO [ALREADYEXISTS]"), "{:?}", target.done);
    imap.expect("NO", "RENAME nonexistent elsewhere");
    // §6.3.6: superiors of the new name are created.
    imap.ok("RENAME sarasoop baz/rag/zowie");
    let all = names(&imap.ok("LIST \"\" baz*"), "LIST");
    assert!(all.contains("baz/rag/zowie"), "{all:?}");

    // §6.3.4: a re-created mailbox never reuses UIDs of the old one, or has a new UIDVALIDITY.
    imap.ok("DELETE zowie/bar");
    imap.ok("CREATE zowie/bar");
    let (validity2, uid2) = imap.append("zowie/bar", "", FRED);
    assert!(validity2 != validity || uid2 > uid, "UID reuse: {validity}/{uid} then {validity2}/{uid2}");
}

/// RFC 9051 §6.3.6 (Z432-Z434): RENAME INBOX moves its messages to the new mailbox and leaves
/// an empty INBOX; INBOX's inferiors stay where they are.
#[test]
fn rename_inbox_moves_the_messages() {
    let server = server();
    let mut imap = Imap::login_rev2(&server);
    // INBOX may or may not take inferiors (RFC 9051 §6.3.6 only says they stay put).
    let inferior = imap.run("CREATE INBOX/bar").status() == "OK";
    imap.append("INBOX", "(\\Flagged)", FRED);
    imap.append("INBOX", "", &mail("x@y.example", "two", "2\r\n"));

    let renamed = imap.run_tagged("Z433", "RENAME INBOX old-mail");
    assert_eq!(renamed.status(), "OK", "{renamed:?}");
    let all = names(&imap.run_tagged("Z434", "LIST \"\" *"), "LIST");
    for name in ["INBOX", "old-mail"] {
        assert!(all.contains(name), "{name} missing: {all:?}");
    }
    assert_eq!(all.contains("INBOX/bar"), inferior, "INBOX's inferiors are unaffected: {all:?}");
    assert!(!all.contains("old-mail/bar"), "{all:?}");
    assert_eq!(status_of(&imap.ok("STATUS INBOX (MESSAGES)"), "INBOX"), items(&[("MESSAGES", 0)]));
    imap.ok("SELECT old-mail");
    let fetched = imap.ok("FETCH 1:* (FLAGS BODY.PEEK[])").fetches();
    assert_eq!(fetched.len(), 2);
    assert_eq!(fetched[0].1.item("BODY[]").string(), FRED);
    assert!(fetched[0].1.flags().contains("\\Flagged"), "flags travel with the messages");
    // New mail still lands in INBOX.
    imap.append("INBOX", "", FRED);
    assert_eq!(status_of(&imap.ok("STATUS INBOX (MESSAGES)"), "INBOX"), items(&[("MESSAGES", 1)]));
}

/// RFC 9051 §6.3.7, §6.3.8, §6.3.9 (LIST (SUBSCRIBED), RETURN (SUBSCRIBED)) and RFC 3501 §6.3.9
/// (LSUB): subscriptions are independent of existence.
#[test]
fn subscribe_lsub_and_list_subscribed() {
    let server = server();
    let mut imap = Imap::login_rev2(&server);
    imap.ok("CREATE Fruit/Banana");
    imap.ok("CREATE Fruit/Apple");
    imap.ok("CREATE Vegetable");

    imap.ok("CREATE Fruit/Peach");
    assert_eq!(imap.run_tagged("A002", "SUBSCRIBE Fruit/Banana").status(), "OK");
    imap.ok("SUBSCRIBE Vegetable");
    imap.ok("SUBSCRIBE Fruit/Peach");
    imap.ok("SUBSCRIBE Vegetable"); // already subscribed: still OK (§6.3.7)
    // §6.3.7: subscriptions outlive their mailbox (the "Fruit/Peach" of §6.3.9.8 example 2).
    imap.ok("DELETE Fruit/Peach");

    let subscribed = imap.run_tagged("A02", "LIST (SUBSCRIBED) \"\" \"*\"");
    let entries = listed(&subscribed, "LIST");
    let find = |name: &str| entries.iter().find(|(_, n)| n == name).map(|(a, _)| a.clone());
    for name in ["Fruit/Banana", "Vegetable", "Fruit/Peach"] {
        let attrs = find(name).unwrap_or_else(|| panic!("{name} not in LIST (SUBSCRIBED): {subscribed:#?}"));
        assert!(attrs.contains("\\subscribed"), "{name}: {attrs:?}");
    }
    assert!(find("Fruit/Peach").unwrap().contains("\\nonexistent"), "§6.3.9 example 2: {subscribed:#?}");
    assert!(find("Fruit/Apple").is_none() && find("Fruit").is_none(), "{subscribed:#?}");

    let all = imap.run_tagged("A06", "LIST \"\" \"*\" RETURN (SUBSCRIBED)");
    assert!(attrs_of(&all, "Fruit/Banana").contains("\\subscribed"));
    assert!(!attrs_of(&all, "Fruit/Apple").contains("\\subscribed"));
    assert!(!names(&all, "LIST").contains("Fruit/Peach"), "RETURN (SUBSCRIBED) lists only existing names");

    let lsub = imap.ok("LSUB \"\" \"*\"");
    let lsub_names = names(&lsub, "LSUB");
    for name in ["Fruit/Banana", "Vegetable", "Fruit/Peach"] {
        assert!(lsub_names.contains(name), "{name} not in LSUB: {lsub:#?}");
    }
    assert!(!lsub_names.contains("Fruit/Apple"));
    // RFC 3501 §6.3.9: with %, an unsubscribed parent of a subscribed child shows as \Noselect.
    let lsub = imap.ok("LSUB \"\" \"Fruit%\"");
    let entries = listed(&lsub, "LSUB");
    assert!(entries.iter().any(|(a, n)| n == "Fruit" && a.contains("\\noselect")), "{lsub:#?}");

    imap.run_tagged("A002", "UNSUBSCRIBE Fruit/Peach");
    imap.ok("UNSUBSCRIBE Fruit/Peach"); // not subscribed: still OK (§6.3.8)
    let lsub_names = names(&imap.ok("LSUB \"\" \"*\""), "LSUB");
    assert!(!lsub_names.contains("Fruit/Peach"), "{lsub_names:?}");
    // Deleting a mailbox does not remove its subscription (§6.3.7 SHOULD NOT).
    imap.ok("DELETE Vegetable");
    let subscribed = imap.ok("LIST (SUBSCRIBED) \"\" Vegetable");
    assert!(attrs_of(&subscribed, "Vegetable").contains("\\nonexistent"), "{subscribed:#?}");
}

/// RFC 9051 §6.3.9: `LIST "" ""`, `%` versus `*`, RETURN (CHILDREN), RETURN (SPECIAL-USE) and
/// the (SPECIAL-USE) selection of RFC 6154, RETURN (STATUS ...) of RFC 5819.
#[test]
fn list_patterns_and_return_options() {
    let server = server();
    let mut imap = Imap::login_rev2(&server);
    imap.ok("CREATE Fruit/Apple");
    imap.ok("CREATE Tofu");
    imap.append("Tofu", "(\\Seen)", FRED);
    imap.append("Tofu", "", FRED);
    imap.append("INBOX", "", FRED);

    // §6.3.9.8: the empty pattern returns the delimiter and root name.
    let root = imap.run_tagged("A101", "LIST \"\" \"\"");
    assert_eq!(root.lines(), vec!["* LIST (\\Noselect) \"/\" \"\""], "{root:#?}");

    let top = names(&imap.ok("LIST \"\" %"), "LIST");
    assert!(top.contains("Fruit") && top.contains("Tofu") && top.contains("INBOX"), "{top:?}");
    assert!(!top.contains("Fruit/Apple"), "% does not cross the delimiter: {top:?}");
    let sub = names(&imap.ok("LIST Fruit/ %"), "LIST");
    assert_eq!(sub, BTreeSet::from(["Fruit/Apple".to_owned()]));
    let inbox = names(&imap.ok("LIST \"\" inbox"), "LIST");
    assert_eq!(inbox, BTreeSet::from(["INBOX".to_owned()]), "INBOX is case-insensitive (§5.1)");

    // §6.3.9.8 example 3.
    let children = imap.run_tagged("A03", "LIST () \"\" \"%\" RETURN (CHILDREN)");
    assert!(attrs_of(&children, "Fruit").contains("\\haschildren"), "{children:#?}");
    assert!(attrs_of(&children, "Tofu").contains("\\hasnochildren"), "{children:#?}");

    // RFC 6154 §5.1: the default special-use mailboxes of a new account.
    let special = imap.ok("LIST \"\" \"*\" RETURN (SPECIAL-USE)");
    for (name, attr) in [
        ("Drafts", "\\drafts"),
        ("Sent", "\\sent"),
        ("Trash", "\\trash"),
        ("Junk", "\\junk"),
        ("Archive", "\\archive"),
    ] {
        assert!(attrs_of(&special, name).contains(attr), "{name} lacks {attr}: {special:#?}");
    }
    let only = imap.ok("LIST (SPECIAL-USE) \"\" \"*\"");
    let only_names = names(&only, "LIST");
    assert!(
        only_names.contains("Sent") && !only_names.contains("Tofu") && !only_names.contains("INBOX"),
        "{only:#?}"
    );
    // RFC 6154 §5.2 / RFC 5258: CREATE-SPECIAL-USE.
    imap.ok("CREATE MyFlagged (USE (\\Flagged))");
    let special = imap.ok("LIST \"\" MyFlagged RETURN (SPECIAL-USE)");
    assert!(attrs_of(&special, "MyFlagged").contains("\\flagged"), "{special:#?}");

    // §6.3.9.8 example 11.
    let status = imap.run_tagged("A01", "LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN))");
    assert_eq!(status_of(&status, "Tofu"), items(&[("MESSAGES", 2), ("UNSEEN", 1)]));
    assert_eq!(status_of(&status, "INBOX"), items(&[("MESSAGES", 1), ("UNSEEN", 1)]));
    // RFC 5819 §1: each STATUS follows its own LIST line.
    let lines = status.lines();
    let at = lines.iter().position(|l| l.starts_with("* STATUS") && l.contains("Tofu")).unwrap();
    assert!(lines[at - 1].starts_with("* LIST") && lines[at - 1].contains("Tofu"), "{lines:#?}");

    let both = imap.ok("LIST \"\" \"*\" RETURN (CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN))");
    assert!(attrs_of(&both, "Trash").contains("\\trash"));
    assert!(attrs_of(&both, "Trash").contains("\\hasnochildren"));
    assert_eq!(status_of(&both, "Trash"), items(&[("MESSAGES", 0), ("UNSEEN", 0)]));

    // RFC 5258 §3: several patterns at once.
    let multi = names(&imap.ok("LIST \"\" (Tofu Fruit/*)"), "LIST");
    assert_eq!(multi, BTreeSet::from(["Tofu".to_owned(), "Fruit/Apple".to_owned()]));
}

/// RFC 9051 §6.3.11 example, plus UNSEEN, UIDVALIDITY, DELETED and SIZE (§6.3.11).
#[test]
fn status_counts() {
    let server = server();
    let mut imap = Imap::login_rev2(&server);
    imap.ok("CREATE blurdybloop");
    let mut last = 0;
    let mut size = 0;
    for i in 0..3 {
        let message = mail("s@example.org", &format!("status {i}"), "body\r\n");
        size += message.len();
        let flags = if i == 0 { "(\\Seen \\Deleted)" } else { "" };
        last = imap.append("blurdybloop", flags, &message).1;
    }
    let status = imap.run_tagged("A042", "STATUS blurdybloop (UIDNEXT MESSAGES)");
    assert_eq!(
        status_of(&status, "blurdybloop"),
        items(&[("MESSAGES", 3), ("UIDNEXT", u64::from(last) + 1)])
    );
    let status = imap.ok("STATUS blurdybloop (UNSEEN DELETED SIZE)");
    assert_eq!(
        status_of(&status, "blurdybloop"),
        items(&[("UNSEEN", 2), ("DELETED", 1), ("SIZE", size as u64)])
    );
    // STATUS on the selected mailbox works too (§6.3.11 allows it, with a SHOULD NOT).
    imap.ok("SELECT blurdybloop");
    assert_eq!(
        status_of(&imap.ok("STATUS blurdybloop (MESSAGES)"), "blurdybloop"),
        items(&[("MESSAGES", 3)])
    );
    imap.expect("NO", "STATUS nonexistent (MESSAGES)");
}

/// RFC 9051 §6.3.12 APPEND (flags, date, APPENDUID, TRYCREATE) and §6.4.5 / §7.5.2 FETCH items:
/// FLAGS, UID, INTERNALDATE, RFC822.SIZE, ENVELOPE, BODYSTRUCTURE, BODY[], BODY.PEEK[HEADER],
/// partial fetches and the implicit \Seen of BODY[].
#[test]
fn append_then_fetch_every_item() {
    let server = server();
    let mut imap = Imap::login_rev2(&server);
    imap.ok("CREATE saved-messages");

    // §6.3.12 example (synchronizing literal: the server sends "+").
    imap.client.send(&format!("A003 APPEND saved-messages (\\Seen) {{{}}}", FRED.len()));
    let go_ahead = imap.client.read_line();
    assert!(go_ahead.starts_with("+ ") || go_ahead == "+", "{go_ahead:?}");
    imap.client.send_raw(format!("{FRED}\r\n").as_bytes());
    let appended = imap.reply("A003");
    assert_eq!(appended.status(), "OK", "{appended:?}");
    let (validity, fred_uid) = append_uid(&appended.done).expect("APPENDUID (RFC 4315, RFC 9051 §7.1)");

    let terry = format!("{TERRY_HEADER}{TERRY_BODY}");
    let (v2, terry_uid) =
        imap.append("saved-messages", "(\\Flagged $Work) \"17-Jul-1996 02:44:25 -0700\"", &terry);
    let (v3, multi_uid) = imap.append("saved-messages", "() \" 1-Mar-2022 10:00:00 +0000\"", MULTIPART);
    assert_eq!((v2, v3), (validity, validity));
    assert!(fred_uid < terry_uid && terry_uid < multi_uid, "UIDs ascend");

    let missing = imap.expect("NO", &format!("APPEND nowhere {{{}+}}\r\n{FRED}", FRED.len()));
    assert!(missing.done.starts_with("NO [TRYCREATE]"), "§6.3.12: {:?}", missing.done);
    imap.expect("BAD", &format!("APPEND saved-messages \"not a date\" {{{}+}}\r\n{FRED}", FRED.len()));
    imap.expect("BAD", &format!("APPEND saved-messages (\\NotASystemFlag) {{{}+}}\r\n{FRED}", FRED.len()));

    let select = imap.ok("SELECT saved-messages");
    assert!(select.has("* 3 EXISTS"));

    let f = imap.ok("FETCH 1:3 (FLAGS UID INTERNALDATE RFC822.SIZE)").fetches();
    assert_eq!(f.len(), 3);
    assert_eq!(f[0].1.flags(), flags("\\Seen"));
    assert_eq!(f[1].1.flags(), flags("\\Flagged $Work"));
    assert_eq!(f[2].1.flags(), flags(""));
    assert_eq!([f[0].1.uid(), f[1].1.uid(), f[2].1.uid()], [fred_uid, terry_uid, multi_uid]);
    assert_eq!(f[0].1.item("RFC822.SIZE").atom(), FRED.len().to_string());
    assert_eq!(f[1].1.item("RFC822.SIZE").atom(), terry.len().to_string());
    assert_eq!(f[2].1.item("RFC822.SIZE").atom(), MULTIPART.len().to_string());
    // The internal date given to APPEND is kept (the zone may be normalised).
    let internal = f[1].1.item("INTERNALDATE").string();
    assert_eq!(date_time_seconds(internal), date_time_seconds("17-Jul-1996 02:44:25 -0700"), "{internal}");
    let internal = f[2].1.item("INTERNALDATE").string();
    assert_eq!(date_time_seconds(internal), date_time_seconds("01-Mar-2022 10:00:00 +0000"), "{internal}");
    // Without a date the internal date is "now".
    let internal = f[0].1.item("INTERNALDATE").string();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((date_time_seconds(internal) - now).abs() < 600, "{internal}");

    // §8 sample session: ENVELOPE and BODY of the Terry Gray message.
    let f = imap.ok(&format!("UID FETCH {terry_uid} (UID ENVELOPE BODY)")).fetches();
    let (seq, items) = &f[0];
    assert_eq!(*seq, 2);
    assert_eq!(
        items.item("ENVELOPE").canonical(),
        canonical(
            "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" \
             ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
             ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
             ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
             ((NIL NIL \"imap\" \"cac.washington.edu\")) \
             ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\") (\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) \
             NIL NIL \"<B27397-0100000@cac.washington.edu>\")"
        )
    );
    let lines = TERRY_BODY.matches("\r\n").count();
    assert_eq!(
        items.item("BODY").canonical().to_ascii_uppercase(),
        canonical(&format!(
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" {} {lines})",
            TERRY_BODY.len()
        ))
    );

    // BODYSTRUCTURE of the multipart: the basic fields exactly; extension data may follow.
    let f = imap.ok("FETCH 3 BODYSTRUCTURE").fetches();
    let structure = f[0].1.item("BODYSTRUCTURE").list().to_vec();
    // The CRLF before a boundary belongs to the boundary (RFC 2046 §5.1.1): part 1 is 19 octets.
    let text = structure[0].list();
    assert_eq!(
        Value::List(text[..7].to_vec()).canonical().to_ascii_uppercase(),
        canonical("(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 19)")
    );
    let lines = text[7].atom();
    assert!(lines == "0" || lines == "1", "body-fld-lines of a one-line part without CRLF: {lines}");
    let attachment = structure[1].list();
    assert_eq!(
        Value::List(attachment[..7].to_vec()).canonical().to_ascii_uppercase(),
        canonical("(\"APPLICATION\" \"OCTET-STREAM\" (\"NAME\" \"R.BIN\") NIL NIL \"BASE64\" 16)")
    );
    assert_eq!(structure[2].string().to_ascii_uppercase(), "MIXED");
    assert_eq!(structure[3].canonical().to_ascii_uppercase(), canonical("(\"BOUNDARY\" \"XYZ\")"));
    // The disposition is extension data of the part (RFC 9051 §7.5.2 body-ext-1part).
    assert!(
        attachment
            .iter()
            .any(|v| v.canonical().to_ascii_uppercase()
                == canonical("(\"ATTACHMENT\" (\"FILENAME\" \"R.BIN\"))")),
        "{attachment:?}"
    );

    // §6.4.5: BODY.PEEK[HEADER], HEADER.FIELDS, partial, parts; PEEK leaves \Seen alone.
    let f = imap.ok("FETCH 2 (BODY.PEEK[HEADER] BODY.PEEK[HEADER.FIELDS (DATE FROM)] BODY.PEEK[TEXT] BODY.PEEK[]<0.10>)").fetches();
    let items = &f[0].1;
    assert_eq!(items.item("BODY[HEADER]").string(), TERRY_HEADER);
    assert_eq!(
        items.item("BODY[HEADER.FIELDS (DATE FROM)]").string(),
        "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\nFrom: Terry Gray <gray@cac.washington.edu>\r\n\r\n"
    );
    assert_eq!(items.item("BODY[TEXT]").string(), TERRY_BODY);
    assert_eq!(
        items.item("BODY[]<0>").string(),
        &terry[..10],
        "§6.4.5: the partial is reported as BODY[]<0>"
    );
    let f = imap.ok("FETCH 3 (BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[]<2000.10>)").fetches();
    assert_eq!(f[0].1.item("BODY[1]").string(), "See the attachment.");
    assert!(f[0].1.item("BODY[2.MIME]").string().starts_with("Content-Type: application/octet-stream"));
    assert_eq!(
        f[0].1.item("BODY[]<2000>").string(),
        "",
        "§6.4.5: a start beyond the end gives an empty string"
    );
    assert_eq!(imap.ok("FETCH 2 FLAGS").fetches()[0].1.flags(), flags("\\Flagged $Work"));

    // BODY[] sets \Seen and reports the new flags in the same FETCH response (§6.4.5).
    let f = imap.ok("FETCH 2 BODY[]").fetches();
    let all: Vec<&Fetch> = f.iter().filter(|(s, _)| *s == 2).map(|(_, i)| i).collect();
    assert_eq!(all.iter().find_map(|i| i.get("BODY[]")).unwrap().string(), terry);
    assert!(all.iter().any(|i| i.get("FLAGS").is_some_and(|_| i.flags().contains("\\Seen"))), "{f:?}");
    assert_eq!(imap.ok("FETCH 2 FLAGS").fetches()[0].1.flags(), flags("\\Flagged $Work \\Seen"));

    // Macros (§6.4.5): FAST = (FLAGS INTERNALDATE RFC822.SIZE).
    let f = imap.ok("FETCH 1 FAST").fetches();
    assert!(
        f[0].1.get("FLAGS").is_some()
            && f[0].1.get("INTERNALDATE").is_some()
            && f[0].1.get("RFC822.SIZE").is_some()
    );
    // UID FETCH always returns UID (§6.4.9).
    let f = imap.ok(&format!("UID FETCH {fred_uid} FLAGS")).fetches();
    assert_eq!(f[0].1.uid(), fred_uid);
    // A UID range past the end is not an error (§6.4.9); a sequence number past the end is BAD.
    assert!(imap.ok("UID FETCH 100000:100010 FLAGS").fetches().is_empty());
    imap.expect("BAD", "FETCH 4 FLAGS");
    // §6.4.9: "a UID range of 559:* always includes the UID of the last message".
    let f = imap.ok(&format!("UID FETCH {}:* UID", multi_uid + 100)).fetches();
    assert_eq!(f.iter().map(|(s, i)| (*s, i.uid())).collect::<Vec<_>>(), vec![(3, multi_uid)]);
    // `*` is the last message; a range may be written backwards (§9 seq-range).
    assert_eq!(imap.ok("FETCH * UID").fetches()[0].0, 3);
    let f = imap.ok("FETCH 2:1 UID").fetches();
    assert_eq!(f.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![1, 2]);

    // Part 1 of a single-part message is its body (§6.4.5); HEADER.FIELDS.NOT.
    let f = imap
        .ok("FETCH 2 (BODY.PEEK[1] BODY.PEEK[HEADER.FIELDS.NOT (DATE FROM TO CC SUBJECT MESSAGE-ID)])")
        .fetches();
    assert_eq!(f[0].1.item("BODY[1]").string(), TERRY_BODY);
    assert_eq!(
        f[0].1.item("BODY[HEADER.FIELDS.NOT (DATE FROM TO CC SUBJECT MESSAGE-ID)]").string(),
        "MIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n"
    );
    // RFC 3516 BINARY (advertised): the attachment decoded, and its decoded size.
    let f = imap.ok("FETCH 3 (BINARY.PEEK[2] BINARY.SIZE[2])").fetches();
    let decoded: Vec<u8> = f[0].1.item("BINARY[2]").string().bytes().collect();
    assert_eq!(decoded, (0u8..10).collect::<Vec<_>>());
    assert_eq!(f[0].1.item("BINARY.SIZE[2]").atom(), "10");

    // RFC 3502 MULTIAPPEND (advertised): several messages, one APPENDUID with all the UIDs.
    let two = mail("m@example.org", "multi one", "1\r\n");
    let three = mail("m@example.org", "multi two", "2\r\n");
    let command = format!(
        "MA APPEND saved-messages (\\Seen) {{{}+}}\r\n{two} {{{}+}}\r\n{three}\r\n",
        two.len(),
        three.len()
    );
    imap.client.send_raw(command.as_bytes());
    let multi = imap.reply("MA");
    assert_eq!(multi.status(), "OK", "{multi:#?}");
    assert!(multi.has("* 5 EXISTS"), "{multi:#?}");
    let set =
        multi.done.split("[APPENDUID ").nth(1).unwrap().split(']').next().unwrap().split(' ').nth(1).unwrap();
    assert_eq!(expand(set), vec![multi_uid + 1, multi_uid + 2]);
    let f = imap.ok("FETCH 4:5 (FLAGS BODY.PEEK[])").fetches();
    assert_eq!(f[0].1.item("BODY[]").string(), two);
    assert_eq!(f[1].1.item("BODY[]").string(), three);
    // RFC 3502 §6.3.11: each message has its own flags; only the first gave any.
    assert_eq!(f[0].1.flags(), flags("\\Seen"));
    assert_eq!(f[1].1.flags(), flags(""));
}

/// RFC 9051 §5.1 and RFC 3501 §5.1.3: an IMAP4rev1 client names mailboxes in modified UTF-7,
/// an IMAP4rev2 client in UTF-8, and each sees the other's mailboxes in its own form.
#[test]
fn mailbox_names_in_modified_utf7_and_utf8() {
    let server = server();
    let mut old = Imap::login(&server);
    let mut new = Imap::login_rev2(&server);

    // RFC 3501 §5.1.3 example: "&U,BTFw-/&ZeVnLIqe-" is 台北/日本語.
    old.ok("CREATE \"&U,BTFw-/&ZeVnLIqe-\"");
    old.ok("CREATE \"Tom &- Jerry\"");
    let seen = names(&new.ok("LIST \"\" *"), "LIST");
    assert!(seen.contains("台北/日本語"), "{seen:?}");
    assert!(seen.contains("台北"), "the superior exists too: {seen:?}");
    assert!(seen.contains("Tom & Jerry"), "{seen:?}");

    let name = "Ünïcode";
    new.client.send_raw(format!("U1 CREATE {{{}+}}\r\n{name}\r\n", name.len()).as_bytes());
    assert_eq!(new.reply("U1").status(), "OK");
    new.append(&format!("\"{name}\""), "", FRED);
    let seen = names(&old.ok("LIST \"\" *"), "LIST");
    assert!(seen.contains("&ANw-n&AO8-code"), "{seen:?}");
    assert!(!seen.iter().any(|n| !n.is_ascii()), "8-bit names must not reach an IMAP4rev1 client: {seen:?}");
    let status = old.ok("STATUS \"&ANw-n&AO8-code\" (MESSAGES)");
    assert_eq!(status_of(&status, "&ANw-n&AO8-code"), items(&[("MESSAGES", 1)]));
    old.ok("SELECT \"&ANw-n&AO8-code\"");
    // Malformed modified UTF-7 is refused, not stored (RFC 3501 §5.1.3).
    let bad = old.run("CREATE \"&Jjo!\"");
    assert!(bad.status() == "NO" || bad.status() == "BAD", "{bad:#?}");
}

/// RFC 9051 §6.4.4: MIME encoded words in headers and content transfer encodings in bodies are
/// decoded before comparing; the search string may come as a UTF-8 literal.
#[test]
fn search_decodes_headers_and_bodies() {
    let server = server();
    let mut imap = Imap::login(&server);
    let encoded = "From: =?utf-8?q?J=C3=B6rg?= <joerg@example.org>\r\n\
                   Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n\
                   MIME-Version: 1.0\r\n\
                   Content-Type: text/plain; charset=utf-8\r\n\
                   Content-Transfer-Encoding: quoted-printable\r\n\r\n\
                   Sch=C3=B6ne Tage am Rhein=\r\n und im Dom.\r\n";
    let base64 = "From: plain@example.org\r\nSubject: plain\r\nMIME-Version: 1.0\r\n\
                  Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: base64\r\n\r\n\
                  c2VjcmV0IHdvcmQ6IHh5bG9waG9uZQ==\r\n";
    imap.append("INBOX", "", encoded);
    imap.append("INBOX", "", base64);
    imap.ok("SELECT INBOX");

    let search = |imap: &mut Imap, key: &str, text: &str| -> Vec<u32> {
        let tag = "S1";
        imap.client.send_raw(
            format!("{tag} SEARCH CHARSET UTF-8 {key} {{{}+}}\r\n{text}\r\n", text.len()).as_bytes(),
        );
        let reply = imap.reply(tag);
        assert_eq!(reply.status(), "OK", "{key} {text}: {reply:#?}");
        let line = &reply.starting("* SEARCH")[0].text;
        line.split(' ').skip(2).map(|n| n.parse().unwrap()).collect()
    };
    assert_eq!(search(&mut imap, "SUBJECT", "Grüße aus Köln"), vec![1]);
    assert_eq!(search(&mut imap, "FROM", "Jörg"), vec![1]);
    assert_eq!(search(&mut imap, "BODY", "Schöne Tage am Rhein und"), vec![1], "soft line break decoded");
    assert_eq!(search(&mut imap, "BODY", "xylophone"), vec![2], "base64 decoded");
    assert_eq!(search(&mut imap, "TEXT", "Köln"), vec![1], "TEXT covers the decoded header");
    assert_eq!(
        search(&mut imap, "SUBJECT", "=?utf-8?q?"),
        Vec::<u32>::new(),
        "the encoded form does not match"
    );
}

// ---------------------------------------------------------------------------------------------
// Selected state (RFC 9051 §6.4)
// ---------------------------------------------------------------------------------------------

/// Four messages with distinct flags, the state of the §6.4.6 example before its STORE.
fn four_messages(imap: &mut Imap) -> Vec<u32> {
    let mut uids = Vec::new();
    for (i, f) in ["()", "(\\Seen)", "()", "(\\Flagged \\Seen)"].iter().enumerate() {
        uids.push(imap.append("INBOX", f, &mail("f@example.org", &format!("m{i}"), "x\r\n")).1);
    }
    imap.ok("SELECT INBOX");
    uids
}

/// RFC 9051 §6.4.6: STORE FLAGS, +FLAGS, -FLAGS and the .SILENT forms.
#[test]
fn store_flags() {
    let server = server();
    let mut imap = Imap::login_rev2(&server);
    four_messages(&mut imap);

    let store = imap.run_tagged("A003", "STORE 2:4 +FLAGS (\\Deleted)");
    assert_eq!(store.status(), "OK");
    let got: Vec<(u32, BTreeSet<String>)> =
        store.fetches().into_iter().map(|(s, f)| (s, f.flags())).collect();
    assert_eq!(
        got,
        vec![
            (2, flags("\\Deleted \\Seen")),
            (3, flags("\\Deleted")),
            (4, flags("\\Deleted \\Flagged \\Seen"))
        ]
    );
    let store = imap.ok("STORE 2:4 -FLAGS (\\Deleted \\Seen)");
    let got: Vec<(u32, BTreeSet<String>)> =
        store.fetches().into_iter().map(|(s, f)| (s, f.flags())).collect();
    assert_eq!(got, vec![(2, flags("")), (3, flags("")), (4, flags("\\Flagged"))]);
    let store = imap.ok("STORE 1 FLAGS (\\Answered $Label1)");
    assert_eq!(store.fetches()[0].1.flags(), flags("\\Answered $Label1"));

    let silent = imap.ok("STORE 1:4 +FLAGS.SILENT (\\Draft)");
    assert!(silent.fetches().is_empty(), ".SILENT: no FETCH for our own change: {silent:#?}");
    let silent = imap.ok("STORE 1 FLAGS.SILENT (\\Seen)");
    assert!(silent.fetches().is_empty());
    let silent = imap.ok("STORE 2 -FLAGS.SILENT (\\Draft)");
    assert!(silent.fetches().is_empty());
    let all: Vec<(u32, BTreeSet<String>)> =
        imap.ok("FETCH 1:4 FLAGS").fetches().into_iter().map(|(s, f)| (s, f.flags())).collect();
    assert_eq!(
        all,
        vec![(1, flags("\\Seen")), (2, flags("")), (3, flags("\\Draft")), (4, flags("\\Draft \\Flagged"))]
    );
    // UID STORE reports the UID (§6.4.9 example).
    let f = imap.ok("UID STORE 1:* +FLAGS (\\Answered)").fetches();
    assert_eq!(f.len(), 4);
    assert!(f.iter().all(|(_, i)| i.get("UID").is_some() && i.flags().contains("\\Answered")), "{f:?}");
    // \Recent cannot be set by a client (RFC 3501 §2.3.2); the server ignores it.
    let recent = imap.ok("STORE 1 +FLAGS (\\Recent)");
    assert!(!recent.fetches()[0].1.flags().contains("\\Recent"), "{recent:#?}");
}

/// RFC 9051 §6.4.4: the search keys. Without `ENABLE IMAP4rev2` the answer is the IMAP4rev1
/// `* SEARCH` response (RFC 3501 §7.2.5).
#[test]
fn search_criteria() {
    let server = server();
    let mut imap = Imap::login(&server);
    let messages = [
        ("Smith <smith@example.org>", "budget", "short\r\n", "(\\Flagged)", "\"15-Jan-1994 10:00:00 +0000\""),
        (
            "Jones <jones@example.org>",
            "meeting",
            "short\r\n",
            "(\\Flagged \\Seen)",
            "\"3-Feb-1994 10:00:00 +0000\"",
        ),
        (
            "Brown <brown@example.org>",
            "Budget review",
            &"long line of text\r\n".repeat(200),
            "()",
            "\"10-Mar-1994 10:00:00 +0000\"",
        ),
        (
            "Smith <smith@example.org>",
            "lunch",
            "short\r\n",
            "(\\Flagged \\Answered)",
            "\"11-Mar-1994 10:00:00 +0000\"",
        ),
    ];
    let mut uids = Vec::new();
    for (from, subject, body, f, date) in messages {
        uids.push(imap.append("INBOX", &format!("{f} {date}"), &mail(from, subject, body)).1);
    }
    imap.ok("SELECT INBOX");

    let search = |imap: &mut Imap, criteria: &str| -> Vec<u32> {
        let reply = imap.ok(&format!("SEARCH {criteria}"));
        let lines = reply.starting("* SEARCH");
        assert_eq!(lines.len(), 1, "SEARCH {criteria}: {reply:#?}");
        lines[0].text.split(' ').skip(2).map(|n| n.parse().unwrap()).collect()
    };
    assert_eq!(search(&mut imap, "FLAGGED"), vec![1, 2, 4]);
    assert_eq!(search(&mut imap, "UNSEEN"), vec![1, 3, 4]);
    assert_eq!(search(&mut imap, "ANSWERED"), vec![4]);
    assert_eq!(search(&mut imap, "FROM \"Smith\""), vec![1, 4]);
    assert_eq!(search(&mut imap, "FROM smith@EXAMPLE.org"), vec![1, 4], "case-insensitive substring");
    assert_eq!(search(&mut imap, "SUBJECT budget"), vec![1, 3]);
    assert_eq!(search(&mut imap, "SINCE 1-Feb-1994"), vec![2, 3, 4]);
    assert_eq!(search(&mut imap, "BEFORE 10-Mar-1994"), vec![1, 2]);
    assert_eq!(search(&mut imap, "ON 10-Mar-1994"), vec![3]);
    assert_eq!(search(&mut imap, "LARGER 1000"), vec![3]);
    assert_eq!(search(&mut imap, "SMALLER 1000"), vec![1, 2, 4]);
    assert_eq!(search(&mut imap, "NOT FROM \"Smith\""), vec![2, 3]);
    assert_eq!(search(&mut imap, "OR ANSWERED SEEN"), vec![2, 4]);
    assert_eq!(search(&mut imap, "FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\""), vec![2], "§6.4.4 example");
    assert_eq!(search(&mut imap, "(OR FROM jones FROM brown) UNFLAGGED"), vec![3]);
    assert_eq!(search(&mut imap, "2:3"), vec![2, 3]);
    assert_eq!(search(&mut imap, &format!("UID {}:{}", uids[1], uids[2])), vec![2, 3]);
    assert_eq!(search(&mut imap, &format!("UID {}:*", uids[3])), vec![4]);
    assert_eq!(search(&mut imap, "BODY \"long line\""), vec![3]);
    assert_eq!(search(&mut imap, "TEXT meeting"), vec![2]);
    assert_eq!(search(&mut imap, "HEADER Message-ID budget@"), vec![1]);
    assert_eq!(search(&mut imap, "HEADER Message-ID budget"), vec![1, 3], "case-insensitive");
    assert_eq!(search(&mut imap, "SENTSINCE 2-Mar-2022"), vec![1, 2, 3, 4]);
    assert_eq!(search(&mut imap, "SUBJECT \"not there\""), Vec::<u32>::new());
    assert_eq!(search(&mut imap, "CHARSET UTF-8 SUBJECT lunch"), vec![4]);
    let unknown = imap.expect("NO", "SEARCH CHARSET KOI8-R SUBJECT x");
    assert!(unknown.done.starts_with("NO [BADCHARSET"), "{:?}", unknown.done);

    let reply = imap.ok("UID SEARCH FLAGGED");
    let found: Vec<u32> =
        reply.starting("* SEARCH")[0].text.split(' ').skip(2).map(|n| n.parse().unwrap()).collect();
    assert_eq!(found, vec![uids[0], uids[1], uids[3]]);
}

/// RFC 9051 §6.4.4 (ESEARCH result options), §6.4.4.1-6.4.4.4 (SAVE and `$`), §6.3.1 (ENABLE
/// IMAP4rev2 makes plain SEARCH answer with ESEARCH).
#[test]
fn esearch_and_search_results() {
    let server = server();
    let mut imap = Imap::login(&server);
    let mut uids = Vec::new();
    for i in 0..12 {
        let from = if i % 3 == 0 { "Smith <smith@example.org>" } else { "Eric <eric@example.org>" };
        let f = if [1, 9, 10, 11].contains(&i) { "(\\Flagged)" } else { "()" };
        uids.push(imap.append("INBOX", f, &mail(from, &format!("esearch {i}"), "x\r\n")).1);
    }
    imap.ok("CREATE \"Other Messages\"");
    imap.ok("SELECT INBOX");

    // §6.3.1: an IMAP4rev1 client gets `* SEARCH`; after ENABLE IMAP4rev2, SEARCH answers ESEARCH.
    let before = imap.ok("SEARCH FLAGGED");
    assert_eq!(before.lines(), vec!["* SEARCH 2 10 11 12"]);
    let enabled = imap.ok("ENABLE IMAP4rev2");
    assert_eq!(enabled.lines(), vec!["* ENABLED IMAP4rev2"]);

    // Flagged: 2, 10, 11, 12; none from Smith among them except 10 (i = 9).
    let r = imap.run_tagged("A282", "SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"");
    assert_eq!(esearch(&r), es("A282", false, &[("MIN", "2"), ("COUNT", "3")]));
    let r = imap.run_tagged("A283", "SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"");
    assert_eq!(esearch(&r), es("A283", false, &[("ALL", "2,11:12")]));
    let r = imap.run_tagged("A284", "SEARCH RETURN (MIN MAX COUNT) TEXT \"string not in mailbox\"");
    assert_eq!(esearch(&r), es("A284", false, &[("COUNT", "0")]), "§6.4.4: no MIN/MAX when nothing matched");
    let r = imap.run_tagged("A285", "UID SEARCH RETURN (MIN MAX) 1:5000");
    let (min, max) = (uids[0].to_string(), uids[11].to_string());
    assert_eq!(esearch(&r), es("A285", true, &[("MIN", &min), ("MAX", &max)]));
    let r = imap.run_tagged("A287", "SEARCH RETURN (MIN MAX COUNT) FLAGGED");
    assert_eq!(esearch(&r), es("A287", false, &[("MIN", "2"), ("MAX", "12"), ("COUNT", "4")]));
    let r = imap.run_tagged("A286", "SEARCH RETURN (COUNT) FLAGGED");
    assert_eq!(esearch(&r), es("A286", false, &[("COUNT", "4")]));
    imap.expect("BAD", "SEARCH RETURN (BOGUS) ALL");

    // §6.4.4.4 example 1 and 2: SAVE, then FETCH $ (also pipelined).
    let r = imap.run_tagged("A282", "SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"");
    assert!(r.untagged.is_empty(), "SAVE alone returns no ESEARCH: {r:#?}");
    let f = imap.run_tagged("A283", "FETCH $ (UID FLAGS)").fetches();
    assert_eq!(f.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![2, 11, 12]);
    imap.client.send_raw(b"B1 SEARCH RETURN (SAVE) FROM smith\r\nB2 UID FETCH $ UID\r\n");
    assert_eq!(imap.reply("B1").status(), "OK");
    let f = imap.reply("B2").fetches();
    let got: Vec<u32> = f.iter().map(|(_, i)| i.uid()).collect();
    assert_eq!(got, vec![uids[0], uids[3], uids[6], uids[9]]);
    // Example 3: $ inside another search, and "UID SEARCH $ ..." (same meaning).
    let r = imap.run_tagged("A301", "UID SEARCH UID $ FLAGGED");
    assert_eq!(esearch(&r), es("A301", true, &[("ALL", &uids[9].to_string())]));
    let r = imap.run_tagged("A302", "UID SEARCH $ FLAGGED");
    assert_eq!(esearch(&r), es("A302", true, &[("ALL", &uids[9].to_string())]));
    // Example 10: SAVE with MIN saves only the minimum.
    imap.run_tagged("C284", "SEARCH RETURN (SAVE MIN) FLAGGED");
    let f = imap.ok("FETCH $ UID").fetches();
    assert_eq!(f.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![2]);
    imap.run_tagged("C285", "SEARCH RETURN (MAX SAVE MIN) FLAGGED");
    let f = imap.ok("FETCH $ UID").fetches();
    assert_eq!(f.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![2, 12]);
    // §6.4.4.1: SELECT resets $ to empty.
    imap.ok("SELECT INBOX");
    assert!(imap.ok("FETCH $ UID").fetches().is_empty(), "$ after SELECT");
    // Example 6: an empty $ is valid and matches nothing.
    imap.run_tagged("E282", "SEARCH RETURN (SAVE) SINCE 28-Oct-2036 NOT FROM \"Eric\"");
    let copy = imap.run_tagged("E283", "COPY $ \"Other Messages\"");
    assert_eq!(copy.status(), "OK", "{copy:?}");
    assert_eq!(
        status_of(&imap.ok("STATUS \"Other Messages\" (MESSAGES)"), "Other Messages"),
        items(&[("MESSAGES", 0)])
    );
    // §6.4.4.1: an expunged message leaves $.
    imap.ok("SEARCH RETURN (SAVE) FLAGGED");
    imap.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    assert_eq!(imap.ok("EXPUNGE").expunges(), vec![2]);
    let f = imap.ok("FETCH $ UID").fetches();
    assert_eq!(f.iter().map(|(_, i)| i.uid()).collect::<Vec<_>>(), vec![uids[9], uids[10], uids[11]]);

    // Plain SEARCH (no RETURN) in IMAP4rev2 means RETURN (ALL).
    let after = imap.run_tagged("A7", "SEARCH FLAGGED");
    assert_eq!(after.untagged.len(), 1, "{after:#?}");
    assert_eq!(esearch(&after), es("A7", false, &[("ALL", "9:11")]));
    let after = imap.run_tagged("A8", "UID SEARCH FROM nobody");
    assert_eq!(after.untagged.len(), 1, "{after:#?}");
    assert_eq!(esearch(&after), es("A8", true, &[]));
}

/// RFC 9051 §6.4.7 (COPY with COPYUID), §6.4.8 (MOVE: untagged OK COPYUID, then EXPUNGE; no
/// \Deleted left behind; TRYCREATE).
#[test]
fn copy_and_move_report_uids() {
    let server = server();
    let mut imap = Imap::login_rev2(&server);
    let uids = four_messages(&mut imap);
    imap.ok("CREATE MEETING");
    imap.ok("CREATE foo");

    let copy = imap.run_tagged("A003", "COPY 2:4 MEETING");
    assert_eq!(copy.status(), "OK");
    let (validity, from, to) = copy_uid(&copy.done).expect("COPYUID in the tagged OK");
    assert_eq!(expand(&from), uids[1..4].to_vec());
    let new = expand(&to);
    assert_eq!(new.len(), 3, "{to}");
    let status = imap.ok("STATUS MEETING (UIDVALIDITY UIDNEXT MESSAGES)");
    assert_eq!(
        status_of(&status, "MEETING"),
        items(&[("UIDVALIDITY", u64::from(validity)), ("UIDNEXT", u64::from(new[2]) + 1), ("MESSAGES", 3)])
    );
    let empty = imap.run_tagged("A005", &format!("UID COPY {}:{} MEETING", uids[3] + 100, uids[3] + 110));
    assert_eq!(empty.status(), "OK", "§6.4.7 example A005: {empty:?}");
    let missing = imap.expect("NO", "COPY 1 nowhere");
    assert!(missing.done.starts_with("NO [TRYCREATE]"), "{:?}", missing.done);

    // Copies keep flags (SHOULD, §6.4.7).
    imap.ok("EXAMINE MEETING");
    let f: Vec<BTreeSet<String>> =
        imap.ok("FETCH 1:3 FLAGS").fetches().into_iter().map(|(_, i)| i.flags()).collect();
    assert_eq!(f, vec![flags("\\Seen"), flags(""), flags("\\Flagged \\Seen")]);

    // §6.4.8 example: a UID MOVE.
    imap.ok("SELECT INBOX");
    let moved = imap.run_tagged("a", &format!("UID MOVE {}:{} foo", uids[1], uids[2]));
    assert_eq!(moved.status(), "OK", "{moved:?}");
    let lines = moved.lines();
    let copyuid = lines.iter().position(|l| l.starts_with("* OK [COPYUID ")).expect("an untagged OK COPYUID");
    let first_expunge = lines.iter().position(|l| l.ends_with(" EXPUNGE")).expect("EXPUNGE responses");
    assert!(copyuid < first_expunge, "COPYUID must come before the EXPUNGEs: {moved:#?}");
    let (_, from, _) = copy_uid(lines[copyuid]).unwrap();
    assert_eq!(expand(&from), uids[1..3].to_vec());
    assert_eq!(expunged_originals(&moved.expunges(), 4), vec![2, 3], "{moved:#?}");
    let left: Vec<u32> = imap.ok("FETCH 1:* UID").fetches().into_iter().map(|(_, i)| i.uid()).collect();
    assert_eq!(left, vec![uids[0], uids[3]]);
    // By sequence number too, and nothing \Deleted remains anywhere.
    let moved = imap.ok("MOVE 2 foo");
    assert_eq!(moved.expunges(), vec![2]);
    imap.ok("SELECT foo");
    let f = imap.ok("FETCH 1:* FLAGS").fetches();
    assert_eq!(f.len(), 3);
    assert!(f.iter().all(|(_, i)| !i.flags().contains("\\Deleted")), "{f:?}");
    assert_eq!(f[0].1.flags(), flags("\\Seen"), "MOVE keeps flags");
    let missing = imap.expect("NO", "MOVE 1 nowhere");
    assert!(missing.done.starts_with("NO [TRYCREATE]"), "{:?}", missing.done);
    assert!(imap.ok("NOOP").expunges().is_empty(), "a failed MOVE changes nothing");
}

/// RFC 9051 §6.4.1-6.4.3 and §6.4.9: EXPUNGE (the numbering of the example), UID EXPUNGE,
/// CLOSE (silent expunge), UNSELECT (no expunge).
#[test]
fn expunge_uid_expunge_close_unselect() {
    let server = server();
    let mut imap = Imap::login_rev2(&server);
    let mut uids = Vec::new();
    for i in 1..=11 {
        let f = if [3, 4, 7, 11].contains(&i) { "(\\Deleted)" } else { "()" };
        uids.push(imap.append("INBOX", f, &mail("e@example.org", &format!("x{i}"), "x\r\n")).1);
    }
    imap.ok("SELECT INBOX");
    // §6.4.3 example: messages 3, 4, 7 and 11 had \Deleted.
    let expunge = imap.run_tagged("A202", "EXPUNGE");
    // "3 3 5 8" from a lower-to-higher server, "11 7 4 3" from a higher-to-lower one.
    assert_eq!(expunged_originals(&expunge.expunges(), 11), vec![3, 4, 7, 11], "{expunge:#?}");

    // UID EXPUNGE removes only the named \Deleted messages (RFC 4315 §2.1).
    imap.ok("STORE 1:2 +FLAGS.SILENT (\\Deleted)");
    let uid_expunge = imap.ok(&format!("UID EXPUNGE {}", uids[1]));
    assert_eq!(uid_expunge.expunges(), vec![2]);
    let f = imap.ok("FETCH 1 (UID FLAGS)").fetches();
    assert_eq!(f[0].1.uid(), uids[0]);
    assert!(f[0].1.flags().contains("\\Deleted"), "the other \\Deleted message stays");

    // UNSELECT does not expunge.
    imap.run_tagged("A342", "UNSELECT");
    imap.expect("BAD", "FETCH 1 FLAGS");
    imap.ok("EXAMINE INBOX");
    assert!(imap.ok("NOOP").exists().is_none());
    let select = imap.ok("SELECT INBOX");
    assert_eq!(select.exists(), Some(6));
    // CLOSE in read-only mode does not expunge either.
    imap.ok("EXAMINE INBOX");
    imap.ok("CLOSE");
    assert_eq!(status_of(&imap.ok("STATUS INBOX (MESSAGES)"), "INBOX"), items(&[("MESSAGES", 6)]));
    // CLOSE expunges silently (§6.4.1).
    imap.ok("SELECT INBOX");
    let close = imap.run_tagged("A341", "CLOSE");
    assert_eq!(close.status(), "OK");
    assert!(close.expunges().is_empty(), "§6.4.1: no EXPUNGE responses: {close:#?}");
    assert_eq!(status_of(&imap.ok("STATUS INBOX (MESSAGES)"), "INBOX"), items(&[("MESSAGES", 5)]));
    imap.expect("BAD", "EXPUNGE");
}

/// RFC 9051 §6.3.10 (NAMESPACE), RFC 2971 (ID), §6.3.1 (ENABLE).
#[test]
fn namespace_id_enable() {
    let server = server();
    let mut imap = Imap::connect(&server);
    // ID works before login (RFC 2971 §3.1).
    let id = imap.ok("ID (\"name\" \"protocol-test\" \"version\" \"1\")");
    let line = &id.starting("* ID ")[0].text;
    assert!(line == "* ID NIL" || line.starts_with("* ID ("), "{line}");
    imap.expect("BAD", "ENABLE IMAP4rev2");
    imap.ok(&format!("LOGIN {USER} \"{PASSWORD}\""));
    let ns = imap.run_tagged("A001", "NAMESPACE");
    // RFC 9051 §6.3.10 example 2's shape: personal, other users, shared (teams).
    assert_eq!(
        ns.lines(),
        vec!["* NAMESPACE ((\"\" \"/\")) ((\"Other Users/\" \"/\")) ((\"Shared/\" \"/\"))"],
        "§6.3.10"
    );
    imap.ok("ID NIL");

    let enabled = imap.ok("ENABLE IMAP4rev2");
    assert_eq!(enabled.lines(), vec!["* ENABLED IMAP4rev2"]);
    // Already enabled, or unknown: OK without listing it again (§6.3.1).
    let again = imap.ok("ENABLE IMAP4rev2 X-UNKNOWN");
    assert!(again.lines().iter().all(|l| !l.contains("IMAP4rev2") && !l.contains("X-UNKNOWN")), "{again:#?}");
    // After IMAP4rev2: no RECENT in SELECT (§7.4 note) and ESEARCH for SEARCH.
    let select = imap.ok("SELECT INBOX");
    assert!(!select.lines().iter().any(|l| l.ends_with(" RECENT")), "{select:#?}");
}

// ---------------------------------------------------------------------------------------------
// Several sessions on one mailbox (RFC 9051 §5.2, §7.4.1, §7.5.1)
// ---------------------------------------------------------------------------------------------

/// Client B sees client A's APPEND as EXISTS, STORE as FETCH FLAGS and EXPUNGE as EXPUNGE at
/// its next NOOP, but never an EXPUNGE during a sequence-number FETCH (§7.5.1).
#[test]
fn two_clients_see_each_others_changes() {
    let server = server();
    let mut a = Imap::login_rev2(&server);
    let mut b = Imap::login_rev2(&server);
    let uids = four_messages(&mut a);
    b.ok("SELECT INBOX");

    let (_, uid5) = a.append("INBOX", "", FRED);
    let noop = b.ok("NOOP");
    assert_eq!(noop.exists(), Some(5), "B must learn of A's APPEND: {noop:#?}");

    a.ok("STORE 1 +FLAGS.SILENT (\\Answered)");
    let noop = b.ok("NOOP");
    let f = noop.fetches();
    assert_eq!(f.len(), 1, "{noop:#?}");
    assert_eq!(f[0].0, 1);
    assert_eq!(f[0].1.flags(), flags("\\Answered"));

    // A expunges message 2; B's FETCH by sequence number must not announce it.
    a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    assert_eq!(a.ok("EXPUNGE").expunges(), vec![2]);
    let fetch = b.ok("FETCH 1:* FLAGS");
    assert!(fetch.expunges().is_empty(), "§7.5.1: no EXPUNGE during FETCH: {fetch:#?}");
    assert!(fetch.fetches().iter().all(|(s, _)| *s <= 5), "{fetch:#?}");
    let store = b.ok("STORE 3 +FLAGS.SILENT (\\Seen)");
    assert!(store.expunges().is_empty(), "§7.5.1: no EXPUNGE during STORE: {store:#?}");
    let search = b.ok("SEARCH ALL");
    assert!(search.expunges().is_empty(), "§7.5.1: no EXPUNGE during SEARCH: {search:#?}");
    let noop = b.ok("NOOP");
    assert_eq!(noop.expunges(), vec![2], "the EXPUNGE comes at the next NOOP: {noop:#?}");
    let left: Vec<u32> = b.ok("FETCH 1:* UID").fetches().into_iter().map(|(_, i)| i.uid()).collect();
    assert_eq!(left, vec![uids[0], uids[2], uids[3], uid5]);
    // A sees B's STORE: B's message 3 (it had not yet seen the EXPUNGE) is uids[2], A's 2.
    let noop = a.ok("NOOP");
    assert!(noop.fetches().iter().any(|(s, i)| *s == 2 && i.flags().contains("\\Seen")), "{noop:#?}");

    // A UID command may carry pending EXPUNGEs (§7.5.1 note).
    a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    a.ok("EXPUNGE");
    let uid_fetch = b.ok("UID FETCH 1:* UID");
    let expunges_then = uid_fetch.expunges();
    let noop = b.ok("NOOP");
    assert_eq!([expunges_then, noop.expunges()].concat(), vec![1], "exactly one EXPUNGE for one message");

    // Several changes between two looks: B's view, rebuilt only from the EXISTS and EXPUNGE
    // responses in the order they came, must match the mailbox (RFC 9051 §7.4.1, §7.5.1).
    let mut view: Vec<Option<u32>> =
        b.ok("UID FETCH 1:* UID").fetches().into_iter().map(|(_, i)| Some(i.uid())).collect();
    let (_, x) = a.append("INBOX", "", FRED);
    a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    a.ok("EXPUNGE");
    let (_, y) = a.append("INBOX", "", FRED);
    a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    a.ok("EXPUNGE");
    let noop = b.ok("NOOP");
    for resp in &noop.untagged {
        if let Some(n) = number_before(&resp.text, " EXISTS") {
            assert!(n as usize >= view.len(), "EXISTS may not shrink the mailbox: {noop:#?}");
            view.resize(n as usize, None);
        } else if let Some(n) = number_before(&resp.text, " EXPUNGE") {
            assert!(n >= 1 && n as usize <= view.len(), "EXPUNGE {n} of {}: {noop:#?}", view.len());
            view.remove(n as usize - 1);
        }
    }
    let truth: Vec<u32> = a.ok("UID FETCH 1:* UID").fetches().into_iter().map(|(_, i)| i.uid()).collect();
    assert_eq!(view.len(), truth.len(), "B's message count after {noop:#?}");
    let known: Vec<(usize, u32)> = view.iter().enumerate().filter_map(|(i, u)| u.map(|u| (i, u))).collect();
    assert!(known.iter().all(|(i, u)| truth[*i] == *u), "B's numbering {view:?} vs {truth:?}");
    let seen: Vec<u32> = b.ok("FETCH 1:* UID").fetches().into_iter().map(|(_, i)| i.uid()).collect();
    assert_eq!(seen, truth);
    assert!(truth.contains(&x) && truth.contains(&y));
}

/// RFC 9051 §6.3.13: an IDLE client sees another client's APPEND within a second, and DONE ends
/// the IDLE with a tagged OK.
#[test]
fn idle_sees_another_clients_append() {
    let server = server();
    let mut a = Imap::login_rev2(&server);
    let mut b = Imap::login_rev2(&server);
    a.append("INBOX", "", FRED);
    let select = a.run_tagged("A001", "SELECT INBOX");
    assert_eq!(select.exists(), Some(1));
    a.client.send("A002 IDLE");
    let go_ahead = a.client.read_line();
    assert!(go_ahead.starts_with('+'), "{go_ahead:?}");

    let sent = Instant::now();
    b.append("INBOX", "", FRED);
    a.client.set_timeout(Duration::from_secs(1));
    let line = a.client.read_line();
    assert_eq!(line, "* 2 EXISTS", "within a second of the APPEND ({:?})", sent.elapsed());
    a.client.set_timeout(common::PATIENCE);

    // An expunge by B shows during IDLE too.
    b.ok("SELECT INBOX");
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    b.ok("EXPUNGE");
    // A may first see B's STORE as a FETCH; the EXPUNGE must follow.
    loop {
        let line = a.client.read_line();
        if line == "* 1 EXPUNGE" {
            break;
        }
        assert!(line.starts_with("* 1 FETCH"), "unexpected during IDLE: {line:?}");
    }

    // A flag change by B shows during IDLE as FETCH (§6.4.6 note, §7.5.2).
    b.append("INBOX", "", FRED);
    assert_eq!(a.client.read_line(), "* 2 EXISTS");
    b.ok("NOOP");
    b.ok("STORE 1 +FLAGS.SILENT (\\Flagged)");
    let line = a.client.read_line();
    let resp = Resp { text: line.clone(), literals: Vec::new() };
    let (seq, items) = fetch_of(&resp).unwrap_or_else(|| panic!("expected a FETCH, got {line:?}"));
    assert_eq!((seq, items.flags()), (1, flags("\\Flagged")));

    a.client.send("DONE");
    let done = a.reply("A002");
    assert_eq!(done.status(), "OK", "{done:?}");
    a.ok("NOOP");
    assert_eq!(a.ok("FETCH 1:* UID").fetches().len(), 2);

    // IDLE in the authenticated state is allowed too; a bad continuation line ends it with BAD.
    b.ok("UNSELECT");
    b.client.send("B1 IDLE");
    assert!(b.client.read_line().starts_with('+'));
    b.client.send("NOT DONE");
    let ended = b.reply("B1");
    assert_eq!(ended.status(), "BAD", "RFC 2177: anything but DONE is an error: {ended:?}");
    b.ok("NOOP");
}

// ---------------------------------------------------------------------------------------------
// Literals (RFC 9051 §4.3, RFC 7888)
// ---------------------------------------------------------------------------------------------

/// A synchronizing literal gets `+`, a non-synchronizing one (LITERAL+) needs none, and a literal
/// above APPENDLIMIT is refused with a tagged NO or BAD while the connection stays usable.
#[test]
fn literals_and_the_append_limit() {
    let server = TestServer::start_with("max_message_size = 2048");
    server.add_user(USER, PASSWORD);
    let mut imap = Imap::connect(&server);
    imap.client.send(&format!("L1 LOGIN {{{}}}", USER.len()));
    assert!(imap.client.read_line().starts_with('+'), "a synchronizing literal in LOGIN");
    imap.client.send(&format!("{USER} {{{}+}}", PASSWORD.len()));
    imap.client.send(PASSWORD);
    assert_eq!(imap.reply("L1").status(), "OK");

    let caps = imap.ok("CAPABILITY");
    assert!(caps.starting("* CAPABILITY")[0].text.split(' ').any(|w| w == "APPENDLIMIT=2048"), "{caps:#?}");

    // Synchronizing: the server asks for the data.
    imap.client.send(&format!("L2 APPEND INBOX {{{}}}", FRED.len()));
    assert!(imap.client.read_line().starts_with('+'));
    imap.client.send(FRED);
    assert_eq!(imap.reply("L2").status(), "OK");
    // Non-synchronizing: the data follows at once.
    imap.client.send_raw(format!("L3 APPEND INBOX {{{}+}}\r\n{FRED}\r\n", FRED.len()).as_bytes());
    assert_eq!(imap.reply("L3").status(), "OK");
    // Literals in other places: a mailbox name, a search string.
    imap.client.send_raw(b"L4 CREATE {5+}\r\nA\"b c\r\n");
    assert_eq!(imap.reply("L4").status(), "OK");
    assert!(names(&imap.ok("LIST \"\" *"), "LIST").contains("A\"b c"));

    // Too big, synchronizing: refused instead of "+" (RFC 7888 §4, RFC 9051 §7.1 TOOBIG).
    let big = "x".repeat(3000);
    imap.client.send(&format!("L5 APPEND INBOX {{{}}}", big.len()));
    let answer = imap.client.read_line();
    assert!(answer.starts_with("L5 NO") || answer.starts_with("L5 BAD"), "{answer:?}");
    imap.ok("NOOP");
    // Too big, non-synchronizing: the server reads past the data and refuses.
    imap.client.send_raw(format!("L6 APPEND INBOX {{{}+}}\r\n{big}\r\n", big.len()).as_bytes());
    let answer = imap.reply("L6");
    assert!(answer.status() == "NO" || answer.status() == "BAD", "{answer:?}");
    imap.ok("NOOP");
    let status = imap.ok("STATUS INBOX (MESSAGES)");
    assert_eq!(
        status_of(&status, "INBOX"),
        items(&[("MESSAGES", 2)]),
        "nothing of the refused APPENDs was stored"
    );
    imap.ok("SELECT INBOX");
    let f = imap.ok("FETCH 1:* BODY.PEEK[]").fetches();
    assert!(f.iter().all(|(_, i)| i.item("BODY[]").string() == FRED));
}
