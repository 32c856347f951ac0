//! NOTIFY (RFC 5465 §8): the syntax of `NOTIFY SET` and `NOTIFY NONE`. Which events may go
//! together, and where a fetch-att list may stand, are the session's checks (§3.1, §5: BAD or
//! NO [BADEVENT]), so that the client learns which rule it broke.

use super::{PResult, Parser};
use crate::types::{CommandBody, Notify, NotifyEvent, NotifyFilter, NotifyGroup};

impl Parser<'_> {
    /// `notify = "NOTIFY" SP (notify-set / notify-none)`;
    /// `notify-set = "SET" [status-indicator] SP event-groups`; `notify-none = "NONE"`;
    /// `status-indicator = SP "STATUS"`; `event-groups = event-group *(SP event-group)`.
    pub(super) fn notify(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        if self.eat_keyword("NONE") {
            return Ok(CommandBody::Notify(Notify::None));
        }
        self.keyword("SET")?;
        self.sp()?;
        let status = self.eat_keyword("STATUS");
        if status {
            self.sp()?;
        }
        let mut groups = vec![self.notify_group()?];
        while self.eat(b' ') {
            groups.push(self.notify_group()?);
        }
        Ok(CommandBody::Notify(Notify::Set { status, groups }))
    }

    /// `event-group = "(" filter-mailboxes SP events ")"`;
    /// `events = ( "(" event *(SP event) ")" ) / "NONE"`.
    ///
    /// Also taken, as §3.1's own example writes it (`(subtree Lists MessageNew)`): one event
    /// without parentheses.
    fn notify_group(&mut self) -> PResult<NotifyGroup> {
        self.byte(b'(', "'(' of an event group")?;
        let filter = self.notify_filter()?;
        self.sp()?;
        let mut events = Vec::new();
        if self.peek() != Some(b'(') {
            if !self.eat_keyword("NONE") {
                events.push(self.notify_event()?);
            }
        } else {
            self.byte(b'(', "'(' of the events or NONE")?;
            loop {
                events.push(self.notify_event()?);
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        }
        self.byte(b')', "')' after the events")?;
        Ok(NotifyGroup { filter, events })
    }

    /// `filter-mailboxes = filter-mailboxes-selected / filter-mailboxes-other`;
    /// `filter-mailboxes-other = "inboxes" / "personal" / "subscribed" /
    /// ("subtree" SP one-or-more-mailbox) / ("mailboxes" SP one-or-more-mailbox)`;
    /// `filter-mailboxes-selected = "selected" / "selected-delayed"`.
    fn notify_filter(&mut self) -> PResult<NotifyFilter> {
        let start = self.pos;
        let word = self.word_req("mailbox filter")?.to_ascii_lowercase();
        Ok(match word.as_slice() {
            b"selected" => NotifyFilter::Selected,
            b"selected-delayed" => NotifyFilter::SelectedDelayed,
            b"inboxes" => NotifyFilter::Inboxes,
            b"personal" => NotifyFilter::Personal,
            b"subscribed" => NotifyFilter::Subscribed,
            b"subtree" => NotifyFilter::Subtree(self.one_or_more_mailbox()?),
            b"mailboxes" => NotifyFilter::Mailboxes(self.one_or_more_mailbox()?),
            _ => {
                self.pos = start;
                return self
                    .fail("selected, selected-delayed, inboxes, personal, subscribed, subtree or mailboxes");
            }
        })
    }

    /// `event = message-event / mailbox-event / user-event / event-ext`;
    /// `message-event = ("MessageNew" [SP "(" fetch-att *(SP fetch-att) ")"]) /
    /// "MessageExpunge" / "FlagChange" / "AnnotationChange"`;
    /// `mailbox-event = "MailboxName" / "SubscriptionChange" / "MailboxMetadataChange"`;
    /// `user-event = "ServerMetadataChange"`; `event-ext = atom`.
    fn notify_event(&mut self) -> PResult<NotifyEvent> {
        let name = self.atom()?;
        let lower = name.to_ascii_lowercase();
        Ok(match lower.as_slice() {
            b"messagenew" => {
                // ` (` after MessageNew opens its fetch-att list; ` x` is the next event.
                if self.peek() == Some(b' ') && self.peek_at(1) == Some(b'(') {
                    self.pos += 2;
                    let mut atts = vec![self.fetch_att()?];
                    while self.eat(b' ') {
                        atts.push(self.fetch_att()?);
                    }
                    self.byte(b')', "')' after the fetch attributes")?;
                    NotifyEvent::MessageNew(Some(atts))
                } else {
                    NotifyEvent::MessageNew(None)
                }
            }
            b"messageexpunge" => NotifyEvent::MessageExpunge,
            b"flagchange" => NotifyEvent::FlagChange,
            b"annotationchange" => NotifyEvent::AnnotationChange,
            b"mailboxname" => NotifyEvent::MailboxName,
            b"subscriptionchange" => NotifyEvent::SubscriptionChange,
            b"mailboxmetadatachange" => NotifyEvent::MailboxMetadataChange,
            b"servermetadatachange" => NotifyEvent::ServerMetadataChange,
            _ => NotifyEvent::Other(String::from_utf8_lossy(name).into_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{body, err};
    use crate::types::{
        CommandBody, FetchAttribute, Notify, NotifyEvent as E, NotifyFilter as F, NotifyGroup,
    };
    use crate::types::{Section, WireMailboxName};

    fn set(s: &str) -> (bool, Vec<NotifyGroup>) {
        match body(s) {
            CommandBody::Notify(Notify::Set { status, groups }) => (status, groups),
            other => panic!("{s:?} parsed as {other:?}"),
        }
    }

    fn m(s: &str) -> WireMailboxName {
        WireMailboxName::new(s.as_bytes())
    }

    #[test]
    fn rfc5465_examples() {
        // §3.1 (its second group has one event without parentheses, taken as written).
        let (status, groups) =
            set("e notify set (selected (MessageNew (uid body.peek[header.fields (from to subject)]) \
                 MessageExpunge)) (subtree Lists MessageNew) (mailboxes misc MessageNew)");
        assert!(!status);
        assert_eq!(
            groups[1],
            NotifyGroup { filter: F::Subtree(vec![m("Lists")]), events: vec![E::MessageNew(None)] }
        );
        assert_eq!(groups[2].filter, F::Mailboxes(vec![m("misc")]));
        // §6.
        let (_, groups) =
            set("a notify set (mailboxes INBOX (Messagenew messageExpunge)) (personal (SubscriptionChange))");
        assert_eq!(groups[0].events, vec![E::MessageNew(None), E::MessageExpunge]);
        assert_eq!(groups[1], NotifyGroup { filter: F::Personal, events: vec![E::SubscriptionChange] });
        let (_, groups) = set("a notify set (selected (Messagenew (uid flags) messageExpunge)) \
                               (personal (MessageNew FlagChange MessageExpunge))");
        assert_eq!(
            groups[0].events[0],
            E::MessageNew(Some(vec![FetchAttribute::Uid, FetchAttribute::Flags]))
        );
    }

    #[test]
    fn set_with_groups() {
        let (status, groups) = set(
            "b NOTIFY SET STATUS (selected (MessageNew (uid body.peek[header.fields (from to subject)]) \
             MessageExpunge)) (subtree (Lists \"a b\") (MessageNew MessageExpunge FlagChange))",
        );
        assert!(status);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].filter, F::Selected);
        match &groups[0].events[0] {
            E::MessageNew(Some(atts)) => {
                assert_eq!(atts[0], FetchAttribute::Uid);
                assert!(matches!(
                    &atts[1],
                    FetchAttribute::BodySection { peek: true, section: Section { .. }, .. }
                ));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(groups[0].events[1], E::MessageExpunge);
        assert_eq!(groups[1].filter, F::Subtree(vec![m("Lists"), m("a b")]));
        assert_eq!(groups[1].events, vec![E::MessageNew(None), E::MessageExpunge, E::FlagChange]);
    }

    #[test]
    fn every_filter_and_event() {
        let (status, groups) = set(
            "a notify set (Selected-Delayed (messagenew messageexpunge)) (inboxes NONE) \
             (personal (MailboxName SubscriptionChange MailboxMetadataChange)) \
             (subscribed (ServerMetadataChange AnnotationChange)) (mailboxes INBOX (MessageNew MessageExpunge)) \
             (mailboxes (a b) (FooBar))",
        );
        assert!(!status);
        let filters: Vec<&F> = groups.iter().map(|g| &g.filter).collect();
        assert_eq!(
            filters,
            vec![
                &F::SelectedDelayed,
                &F::Inboxes,
                &F::Personal,
                &F::Subscribed,
                &F::Mailboxes(vec![m("INBOX")]),
                &F::Mailboxes(vec![m("a"), m("b")])
            ]
        );
        assert!(groups[1].events.is_empty());
        assert_eq!(groups[2].events, vec![E::MailboxName, E::SubscriptionChange, E::MailboxMetadataChange]);
        assert_eq!(groups[3].events, vec![E::ServerMetadataChange, E::AnnotationChange]);
        assert_eq!(groups[5].events, vec![E::Other("FooBar".into())]);
        assert_eq!(groups[5].events[0].name(), "FooBar");
        assert!(E::FlagChange.is_message_event() && !E::MailboxName.is_message_event());
    }

    #[test]
    fn none() {
        assert_eq!(body("a NOTIFY NONE"), CommandBody::Notify(Notify::None));
        assert_eq!(body("a notify none"), CommandBody::Notify(Notify::None));
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            &b"a NOTIFY"[..],
            b"a NOTIFY SET",
            b"a NOTIFY SET STATUS",
            b"a NOTIFY SET ()",
            b"a NOTIFY SET (selected)",
            b"a NOTIFY SET (selected ())",
            b"a NOTIFY SET (elsewhere (MessageNew))",
            b"a NOTIFY SET (subtree (MessageNew))",
            b"a NOTIFY SET (selected (MessageNew ()))",
            b"a NOTIFY SET (selected (MessageNew (bogus)))",
            b"a NOTIFY SET (selected (MessageNew (uid))",
            b"a NOTIFY SET (personal (MailboxName)) ",
            b"a NOTIFY SET (personal (MailboxName))(personal NONE)",
            b"a NOTIFY NONE extra",
            b"a NOTIFY SOME",
        ] {
            let e = err(bad);
            assert!(e.tag.is_some(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
