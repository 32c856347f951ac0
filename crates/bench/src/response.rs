//! Server response framing and a light protocol check, with no I/O.
//!
//! [`ResponseReader`] cuts the server's byte stream into complete responses: one line, plus any
//! literals (`{n}\r\n` followed by n octets, RFC 9051 §4.3) and the line text after them.
//! [`classify`] names what a response is (tagged completion, untagged data, continuation), and
//! [`check_data`] checks that an untagged data response is well-bracketed. That is all a load
//! generator needs: it counts and times responses, it does not interpret FETCH data.
//!
//! Limits: one response (line and literals together) may not exceed the reader's `max_item`
//! bytes; a larger one is an error rather than unbounded buffering. Nothing here panics.

use thiserror::Error;

/// Why the byte stream could not be framed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    /// A response (line plus literals) grew past the configured limit.
    #[error("response larger than {limit} bytes")]
    TooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// A literal announced a length that is not a number that fits.
    #[error("bad literal length")]
    BadLiteral,
}

/// Splits server output into complete responses.
#[derive(Debug)]
pub struct ResponseReader {
    buf: Vec<u8>,
    /// Start of the response being framed.
    start: usize,
    /// Where the search for the next LF resumes (never before `start`).
    scan: usize,
    /// Set while waiting for literal octets: the buffer position where they end.
    literal_end: Option<usize>,
    /// Start of the current line segment: after the last literal, whose octets may look like
    /// anything, including a literal announcement.
    segment: usize,
    max_item: usize,
}

impl ResponseReader {
    /// A reader that rejects responses larger than `max_item` bytes.
    pub fn new(max_item: usize) -> ResponseReader {
        ResponseReader {
            buf: Vec::with_capacity(16 * 1024),
            start: 0,
            scan: 0,
            literal_end: None,
            segment: 0,
            max_item,
        }
    }

    /// Adds bytes read from the server.
    pub fn push(&mut self, data: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(data);
    }

    /// Bytes not yet returned as a complete response.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete response (CRLF included), or `None` when more input is needed.
    pub fn next_response(&mut self) -> Result<Option<&[u8]>, FrameError> {
        loop {
            if let Some(end) = self.literal_end {
                if end - self.start > self.max_item {
                    return Err(FrameError::TooLarge { limit: self.max_item });
                }
                if self.buf.len() < end {
                    return Ok(None);
                }
                self.literal_end = None;
                self.scan = end;
                self.segment = end;
            }
            let Some(offset) =
                self.buf.get(self.scan..).and_then(|rest| rest.iter().position(|b| *b == b'\n'))
            else {
                self.scan = self.buf.len();
                if self.pending() > self.max_item {
                    return Err(FrameError::TooLarge { limit: self.max_item });
                }
                return Ok(None);
            };
            let lf = self.scan + offset;
            if let Some(n) = literal_length(self.buf.get(self.segment..lf).unwrap_or_default())? {
                self.literal_end = Some(lf + 1 + n);
                continue;
            }
            let (start, end) = (self.start, lf + 1);
            self.start = end;
            self.scan = end;
            self.segment = end;
            return Ok(self.buf.get(start..end));
        }
    }

    /// Drops consumed bytes once they are worth moving.
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        if self.start == self.buf.len() || self.start >= 64 * 1024 {
            self.buf.drain(..self.start);
            self.scan -= self.start;
            self.segment -= self.start;
            self.literal_end = self.literal_end.map(|e| e - self.start);
            self.start = 0;
        }
    }
}

/// If `line` (up to, not including, its LF) ends with a literal announcement `{n}` or `{n+}`
/// (optionally before a CR), its length.
fn literal_length(line: &[u8]) -> Result<Option<usize>, FrameError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(inner) = line.strip_suffix(b"}") else { return Ok(None) };
    let Some(open) = inner.iter().rposition(|b| *b == b'{') else { return Ok(None) };
    let digits = inner.get(open + 1..).unwrap_or_default();
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        // `{` ... `}` that is not a literal, e.g. in human-readable text.
        return Ok(None);
    }
    let text = std::str::from_utf8(digits).map_err(|_| FrameError::BadLiteral)?;
    text.parse::<usize>().map(Some).map_err(|_| FrameError::BadLiteral)
}

/// The status word of a status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `OK`
    Ok,
    /// `NO`
    No,
    /// `BAD`
    Bad,
    /// `BYE` (untagged only)
    Bye,
    /// `PREAUTH` (untagged only)
    Preauth,
}

impl Status {
    fn parse(word: &[u8]) -> Option<Status> {
        Some(match word.to_ascii_uppercase().as_slice() {
            b"OK" => Status::Ok,
            b"NO" => Status::No,
            b"BAD" => Status::Bad,
            b"BYE" => Status::Bye,
            b"PREAUTH" => Status::Preauth,
            _ => return None,
        })
    }
}

