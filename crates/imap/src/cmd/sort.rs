//! SORT (RFC 5256 §3, SORT=DISPLAY RFC 5957, ESORT RFC 5267) and THREAD (RFC 5256 §3,
//! ORDEREDSUBJECT and REFERENCES).
//!
//! Both first search like SEARCH (same criteria, same charsets), then ask the store: SORT for
//! the messages in order (the store keeps the sort keys, computed at APPEND), THREAD for each
//! message's Message-ID, references, base subject and sent date; the threading itself happens
//! here, on an arena of nodes with no recursion, so hostile reference chains cannot exhaust the
//! stack.
//!
//! Limits: the store refuses a SORT or THREAD whose working set would exceed its bounds with
//! `NO [LIMIT]`. Ancestor walks during REFERENCES threading stop after [`MAX_ANCESTRY`] levels
//! (a link that deep is treated as a loop and not made).

use std::collections::HashMap;

use postfach_message::collation_key;
use postfach_proto::response::{Code, Data, ESearchItem, ThreadToken};
use postfach_proto::types::{
    CommandKind, FetchAttribute, SearchKey, SearchReturn, SortCriterion, SortKey, Tag, ThreadAlgorithm,
};
use postfach_store::{
    Criterion, FetchWant, SortCriterion as StoreSortCriterion, SortDirection, SortKey as StoreSortKey,
    ThreadFacts, Uid, UidSet,
};

use crate::Out;
use crate::cmd::search::{charset_ok, has_modseq, to_criterion};
use crate::context::Cx;
use crate::respond::{Done, Reply};
use crate::selected::Selected;
use crate::updates::NewContext;

/// Deepest ancestry walked when checking a REFERENCES link for a loop.
const MAX_ANCESTRY: usize = 10_000;

/// The UIDs the client knows of that match `search`, ascending.
pub(crate) async fn matching(
    cx: &Cx<'_>,
    sel: &Selected,
    charset: &str,
    search: &[SearchKey],
    out: &mut Out,
) -> Result<Vec<Uid>, Reply> {
    Ok(matching_with(cx, sel, charset, search, out).await?.0)
}

/// [`matching`], and the store criterion it searched with.
async fn matching_with(
    cx: &Cx<'_>,
    sel: &Selected,
    charset: &str,
    search: &[SearchKey],
    out: &mut Out,
) -> Result<(Vec<Uid>, Criterion), Reply> {
    // RFC 5256 §3: US-ASCII and UTF-8 MUST be implemented; others get BADCHARSET.
    if !charset_ok(Some(charset)) {
        return Err(Reply::no(
            Some(Code::BadCharset(vec!["UTF-8".to_owned(), "US-ASCII".to_owned()])),
            "Unsupported charset",
        ));
    }
    let criterion =
        Criterion::And(search.iter().map(|k| to_criterion(sel, k, 0)).collect::<Result<Vec<_>, Reply>>()?);
    // RFC 9585: a long search is reported while it runs.
    let found = cx.progress().wait(cx.ctx.store.search(sel.id, &criterion), out).await?;
    // Only messages the client knows of (new ones are announced first, at the next sync).
    Ok((found.into_iter().filter(|u| sel.seq_of(*u).is_some()).collect(), criterion))
}

fn store_criterion(c: &SortCriterion) -> StoreSortCriterion {
    let key = match c.key {
        SortKey::Arrival => StoreSortKey::Arrival,
        SortKey::Cc => StoreSortKey::Cc,
        SortKey::Date => StoreSortKey::Date,
        SortKey::From => StoreSortKey::From,
        SortKey::Size => StoreSortKey::Size,
        SortKey::Subject => StoreSortKey::Subject,
        SortKey::To => StoreSortKey::To,
        SortKey::DisplayFrom => StoreSortKey::DisplayFrom,
        SortKey::DisplayTo => StoreSortKey::DisplayTo,
    };
    let direction = if c.reverse { SortDirection::Descending } else { SortDirection::Ascending };
    StoreSortCriterion { key, direction }
}

fn number(sel: &Selected, kind: CommandKind, uid: Uid) -> Option<u32> {
    match kind {
        CommandKind::Uid => Some(uid.get()),
        CommandKind::Seq => sel.seq_of(uid),
    }
}

