//! The response sink: handlers append encoded responses; only the connection driver writes them.
//!
//! Output is buffered. When the driver gives a channel ([`Out::streaming`]), a handler that
//! produces a lot (FETCH 1:* on a big mailbox) hands full chunks to the driver as it goes, so
//! memory per connection stays bounded by the chunk size times the channel depth; the channel's
//! capacity is the back-pressure. Without a channel (tests), everything stays in the buffer.

use tokio::sync::mpsc;

/// Bytes at which a streaming `Out` hands a chunk to the driver.
const CHUNK: usize = 64 * 1024;

/// Encoded responses on their way to the client.
#[derive(Debug, Default)]
pub struct Out {
    buf: Vec<u8>,
    tx: Option<mpsc::Sender<Vec<u8>>>,
}

impl Out {
    /// A buffer that keeps everything until [`Out::take`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A buffer that passes chunks of about 64 KiB to `tx` while a command runs.
    pub fn streaming(tx: mpsc::Sender<Vec<u8>>) -> Self {
        Self { buf: Vec::new(), tx: Some(tx) }
    }

    /// The buffer to encode into.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
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
