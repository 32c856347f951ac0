//! The command handlers, one file per command family (after mini-redis's `cmd/`).
//!
//! Every handler is called by the gate in `session.rs` after the gate decided the command is
//! legal in the session's state; it receives the state it needs (a [`crate::context::Cx`], the
//! selected mailbox), writes untagged responses through [`crate::Out`], and returns a
//! [`crate::respond::Done`] or [`crate::respond::Reply`]: the tagged completion is the gate's.
//!
//! Dependencies run one way: `list` uses `mailbox` (STATUS and special-use in LIST), `copy` and
//! `select` use `mailbox`'s name rules, `store`/`copy`/`search`/`expunge` use `fetch`'s set
//! resolution, `sort` uses `search`'s criteria; nothing here uses `session`.

pub(crate) mod acl;
pub(crate) mod any;
pub(crate) mod catenate;
pub(crate) mod copy;
pub(crate) mod expunge;
pub(crate) mod fetch;
pub(crate) mod idle;
pub(crate) mod list;
pub(crate) mod login;
pub(crate) mod mailbox;
pub(crate) mod metadata;
pub(crate) mod multisearch;
pub(crate) mod quota;
pub(crate) mod search;
pub(crate) mod select;
pub(crate) mod sort;
pub(crate) mod store;
pub(crate) mod uidbatches;
pub(crate) mod urlauth;