/// `[UID] SORT [RETURN (...)] (criteria) charset keys`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn sort(
    cx: &Cx<'_>,
    sel: &mut Selected,
    tag: &Tag,
    kind: CommandKind,
    return_opts: Option<&[SearchReturn]>,
    update_fetch: Vec<FetchAttribute>,
    criteria: &[SortCriterion],
    charset: &str,
    search: &[SearchKey],
    out: &mut Out,
) -> Result<Done, Reply> {
    let update = return_opts.is_some_and(|r| r.contains(&SearchReturn::Update));
    if update {
        super::search::updatable(sel, tag, 0)?;
    }
    let (found, criterion) = matching_with(cx, sel, charset, search, out).await?;
    let order: Vec<StoreSortCriterion> = criteria.iter().map(store_criterion).collect();
    let sorted = if found.is_empty() {
        Vec::new()
    } else {
        let set = UidSet::from_uids(found.iter().copied());
        cx.progress().wait(cx.ctx.store.sort(sel.id, &set, &order), out).await?
    };
    let numbers: Vec<u32> = sorted.iter().filter_map(|u| number(sel, kind, *u)).collect();
    // RFC 7162 §3.1.5 (and §3.1.6 for SORT): a search with MODSEQ reports the highest modseq.
    let modseq = if search.iter().any(has_modseq) && !found.is_empty() {
        let set = UidSet::from_uids(found.iter().copied());
        let metas = cx.ctx.store.fetch(sel.id, &set, FetchWant::default()).await?;
        metas.iter().map(|m| m.modseq.0).max()
    } else {
        None
    };
    let Some(returns) = return_opts else {
        out.data(&Data::Sort { numbers, modseq });
        return Ok(Done::new());
    };
    // RFC 5267 §3.3: RETURN () means ALL; so do only CONTEXT and UPDATE (§4).
    let returns = super::search::with_default_all(returns);
    let has = |r: SearchReturn| returns.contains(&r);
    let partial = super::search::partial_of(&returns)?;
    if has(SearchReturn::Save) {
        // RFC 5182 §2.4, RFC 9394 Table 1; MIN and MAX are the first and last in sort order
        // (RFC 5267 §3.1), PARTIAL counts in sort order too.
        sel.saved = UidSet::from_uids(super::search::saved_results(&returns, partial, &sorted));
    }
    if update {
        let context = NewContext { criterion, order: Some(order), fetch: update_fetch, correlation: None };
        super::search::keep_updated(sel, tag, kind, context, sorted.clone(), out);
    }
    if returns.iter().filter(|r| r.is_result()).all(|r| *r == SearchReturn::Save) {
        return Ok(Done::new());
    }
    let mut items = Vec::new();
    if has(SearchReturn::Min)
        && let Some(n) = numbers.first()
    {
        items.push(ESearchItem::Min(*n));
    }
    if has(SearchReturn::Max)
        && let Some(n) = numbers.last()
    {
        items.push(ESearchItem::Max(*n));
    }
    if has(SearchReturn::All) && !numbers.is_empty() {
        items.push(ESearchItem::SortedAll(numbers.clone()));
    }
    if let Some(range) = partial {
        items.push(ESearchItem::Partial(range, numbers[range.select(numbers.len())].to_vec()));
    }
    if has(SearchReturn::Count) {
        items.push(ESearchItem::Count(u32::try_from(numbers.len()).unwrap_or(u32::MAX)));
    }
    if let Some(m) = modseq {
        items.push(ESearchItem::ModSeq(m));
    }
    let data = Data::ESearch { tag: Some(tag.clone()), uid: kind.is_uid(), items };
    out.data(&data);
    Ok(Done::new())
}

/// `[UID] THREAD algorithm charset keys`.
pub(crate) async fn thread(
    cx: &Cx<'_>,
    sel: &mut Selected,
    kind: CommandKind,
    algorithm: ThreadAlgorithm,
    charset: &str,
    search: &[SearchKey],
    out: &mut Out,
) -> Result<Done, Reply> {
    let found = matching(cx, sel, charset, search, out).await?;
    let facts = if found.is_empty() {
        Vec::new()
    } else {
        let set = UidSet::from_uids(found.iter().copied());
        cx.progress().wait(cx.ctx.store.thread_facts(sel.id, &set), out).await?
    };
    let forest = match algorithm {
        ThreadAlgorithm::OrderedSubject => ordered_subject(&facts),
        ThreadAlgorithm::References => references(&facts),
    };
    let tokens = forest.tokens(|i| facts.get(i).and_then(|f| number(sel, kind, f.uid)));
    out.data(&Data::Thread(tokens));
    Ok(Done::new())
}