/// What one response is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind<'a> {
    /// `tag OK|NO|BAD text`: the completion of a command.
    Tagged {
        /// The tag as sent.
        tag: &'a [u8],
        /// The completion status.
        status: Status,
        /// The rest of the line (response code and text), without CRLF.
        text: &'a [u8],
    },
    /// `* OK|NO|BAD|BYE|PREAUTH text`.
    UntaggedStatus {
        /// The status word.
        status: Status,
        /// The rest of the line, without CRLF.
        text: &'a [u8],
    },
    /// `* [n] KEYWORD ...`: untagged data such as `* 3 EXISTS` or `* CAPABILITY ...`.
    Data {
        /// The leading number of `* n EXISTS`, `* n FETCH`, ...
        number: Option<u32>,
        /// The keyword, upper-cased.
        keyword: Vec<u8>,
    },
    /// `+ text`: the server waits for a literal or for IDLE's `DONE`.
    Continuation,
    /// Anything else: a protocol error.
    Malformed,
}

/// Untagged data keywords this tool accepts (RFC 9051 §7 and common extensions).
const DATA_KEYWORDS: &[&[u8]] = &[
    b"CAPABILITY",
    b"LIST",
    b"LSUB",
    b"STATUS",
    b"SEARCH",
    b"ESEARCH",
    b"FLAGS",
    b"ENABLED",
    b"ID",
    b"NAMESPACE",
    b"EXISTS",
    b"RECENT",
    b"EXPUNGE",
    b"FETCH",
    b"VANISHED",
    b"METADATA",
    b"QUOTA",
    b"QUOTAROOT",
    b"SORT",
    b"THREAD",
    b"ACL",
    b"MYRIGHTS",
    b"LISTRIGHTS",
];

/// Names what `response` (a complete response from [`ResponseReader`]) is.
pub fn classify(response: &[u8]) -> Kind<'_> {
    let line = first_line(response);
    if line == b"+" || line.starts_with(b"+ ") {
        return Kind::Continuation;
    }
    let (first, rest) = split_word(line);
    if first.is_empty() {
        return Kind::Malformed;
    }
    if first == b"*" {
        let (word, after) = split_word(rest);
        if let Some(status) = Status::parse(word) {
            return Kind::UntaggedStatus { status, text: after };
        }
        let (number, keyword) = if word.iter().all(u8::is_ascii_digit) && !word.is_empty() {
            let n = std::str::from_utf8(word).ok().and_then(|s| s.parse::<u32>().ok());
            let (kw, _) = split_word(after);
            match n {
                Some(n) => (Some(n), kw),
                None => return Kind::Malformed,
            }
        } else {
            (None, word)
        };
        let keyword = keyword.to_ascii_uppercase();
        if !DATA_KEYWORDS.contains(&keyword.as_slice()) {
            return Kind::Malformed;
        }
        return Kind::Data { number, keyword };
    }
    // RFC 9051 §9: tag = 1*<any ASTRING-CHAR except "+">.
    if first.iter().any(|b| !b.is_ascii_graphic() || b"(){%*\"\\+".contains(b)) {
        return Kind::Malformed;
    }
    let (word, text) = split_word(rest);
    match Status::parse(word) {
        Some(status @ (Status::Ok | Status::No | Status::Bad)) => Kind::Tagged { tag: first, status, text },
        _ => Kind::Malformed,
    }
}

