//! The URLAUTH commands (RFC 4467 §7, §9): GENURLAUTH, RESETKEY and URLFETCH. The URLs stay
//! strings here; [`crate::imapurl::ImapUrl`] reads them where they are used, since a bad URL
//! is answered per URL (NO, or NIL in URLFETCH), not with BAD.

use super::{PResult, Parser};
use crate::types::{CommandBody, MAX_URLAUTH_URLS, UrlFetchArg, UrlFetchData, UrlFetchParams};

impl Parser<'_> {
    /// `genurlauth = "GENURLAUTH" 1*(SP url-rump SP mechanism)`; `url-rump = astring`.
    pub(super) fn genurlauth(&mut self) -> PResult<CommandBody> {
        let mut pairs = Vec::new();
        while self.peek() == Some(b' ') {
            if pairs.len() == MAX_URLAUTH_URLS {
                return self.fail_msg("too many URLs in one command");
            }
            self.sp()?;
            let url = self.url_astring()?;
            self.sp()?;
            let mechanism = self.mechanism()?;
            pairs.push((url, mechanism));
        }
        if pairs.is_empty() {
            return self.fail("SP url-rump SP mechanism");
        }
        Ok(CommandBody::GenUrlAuth(pairs))
    }

    /// `resetkey = "RESETKEY" [SP mailbox *(SP mechanism)]`.
    pub(super) fn resetkey(&mut self) -> PResult<CommandBody> {
        if self.at_end() {
            return Ok(CommandBody::ResetKey { mailbox: None, mechanisms: Vec::new() });
        }
        self.sp()?;
        let mailbox = self.mailbox()?;
        let mut mechanisms = Vec::new();
        while self.peek() == Some(b' ') {
            if mechanisms.len() == MAX_URLAUTH_URLS {
                return self.fail_msg("too many mechanisms");
            }
            self.sp()?;
            mechanisms.push(self.mechanism()?);
        }
        Ok(CommandBody::ResetKey { mailbox: Some(mailbox), mechanisms })
    }

    /// `urlfetch = "URLFETCH" 1*(SP url-fetch-arg)`; `url-fetch-arg = url-full / "(" url-full
    /// *(SP url-fetch-param) ")"`; `url-fetch-param = "BODYPARTSTRUCTURE" / "BODY" / "BINARY"`
    /// (RFC 4467 §9, RFC 5524 §4). BODY and BINARY together, an unknown or repeated parameter
    /// are syntax errors (BAD). `(url)` alone asks for BODY, the RFC 4467 data in the
    /// parenthesised answer.
    pub(super) fn urlfetch(&mut self) -> PResult<CommandBody> {
        let mut urls = Vec::new();
        while self.peek() == Some(b' ') {
            if urls.len() == MAX_URLAUTH_URLS {
                return self.fail_msg("too many URLs in one command");
            }
            self.sp()?;
            if self.eat(b'(') {
                let url = self.url_astring()?;
                let params = self.url_fetch_params()?;
                urls.push(UrlFetchArg { url, params: Some(params) });
            } else {
                urls.push(UrlFetchArg { url: self.url_astring()?, params: None });
            }
        }
        if urls.is_empty() {
            return self.fail("SP url-full");
        }
        Ok(CommandBody::UrlFetch(urls))
    }

    /// `*(SP url-fetch-param) ")"` after the URL of a parenthesised URLFETCH argument.
    fn url_fetch_params(&mut self) -> PResult<UrlFetchParams> {
        let mut params = UrlFetchParams::default();
        let mut seen_structure = false;
        while self.eat(b' ') {
            let start = self.pos;
            let name = self.word_req("URLFETCH parameter")?.to_ascii_uppercase();
            let data = match name.as_slice() {
                b"BODYPARTSTRUCTURE" if !seen_structure => {
                    seen_structure = true;
                    params.body_part_structure = true;
                    continue;
                }
                b"BODY" => UrlFetchData::Body,
                b"BINARY" => UrlFetchData::Binary,
                _ => {
                    self.pos = start;
                    return self.fail_msg("BODYPARTSTRUCTURE, BODY or BINARY, each once");
                }
            };
            if params.data.is_some() {
                self.pos = start;
                return self.fail_msg("BODY and BINARY exclude each other, each once");
            }
            params.data = Some(data);
        }
        self.byte(b')', "')' after the URLFETCH parameters")?;
        if !params.body_part_structure && params.data.is_none() {
            params.data = Some(UrlFetchData::Body);
        }
        Ok(params)
    }

    /// A URL as an `astring`; URLs are ASCII (RFC 5092 percent-encodes the rest).
    fn url_astring(&mut self) -> PResult<String> {
        let start = self.pos;
        let raw = self.astring()?;
        match String::from_utf8(raw) {
            Ok(url) if url.is_ascii() => Ok(url),
            _ => {
                self.pos = start;
                self.fail("URL in ASCII")
            }
        }
    }

    /// `mechanism = "INTERNAL" / 1*(ALPHA / DIGIT / "-" / ".")`, uppercased.
    fn mechanism(&mut self) -> PResult<String> {
        let m = self.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
        if m.is_empty() {
            return self.fail("URLAUTH mechanism");
        }
        Ok(String::from_utf8_lossy(m).to_ascii_uppercase())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::parse::parse_command;
    use crate::parse::tests::body;
    use crate::types::{CommandBody, MAX_URLAUTH_URLS, UrlFetchArg, UrlFetchData, UrlFetchParams};

    /// RFC 4467 §7's examples.
    #[test]
    fn rfc4467_examples() {
        let rump = "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred";
        assert_eq!(
            body(&format!("a001 GENURLAUTH \"{rump}\" INTERNAL")),
            CommandBody::GenUrlAuth(vec![(rump.into(), "INTERNAL".into())])
        );
        assert_eq!(
            body(
                "a002 GENURLAUTH imap://joe@example.com/INBOX/;uid=20;urlauth=anonymous internal \"imap://joe@example.com/Drafts/;uid=3;urlauth=authuser\" INTERNAL"
            ),
            CommandBody::GenUrlAuth(vec![
                ("imap://joe@example.com/INBOX/;uid=20;urlauth=anonymous".into(), "INTERNAL".into()),
                ("imap://joe@example.com/Drafts/;uid=3;urlauth=authuser".into(), "INTERNAL".into()),
            ])
        );
        assert_eq!(body("a001 RESETKEY"), CommandBody::ResetKey { mailbox: None, mechanisms: vec![] });
        match body("a002 RESETKEY INBOX INTERNAL") {
            CommandBody::ResetKey { mailbox, mechanisms } => {
                assert_eq!(mailbox.unwrap().as_bytes(), b"INBOX");
                assert_eq!(mechanisms, vec!["INTERNAL".to_owned()]);
            }
            b => panic!("{b:?}"),
        }
        let full = format!("{rump}:internal:91354a473744909de610943775f92038");
        assert_eq!(
            body(&format!("a003 URLFETCH \"{full}\" {full}")),
            CommandBody::UrlFetch(vec![
                UrlFetchArg { url: full.clone(), params: None },
                UrlFetchArg { url: full, params: None }
            ])
        );
    }

    /// RFC 5524 §4's parenthesised form.
    #[test]
    fn rfc5524_fetch_params() {
        let url = "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred:internal:91354a473744909de610943775f92038";
        let one = |params: &str| match body(&format!("a URLFETCH (\"{url}\"{params})")) {
            CommandBody::UrlFetch(mut args) => {
                assert_eq!(args.len(), 1);
                let arg = args.remove(0);
                assert_eq!(arg.url, url);
                arg.params.unwrap()
            }
            b => panic!("{b:?}"),
        };
        let p = |body_part_structure, data| UrlFetchParams { body_part_structure, data };
        assert_eq!(one(" BINARY"), p(false, Some(UrlFetchData::Binary)));
        assert_eq!(one(" binary bodypartstructure"), p(true, Some(UrlFetchData::Binary)));
        assert_eq!(one(" BODYPARTSTRUCTURE"), p(true, None));
        assert_eq!(one(" BODY BODYPARTSTRUCTURE"), p(true, Some(UrlFetchData::Body)));
        assert_eq!(one(""), p(false, Some(UrlFetchData::Body)));
        // Plain and parenthesised URLs mix; an atom URL ends at the parenthesis.
        match body(&format!("a URLFETCH {url} ({url} BINARY)")) {
            CommandBody::UrlFetch(args) => {
                assert_eq!(args[0].params, None);
                assert_eq!(args[1].params, Some(p(false, Some(UrlFetchData::Binary))));
                assert_eq!(args[1].url, url);
            }
            b => panic!("{b:?}"),
        }
    }

    #[test]
    fn refusals() {
        for bad in [
            "a GENURLAUTH",
            "a GENURLAUTH \"imap://a@b/INBOX/;uid=1;urlauth=anonymous\"",
            "a GENURLAUTH \"imap://a@b/INBOX/;uid=1;urlauth=anonymous\" ",
            "a GENURLAUTH \"imap://a@b/INBOX/;uid=1;urlauth=anonymous\" INT*ERNAL",
            "a RESETKEY ",
            "a URLFETCH",
            "a URLFETCH (\"imap://a@b/INBOX/;uid=1\" BINARY",
            "a URLFETCH (\"imap://a@b/INBOX/;uid=1\" BINARY BODY)",
            "a URLFETCH (\"imap://a@b/INBOX/;uid=1\" BINARY BINARY)",
            "a URLFETCH (\"imap://a@b/INBOX/;uid=1\" BODYPARTSTRUCTURE BODYPARTSTRUCTURE)",
            "a URLFETCH (\"imap://a@b/INBOX/;uid=1\" BINARY.PEEK)",
            "a URLFETCH (\"imap://a@b/INBOX/;uid=1\" (BINARY))",
            "a URLFETCH (\"imap://a@b/INBOX/;uid=1\"BINARY)",
            "a URLFETCH ()",
            "a URLFETCH \"imap://a@b/K\u{fc}che/;uid=1\"",
        ] {
            assert!(parse_command(bad.as_bytes()).is_err(), "{bad}");
        }
        let many = format!("a URLFETCH {}", vec!["x"; MAX_URLAUTH_URLS + 1].join(" "));
        assert!(parse_command(many.as_bytes()).is_err());
    }
}