// ------------------------------------------------------------------------------------------------
// Thread trees

/// One node: a message (index into the facts) or a dummy standing for a missing message.
#[derive(Debug, Clone, Default)]
struct Node {
    msg: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

/// Threads as an arena of nodes under a virtual root.
#[derive(Debug, Default)]
struct Forest {
    nodes: Vec<Node>,
    /// The children of the virtual root: the threads.
    roots: Vec<usize>,
}

impl Forest {
    fn add(&mut self, msg: Option<usize>) -> usize {
        self.nodes.push(Node { msg, parent: None, children: Vec::new() });
        self.nodes.len() - 1
    }

    fn is_dummy(&self, n: usize) -> bool {
        self.nodes[n].msg.is_none()
    }

    /// True when `a` is `b` or one of `b`'s descendants (or too deep to tell).
    fn within(&self, a: usize, b: usize) -> bool {
        // The common case (linking a new message) needs no walk: a leaf has no descendants.
        if self.nodes[b].children.is_empty() {
            return a == b;
        }
        let mut cur = Some(a);
        for _ in 0..MAX_ANCESTRY {
            match cur {
                Some(n) if n == b => return true,
                Some(n) => cur = self.nodes[n].parent,
                None => return false,
            }
        }
        true
    }

    fn unlink(&mut self, child: usize) {
        if let Some(p) = self.nodes[child].parent.take() {
            self.nodes[p].children.retain(|&c| c != child);
        }
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.unlink(child);
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    /// Every node reachable from the roots, children before their parents.
    fn post_order(&self) -> Vec<usize> {
        let mut order = Vec::with_capacity(self.nodes.len());
        let mut stack: Vec<(usize, bool)> = self.roots.iter().rev().map(|&r| (r, false)).collect();
        while let Some((n, expanded)) = stack.pop() {
            if expanded {
                order.push(n);
                continue;
            }
            stack.push((n, true));
            stack.extend(self.nodes[n].children.iter().rev().map(|&c| (c, false)));
        }
        order
    }

    /// RFC 5256 §2.2 order of a node: sent date, then mailbox order; a dummy sorts as its first
    /// child (its children must be sorted already).
    fn date_key(&self, facts: &[ThreadFacts], n: usize) -> (i64, Uid) {
        let mut cur = n;
        for _ in 0..MAX_ANCESTRY {
            if let Some(m) = self.nodes[cur].msg {
                return facts.get(m).map_or((i64::MAX, Uid::MAX), |f| (f.sent_date, f.uid));
            }
            match self.nodes[cur].children.first() {
                Some(&c) => cur = c,
                None => break,
            }
        }
        (i64::MAX, Uid::MAX)
    }

    /// Sorts every set of siblings, the roots included, by date; the youngest sets first so a
    /// dummy's first child is known when the dummy is placed (RFC 5256 REFERENCES step 6).
    fn sort_by_date(&mut self, facts: &[ThreadFacts]) {
        for n in self.post_order() {
            let mut children = std::mem::take(&mut self.nodes[n].children);
            children.sort_by_cached_key(|&c| self.date_key(facts, c));
            self.nodes[n].children = children;
        }
        let mut roots = std::mem::take(&mut self.roots);
        roots.sort_by_cached_key(|&c| self.date_key(facts, c));
        self.roots = roots;
    }

    /// The THREAD response tokens: each root a thread-list; a node's only child continues its
    /// list, several children each get a nested list (RFC 5256 §5). `number` maps a message
    /// index to the number the client sees.
    fn tokens(&self, number: impl Fn(usize) -> Option<u32>) -> Vec<ThreadToken> {
        enum Work {
            Node(usize),
            Token(ThreadToken),
        }
        let mut out = Vec::new();
        let mut stack: Vec<Work> = Vec::new();
        for &root in self.roots.iter().rev() {
            stack.push(Work::Token(ThreadToken::Close));
            stack.push(Work::Node(root));
            stack.push(Work::Token(ThreadToken::Open));
        }
        while let Some(work) = stack.pop() {
            let n = match work {
                Work::Token(t) => {
                    out.push(t);
                    continue;
                }
                Work::Node(n) => n,
            };
            let node = &self.nodes[n];
            if let Some(num) = node.msg.and_then(&number) {
                out.push(ThreadToken::Member(num));
            }
            match node.children.as_slice() {
                [] => {}
                [only] if node.msg.is_some() => stack.push(Work::Node(*only)),
                children => {
                    for &c in children.iter().rev() {
                        stack.push(Work::Token(ThreadToken::Close));
                        stack.push(Work::Node(c));
                        stack.push(Work::Token(ThreadToken::Open));
                    }
                }
            }
        }
        out
    }
}

/// The i;unicode-casemap keys of the base subjects (RFC 5256 §7): what THREAD compares them by.
fn subject_keys(facts: &[ThreadFacts]) -> Vec<String> {
    facts.iter().map(|f| collation_key(&f.base_subject)).collect()
}

/// ORDEREDSUBJECT (RFC 5256 §3): messages grouped by base subject; in each group the oldest
/// message is the parent of all others; threads ordered by their first message's date. Like any
/// other subject, the empty one forms one group.
fn ordered_subject(facts: &[ThreadFacts]) -> Forest {
    let subjects = subject_keys(facts);
    let mut order: Vec<usize> = (0..facts.len()).collect();
    order.sort_by(|&a, &b| {
        let (fa, fb) = (&facts[a], &facts[b]);
        (&subjects[a], fa.sent_date, fa.uid).cmp(&(&subjects[b], fb.sent_date, fb.uid))
    });
    let mut forest = Forest::default();
    let mut head: Option<(usize, &str)> = None;
    for i in order {
        let node = forest.add(Some(i));
        match head {
            Some((h, subject)) if subject == subjects[i] => forest.link(h, node),
            _ => {
                forest.roots.push(node);
                head = Some((node, &subjects[i]));
            }
        }
    }
    let mut roots = std::mem::take(&mut forest.roots);
    roots.sort_by_cached_key(|&r| forest.date_key(facts, r));
    forest.roots = roots;
    forest
}

/// REFERENCES (RFC 5256 §3), steps 1 to 6.
fn references(facts: &[ThreadFacts]) -> Forest {
    let mut forest = Forest::default();
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    let mut message_nodes = Vec::with_capacity(facts.len());

    // Step 1: one node per message, in mailbox order; duplicates of a Message-ID and messages
    // without one get a node that no reference can reach (a unique id).
    for (i, f) in facts.iter().enumerate() {
        let node = match f.message_id.as_deref() {
            Some(id) => match by_id.get(id) {
                Some(&existing) if forest.is_dummy(existing) => {
                    forest.nodes[existing].msg = Some(i);
                    existing
                }
                Some(_) => forest.add(Some(i)),
                None => {
                    let n = forest.add(Some(i));
                    by_id.insert(id, n);
                    n
                }
            },
            None => forest.add(Some(i)),
        };
        message_nodes.push(node);

        // 1.A: chain the references, parent before child, never replacing a link or making a loop.
        let mut previous: Option<usize> = None;
        for id in &f.references {
            let r = match by_id.get(id.as_str()) {
                Some(&n) => n,
                None => {
                    let n = forest.add(None);
                    by_id.insert(id.as_str(), n);
                    n
                }
            };
            if let Some(p) = previous
                && forest.nodes[r].parent.is_none()
                && !forest.within(p, r)
            {
                forest.link(p, r);
            }
            previous = Some(r);
        }
        // 1.B: the last reference is the parent. An existing parent (from another message's
        // truncated References) is dropped first, even when the new link would make a loop and
        // is not made: the message then has no parent, as it would with no references.
        forest.unlink(node);
        if let Some(p) = previous
            && !forest.within(p, node)
        {
            forest.link(p, node);
        }
    }

    // Step 2: the parentless nodes are the threads.
    forest.roots = (0..forest.nodes.len()).filter(|&n| forest.nodes[n].parent.is_none()).collect();

    // Step 3: prune dummies: childless ones go, others give their children to their parent
    // (at the top only when that is a single child).
    for n in forest.post_order() {
        let children = std::mem::take(&mut forest.nodes[n].children);
        let mut kept = Vec::with_capacity(children.len());
        for c in children {
            if forest.is_dummy(c) {
                let grandchildren = std::mem::take(&mut forest.nodes[c].children);
                for &g in &grandchildren {
                    forest.nodes[g].parent = Some(n);
                }
                kept.extend(grandchildren);
            } else {
                kept.push(c);
            }
        }
        forest.nodes[n].children = kept;
    }
    let roots = std::mem::take(&mut forest.roots);
    for r in roots {
        if !forest.is_dummy(r) {
            forest.roots.push(r);
            continue;
        }
        match forest.nodes[r].children.len() {
            0 => {}
            1 => {
                let child = forest.nodes[r].children[0];
                forest.nodes[r].children.clear();
                forest.nodes[child].parent = None;
                forest.roots.push(child);
            }
            _ => forest.roots.push(r),
        }
    }

    // Step 4: order the threads by date.
    forest.sort_by_date(facts);

    // Step 5: merge threads with the same base subject.
    let subjects = subject_keys(facts);
    let subject_of = |forest: &Forest, n: usize| -> Option<usize> {
        forest.nodes[n].msg.or_else(|| forest.nodes[n].children.first().and_then(|&c| forest.nodes[c].msg))
    };
    let is_reply = |forest: &Forest, n: usize| forest.nodes[n].msg.is_some_and(|m| facts[m].is_reply);
    let mut table: HashMap<&str, usize> = HashMap::new();
    for &r in &forest.roots {
        let Some(m) = subject_of(&forest, r) else { continue };
        let subject = subjects[m].as_str();
        if subject.is_empty() {
            continue;
        }
        match table.get(subject) {
            None => {
                table.insert(subject, r);
            }
            Some(&t) => {
                if !forest.is_dummy(t)
                    && (forest.is_dummy(r) || (is_reply(&forest, t) && !is_reply(&forest, r)))
                {
                    table.insert(subject, r);
                }
            }
        }
    }
    let roots = forest.roots.clone();
    let mut removed = vec![false; forest.nodes.len()];
    for r in roots {
        if removed[r] {
            continue;
        }
        let Some(m) = subject_of(&forest, r) else { continue };
        let subject = subjects[m].as_str();
        if subject.is_empty() {
            continue;
        }
        let Some(&t) = table.get(subject) else { continue };
        if t == r {
            continue;
        }
        removed[r] = true;
        if forest.is_dummy(t) && forest.is_dummy(r) {
            let children = std::mem::take(&mut forest.nodes[r].children);
            for c in children {
                forest.nodes[c].parent = None;
                forest.link(t, c);
            }
        } else if forest.is_dummy(t) || (is_reply(&forest, r) && !is_reply(&forest, t)) {
            forest.link(t, r);
        } else {
            let dummy = forest.add(None);
            removed.push(false);
            if let Some(pos) = forest.roots.iter().position(|&x| x == t) {
                forest.roots[pos] = dummy;
            }
            forest.link(dummy, t);
            forest.link(dummy, r);
            table.insert(subject, dummy);
        }
    }
    let roots = std::mem::take(&mut forest.roots);
    forest.roots = roots.into_iter().filter(|&r| !removed.get(r).copied().unwrap_or(false)).collect();

    // Step 6: order every set of siblings by date.
    forest.sort_by_date(facts);
    forest
}

#[cfg(test)]
mod tests {
    use super::*;

