//! Syntax tree → checked [`ir`](crate::ir): knows every command, test and tag we implement,
//! enforces `require` (RFC 5228 §2.10.5, §3.2), argument order and types (§2.6), and checks
//! constant arguments early (addresses, mailbox names) so mistakes surface on upload.
//!
//! Every error points at the offending token and says what was expected.

use std::cell::RefCell;
use std::collections::HashSet;

use crate::address;
use crate::error::{CompileError, Position, excerpt};
use crate::ir::{
    AddressPart, BodySelector, Case, Cmd, DateZone, FlagOp, ImplicitKeep, MatchSpec, Modifiers, Node,
    SizeRelation, SpamScale, Test, VacationSpec,
};
use crate::matching::{Comparator, MatchType, RelOp};
use crate::parser::{Argument, CommandNode, StrLit, TestArgs, TestNode};
use crate::template::{self, MAX_VARIABLE_NAME_LEN, Str};
use crate::{CAPABILITIES, Script};

type Result<T> = std::result::Result<T, CompileError>;

/// Compiles the parsed top-level commands into a [`Script`].
pub(crate) fn compile(nodes: &[CommandNode]) -> Result<Script> {
    let mut c = Compiler { caps: HashSet::new(), assigned: RefCell::new(HashSet::new()) };
    let mut rest = nodes;
    // RFC 5228 §3.2: require must come before any other command.
    while let Some((first, tail)) = rest.split_first() {
        if first.name != "require" {
            break;
        }
        c.require(first)?;
        rest = tail;
    }
    let commands = c.block(rest)?;
    let mut capabilities: Vec<String> = c.caps.iter().map(|s| (*s).to_owned()).collect();
    capabilities.sort();
    Ok(Script { commands, variables: c.has("variables"), imap4flags: c.has("imap4flags"), capabilities })
}

struct Compiler {
    caps: HashSet<&'static str>,
    /// Names of variables the script assigns (set, setflag & co.), to bound their number.
    assigned: RefCell<HashSet<String>>,
}

/// Most distinct variables a script may assign (RFC 5229 §6: at least 128). Together with
/// `Limits::max_variable_len` this bounds the memory variables can take.
pub(crate) const MAX_VARIABLES: usize = 256;

/// Extension commands and the capability each needs.
const EXTENSION_COMMANDS: [(&str, &str); 6] = [
    ("fileinto", "fileinto"),
    ("set", "variables"),
    ("setflag", "imap4flags"),
    ("addflag", "imap4flags"),
    ("removeflag", "imap4flags"),
    ("vacation", "vacation"),
];

fn needs_message(what: &str, cap: &str) -> String {
    format!("{what} needs 'require \"{cap}\";' at the top of the script")
}

/// Position just after a command or test name (identifiers are ASCII).
fn name_end(pos: Position, name: &str) -> Position {
    Position::new(pos.line, pos.column.saturating_add(u32::try_from(name.len()).unwrap_or(u32::MAX)))
}

impl Compiler {
    fn has(&self, cap: &str) -> bool {
        self.caps.contains(cap)
    }

    fn need(&self, cap: &str, pos: Position, what: &str) -> Result<()> {
        if self.has(cap) { Ok(()) } else { Err(CompileError::new(pos, needs_message(what, cap))) }
    }