/// The first line of a response without its CRLF.
fn first_line(response: &[u8]) -> &[u8] {
    let end = response.iter().position(|b| *b == b'\n').unwrap_or(response.len());
    let line = response.get(..end).unwrap_or_default();
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Splits at the first space: (word, rest after the space).
fn split_word(s: &[u8]) -> (&[u8], &[u8]) {
    match s.iter().position(|b| *b == b' ') {
        Some(i) => (s.get(..i).unwrap_or_default(), s.get(i + 1..).unwrap_or_default()),
        None => (s, &[]),
    }
}

/// Checks the bracketing of an untagged data response: parentheses balance and never go
/// negative, quoted strings close, and literals are skipped by their announced length.
/// Status responses carry free text and must not be checked with this.
pub fn check_data(response: &[u8]) -> bool {
    let mut depth: i64 = 0;
    let mut i = 0;
    let mut in_quote = false;
    while let Some(&b) = response.get(i) {
        if in_quote {
            match b {
                b'\\' => i += 1,
                b'"' => in_quote = false,
                b'\r' | b'\n' => return false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => in_quote = true,
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            b'\n' => {
                // A line break inside a response is only legal right after a literal announcement.
                let line = response.get(..i).unwrap_or_default();
                let start = line.iter().rposition(|c| *c == b'\n').map_or(0, |p| p + 1);
                match literal_length(line.get(start..).unwrap_or_default()) {
                    Ok(Some(n)) => i += n,
                    _ if i + 1 == response.len() => {}
                    _ => return false,
                }
            }
            _ => {}
        }
        i += 1;
    }
    depth == 0 && !in_quote
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn all(reader: &mut ResponseReader) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(r) = reader.next_response().unwrap() {
            out.push(r.to_vec());
        }
        out
    }

    #[test]
    fn frames_lines_and_literals_across_pushes() {
        // RFC 9051 §8 example, fed one byte at a time.
        let stream =
            b"* 12 FETCH (FLAGS (\\Seen) BODY[HEADER] {10}\r\nab\r\ncdef\r\n)\r\na003 OK FETCH completed\r\n";
        let mut reader = ResponseReader::new(1024);
        let mut got = Vec::new();
        for b in stream.iter() {
            reader.push(&[*b]);
            got.extend(all(&mut reader));
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], b"* 12 FETCH (FLAGS (\\Seen) BODY[HEADER] {10}\r\nab\r\ncdef\r\n)\r\n".to_vec());
        assert_eq!(got[1], b"a003 OK FETCH completed\r\n".to_vec());
        assert_eq!(reader.pending(), 0);
    }

    #[test]
    fn literal_containing_brace_line() {
        // The literal's own content ends with "{3}" before a CRLF: it must not be taken as another
        // literal announcement, because it is skipped by length.
        let stream = b"* 1 FETCH (BODY[] {5}\r\n{3}\r\n)\r\n";
        let mut reader = ResponseReader::new(1024);
        reader.push(stream);
        let got = all(&mut reader);
        assert_eq!(got, vec![stream.to_vec()]);
        assert!(check_data(&got[0]));
    }

    #[test]
    fn literal_ending_like_an_announcement() {
        // The 7 literal octets end in "{3}\r"; the LF after them ends the response.
        let stream = b"* 1 FETCH (BODY[] {7}\r\nabc{3}\r\nt OK\r\n";
        let mut reader = ResponseReader::new(1024);
        reader.push(stream);
        let got = all(&mut reader);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], b"t OK\r\n".to_vec());
    }

    #[test]
    fn size_limits() {
        let mut reader = ResponseReader::new(16);
        reader.push(b"* 1 FETCH (BODY[] {100}\r\n");
        assert_eq!(reader.next_response(), Err(FrameError::TooLarge { limit: 16 }));
        let mut reader = ResponseReader::new(16);
        reader.push(&[b'x'; 40]);
        assert_eq!(reader.next_response(), Err(FrameError::TooLarge { limit: 16 }));
        let mut reader = ResponseReader::new(1 << 20);
        reader.push(b"* OK {99999999999999999999999}\r\n");
        assert_eq!(reader.next_response(), Err(FrameError::BadLiteral));
    }

    #[test]
    fn classifies_rfc_examples() {
        assert_eq!(
            classify(b"a002 OK [READ-WRITE] SELECT completed\r\n"),
            Kind::Tagged { tag: b"a002", status: Status::Ok, text: b"[READ-WRITE] SELECT completed" }
        );
        assert_eq!(
            classify(b"A654 bad no such command\r\n"),
            Kind::Tagged { tag: b"A654", status: Status::Bad, text: b"no such command" }
        );
        assert_eq!(
            classify(b"* 172 EXISTS\r\n"),
            Kind::Data { number: Some(172), keyword: b"EXISTS".to_vec() }
        );
        assert_eq!(
            classify(b"* CAPABILITY IMAP4rev2 IDLE\r\n"),
            Kind::Data { number: None, keyword: b"CAPABILITY".to_vec() }
        );
        assert_eq!(
            classify(b"* OK [UNSEEN 12] Message 12 is first unseen\r\n"),
            Kind::UntaggedStatus { status: Status::Ok, text: b"[UNSEEN 12] Message 12 is first unseen" }
        );
        assert_eq!(classify(b"* BYE\r\n"), Kind::UntaggedStatus { status: Status::Bye, text: b"" });
        assert_eq!(classify(b"+ idling\r\n"), Kind::Continuation);
        assert_eq!(classify(b"+\r\n"), Kind::Continuation);
        assert_eq!(classify(b"* FROBNICATE 1\r\n"), Kind::Malformed);
        assert_eq!(classify(b"* 99999999999 EXISTS\r\n"), Kind::Malformed);
        assert_eq!(classify(b"a1 MAYBE\r\n"), Kind::Malformed);
        assert_eq!(classify(b"+tag OK\r\n"), Kind::Malformed);
        assert_eq!(classify(b"\r\n"), Kind::Malformed);
    }

    #[test]
    fn bracketing_check() {
        assert!(check_data(b"* 1 FETCH (FLAGS (\\Seen) UID 4)\r\n"));
        assert!(check_data(b"* LIST (\\HasNoChildren) \"/\" \"a (b\"\r\n"));
        assert!(check_data(b"* 2 FETCH (ENVELOPE (NIL \"x \\\" )\" NIL))\r\n"));
        assert!(!check_data(b"* 1 FETCH (FLAGS (\\Seen) UID 4\r\n"));
        assert!(!check_data(b"* 1 FETCH FLAGS)(\r\n"));
        assert!(!check_data(b"* LIST () \"/\" \"open\r\n"));
        assert!(!check_data(b"* 1 FETCH (X\nY)\r\n"));
    }
}