    use postfach_proto::response;

    fn uid_of(n: u32) -> Uid {
        Uid::new(n).expect("test UIDs start at 1")
    }

    fn fact(uid: u32, date: i64, subject: &str, reply: bool, id: Option<&str>, refs: &[&str]) -> ThreadFacts {
        ThreadFacts {
            uid: uid_of(uid),
            sent_date: date,
            base_subject: subject.to_owned(),
            is_reply: reply,
            message_id: id.map(str::to_owned),
            references: refs.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn render(forest: &Forest, facts: &[ThreadFacts]) -> String {
        let mut out = Vec::new();
        let tokens = forest.tokens(|i| facts.get(i).map(|f| f.uid.get()));
        response::write_data(&mut out, &Data::Thread(tokens), response::WriteOptions::default());
        String::from_utf8(out).unwrap_or_default().trim_end().to_owned()
    }

    #[test]
    fn ordered_subject_is_flat_per_subject() {
        let facts = vec![
            fact(1, 50, "b", false, None, &[]),
            fact(2, 10, "a", false, None, &[]),
            fact(3, 20, "a", true, None, &[]),
            fact(4, 5, "c", false, None, &[]),
            fact(5, 30, "a", true, None, &[]),
            fact(6, 60, "b", true, None, &[]),
        ];
        let forest = ordered_subject(&facts);
        assert_eq!(render(&forest, &facts), "* THREAD (4)(2 (3)(5))(1 6)");
        assert_eq!(render(&ordered_subject(&[]), &[]), "* THREAD");
    }

    #[test]
    fn subjects_compare_under_unicode_casemap() {
        // Composed and decomposed forms are the same subject (RFC 5256 §7, i;unicode-casemap).
        let facts = vec![
            fact(1, 10, "\u{e4}pfel", false, Some("a"), &[]),
            fact(2, 20, "a\u{308}pfel", true, Some("b"), &[]),
            fact(3, 30, "apfel", false, Some("c"), &[]),
        ];
        assert_eq!(render(&ordered_subject(&facts), &facts), "* THREAD (1 2)(3)");
        assert_eq!(render(&references(&facts), &facts), "* THREAD (1 2)(3)");
    }

    #[test]
    fn references_builds_parent_chains() {
        let facts = vec![
            fact(1, 10, "plan", false, Some("a"), &[]),
            fact(2, 20, "plan", true, Some("b"), &["a"]),
            fact(3, 30, "plan", true, Some("c"), &["a", "b"]),
            fact(4, 25, "plan", true, Some("d"), &["a"]),
            fact(5, 5, "other", false, Some("e"), &[]),
        ];
        let forest = references(&facts);
        assert_eq!(render(&forest, &facts), "* THREAD (5)(1 (2 3)(4))");
    }

    #[test]
    fn references_dummies_missing_parents_and_subject_merge() {
        // 1 and 2 reply to a message that is not in the mailbox: a dummy keeps them together.
        // 3 has the same base subject and is not a reply: threads merge under a new dummy.
        // 4 replies by subject only to 5.
        let facts = vec![
            fact(1, 10, "x", true, Some("a"), &["missing"]),
            fact(2, 20, "x", true, Some("b"), &["missing"]),
            fact(3, 15, "y", false, Some("c"), &[]),
            fact(4, 40, "y", true, Some("d"), &[]),
            fact(5, 5, "z", false, None, &[]),
            fact(6, 6, "z", false, None, &[]),
        ];
        let forest = references(&facts);
        assert_eq!(render(&forest, &facts), "* THREAD ((5)(6))((1)(2))(3 4)");
    }

    #[test]
    fn references_survive_loops_duplicates_and_long_chains() {
        let mut facts = vec![
            fact(1, 1, "", false, Some("a"), &["b"]),
            fact(2, 2, "", false, Some("b"), &["a"]),
            fact(3, 3, "", false, Some("a"), &[]),
        ];
        let forest = references(&facts);
        // 1 references 2, so 2 is its parent; 2's reference back to 1 would be a loop; 3 duplicates
        // 1's Message-ID and stands alone.
        assert_eq!(render(&forest, &facts), "* THREAD (2 1)(3)");
        // 1's References put k2 under the missing k0; k2's (message 2) own last reference is
        // its child k1. The link to k0 goes first and the loop is not made, so 2 is a root and
        // 3 stays alone under k0 (not "((2 1)(3))").
        let reparented = vec![
            fact(1, 1, "", false, Some("k1"), &["k0", "k2"]),
            fact(2, 2, "", false, Some("k2"), &["k1"]),
            fact(3, 3, "", false, Some("k3"), &["k0"]),
        ];
        assert_eq!(render(&references(&reparented), &reparented), "* THREAD (2 1)(3)");
        // A 20 000 message reply chain: no recursion, one thread.
        facts.clear();
        for i in 0..20_000u32 {
            let id = format!("m{i}");
            let parent = format!("m{}", i.wrapping_sub(1));
            let refs: Vec<&str> = if i == 0 { vec![] } else { vec![parent.as_str()] };
            facts.push(fact(i + 1, i64::from(i), "s", i > 0, Some(&id), &refs));
        }
        let forest = references(&facts);
        let tokens = forest.tokens(|i| facts.get(i).map(|f| f.uid.get()));
        assert_eq!(tokens.len(), 20_002);
        assert_eq!(tokens.first(), Some(&ThreadToken::Open));
        assert_eq!(tokens.get(1), Some(&ThreadToken::Member(1)));
    }
}
