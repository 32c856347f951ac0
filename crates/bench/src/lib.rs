//! `postfach-bench` as a library: the IMAP load client, corpus, statistics and scenarios that
//! the `postfach-bench` binary drives. Split from the binary so that every piece is testable and
//! documented on its own; nothing here is a stable API for other crates.
//!
//! # Layout
//! - [`client`]: a minimal async IMAP client that counts protocol errors.
//! - [`deflate`]: the client side of COMPRESS=DEFLATE (RFC 4978).
//! - [`response`]: response framing (lines and literals) and classification, no I/O.
//! - [`corpus`]: deterministic realistic messages; [`rng`]: the seeded generator.
//! - [`stats`]: fixed-size latency histograms; [`report`]: figures, JSON, tables, comparison.
//! - [`procmem`]: RSS/PSS of a local server's process tree from /proc.
//! - [`scenario`]: the scenarios (`mixed`, `append`, `big-mailbox`, `idle`, `handshakes`).
//!
//! Limits: Linux for the memory figures; every response is bounded by
//! [`client::MAX_RESPONSE`], every wait by the target's timeout.

pub mod client;
pub mod corpus;
pub mod deflate;
pub mod procmem;
pub mod report;
pub mod response;
pub mod rng;
pub mod scenario;
pub mod stats;
