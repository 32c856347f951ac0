//! Untagged data responses (RFC 9051 §7.2–§7.5 and extensions): each [`Data`] value becomes one
//! response, CRLF included.

use super::bodystructure::{BodyForm, write_body};
use super::fetch::{fetch_value_is_writable, write_fetch_value};
use super::primitives::{
    is_atom, is_object_id, write_astring_opts, write_atom_list, write_flag_list, write_mailbox,
    write_mailbox_string, write_nstring_opts, write_number_set, write_ordered_set, write_string,
    write_string_opts, write_u64,
};
use super::types::{
    Data, ESearchItem, FetchValue, ListExtended, MailboxAttr, NamespaceDesc, ThreadToken, UrlFetchValue,
    WriteOptions,
};
use crate::types::StatusItem;

/// Writes one untagged data response, CRLF included. Responses that cannot be written
/// validly (e.g. `VANISHED` with an empty set) are skipped entirely.
pub fn write_data(out: &mut Vec<u8>, data: &Data, opts: WriteOptions) {
    match data {
        Data::Capability(caps) => {
            out.extend_from_slice(b"* CAPABILITY");
            write_atom_list(out, caps);
        }
        Data::List { attributes, delimiter, name, extended } => {
            out.extend_from_slice(b"* LIST ");
            write_list_body(out, attributes, *delimiter, name, opts);
            write_list_extended(out, extended, opts);
        }
        Data::Lsub { attributes, delimiter, name } => {
            out.extend_from_slice(b"* LSUB ");
            write_list_body(out, attributes, *delimiter, name, opts);
        }
        Data::Status { mailbox, items, mailbox_id } => {
            out.extend_from_slice(b"* STATUS ");
            write_mailbox(out, mailbox, opts.utf8);
            out.extend_from_slice(b" (");
            let mut first = true;
            for (item, value) in items {
                if *item == StatusItem::MailboxId {
                    continue;
                }
                if !first {
                    out.push(b' ');
                }
                first = false;
                out.extend_from_slice(item.as_str().as_bytes());
                out.push(b' ');
                write_u64(out, *value);
            }
            if let Some(id) = mailbox_id.as_deref().filter(|id| is_object_id(id)) {
                if !first {
                    out.push(b' ');
                }
                out.extend_from_slice(b"MAILBOXID (");
                out.extend_from_slice(id.as_bytes());
                out.push(b')');
            }
            out.push(b')');
        }
        Data::Flags(flags) => {
            out.extend_from_slice(b"* FLAGS ");
            write_flag_list(out, flags);
        }
        Data::Exists(n) => write_numbered(out, *n, b"EXISTS"),
        Data::Recent(n) => write_numbered(out, *n, b"RECENT"),
        // RFC 9051 §9 `message-data = nz-number SP "EXPUNGE"`: nothing valid to say for 0.
        // RFC 9586 §3: no message number under UIDONLY (the session sends VANISHED instead).
        Data::Expunge(_) if opts.uidonly => return,
        Data::Expunge(0) => return,
        Data::Expunge(n) => write_numbered(out, *n, b"EXPUNGE"),
        Data::Search { numbers, modseq } => {
            out.extend_from_slice(b"* SEARCH");
            for n in numbers.iter().filter(|&&n| n > 0) {
                out.push(b' ');
                write_u64(out, u64::from(*n));
            }
            // RFC 7162 §3.1.5: the MODSEQ item only follows a non-empty result.
            if let Some(m) = modseq
                && numbers.iter().any(|&n| n > 0)
            {
                out.extend_from_slice(b" (MODSEQ ");
                write_u64(out, *m);
                out.push(b')');
            }
        }
        Data::ESearch { tag, uid, items } => {
            out.extend_from_slice(b"* ESEARCH");
            if let Some(tag) = tag {
                // RFC 4731 §3.1 `search-correlator = SP "(" "TAG" SP tag-string ")"`.
                out.extend_from_slice(b" (TAG ");
                write_string(out, tag.as_str().as_bytes());
                out.push(b')');
            }
            if *uid {
                out.extend_from_slice(b" UID");
            }
            for item in items {
                write_esearch_item(out, item);
            }
        }
        Data::MultiSearch { tag, mailbox, uid_validity, items } => {
            // RFC 7377 §4 `search-correlator = SP "(" one-correlator *(SP one-correlator) ")"`;
            // `one-correlator = ("TAG" SP tag-string) / ("MAILBOX" SP astring) /
            // ("UIDVALIDITY" SP nz-number)`, each exactly once.
            out.extend_from_slice(b"* ESEARCH (TAG ");
            write_string(out, tag.as_str().as_bytes());
            out.extend_from_slice(b" MAILBOX ");
            write_mailbox(out, mailbox, opts.utf8);
            out.extend_from_slice(b" UIDVALIDITY ");
            write_u64(out, u64::from((*uid_validity).max(1)));
            out.extend_from_slice(b") UID");
            for item in items {
                write_esearch_item(out, item);
            }
        }
        Data::Sort { numbers, modseq } => {
            out.extend_from_slice(b"* SORT");
            for n in numbers.iter().filter(|&&n| n > 0) {
                out.push(b' ');
                write_u64(out, u64::from(*n));
            }
            // RFC 7162 §3.1.5: `sort-data =/ ... [SP "(" "MODSEQ" SP mod-sequence-value ")"]`.
            if let Some(m) = modseq
                && numbers.iter().any(|&n| n > 0)
            {
                out.extend_from_slice(b" (MODSEQ ");
                write_u64(out, *m);
                out.push(b')');
            }
        }
        Data::Thread(tokens) => {
            out.extend_from_slice(b"* THREAD");
            write_thread(out, tokens);
        }
        Data::Fetch { attrs, .. } if opts.uidonly => {
            // RFC 9586 §3.3: the UID names the message instead of its number.
            let Some(uid) =
                attrs.iter().find_map(|a| if let FetchValue::Uid(u) = a { Some(*u) } else { None })
            else {
                return;
            };
            let rest: Vec<FetchValue> =
                attrs.iter().filter(|a| !matches!(a, FetchValue::Uid(_))).cloned().collect();
            let attrs =
                if rest.iter().any(fetch_value_is_writable) { rest } else { vec![FetchValue::Uid(uid)] };
            write_data(out, &Data::UidFetch { uid, attrs }, opts);
            return;
        }
        Data::UidFetch { uid, attrs } => {
            // RFC 9586 §5: `uidfetch-resp = uniqueid SP "UIDFETCH" SP msg-att`.
            let mut attrs = attrs.iter().filter(|a| fetch_value_is_writable(a)).peekable();
            if *uid == 0 || attrs.peek().is_none() {
                return;
            }
            out.extend_from_slice(b"* ");
            write_u64(out, u64::from(*uid));
            out.extend_from_slice(b" UIDFETCH (");
            for (i, a) in attrs.enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_fetch_value(out, a, opts);
            }
            out.push(b')');
        }
        Data::Fetch { seq, attrs } => {
            // `message-data = nz-number SP "FETCH" SP msg-att` and msg-att is never empty.
            let mut attrs = attrs.iter().filter(|a| fetch_value_is_writable(a)).peekable();
            if *seq == 0 || attrs.peek().is_none() {
                return;
            }
            out.extend_from_slice(b"* ");
            write_u64(out, u64::from(*seq));
            out.extend_from_slice(b" FETCH (");
            for (i, a) in attrs.enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_fetch_value(out, a, opts);
            }
            out.push(b')');
        }
        Data::Enabled(caps) => {
            out.extend_from_slice(b"* ENABLED");
            write_atom_list(out, caps);
        }
        Data::Namespace { personal, other, shared } => {
            out.extend_from_slice(b"* NAMESPACE");
            for ns in [personal, other, shared] {
                out.push(b' ');
                write_namespace(out, ns, opts);
            }
        }
        Data::Id(params) => {
            out.extend_from_slice(b"* ID ");
            match params.as_deref() {
                Some(list) if !list.is_empty() => {
                    out.push(b'(');
                    for (i, (k, v)) in list.iter().enumerate() {
                        if i > 0 {
                            out.push(b' ');
                        }
                        write_string_opts(out, k.as_bytes(), opts);
                        out.push(b' ');
                        write_nstring_opts(out, v.as_deref().map(str::as_bytes), opts);
                    }
                    out.push(b')');
                }
                _ => out.extend_from_slice(b"NIL"),
            }
        }
        Data::Vanished { earlier, uids } => {
            if uids.is_empty() {
                return;
            }
            out.extend_from_slice(b"* VANISHED ");
            if *earlier {
                out.extend_from_slice(b"(EARLIER) ");
            }
            write_number_set(out, uids);
        }
        Data::Acl { mailbox, entries } => {
            // RFC 4314 §7 `acl-data = "ACL" SP mailbox *(SP identifier SP rights)`.
            out.extend_from_slice(b"* ACL ");
            write_mailbox(out, mailbox, opts.utf8);
            for (identifier, rights) in entries {
                out.push(b' ');
                write_astring_opts(out, identifier.as_bytes(), opts);
                out.push(b' ');
                write_astring_opts(out, rights.as_bytes(), opts);
            }
        }
        Data::ListRights { mailbox, identifier, required, optional } => {
            // RFC 4314 §7 `listrights-data = "LISTRIGHTS" SP mailbox SP identifier
            // SP rights *(SP rights)`.
            out.extend_from_slice(b"* LISTRIGHTS ");
            write_mailbox(out, mailbox, opts.utf8);
            out.push(b' ');
            write_astring_opts(out, identifier.as_bytes(), opts);
            for rights in std::iter::once(required).chain(optional) {
                out.push(b' ');
                write_astring_opts(out, rights.as_bytes(), opts);
            }
        }
        Data::MyRights { mailbox, rights } => {
            // RFC 4314 §7 `myrights-data = "MYRIGHTS" SP mailbox SP rights`.
            out.extend_from_slice(b"* MYRIGHTS ");
            write_mailbox(out, mailbox, opts.utf8);
            out.push(b' ');
            write_astring_opts(out, rights.as_bytes(), opts);
        }
        Data::Quota { root, resources } => {
            // RFC 9208 §7 `quota-response = "QUOTA" SP quota-root-name SP quota-list`;
            // `quota-resource = resource-name SP resource-usage SP resource-limit`.
            out.extend_from_slice(b"* QUOTA ");
            write_astring_opts(out, root.as_bytes(), opts);
            out.extend_from_slice(b" (");
            let mut first = true;
            for (name, usage, limit) in resources.iter().filter(|(name, ..)| is_atom(name.as_bytes())) {
                if !first {
                    out.push(b' ');
                }
                first = false;
                out.extend_from_slice(name.as_bytes());
                out.push(b' ');
                write_u64(out, *usage);
                out.push(b' ');
                write_u64(out, *limit);
            }
            out.push(b')');
        }
        Data::MetadataChanged { mailbox, entries } => {
            // RFC 5464 §5 `metadata-resp = "METADATA" SP mailbox SP entry-list`;
            // `entry-list = entry *(SP entry)`.
            if entries.is_empty() {
                return;
            }
            out.extend_from_slice(b"* METADATA ");
            write_mailbox(out, mailbox, opts.utf8);
            for entry in entries {
                out.push(b' ');
                write_astring_opts(out, entry.as_bytes(), WriteOptions::default());
            }
        }
        Data::Metadata { mailbox, entries } => {
            // RFC 5464 §5 `metadata-resp = "METADATA" SP mailbox SP entry-values`;
            // `entry-values = "(" entry-value *(SP entry-value) ")"`; `value = nstring / literal8`.
            if entries.is_empty() {
                return;
            }
            out.extend_from_slice(b"* METADATA ");
            write_mailbox(out, mailbox, opts.utf8);
            out.extend_from_slice(b" (");
            for (i, (entry, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_astring_opts(out, entry.as_bytes(), WriteOptions::default());
                out.push(b' ');
                // Values are octets: 8-bit data goes as a literal, never in quotes; a value
                // with NUL (a literal is CHAR8) as literal8.
                write_nstring8(out, value.as_deref());
            }
            out.push(b')');
        }
        Data::GenUrlAuth(urls) => {
            // RFC 4467 §9 `genurlauth-data = "*" SP "GENURLAUTH" 1*(SP url-full)`.
            out.extend_from_slice(b"* GENURLAUTH");
            for url in urls {
                out.push(b' ');
                write_astring_opts(out, url.as_bytes(), WriteOptions::default());
            }
        }
        Data::UrlFetch(items) => {
            // RFC 4467 §9 `urlfetch-data = "*" SP "URLFETCH" 1*(SP url-full SP nstring)`; RFC 5524
            // §4 adds `url-full SP "(" ... ")"` items for the parenthesised form.
            out.extend_from_slice(b"* URLFETCH");
            for (url, value) in items {
                out.push(b' ');
                write_astring_opts(out, url.as_bytes(), WriteOptions::default());
                match value {
                    UrlFetchValue::Plain(data) => {
                        out.push(b' ');
                        write_nstring8(out, data.as_deref());
                    }
                    UrlFetchValue::Extended { structure, data } => {
                        if let Some(body) = structure {
                            out.extend_from_slice(b" (BODYPARTSTRUCTURE ");
                            write_body(out, body, BodyForm::Structure, WriteOptions::default(), 0);
                            out.push(b')');
                        }
                        if let Some(item) = data {
                            out.extend_from_slice(if item.binary { b" (BINARY " } else { b" (BODY " });
                            write_nstring8(out, item.data.as_deref());
                            out.push(b')');
                        }
                    }
                }
            }
        }
        Data::UidBatches { tag, ranges } => {
            // RFC 10022 §6: `"UIDBATCHES" search-correlator [SP uid-range *("," uid-range)]`,
            // each range `uniqueid ":" uniqueid`, written high to low as the RFC's examples do.
            out.extend_from_slice(b"* UIDBATCHES (TAG ");
            write_string(out, tag.as_str().as_bytes());
            out.push(b')');
            for (i, (high, low)) in ranges.iter().enumerate() {
                out.push(if i == 0 { b' ' } else { b',' });
                write_u64(out, u64::from(*high));
                out.push(b':');
                write_u64(out, u64::from(*low));
            }
        }
        Data::QuotaRoot { mailbox, roots } => {
            // RFC 9208 §7 `quotaroot-response = "QUOTAROOT" SP mailbox *(SP quota-root-name)`.
            out.extend_from_slice(b"* QUOTAROOT ");
            write_mailbox(out, mailbox, opts.utf8);
            for root in roots {
                out.push(b' ');
                write_astring_opts(out, root.as_bytes(), opts);
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// `thread-data = "THREAD" [SP 1*thread-list]` (RFC 5256 §5): a space before the first list, a
/// space between two numbers and between a number and a nested list, nothing between lists.
fn write_thread(out: &mut Vec<u8>, tokens: &[ThreadToken]) {
    let mut previous: Option<ThreadToken> = None;
    for &t in tokens {
        match (previous, t) {
            (None, _) | (Some(ThreadToken::Member(_)), ThreadToken::Member(_) | ThreadToken::Open) => {
                out.push(b' ');
            }
            _ => {}
        }
        match t {
            ThreadToken::Open => out.push(b'('),
            ThreadToken::Close => out.push(b')'),
            ThreadToken::Member(n) => write_u64(out, u64::from(n)),
        }
        previous = Some(t);
    }
}

fn write_numbered(out: &mut Vec<u8>, n: u32, what: &[u8]) {
    out.extend_from_slice(b"* ");
    write_u64(out, u64::from(n));
    out.push(b' ');
    out.extend_from_slice(what);
}

/// `"(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox`
fn write_list_body(
    out: &mut Vec<u8>,
    attributes: &[MailboxAttr],
    delimiter: Option<char>,
    name: &str,
    opts: WriteOptions,
) {
    out.push(b'(');
    let mut first = true;
    for a in attributes {
        let name: &str = match a {
            MailboxAttr::NoInferiors => "Noinferiors",
            MailboxAttr::NoSelect => "Noselect",
            MailboxAttr::NonExistent => "NonExistent",
            MailboxAttr::HasChildren => "HasChildren",
            MailboxAttr::HasNoChildren => "HasNoChildren",
            MailboxAttr::Marked => "Marked",
            MailboxAttr::Unmarked => "Unmarked",
            MailboxAttr::Subscribed => "Subscribed",
            MailboxAttr::Remote => "Remote",
            MailboxAttr::SpecialUse(s) => s.name(),
            MailboxAttr::Other(s) => s,
        };
        if !is_atom(name.as_bytes()) {
            continue;
        }
        if !first {
            out.push(b' ');
        }
        first = false;
        out.push(b'\\');
        out.extend_from_slice(name.as_bytes());
    }
    out.extend_from_slice(b") ");
    match delimiter {
        Some(c) if c.is_ascii() && !c.is_ascii_control() => {
            out.push(b'"');
            if c == '"' || c == '\\' {
                out.push(b'\\');
            }
            out.push(c as u8);
            out.push(b'"');
        }
        _ => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    write_mailbox(out, name, opts.utf8);
}

/// `SP mbox-list-extended` (RFC 5258 §6): `("CHILDINFO" ("SUBSCRIBED") "OLDNAME" ("x"))`.
fn write_list_extended(out: &mut Vec<u8>, extended: &[ListExtended], opts: WriteOptions) {
    if extended.is_empty() {
        return;
    }
    out.extend_from_slice(b" (");
    for (i, e) in extended.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        match e {
            ListExtended::ChildInfoSubscribed => {
                out.extend_from_slice(b"\"CHILDINFO\" (\"SUBSCRIBED\")");
            }
            ListExtended::OldName(name) => {
                out.extend_from_slice(b"\"OLDNAME\" (");
                write_mailbox_string(out, name, opts.utf8);
                out.push(b')');
            }
        }
    }
    out.push(b')');
}

/// `namespace = nil / "(" 1*namespace-descr ")"`;
/// `namespace-descr = "(" string SP (DQUOTE QUOTED-CHAR DQUOTE / nil) ")"`.
fn write_namespace(out: &mut Vec<u8>, ns: &[NamespaceDesc], opts: WriteOptions) {
    if ns.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for d in ns {
        out.push(b'(');
        write_mailbox_string(out, &d.prefix, opts.utf8);
        out.push(b' ');
        match d.delimiter {
            Some(c) if c.is_ascii() && !c.is_ascii_control() => {
                out.push(b'"');
                if c == '"' || c == '\\' {
                    out.push(b'\\');
                }
                out.push(c as u8);
                out.push(b'"');
            }
            _ => out.extend_from_slice(b"NIL"),
        }
        out.push(b')');
    }
    out.push(b')');
}

/// `search-return-data` (RFC 4731 §3.1, RFC 7162 §3.1.5). Items that cannot be valid
/// (MIN/MAX 0, empty ALL) are skipped.
fn write_esearch_item(out: &mut Vec<u8>, item: &ESearchItem) {
    match item {
        ESearchItem::Min(n) if *n > 0 => {
            out.extend_from_slice(b" MIN ");
            write_u64(out, u64::from(*n));
        }
        ESearchItem::Max(n) if *n > 0 => {
            out.extend_from_slice(b" MAX ");
            write_u64(out, u64::from(*n));
        }
        ESearchItem::Count(n) => {
            out.extend_from_slice(b" COUNT ");
            write_u64(out, u64::from(*n));
        }
        ESearchItem::All(set) if !set.is_empty() => {
            out.extend_from_slice(b" ALL ");
            write_number_set(out, set);
        }
        ESearchItem::ModSeq(m) => {
            out.extend_from_slice(b" MODSEQ ");
            write_u64(out, *m);
        }
        ESearchItem::SortedAll(numbers) if numbers.iter().any(|&n| n > 0) => {
            out.extend_from_slice(b" ALL ");
            write_ordered_set(out, numbers);
        }
        ESearchItem::AddTo(pairs) => write_context_update(out, b" ADDTO (", pairs),
        ESearchItem::RemoveFrom(pairs) => write_context_update(out, b" REMOVEFROM (", pairs),
        ESearchItem::Partial(range, numbers) => {
            out.extend_from_slice(b" PARTIAL (");
            out.extend_from_slice(range.to_string().as_bytes());
            if numbers.iter().any(|&n| n > 0) {
                out.push(b' ');
                write_ordered_set(out, numbers);
            } else {
                out.extend_from_slice(b" NIL");
            }
            out.push(b')');
        }
        _ => {}
    }
}

/// `ret-data-addto` / `ret-data-removefrom` (RFC 5267 §5): `"(" context-position SP
/// sequence-set *(SP context-position SP sequence-set) ")"`; the sets keep the given order.
fn write_context_update(out: &mut Vec<u8>, name: &[u8], pairs: &[(u32, Vec<u32>)]) {
    let mut pairs = pairs.iter().filter(|(_, numbers)| numbers.iter().any(|&n| n > 0)).peekable();
    if pairs.peek().is_none() {
        return;
    }
    out.extend_from_slice(name);
    for (i, (position, numbers)) in pairs.enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write_u64(out, u64::from(*position));
        out.push(b' ');
        write_ordered_set(out, numbers);
    }
    out.push(b')');
}

/// `nstring` whose data may hold NUL: then a `literal8` (`~{n}`, RFC 3516 §4.2), else a string.
fn write_nstring8(out: &mut Vec<u8>, data: Option<&[u8]>) {
    match data {
        Some(v) if v.contains(&0) => {
            out.extend_from_slice(b"~{");
            write_u64(out, v.len() as u64);
            out.extend_from_slice(b"}\r\n");
            out.extend_from_slice(v);
        }
        Some(v) => write_string(out, v),
        None => out.extend_from_slice(b"NIL"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::response::tests::d;
    use crate::seqset::NumberSet;
    use crate::types::{SpecialUse, Tag};

    #[test]
    fn sort_and_thread_responses_rfc5256() {
        // RFC 5256 §3 examples.
        assert_eq!(d(Data::Sort { numbers: vec![2, 84, 882], modseq: None }), "* SORT 2 84 882\r\n");
        assert_eq!(d(Data::Sort { numbers: vec![], modseq: Some(5) }), "* SORT\r\n");
        assert_eq!(d(Data::Sort { numbers: vec![3, 1], modseq: Some(5) }), "* SORT 3 1 (MODSEQ 5)\r\n");
        use ThreadToken::{Close as C, Member as M, Open as O};
        // (166)(174 (175)(176))((170)(179))(194 195)
        let tokens = vec![
            O,
            M(166),
            C,
            O,
            M(174),
            O,
            M(175),
            C,
            O,
            M(176),
            C,
            C,
            O,
            O,
            M(170),
            C,
            O,
            M(179),
            C,
            C,
            O,
            M(194),
            M(195),
            C,
        ];
        assert_eq!(d(Data::Thread(tokens)), "* THREAD (166)(174 (175)(176))((170)(179))(194 195)\r\n");
        assert_eq!(d(Data::Thread(Vec::new())), "* THREAD\r\n");
    }

    #[test]
    fn sorted_all_keeps_the_order() {
        let tag = Tag::new("a").unwrap();
        let data = |numbers: Vec<u32>| Data::ESearch {
            tag: Some(tag.clone()),
            uid: true,
            items: vec![ESearchItem::SortedAll(numbers), ESearchItem::Count(4)],
        };
        assert_eq!(d(data(vec![5, 3, 4, 1, 2, 9])), "* ESEARCH (TAG \"a\") UID ALL 5,3:4,1:2,9 COUNT 4\r\n");
        assert_eq!(d(data(vec![0])), "* ESEARCH (TAG \"a\") UID COUNT 4\r\n");
        assert_eq!(d(data(vec![u32::MAX, 1])), "* ESEARCH (TAG \"a\") UID ALL 4294967295,1 COUNT 4\r\n");
    }

    fn du(data: Data) -> String {
        crate::response::tests::w(|o| {
            write_data(o, &data, WriteOptions { utf8: true, ..WriteOptions::default() })
        })
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(i, r)| (i.to_string(), r.to_string())).collect()
    }

    #[test]
    fn acl_responses_rfc4314() {
        // RFC 4314 §3.1, §3.2, §3.3 examples.
        assert_eq!(
            d(Data::Acl {
                mailbox: "INBOX/Drafts".into(),
                entries: pairs(&[("Fred", "rwipslxetad"), ("Chris", "lrswi")])
            }),
            "* ACL INBOX/Drafts Fred rwipslxetad Chris lrswi\r\n"
        );
        assert_eq!(
            d(Data::Acl {
                mailbox: "INBOX".into(),
                entries: pairs(&[("Fred", "rwipslxetad"), ("-Fred", "wetd"), ("$team", "w")])
            }),
            "* ACL INBOX Fred rwipslxetad -Fred wetd $team w\r\n"
        );
        assert_eq!(d(Data::Acl { mailbox: "INBOX".into(), entries: vec![] }), "* ACL INBOX\r\n");
        // Identifiers that are not atoms are strings; NIL is not an atom here; no injection.
        assert_eq!(
            d(Data::Acl {
                mailbox: "Shared Folders/Team".into(),
                entries: pairs(&[("a b", ""), ("nil", "lr"), ("x\r\n* BYE", "l")])
            }),
            "* ACL \"Shared Folders/Team\" \"a b\" \"\" \"nil\" lr {8}\r\nx\r\n* BYE l\r\n"
        );
        // Non-ASCII: modified UTF-7 names and literal identifiers, or UTF-8 throughout.
        let acl = || Data::Acl { mailbox: "台北".into(), entries: pairs(&[("Jürgen", "lr")]) };
        assert_eq!(d(acl()), "* ACL &U,BTFw- {7}\r\nJürgen lr\r\n");
        assert_eq!(du(acl()), "* ACL \"台北\" \"Jürgen\" lr\r\n");

        // §3.4 examples (the second one's mailbox as the server names it).
        assert_eq!(
            d(Data::ListRights {
                mailbox: "~/Mail/saved".into(),
                identifier: "smith".into(),
                required: "la".into(),
                optional: vec!["r".into(), "swicdkxte".into()],
            }),
            "* LISTRIGHTS ~/Mail/saved smith la r swicdkxte\r\n"
        );
        let optional = "l r s w i p k x t e c d a 0 1 2 3 4 5 6 7 8 9".split(' ').map(String::from).collect();
        assert_eq!(
            d(Data::ListRights {
                mailbox: "archive.imap".into(),
                identifier: "anyone".into(),
                required: "".into(),
                optional,
            }),
            "* LISTRIGHTS archive.imap anyone \"\" l r s w i p k x t e c d a 0 1 2 3 4 5 6 7 8 9\r\n"
        );
        assert_eq!(
            d(Data::ListRights {
                mailbox: "INBOX".into(),
                identifier: "-Fred".into(),
                required: "".into(),
                optional: vec![]
            }),
            "* LISTRIGHTS INBOX -Fred \"\"\r\n"
        );

        // §3.5 and RFC 8440 §4.
        assert_eq!(
            d(Data::MyRights { mailbox: "INBOX".into(), rights: "rwiptsldaex".into() }),
            "* MYRIGHTS INBOX rwiptsldaex\r\n"
        );
        assert_eq!(
            d(Data::MyRights { mailbox: "foo".into(), rights: "lrs".into() }),
            "* MYRIGHTS foo lrs\r\n"
        );
        assert_eq!(
            d(Data::MyRights { mailbox: "a b".into(), rights: "".into() }),
            "* MYRIGHTS \"a b\" \"\"\r\n"
        );
        let mine = || Data::MyRights { mailbox: "Entwürfe".into(), rights: "lr".into() };
        assert_eq!(d(mine()), "* MYRIGHTS Entw&APw-rfe lr\r\n");
        assert_eq!(du(mine()), "* MYRIGHTS \"Entwürfe\" lr\r\n");
    }

    #[test]
    fn quota_responses_rfc9208() {
        let res = |list: &[(&str, u64, u64)]| list.iter().map(|(n, u, l)| (n.to_string(), *u, *l)).collect();
        // RFC 9208 §4.1.1, §4.1.3, §4.2.1 examples (roots written as astrings, unquoted if atoms).
        assert_eq!(
            d(Data::Quota {
                root: "!partition/sda4".into(),
                resources: res(&[("STORAGE", 104, 10_923_847)])
            }),
            "* QUOTA !partition/sda4 (STORAGE 104 10923847)\r\n"
        );
        assert_eq!(
            d(Data::Quota {
                root: "#user/alice".into(),
                resources: res(&[("STORAGE", 54, 111), ("MESSAGE", 42, 1000)])
            }),
            "* QUOTA #user/alice (STORAGE 54 111 MESSAGE 42 1000)\r\n"
        );
        assert_eq!(
            d(Data::Quota { root: "".into(), resources: res(&[("STORAGE", 10, 512)]) }),
            "* QUOTA \"\" (STORAGE 10 512)\r\n"
        );
        // §4.2.1: an empty list means no limits. Names that are not atoms are dropped.
        assert_eq!(d(Data::Quota { root: "".into(), resources: vec![] }), "* QUOTA \"\" ()\r\n");
        assert_eq!(
            d(Data::Quota {
                root: "user alice".into(),
                resources: res(&[("BAD NAME", 1, 2), ("", 1, 2), ("MESSAGE", 0, u64::MAX)])
            }),
            "* QUOTA \"user alice\" (MESSAGE 0 18446744073709551615)\r\n"
        );
        assert_eq!(
            du(Data::Quota { root: "Jürgen".into(), resources: res(&[("STORAGE", 1, 2)]) }),
            "* QUOTA \"Jürgen\" (STORAGE 1 2)\r\n"
        );

        // §4.1.2 and §4.2.2 examples.
        assert_eq!(
            d(Data::QuotaRoot {
                mailbox: "INBOX".into(),
                roots: vec!["#user/alice".into(), "!partition/sda4".into()]
            }),
            "* QUOTAROOT INBOX #user/alice !partition/sda4\r\n"
        );
        assert_eq!(
            d(Data::QuotaRoot { mailbox: "INBOX".into(), roots: vec!["".into()] }),
            "* QUOTAROOT INBOX \"\"\r\n"
        );
        assert_eq!(
            d(Data::QuotaRoot { mailbox: "comp.mail.mime".into(), roots: vec![] }),
            "* QUOTAROOT comp.mail.mime\r\n"
        );
        let qr = || Data::QuotaRoot { mailbox: "台北".into(), roots: vec!["台北".into()] };
        assert_eq!(d(qr()), "* QUOTAROOT &U,BTFw- {6}\r\n台北\r\n");
        assert_eq!(du(qr()), "* QUOTAROOT \"台北\" \"台北\"\r\n");

        // §4.1.4 example: STATUS DELETED-STORAGE.
        assert_eq!(
            d(Data::Status {
                mailbox: "INBOX".into(),
                items: vec![
                    (StatusItem::Messages, 12),
                    (StatusItem::Deleted, 4),
                    (StatusItem::DeletedStorage, 8)
                ],
                mailbox_id: None,
            }),
            "* STATUS INBOX (MESSAGES 12 DELETED 4 DELETED-STORAGE 8)\r\n"
        );
    }

    #[test]
    fn data_lines() {
        assert_eq!(
            d(Data::List {
                attributes: vec![
                    MailboxAttr::HasChildren,
                    MailboxAttr::SpecialUse(SpecialUse::Drafts),
                    MailboxAttr::Other("bad atom".into())
                ],
                delimiter: Some('/'),
                name: "Foo".into(),
                extended: vec![ListExtended::ChildInfoSubscribed, ListExtended::OldName("Bar".into())],
            }),
            "* LIST (\\HasChildren \\Drafts) \"/\" Foo (\"CHILDINFO\" (\"SUBSCRIBED\") \"OLDNAME\" (\"Bar\"))\r\n"
        );
        assert_eq!(
            d(Data::Status {
                mailbox: "INBOX".into(),
                items: vec![(StatusItem::Messages, 17), (StatusItem::MailboxId, 0)],
                mailbox_id: Some("F2212ea87-6097".into()),
            }),
            "* STATUS INBOX (MESSAGES 17 MAILBOXID (F2212ea87-6097))\r\n"
        );
        assert_eq!(
            d(Data::ESearch {
                tag: Some(Tag::new("A282").unwrap()),
                uid: true,
                items: vec![
                    ESearchItem::Min(2),
                    ESearchItem::Count(3),
                    ESearchItem::All(NumberSet::from_numbers([2, 10, 11])),
                    ESearchItem::All(NumberSet::new()),
                    ESearchItem::ModSeq(917162500),
                ],
            }),
            "* ESEARCH (TAG \"A282\") UID MIN 2 COUNT 3 ALL 2,10:11 MODSEQ 917162500\r\n"
        );
        assert_eq!(
            d(Data::Namespace {
                personal: vec![NamespaceDesc { prefix: "".into(), delimiter: Some('/') }],
                other: vec![],
                shared: vec![],
            }),
            "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n"
        );
    }

    #[test]
    fn metadata_change_rfc5464_4_4_2() {
        let changed = |mailbox: &str, entries: &[&str]| {
            d(Data::MetadataChanged {
                mailbox: mailbox.into(),
                entries: entries.iter().map(|e| (*e).to_owned()).collect(),
            })
        };
        assert_eq!(changed("INBOX", &["/shared/comment"]), "* METADATA INBOX /shared/comment\r\n");
        assert_eq!(changed("", &["/shared/a", "/private/b"]), "* METADATA \"\" /shared/a /private/b\r\n");
        assert_eq!(changed("INBOX", &[]), "");
    }

    #[test]
    fn metadata_responses_rfc5464() {
        let md = |mailbox: &str, entries: &[(&str, Option<&[u8]>)]| {
            d(Data::Metadata {
                mailbox: mailbox.into(),
                entries: entries.iter().map(|(e, v)| ((*e).to_owned(), v.map(<[u8]>::to_vec))).collect(),
            })
        };
        // RFC 4467 §7 examples.
        let url = "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred:internal:91354a473744909de610943775f92038";
        let mut out = Vec::new();
        write_data(&mut out, &Data::GenUrlAuth(vec![url.into()]), WriteOptions::default());
        assert_eq!(String::from_utf8(out).unwrap(), format!("* GENURLAUTH {url}\r\n"));
        let mut out = Vec::new();
        let items = vec![
            (url.to_owned(), UrlFetchValue::Plain(Some(bytes::Bytes::from_static(b"Hello\r\n")))),
            ("x".to_owned(), UrlFetchValue::Plain(None)),
        ];
        write_data(&mut out, &Data::UrlFetch(items), WriteOptions::default());
        assert_eq!(String::from_utf8(out).unwrap(), format!("* URLFETCH {url} {{7}}\r\nHello\r\n x NIL\r\n"));
        // §4.4.1
        assert_eq!(
            md("", &[("/shared/comment", Some(b"My comment"))]),
            "* METADATA \"\" (/shared/comment \"My comment\")\r\n"
        );
        assert_eq!(
            md("INBOX", &[("/private/comment", Some(b"My comment")), ("/shared/comment", None)]),
            "* METADATA INBOX (/private/comment \"My comment\" /shared/comment NIL)\r\n"
        );
        // Multi-line values are literals, NUL forces literal8, 8-bit data a literal.
        assert_eq!(
            md("a b", &[("/shared/c", Some(b"x\r\ny"))]),
            "* METADATA \"a b\" (/shared/c {4}\r\nx\r\ny)\r\n"
        );
        assert_eq!(md("INBOX", &[("/shared/c", Some(b"\0"))]), "* METADATA INBOX (/shared/c ~{1}\r\n\0)\r\n");
        assert_eq!(md("INBOX", &[("/shared/c", Some(b""))]), "* METADATA INBOX (/shared/c \"\")\r\n");
        assert_eq!(
            md("INBOX", &[("/shared/a b", Some(b"\xc3\xa9"))]),
            "* METADATA INBOX (\"/shared/a b\" {2}\r\n\u{e9})\r\n"
        );
        // Nothing to say: no response (the grammar wants an entry).
        assert_eq!(md("INBOX", &[]), "");
    }

    #[test]
    fn context_updates_rfc5267() {
        let update = |uid: bool, items: Vec<ESearchItem>| {
            d(Data::ESearch { tag: Some(crate::types::Tag::new("B01").unwrap()), uid, items })
        };
        // §4.3.3 and §4.3.4's examples.
        assert_eq!(
            update(true, vec![ESearchItem::AddTo(vec![(0, vec![32768, 32769])])]),
            "* ESEARCH (TAG \"B01\") UID ADDTO (0 32768:32769)\r\n"
        );
        assert_eq!(
            update(true, vec![ESearchItem::AddTo(vec![(1, vec![2733]), (1, vec![2731, 2732])])]),
            "* ESEARCH (TAG \"B01\") UID ADDTO (1 2733 1 2731:2732)\r\n"
        );
        assert_eq!(
            update(true, vec![ESearchItem::RemoveFrom(vec![(0, vec![32768])])]),
            "* ESEARCH (TAG \"B01\") UID REMOVEFROM (0 32768)\r\n"
        );
        // Sort order is kept; empty pairs and items are left out.
        assert_eq!(
            update(
                false,
                vec![
                    ESearchItem::RemoveFrom(vec![(3, vec![]), (2, vec![9])]),
                    ESearchItem::AddTo(vec![(4, vec![7, 3, 4])]),
                    ESearchItem::AddTo(vec![]),
                ]
            ),
            "* ESEARCH (TAG \"B01\") REMOVEFROM (2 9) ADDTO (4 7,3:4)\r\n"
        );
    }

    #[test]
    fn multisearch_responses_rfc7377() {
        // §3's example lines.
        let line = |mailbox: &str, uid_validity: u32, numbers: &[u32]| {
            d(Data::MultiSearch {
                tag: crate::types::Tag::new("tag1").unwrap(),
                mailbox: mailbox.into(),
                uid_validity,
                items: vec![ESearchItem::All(NumberSet::from_numbers(numbers.iter().copied()))],
            })
        };
        assert_eq!(
            line("folder1", 1, &[4001, 4003, 4005, 4007, 4009]),
            "* ESEARCH (TAG \"tag1\" MAILBOX folder1 UIDVALIDITY 1) UID ALL 4001,4003,4005,4007,4009\r\n"
        );
        assert_eq!(
            line("folder2/banana", 503, &[3002, 4004]),
            "* ESEARCH (TAG \"tag1\" MAILBOX folder2/banana UIDVALIDITY 503) UID ALL 3002,4004\r\n"
        );
        assert_eq!(
            line("a b", 7, &[1, 2, 3]),
            "* ESEARCH (TAG \"tag1\" MAILBOX \"a b\" UIDVALIDITY 7) UID ALL 1:3\r\n"
        );
    }

    #[test]
    fn uidonly_fetch_responses_rfc9586() {
        let uidonly = WriteOptions { utf8: false, uidonly: true };
        let w = |data: Data| {
            let mut out = Vec::new();
            write_data(&mut out, &data, uidonly);
            String::from_utf8(out).unwrap()
        };
        let flags = FetchValue::Flags(vec![crate::types::Flag::Seen]);
        // A FETCH becomes UIDFETCH, its UID item gone; without a UID it is not written at all.
        assert_eq!(
            w(Data::Fetch {
                seq: 3,
                attrs: vec![FetchValue::Uid(25996), flags.clone(), FetchValue::ModSeq(7)]
            }),
            "* 25996 UIDFETCH (FLAGS (\\Seen) MODSEQ (7))\r\n"
        );
        assert_eq!(w(Data::Fetch { seq: 3, attrs: vec![flags.clone()] }), "");
        assert_eq!(w(Data::Fetch { seq: 3, attrs: vec![FetchValue::Uid(9)] }), "* 9 UIDFETCH (UID 9)\r\n");
        assert_eq!(
            w(Data::UidFetch { uid: 9, attrs: vec![FetchValue::Uid(9), flags] }),
            "* 9 UIDFETCH (UID 9 FLAGS (\\Seen))\r\n"
        );
        // No message number ever: EXPUNGE is not written (VANISHED is).
        assert_eq!(w(Data::Expunge(4)), "");
        assert_eq!(w(Data::Exists(4)), "* 4 EXISTS\r\n");
    }
    #[test]
    fn uidbatches_response_rfc10022() {
        let tag = Tag::new("A142").unwrap();
        // The RFC's example shape: four batches, newest first, each high:low, tiling the UIDs.
        let ranges = vec![(215295, 99696), (99695, 20351), (20350, 7829), (7828, 1)];
        assert_eq!(
            d(Data::UidBatches { tag: tag.clone(), ranges }),
            "* UIDBATCHES (TAG \"A142\") 215295:99696,99695:20351,20350:7829,7828:1\r\n"
        );
        assert_eq!(
            d(Data::UidBatches { tag: tag.clone(), ranges: vec![] }),
            "* UIDBATCHES (TAG \"A142\")\r\n"
        );
        assert_eq!(d(Data::UidBatches { tag, ranges: vec![(6, 6)] }), "* UIDBATCHES (TAG \"A142\") 6:6\r\n");
    }

    #[test]
    fn urlfetch_extended_rfc5524() {
        use crate::response::types::{Body, SinglePart, UrlFetchBytes};
        let part = Body::Single(SinglePart {
            media_type: b"text".to_vec(),
            subtype: b"plain".to_vec(),
            params: vec![(b"charset".to_vec(), b"us-ascii".to_vec())],
            id: None,
            description: None,
            encoding: b"7BIT".to_vec(),
            size: 11,
            lines: Some(0),
            message: None,
            ext: None,
        });
        let item = |structure: Option<Body>, data: Option<UrlFetchBytes>| {
            let structure = structure.map(Box::new);
            d(Data::UrlFetch(vec![("u".to_owned(), UrlFetchValue::Extended { structure, data })]))
        };
        let bytes = |binary, data: &'static [u8]| {
            Some(UrlFetchBytes { binary, data: Some(bytes::Bytes::from_static(data)) })
        };
        assert_eq!(
            item(Some(part.clone()), bytes(true, b"hello world")),
            "* URLFETCH u (BODYPARTSTRUCTURE (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 11 0)) (BINARY \"hello world\")\r\n"
        );
        // Binary data with NUL goes as literal8; BINARY NIL for an encoding that cannot be undone.
        assert_eq!(item(None, bytes(true, b"a\0b")), "* URLFETCH u (BINARY ~{3}\r\na\0b)\r\n");
        assert_eq!(
            item(None, Some(UrlFetchBytes { binary: true, data: None })),
            "* URLFETCH u (BINARY NIL)\r\n"
        );
        assert_eq!(item(None, bytes(false, b"x\r\n")), "* URLFETCH u (BODY {3}\r\nx\r\n)\r\n");
        assert_eq!(item(Some(part), None).matches("BODYPARTSTRUCTURE").count(), 1);
    }
}