    fn require(&mut self, node: &CommandNode) -> Result<()> {
        no_test_or_block(node)?;
        let mut args = Args::new("require", &node.args, name_end(node.pos, &node.name));
        let caps = args.strings("a capability name or list of names")?;
        args.finish()?;
        for lit in caps {
            match CAPABILITIES.iter().find(|c| **c == lit.value) {
                Some(cap) => {
                    self.caps.insert(cap);
                }
                None if lit.value == "regex" => {
                    return Err(CompileError::new(
                        lit.pos,
                        "unsupported extension \"regex\": regular expressions are not supported; use :matches",
                    ));
                }
                None => {
                    return Err(CompileError::new(
                        lit.pos,
                        format!("unsupported extension \"{}\"", excerpt(&lit.value)),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A string argument as the script will see it: encoded characters decoded, variable
    /// references split out (only with the respective extensions).
    fn string(&self, lit: &StrLit) -> Result<Str> {
        let value = if self.has("encoded-character") {
            template::decode_encoded_characters(&lit.value, lit.pos)?
        } else {
            lit.value.clone()
        };
        if self.has("variables") { template::parse_variables(&value, lit.pos) } else { Ok(Str::Const(value)) }
    }

    fn strings(&self, lits: &[StrLit]) -> Result<Vec<Str>> {
        lits.iter().map(|l| self.string(l)).collect()
    }

    /// A string that must be known at compile time (after encoded-character decoding).
    fn constant(&self, lit: &StrLit) -> Result<String> {
        if self.has("encoded-character") {
            template::decode_encoded_characters(&lit.value, lit.pos)
        } else {
            Ok(lit.value.clone())
        }
    }

    /// `commands` of one block, grouping if / elsif / else.
    fn block(&self, nodes: &[CommandNode]) -> Result<Vec<Node>> {
        let mut out = Vec::with_capacity(nodes.len());
        let mut i = 0;
        while i < nodes.len() {
            let node = &nodes[i];
            i += 1;
            let cmd = match node.name.as_str() {
                "if" => {
                    let mut branches = vec![self.conditional(node)?];
                    let mut otherwise = None;
                    while let Some(next) = nodes.get(i) {
                        match next.name.as_str() {
                            "elsif" => branches.push(self.conditional(next)?),
                            "else" => {
                                otherwise = Some(self.else_block(next)?);
                                i += 1;
                                break;
                            }
                            _ => break,
                        }
                        i += 1;
                    }
                    Cmd::If { branches, otherwise }
                }
                "elsif" | "else" => {
                    // RFC 5228 §3.1: elsif and else MUST only follow an if or elsif.
                    return Err(CompileError::new(
                        node.pos,
                        format!("\"{}\" without a preceding \"if\"", node.name),
                    ));
                }
                "require" => {
                    return Err(CompileError::new(
                        node.pos,
                        "\"require\" must come before any other command (RFC 5228 §3.2)",
                    ));
                }
                _ => self.action(node)?,
            };
            out.push(Node { pos: node.pos, cmd });
        }
        Ok(out)
    }

    /// `if` / `elsif`: a test and a block.
    fn conditional(&self, node: &CommandNode) -> Result<(Test, Vec<Node>)> {
        if let Some(arg) = node.args.first() {
            return Err(CompileError::new(
                arg.pos(),
                format!("\"{}\" expects a test, found {}", node.name, arg.describe()),
            ));
        }
        let Some(tests) = &node.tests else {
            return Err(CompileError::new(
                name_end(node.pos, &node.name),
                format!("\"{}\" expects a test", node.name),
            ));
        };
        let test = self.single_test(&node.name, tests)?;
        let Some(block) = &node.block else {
            return Err(CompileError::new(
                node.args_end,
                format!("expected '{{' after the test of \"{}\", found ';'", node.name),
            ));
        };
        Ok((test, self.block(&block.commands)?))
    }

    fn else_block(&self, node: &CommandNode) -> Result<Vec<Node>> {
        if let Some(arg) = node.args.first() {
            return Err(CompileError::new(
                arg.pos(),
                "\"else\" takes no arguments; use \"elsif\" for a test",
            ));
        }
        if let Some(tests) = &node.tests {
            return Err(CompileError::new(tests.pos, "\"else\" takes no test; use \"elsif\" for a test"));
        }
        let Some(block) = &node.block else {
            return Err(CompileError::new(node.args_end, "expected '{' after \"else\", found ';'"));
        };
        self.block(&block.commands)
    }

    /// The one test of `if`, `elsif` or `not`.
    fn single_test(&self, owner: &str, tests: &TestArgs) -> Result<Test> {
        match tests.tests.as_slice() {
            [one] if !tests.parenthesized => self.test(one),
            _ => Err(CompileError::new(
                tests.pos,
                format!("\"{owner}\" expects a single test, not a test list; use allof(...) or anyof(...)"),
            )),
        }
    }

    /// Action and other non-control commands (they end with ';').
    fn action(&self, node: &CommandNode) -> Result<Cmd> {
        if let Some(&(_, cap)) = EXTENSION_COMMANDS.iter().find(|(n, _)| *n == node.name) {
            self.need(cap, node.pos, &format!("command \"{}\"", node.name))?;
        }
        let known = matches!(
            node.name.as_str(),
            "stop"
                | "keep"
                | "discard"
                | "fileinto"
                | "redirect"
                | "set"
                | "setflag"
                | "addflag"
                | "removeflag"
                | "vacation"
        );
        if !known {
            let hint = if is_test_name(&node.name) { " (it is a test; use it inside \"if\")" } else { "" };
            return Err(CompileError::new(node.pos, format!("unknown command \"{}\"{hint}", node.name)));
        }
        no_test_or_block(node)?;
        let mut args = Args::new(&node.name, &node.args, name_end(node.pos, &node.name));
        let cmd = match node.name.as_str() {
            "stop" => Cmd::Stop,
            "discard" => Cmd::Discard,
            "keep" => {
                let mut flags = None;
                while let Some((tag, pos)) = args.next_tag() {
                    match tag {
                        "flags" => {
                            self.need("imap4flags", pos, "tag :flags")?;
                            once(&flags, pos, tag)?;
                            flags = Some(self.strings(args.tag_strings(tag)?)?);
                        }
                        _ => return Err(args.bad_tag(tag, pos)),
                    }
                }
                Cmd::Keep { flags }
            }
            "fileinto" => {
                let (mut copy, mut create, mut flags) = (None, None, None);
                while let Some((tag, pos)) = args.next_tag() {
                    match tag {
                        "copy" => {
                            self.need("copy", pos, "tag :copy")?;
                            once(&copy, pos, tag)?;
                            copy = Some(ImplicitKeep::Leave);
                        }
                        "create" => {
                            self.need("mailbox", pos, "tag :create")?;
                            once(&create, pos, tag)?;
                            create = Some(true);
                        }
                        "flags" => {
                            self.need("imap4flags", pos, "tag :flags")?;
                            once(&flags, pos, tag)?;
                            flags = Some(self.strings(args.tag_strings(tag)?)?);
                        }
                        _ => return Err(args.bad_tag(tag, pos)),
                    }
                }
                let lit = args.string("a mailbox name")?;
                let mailbox = self.string(lit)?;
                if let Some(name) = mailbox.as_const()
                    && let Err(why) = crate::eval::check_mailbox_name(name)
                {
                    return Err(CompileError::new(lit.pos, why));
                }
                Cmd::FileInto {
                    mailbox,
                    copy: copy.unwrap_or(ImplicitKeep::Cancel),
                    create: create.unwrap_or(false),
                    flags,
                }
            }
            "redirect" => {
                let mut copy = None;
                while let Some((tag, pos)) = args.next_tag() {
                    match tag {
                        "copy" => {
                            self.need("copy", pos, "tag :copy")?;
                            once(&copy, pos, tag)?;
                            copy = Some(ImplicitKeep::Leave);
                        }
                        _ => return Err(args.bad_tag(tag, pos)),
                    }
                }
                let lit = args.string("an address to redirect to")?;
                let address = self.string(lit)?;
                if let Some(a) = address.as_const()
                    && address::parse_single(a).is_none()
                {
                    // RFC 5228 §2.4.2.3: outbound addresses must be sieve-address syntax.
                    return Err(CompileError::new(
                        lit.pos,
                        format!("redirect: \"{}\" is not a valid address", excerpt(a)),
                    ));
                }
                Cmd::Redirect { address, copy: copy.unwrap_or(ImplicitKeep::Cancel) }
            }
            "set" => self.set(&mut args)?,
            "setflag" | "addflag" | "removeflag" => {
                let op = match node.name.as_str() {
                    "setflag" => FlagOp::Set,
                    "addflag" => FlagOp::Add,
                    _ => FlagOp::Remove,
                };
                if let Some((tag, pos)) = args.next_tag() {
                    return Err(args.bad_tag(tag, pos));
                }
                let variable = if args.remaining() >= 2 {
                    let lit = args.string("a variable name")?;
                    Some(self.assigned_variable(lit)?)
                } else {
                    None
                };
                let flags = self.strings(args.strings("a flag or list of flags")?)?;
                Cmd::Flags { op, variable, flags }
            }
            "vacation" => Cmd::Vacation(Box::new(self.vacation(&mut args)?)),
            // `known` above lists exactly the arms of this match.
            _ => return Err(CompileError::new(node.pos, format!("unknown command \"{}\"", node.name))),
        };
        args.finish()?;
        Ok(cmd)
    }

    /// A constant variable name for `set`, setflag & co. and hasflag (RFC 5229 §4: "The name
    /// MUST be a constant string and conform to the syntax of variable-name"; match variables
    /// cannot be set).
    fn variable_name(&self, lit: &StrLit) -> Result<String> {
        if !self.has("variables") {
            // RFC 5232 §1: without "variables" the variable name parameter MUST cause an error.
            return Err(CompileError::new(lit.pos, needs_message("a variable name", "variables")));
        }
        let name = self.constant(lit)?;
        if !template::is_identifier(&name) {
            return Err(CompileError::new(
                lit.pos,
                format!(
                    "\"{}\" is not a valid variable name (letters, digits and '_', not starting with a digit)",
                    excerpt(&name)
                ),
            ));
        }
        if name.len() > MAX_VARIABLE_NAME_LEN {
            return Err(CompileError::new(
                lit.pos,
                format!("variable name is too long (limit {MAX_VARIABLE_NAME_LEN} characters)"),
            ));
        }
        Ok(name.to_ascii_lowercase())
    }

    /// A variable name the script assigns to; counts it against [`MAX_VARIABLES`].
    fn assigned_variable(&self, lit: &StrLit) -> Result<String> {
        let name = self.variable_name(lit)?;
        let mut assigned = self.assigned.borrow_mut();
        if !assigned.contains(&name) {
            if assigned.len() >= MAX_VARIABLES {
                return Err(CompileError::new(
                    lit.pos,
                    format!("too many different variables (limit {MAX_VARIABLES})"),
                ));
            }
            assigned.insert(name.clone());
        }
        Ok(name)
    }

    /// `set [MODIFIER] <name: string> <value: string>` (RFC 5229 §4).
    fn set(&self, args: &mut Args<'_>) -> Result<Cmd> {
        let mut m = Modifiers::default();
        let mut seen: Vec<&str> = Vec::new();
        while let Some((tag, pos)) = args.next_tag() {
            if seen.contains(&tag) {
                return Err(CompileError::new(pos, format!("duplicate tag :{tag}")));
            }
            let clash = |slot_taken: bool, other: &str| {
                if slot_taken {
                    // RFC 5229 §4.1: two modifiers of the same precedence are an error.
                    Err(CompileError::new(pos, format!("cannot combine :{tag} with :{other}")))
                } else {
                    Ok(())
                }
            };
            match tag {
                "lower" | "upper" => {
                    clash(m.whole.is_some(), if tag == "lower" { "upper" } else { "lower" })?;
                    m.whole = Some(if tag == "lower" { Case::Lower } else { Case::Upper });
                }
                "lowerfirst" | "upperfirst" => {
                    clash(m.first.is_some(), if tag == "lowerfirst" { "upperfirst" } else { "lowerfirst" })?;
                    m.first = Some(if tag == "lowerfirst" { Case::Lower } else { Case::Upper });
                }
                "quotewildcard" => m.quote_wildcard = true,
                "length" => m.length = true,
                _ => return Err(args.bad_tag(tag, pos)),
            }
            seen.push(tag);
        }
        let name_lit = args.string("a variable name")?;
        let name = self.assigned_variable(name_lit)?;
        let value = self.string(args.string("a value")?)?;
        Ok(Cmd::Set { name, modifiers: m, value })
    }

    /// `vacation [":days" number] [":subject" string] [":from" string] [":addresses" string-list]
    /// [":mime"] [":handle" string] <reason: string>` (RFC 5230 §4).
    fn vacation(&self, args: &mut Args<'_>) -> Result<VacationSpec> {
        let (mut days, mut subject, mut from, mut addresses, mut mime, mut handle) =
            (None, None, None, None, None, None);
        while let Some((tag, pos)) = args.next_tag() {
            match tag {
                "days" => {
                    once(&days, pos, tag)?;
                    days = Some(args.tag_number(tag)?);
                }
                "subject" => {
                    once(&subject, pos, tag)?;
                    subject = Some(self.string(args.tag_string(tag)?)?);
                }
                "from" => {
                    once(&from, pos, tag)?;
                    let lit = args.tag_string(tag)?;
                    let value = self.string(lit)?;
                    if let Some(v) = value.as_const()
                        && !crate::eval::valid_mailbox_list(v)
                    {
                        // RFC 5230 §4.3: SHOULD generate an error for an invalid :from.
                        return Err(CompileError::new(
                            lit.pos,
                            format!("vacation :from \"{}\" is not a valid address", excerpt(v)),
                        ));
                    }
                    from = Some(value);
                }
                "addresses" => {
                    once(&addresses, pos, tag)?;
                    let lits = args.tag_strings(tag)?;
                    let values = self.strings(lits)?;
                    for (lit, value) in lits.iter().zip(&values) {
                        if let Some(v) = value.as_const()
                            && address::parse_single(v).is_none()
                        {
                            return Err(CompileError::new(
                                lit.pos,
                                format!("vacation :addresses: \"{}\" is not a valid address", excerpt(v)),
                            ));
                        }
                    }
                    addresses = Some(values);
                }
                "mime" => {
                    once(&mime, pos, tag)?;
                    mime = Some(true);
                }
                "handle" => {
                    once(&handle, pos, tag)?;
                    handle = Some(self.string(args.tag_string(tag)?)?);
                }
                _ => return Err(args.bad_tag(tag, pos)),
            }
        }
        let lit = args.string("the reason (the text of the reply)")?;
        let reason = self.string(lit)?;
        let mime = mime.unwrap_or(false);
        if mime
            && let Some(text) = reason.as_const()
            && let Err(why) = crate::eval::check_mime_reason(text)
        {
            return Err(CompileError::new(lit.pos, why));
        }
        Ok(VacationSpec {
            days,
            subject,
            from,
            addresses: addresses.unwrap_or_default(),
            mime,
            handle,
            reason,
        })
    }

    fn test(&self, node: &TestNode) -> Result<Test> {
        let logical = matches!(node.name.as_str(), "not" | "allof" | "anyof");
        if !logical && let Some(tests) = &node.tests {
            let found = tests.tests.first().map_or_else(|| "'('".to_owned(), |t| format!("\"{}\"", t.name));
            let msg = if tests.parenthesized {
                format!("test \"{}\" takes no test list", node.name)
            } else {
                format!("unexpected {found} after test \"{}\" (missing '{{', ',' or ')'?)", node.name)
            };
            return Err(CompileError::new(tests.pos, msg));
        }
        let mut args = Args::new(&node.name, &node.args, name_end(node.pos, &node.name));
        let test = match node.name.as_str() {
            "true" => Test::True,
            "false" => Test::False,
            "not" => {
                args.finish()?;
                let Some(tests) = &node.tests else {
                    return Err(CompileError::new(node.args_end, "\"not\" expects a test"));
                };
                Test::Not(Box::new(self.single_test("not", tests)?))
            }
            "allof" | "anyof" => {
                args.finish()?;
                let Some(tests) = &node.tests else {
                    return Err(CompileError::new(
                        node.args_end,
                        format!("\"{}\" expects a test list: {}(test, test, ...)", node.name, node.name),
                    ));
                };
                // A bare single test is accepted too (RFC 5232 §9's example writes
                // `anyof address ...`), since its meaning is unambiguous.
                let list = tests.tests.iter().map(|t| self.test(t)).collect::<Result<Vec<_>>>()?;
                if node.name == "allof" { Test::AllOf(list) } else { Test::AnyOf(list) }
            }
            "address" | "envelope" => {
                if node.name == "envelope" {
                    self.need("envelope", node.pos, "test \"envelope\"")?;
                }
                let m = self.match_tags(&mut args, TagSet::WithAddressPart)?;
                let names_lit = args.strings(if node.name == "address" {
                    "a header name or list of names"
                } else {
                    "an envelope part (\"from\" or \"to\") or a list of them"
                })?;
                let names = self.strings(names_lit)?;
                for (lit, name) in names_lit.iter().zip(&names) {
                    let Some(name) = name.as_const() else { continue };
                    if node.name == "address" && !address::is_address_header(name) {
                        // RFC 5228 §5.1: the address test is restricted to address headers.
                        return Err(CompileError::new(
                            lit.pos,
                            format!(
                                "address: header \"{name}\" does not contain addresses; use the header test"
                            ),
                        ));
                    }
                    if node.name == "envelope" && !crate::eval::is_envelope_part(name) {
                        // RFC 5228 §5.4: unknown envelope parts SHOULD be an error.
                        return Err(CompileError::new(
                            lit.pos,
                            format!(
                                "envelope: unknown envelope part \"{name}\" (expected \"from\" or \"to\")"
                            ),
                        ));
                    }
                }
                let keys = self.strings(args.strings("a key or list of keys")?)?;
                let (spec, part) = (m.spec, m.part);
                if node.name == "address" {
                    Test::Address { spec, part, headers: names, keys }
                } else {
                    Test::Envelope { spec, part, parts: names, keys }
                }
            }
            "header" => {
                let m = self.match_tags(&mut args, TagSet::Plain)?;
                let headers = self.strings(args.strings("a header name or list of names")?)?;
                let keys = self.strings(args.strings("a key or list of keys")?)?;
                Test::Header { spec: m.spec, headers, keys }
            }
            "exists" => {
                if let Some((tag, pos)) = args.next_tag() {
                    return Err(args.bad_tag(tag, pos));
                }
                Test::Exists { headers: self.strings(args.strings("a header name or list of names")?)? }
            }
            "size" => {
                let mut relation = None;
                while let Some((tag, pos)) = args.next_tag() {
                    let r = match tag {
                        "over" => SizeRelation::Over,
                        "under" => SizeRelation::Under,
                        _ => return Err(args.bad_tag(tag, pos)),
                    };
                    if relation.is_some() {
                        // RFC 5228 §5.9: exactly one of :over or :under.
                        return Err(CompileError::new(pos, "size: give only one of :over and :under"));
                    }
                    relation = Some(r);
                }
                let Some(relation) = relation else {
                    return Err(CompileError::new(args.here(), "size: expected :over or :under"));
                };
                let limit = args.number("a size limit (a number)")?;
                Test::Size { relation, limit }
            }
            "body" => {
                self.need("body", node.pos, "test \"body\"")?;
                let m = self.match_tags(&mut args, TagSet::WithBodyTransform)?;
                let keys = self.strings(args.strings("a key or list of keys")?)?;
                Test::Body { spec: m.spec, selector: m.body.unwrap_or(BodySelector::Text), keys }
            }
            "string" => {
                self.need("variables", node.pos, "test \"string\"")?;
                let m = self.match_tags(&mut args, TagSet::Plain)?;
                let sources = self.strings(args.strings("a source string or list of strings")?)?;
                let keys = self.strings(args.strings("a key or list of keys")?)?;
                Test::String { spec: m.spec, sources, keys }
            }
            "hasflag" => {
                self.need("imap4flags", node.pos, "test \"hasflag\"")?;
                let m = self.match_tags(&mut args, TagSet::Plain)?;
                let variables = if args.remaining() >= 2 {
                    let lits = args.strings("a variable name or list of names")?;
                    Some(lits.iter().map(|l| self.variable_name(l)).collect::<Result<Vec<_>>>()?)
                } else {
                    None
                };
                let keys = self.strings(args.strings("a flag or list of flags")?)?;
                Test::HasFlag { spec: m.spec, variables, keys }
            }
            "spamtest" => {
                if !self.has("spamtest") && !self.has("spamtestplus") {
                    return Err(CompileError::new(node.pos, needs_message("test \"spamtest\"", "spamtest")));
                }
                let m = self.match_tags(&mut args, TagSet::WithPercent)?;
                if m.percent {
                    // RFC 5235 §3.2: :percent MUST be an error without "spamtestplus".
                    self.need("spamtestplus", m.percent_pos, "tag :percent")?;
                }
                let value = self.string(args.string("a value to compare the spam score with")?)?;
                let scale = if m.percent { SpamScale::Percent } else { SpamScale::Tenths };
                Test::Spam { spec: m.spec, scale, value }
            }
            "mailboxexists" => {
                self.need("mailbox", node.pos, "test \"mailboxexists\"")?;
                if let Some((tag, pos)) = args.next_tag() {
                    return Err(args.bad_tag(tag, pos));
                }
                Test::MailboxExists { names: self.strings(args.strings("a mailbox name or list of names")?)? }
            }
            "currentdate" => {
                self.need("date", node.pos, "test \"currentdate\"")?;
                let m = self.match_tags(&mut args, TagSet::WithZone)?;
                let part = self.date_part(args.string("a date part (\"date\", \"time\", ...)")?)?;
                let keys = self.strings(args.strings("a key or list of keys")?)?;
                let zone = match m.zone {
                    Some(DateZone::Given(z)) => Some(z),
                    _ => None,
                };
                Test::CurrentDate { spec: m.spec, zone, part, keys }
            }
            "date" => {
                self.need("date", node.pos, "test \"date\"")?;
                let m = self.match_tags(&mut args, TagSet::WithAnyZone)?;
                let header = self.string(args.string("a header field name")?)?;
                let part = self.date_part(args.string("a date part (\"date\", \"time\", ...)")?)?;
                let keys = self.strings(args.strings("a key or list of keys")?)?;
                Test::Date { spec: m.spec, zone: m.zone.unwrap_or(DateZone::Local), header, part, keys }
            }
            "virustest" => {
                return Err(CompileError::new(node.pos, "test \"virustest\" is not supported"));
            }
            name => {
                let hint = if is_action_name(name) { " (it is a command; did you forget '{'?)" } else { "" };
                return Err(CompileError::new(node.pos, format!("unknown test \"{name}\"{hint}")));
            }
        };
        args.finish()?;
        Ok(test)
    }

    /// Reads COMPARATOR, MATCH-TYPE and (depending on `set`) ADDRESS-PART, BODY-TRANSFORM or
    /// :percent, in any order (RFC 5228 §2.6.2); each at most once (§2.6).
    fn match_tags(&self, args: &mut Args<'_>, set: TagSet) -> Result<MatchTags> {
        let mut comparator: Option<(Comparator, Position)> = None;
        let mut match_type: Option<(MatchType, Position)> = None;
        let mut part: Option<AddressPart> = None;
        let mut body: Option<BodySelector> = None;
        let (mut percent, mut percent_pos) = (false, Position::default());
        let mut zone: Option<DateZone> = None;
        while let Some((tag, pos)) = args.next_tag() {
            match tag {
                "zone" | "originalzone"
                    if set == TagSet::WithAnyZone || (set == TagSet::WithZone && tag == "zone") =>
                {
                    if zone.is_some() {
                        // RFC 5260 §4.1: :zone and :originalzone exclude each other.
                        return Err(CompileError::new(pos, "give only one of :zone and :originalzone"));
                    }
                    zone = Some(if tag == "originalzone" {
                        DateZone::Original
                    } else {
                        let lit = args.tag_string(tag)?;
                        let value = self.string(lit)?;
                        if let Str::Const(c) = &value
                            && crate::date::parse_zone(c).is_none()
                        {
                            return Err(CompileError::new(
                                lit.pos,
                                format!(
                                    ":zone: \"{}\" is not a zone like \"+0100\" or \"-0530\"",
                                    excerpt(c)
                                ),
                            ));
                        }
                        DateZone::Given(value)
                    });
                }
                "comparator" => {
                    if comparator.is_some() {
                        return Err(CompileError::new(pos, "duplicate :comparator"));
                    }
                    let lit = args.tag_string(tag)?;
                    let name = self.constant(lit)?;
                    let Some(c) = Comparator::from_name(&name) else {
                        return Err(CompileError::new(
                            lit.pos,
                            format!("unknown comparator \"{}\"", excerpt(&name)),
                        ));
                    };
                    if let Some(cap) = c.capability() {
                        // RFC 5228 §2.7.3: other comparators must be declared with require.
                        self.need(cap, lit.pos, &format!("comparator \"{name}\""))?;
                    }
                    comparator = Some((c, pos));
                }
                "is" | "contains" | "matches" | "value" | "count" => {
                    if match_type.is_some() {
                        return Err(CompileError::new(
                            pos,
                            "only one match type (:is, :contains, :matches, ...) may be given",
                        ));
                    }
                    let mt = match tag {
                        "is" => MatchType::Is,
                        "contains" => MatchType::Contains,
                        "matches" => MatchType::Matches,
                        _ => {
                            self.need("relational", pos, &format!("match type :{tag}"))?;
                            let lit = args.tag_string(tag)?;
                            let Some(op) = RelOp::parse(&self.constant(lit)?) else {
                                return Err(CompileError::new(
                                    lit.pos,
                                    format!(
                                        ":{tag}: expected a relational operator \"gt\", \"ge\", \"lt\", \"le\", \"eq\" or \"ne\""
                                    ),
                                ));
                            };
                            if tag == "value" { MatchType::Value(op) } else { MatchType::Count(op) }
                        }
                    };
                    match_type = Some((mt, pos));
                }
                "regex" => {
                    return Err(CompileError::new(pos, "match type :regex is not supported; use :matches"));
                }
                "all" | "localpart" | "domain" | "user" | "detail" if set == TagSet::WithAddressPart => {
                    if part.is_some() {
                        return Err(CompileError::new(
                            pos,
                            "only one address part (:all, :localpart, :domain, ...) may be given",
                        ));
                    }
                    part = Some(match tag {
                        "all" => AddressPart::All,
                        "localpart" => AddressPart::LocalPart,
                        "domain" => AddressPart::Domain,
                        _ => {
                            self.need("subaddress", pos, &format!("address part :{tag}"))?;
                            if tag == "user" { AddressPart::User } else { AddressPart::Detail }
                        }
                    });
                }
                "raw" | "content" | "text" if set == TagSet::WithBodyTransform => {
                    if body.is_some() {
                        return Err(CompileError::new(
                            pos,
                            "only one body transform (:raw, :content, :text) may be given",
                        ));
                    }
                    body = Some(match tag {
                        "raw" => BodySelector::Raw,
                        "text" => BodySelector::Text,
                        _ => BodySelector::Content(self.strings(args.tag_strings(tag)?)?),
                    });
                }
                "percent" if set == TagSet::WithPercent => {
                    once(&percent.then_some(()), pos, tag)?;
                    percent = true;
                    percent_pos = pos;
                }
                _ => return Err(args.bad_tag(tag, pos)),
            }
        }
        let comparator_used = comparator.map_or(Comparator::AsciiCasemap, |(c, _)| c);
        if let Some((mt @ (MatchType::Contains | MatchType::Matches), pos)) = match_type
            && !comparator_used.supports_substring()
        {
            // RFC 5228 §2.7.1: a comparator without substring support can't do :contains/:matches.
            let which = if mt == MatchType::Contains { ":contains" } else { ":matches" };
            return Err(CompileError::new(
                pos,
                format!("comparator \"i;ascii-numeric\" cannot be used with {which}"),
            ));
        }
        Ok(MatchTags {
            spec: MatchSpec {
                comparator: comparator_used,
                match_type: match_type.map_or(MatchType::Is, |(m, _)| m),
            },
            part: part.unwrap_or(AddressPart::All),
            body,
            percent,
            percent_pos,
            zone,
        })
    }

    /// A date-part argument (RFC 5260 §4.2); a constant must name a known part.
    fn date_part(&self, lit: &StrLit) -> Result<Str> {
        let value = self.string(lit)?;
        if let Str::Const(c) = &value
            && !crate::date::is_date_part(c)
        {
            return Err(CompileError::new(
                lit.pos,
                format!(
                    "unknown date part \"{}\" (expected one of {})",
                    excerpt(c),
                    crate::date::DATE_PARTS.join(", ")
                ),
            ));
        }
        Ok(value)
    }
}

/// Which optional tags a matching test accepts besides COMPARATOR and MATCH-TYPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagSet {
    Plain,
    WithAddressPart,
    WithBodyTransform,
    WithPercent,
    /// `currentdate`: `:zone`.
    WithZone,
    /// `date`: `:zone` or `:originalzone`.
    WithAnyZone,
}

struct MatchTags {
    spec: MatchSpec,
    part: AddressPart,
    body: Option<BodySelector>,
    percent: bool,
    percent_pos: Position,
    zone: Option<DateZone>,
}

fn once<T>(slot: &Option<T>, pos: Position, tag: &str) -> Result<()> {
    if slot.is_some() { Err(CompileError::new(pos, format!("duplicate tag :{tag}"))) } else { Ok(()) }
}

fn is_test_name(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "allof"
            | "anyof"
            | "envelope"
            | "exists"
            | "false"
            | "header"
            | "not"
            | "size"
            | "true"
            | "date"
            | "currentdate"
            | "body"
            | "string"
            | "hasflag"
            | "spamtest"
            | "mailboxexists"
    )
}

fn is_action_name(name: &str) -> bool {
    matches!(
        name,
        "keep"
            | "discard"
            | "fileinto"
            | "redirect"
            | "stop"
            | "set"
            | "setflag"
            | "addflag"
            | "removeflag"
            | "vacation"
    )
}

/// Commands that end with ';' take neither a test nor a block.
fn no_test_or_block(node: &CommandNode) -> Result<()> {
    let before_test = node.args.last().map_or_else(|| name_end(node.pos, &node.name), Argument::end);
    if let Some(tests) = &node.tests {
        let found = match tests.tests.first() {
            Some(t) if !tests.parenthesized => format!("identifier \"{}\"", t.name),
            _ => "'('".to_owned(),
        };
        return Err(CompileError::new(
            before_test,
            format!("expected ';' after \"{}\", found {found}", node.name),
        ));
    }
    if node.block.is_some() {
        return Err(CompileError::new(
            node.args_end,
            format!("expected ';' after \"{}\", found '{{'", node.name),
        ));
    }
    Ok(())
}

/// Reads the arguments of one command or test in order: tags first, then positionals.
struct Args<'a> {
    owner: &'a str,
    list: &'a [Argument],
    at: usize,
    /// Where the owner's name ends (for "expected ..." when arguments run out).
    name_end: Position,
}

impl<'a> Args<'a> {
    fn new(owner: &'a str, list: &'a [Argument], name_end: Position) -> Self {
        Self { owner, list, at: 0, name_end }
    }

    /// Where the next argument is, or where it should have been.
    fn here(&self) -> Position {
        match self.list.get(self.at) {
            Some(a) => a.pos(),
            None => {
                self.at.checked_sub(1).and_then(|i| self.list.get(i)).map_or(self.name_end, Argument::end)
            }
        }
    }

    fn remaining(&self) -> usize {
        self.list.len() - self.at
    }

    /// Takes the next argument if it is a tag.
    fn next_tag(&mut self) -> Option<(&'a str, Position)> {
        match self.list.get(self.at) {
            Some(Argument::Tag { name, pos, .. }) => {
                self.at += 1;
                Some((name.as_str(), *pos))
            }
            _ => None,
        }
    }

    fn bad_tag(&self, tag: &str, pos: Position) -> CompileError {
        CompileError::new(pos, format!("\"{}\" does not accept tag :{tag}", self.owner))
    }

    fn expected(&self, what: &str) -> CompileError {
        let found = self.list.get(self.at).map_or_else(|| "nothing".to_owned(), Argument::describe);
        CompileError::new(self.here(), format!("{}: expected {what}, found {found}", self.owner))
    }

    /// A single string (not a bracketed list).
    fn string(&mut self, what: &str) -> Result<&'a StrLit> {
        match self.list.get(self.at) {
            Some(Argument::Strings { items, bracketed: false, .. }) if items.len() == 1 => {
                self.at += 1;
                Ok(&items[0])
            }
            Some(Argument::Strings { items, .. }) if items.len() == 1 => {
                // A one-element list is a fine single string.
                self.at += 1;
                Ok(&items[0])
            }
            _ => Err(self.expected(what)),
        }
    }

    /// A string or a string list.
    fn strings(&mut self, what: &str) -> Result<&'a [StrLit]> {
        match self.list.get(self.at) {
            Some(Argument::Strings { items, .. }) => {
                self.at += 1;
                Ok(items)
            }
            _ => Err(self.expected(what)),
        }
    }

    fn number(&mut self, what: &str) -> Result<u64> {
        match self.list.get(self.at) {
            Some(Argument::Number { value, .. }) => {
                self.at += 1;
                Ok(*value)
            }
            _ => Err(self.expected(what)),
        }
    }

    fn tag_string(&mut self, tag: &str) -> Result<&'a StrLit> {
        self.string(&format!("a string after :{tag}"))
    }

    fn tag_strings(&mut self, tag: &str) -> Result<&'a [StrLit]> {
        self.strings(&format!("a string or string list after :{tag}"))
    }

    fn tag_number(&mut self, tag: &str) -> Result<u64> {
        self.number(&format!("a number after :{tag}"))
    }

    /// Fails on anything left over.
    fn finish(&self) -> Result<()> {
        match self.list.get(self.at) {
            None => Ok(()),
            // RFC 5228 §2.6.2: tagged arguments must appear before positional arguments.
            Some(Argument::Tag { name, pos, .. }) => Err(CompileError::new(
                *pos,
                format!("tag :{name} must come before the other arguments of \"{}\"", self.owner),
            )),
            Some(other) => Err(CompileError::new(
                other.pos(),
                format!("too many arguments for \"{}\": unexpected {}", self.owner, other.describe()),
            )),
        }
    }
}
