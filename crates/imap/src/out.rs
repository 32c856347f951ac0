//! The response sink: handlers hand it responses as values; it encodes them, and only the
//! connection driver writes the bytes.
//!
//! `Out` owns the response API ([`Out::data`], [`Out::status`], [`Out::continuation`]) and the
//! write options the session enabled (UTF-8 mailbox names, RFC 9051 §5.1 / RFC 6855), so no
//! handler touches bytes or encoder options. The tagged completion is written by the session's
//! gate alone, and after it no untagged response may follow in the same command (RFC 9051
//! §7.5.1; RFC 9051 §2.2.2: the tagged response ends the command): `Out` refuses it (a debug
//! assertion; in release builds the stray response is dropped and logged). `* BYE` is the one
//! exception: the server may send it at any time before closing (RFC 9051 §7.1.5).
//!
//! Output is buffered. When the driver gives a channel ([`Out::streaming`]), a handler that
//! produces a lot (FETCH 1:* on a big mailbox) hands full chunks to the driver as it goes, so
//! memory per connection stays bounded by the chunk size times the channel depth; the channel's
//! capacity is the back-pressure. Without a channel (tests), everything stays in the buffer.

use postfach_proto::response::{self, Code, Completion, Data, Status, WriteOptions};
use postfach_proto::types::Tag;
use tokio::sync::mpsc;

/// Bytes at which a streaming `Out` hands a chunk to the driver.
const CHUNK: usize = 64 * 1024;

/// Encoded responses on their way to the client.
#[derive(Debug, Default)]
pub struct Out {
    buf: Vec<u8>,
    tx: Option<mpsc::Sender<Vec<u8>>>,
    /// How responses are encoded (set by the session from what the client enabled).
    opts: WriteOptions,
    /// The current command's tagged completion is written: nothing untagged may follow.
    completed: bool,
}

impl Out {
    /// A buffer that keeps everything until [`Out::take`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A buffer that passes chunks of about 64 KiB to `tx` while a command runs.
    pub fn streaming(tx: mpsc::Sender<Vec<u8>>) -> Self {
        Self { buf: Vec::new(), tx: Some(tx), opts: WriteOptions::default(), completed: false }
    }

    /// Starts a call into the session: the write options the client enabled, and no tagged
    /// completion written yet. Called by the session at each entry point (and again by ENABLE).
    pub(crate) fn begin(&mut self, opts: WriteOptions) {
        self.opts = opts;
        self.completed = false;
    }

    /// Sets the write options (ENABLE changed them) without starting a new command.
    pub(crate) fn set_options(&mut self, opts: WriteOptions) {
        self.opts = opts;
    }

    /// An untagged data response (`* ...`, RFC 9051 §7).
    pub(crate) fn data(&mut self, data: &Data) {
        if self.untagged_allowed() {
            response::write_data(&mut self.buf, data, self.opts);
        }
    }

    /// `* SEARCH n n ... [(MODSEQ m)]` (RFC 9051 §7.3.5, RFC 7162 §3.1.5), byte for byte what
    /// `Data::Search` encodes, but handed to the driver in chunks as it grows: the line for a
    /// million-message UID SEARCH ALL is about 8 MB, which so never sits whole in the buffer.
    pub(crate) async fn search_line(&mut self, numbers: &[u32], modseq: Option<u64>) {
        use std::io::Write as _;
        if !self.untagged_allowed() {
            return;
        }
        self.buf.extend_from_slice(b"* SEARCH");
        let mut any = false;
        for &n in numbers.iter().filter(|&&n| n > 0) {
            any = true;
            let _ = write!(self.buf, " {n}");
            self.flush_if_large().await;
        }
        // RFC 7162 §3.1.5: the MODSEQ item only follows a non-empty result.
        if let Some(m) = modseq
            && any
        {
            let _ = write!(self.buf, " (MODSEQ {m})");
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An untagged status response (`* OK|NO|BAD|PREAUTH [code] text`, RFC 9051 §7.1).
    pub(crate) fn status(&mut self, status: Status, code: Option<Code>, text: &str) {
        if self.untagged_allowed() {
            response::write_untagged_status(&mut self.buf, status, code.as_ref(), text);
        }
    }

    /// `* BYE text` (RFC 9051 §7.1.5): allowed at any time, also after the tagged completion,
    /// since the connection closes next.
    pub(crate) fn bye(&mut self, text: &str) {
        response::write_untagged_status(&mut self.buf, Status::Bye, None, text);
    }

    /// A command continuation request (`+ text`, RFC 9051 §7.6).
    pub(crate) fn continuation(&mut self, text: &str) {
        if self.untagged_allowed() {
            response::write_continuation(&mut self.buf, text);
        }
    }

    /// The tagged completion of a command (`tag OK|NO|BAD [code] text`, RFC 9051 §7.1). Only the
    /// session's gate calls this; handlers return their result instead.
    pub(crate) fn tagged(&mut self, tag: &Tag, status: Completion, code: Option<&Code>, text: &str) {
        debug_assert!(!self.completed, "a second tagged completion for one command");
        response::write_tagged(&mut self.buf, tag, status, code, text);
        self.completed = true;
    }

    /// False (and a debug assertion) once the tagged completion is written.
    fn untagged_allowed(&self) -> bool {
        debug_assert!(!self.completed, "an untagged response after the tagged completion");
        if self.completed {
            tracing::error!("untagged response after the tagged completion dropped");
        }
        !self.completed
    }

    /// Takes what is buffered.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// True when nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Hands the buffer to the driver when it is large and a channel exists. Call between items of
    /// a long response. A closed channel (client gone) drops the output.
    pub async fn flush_if_large(&mut self) {
        if self.buf.len() < CHUNK {
            return;
        }
        if let Some(tx) = &self.tx {
            let chunk = std::mem::take(&mut self.buf);
            let _ = tx.send(chunk).await;
        }
    }

    /// Hands everything buffered to the driver now (before a long wait such as a continuation).
    pub async fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        if let Some(tx) = &self.tx {
            let chunk = std::mem::take(&mut self.buf);
            let _ = tx.send(chunk).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streamed `* SEARCH` line is what the encoder writes, whole or in chunks.
    #[tokio::test]
    async fn search_line_matches_the_encoder() {
        for (numbers, modseq) in [
            (vec![], Some(7)),
            (vec![0], Some(7)),
            (vec![1, 2, 10], None),
            (vec![3, 0, 4], Some(917_162_500)),
            ((1..=200_000).collect::<Vec<u32>>(), Some(9)),
        ] {
            let mut expected = Vec::new();
            response::write_data(
                &mut expected,
                &Data::Search { numbers: numbers.clone(), modseq },
                WriteOptions::default(),
            );
            let mut whole = Out::new();
            whole.search_line(&numbers, modseq).await;
            assert_eq!(whole.take(), expected);

            let (tx, mut rx) = mpsc::channel(1024);
            let mut streamed = Out::streaming(tx);
            streamed.search_line(&numbers, modseq).await;
            let mut got = Vec::new();
            let mut chunks = 0;
            while let Ok(chunk) = rx.try_recv() {
                assert!(chunk.len() < CHUNK + 16, "chunks stay bounded");
                got.extend(chunk);
                chunks += 1;
            }
            assert!(numbers.len() < 100_000 || chunks > 10, "{chunks} chunks");
            got.extend(streamed.take());
            assert_eq!(got, expected);
        }
    }
}
