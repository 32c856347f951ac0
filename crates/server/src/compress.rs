//! COMPRESS=DEFLATE (RFC 4978): a byte stream that deflates what is written to it and inflates
//! what is read from it, over cleartext or TLS (compressed first, then encrypted, §3).
//!
//! Raw DEFLATE (RFC 1951, no zlib header) on flate2's pure-Rust miniz_oxide backend. Every
//! flush of this stream is a sync flush: the driver flushes after each write, so the client can
//! inflate every response (an IDLE update too) as soon as it arrives.
//!
//! Memory per connection, bounded on purpose:
//! - The inflater lives as long as the connection: the client's compressor may refer back to
//!   anything in the last 32 KiB it sent, so that window cannot be dropped (miniz_oxide holds it
//!   and its Huffman tables in about 43 KiB).
//! - The deflater (about 300 KiB in miniz_oxide: its 32 KiB window, hash chains and the buffer
//!   of LZ codes; the backend has no smaller window or memory level) exists only while the
//!   connection is busy. [`Deflate::release_idle_memory`] drops it once everything written was
//!   sync-flushed: the client needs nothing of our compressor's state to inflate what follows,
//!   so a new deflater continues the same stream (it just cannot refer to earlier text, as after
//!   zlib's `Z_FULL_FLUSH`). The driver calls it when the client has been silent for a moment
//!   and when a session starts to IDLE, so an idle connection keeps only the inflater.
//! - Compressed input waits in a buffer of at most [`INPUT_CHUNK`] bytes, read only when the
//!   previous one is used up. One read returns at most what the caller's buffer holds, so the
//!   framer receives inflated bytes in the same chunks as uncompressed ones and applies the same
//!   line and literal limits: a decompression bomb costs CPU until a limit ends the connection,
//!   never memory.
//! - Compressed output is written out in pieces of at most [`OUTPUT_CHUNK`] bytes.
//!
//! Corrupt compressed input is an [`io::ErrorKind::InvalidData`] error; the driver answers it
//! with BYE. A client that ends its stream (a final block) has closed the connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// zlib's default level, and Dovecot's for COMPRESS: IMAP text compresses to about a quarter.
const LEVEL: u32 = 6;
/// Most compressed bytes read from the transport at a time.
pub(crate) const INPUT_CHUNK: usize = 8 * 1024;
/// Most compressed bytes produced before they are written to the transport.
const OUTPUT_CHUNK: usize = 16 * 1024;
/// Most uncompressed bytes one write hands to the deflater.
const INPUT_STEP: usize = 64 * 1024;

/// A stream compressed with DEFLATE in both directions over the transport `S`.
pub(crate) struct Deflate<S> {
    inner: S,
    inflater: Decompress,
    /// Compressed input not inflated yet: `input[input_pos..]`.
    input: Vec<u8>,
    input_pos: usize,
    /// The last inflate filled the caller's buffer: the inflater may hold more output.
    inflater_full: bool,
    /// The client ended its compressed stream (a final block).
    input_ended: bool,
    /// `None` while idle (see the module docs).
    deflater: Option<Compress>,
    /// Compressed output not written to the transport yet: `output[output_pos..]`.
    output: Vec<u8>,
    output_pos: usize,
    /// Bytes went into the deflater since its last completed sync flush.
    unflushed: bool,
    /// A sync flush was asked of the deflater and its output is still coming.
    flushing: bool,
}

impl<S> Deflate<S> {
    /// Starts compression over `inner`. `received` holds bytes already read from the transport
    /// after the COMPRESS command: they are compressed input (at most what the framer held).
    pub(crate) fn new(inner: S, received: Vec<u8>) -> Self {
        Self {
            inner,
            inflater: Decompress::new(false),
            input: received,
            input_pos: 0,
            inflater_full: false,
            input_ended: false,
            deflater: None,
            output: Vec::new(),
            output_pos: 0,
            unflushed: false,
            flushing: false,
        }
    }

    /// The transport under the compression.
    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Whether [`Deflate::release_idle_memory`] would free something.
    pub(crate) fn holds_idle_memory(&self) -> bool {
        self.deflater.is_some() || self.output.capacity() > 0 || self.input.capacity() > 0
    }

    /// Frees the deflater and empty buffers. The deflater goes only when everything written
    /// was sync-flushed to the transport; otherwise this does nothing to it.
    pub(crate) fn release_idle_memory(&mut self) {
        if !self.unflushed && self.output_pos >= self.output.len() {
            self.deflater = None;
            self.output = Vec::new();
            self.output_pos = 0;
        }
        if self.input_pos >= self.input.len() {
            self.input = Vec::new();
            self.input_pos = 0;
        }
    }

    /// Compressed bytes received and inflated so far, and what they inflated to.
    #[cfg(test)]
    fn inflated(&self) -> (u64, u64) {
        (self.inflater.total_in(), self.inflater.total_out())
    }

    /// Inflates buffered input into `buf`; returns the number of bytes produced.
    fn inflate(&mut self, buf: &mut ReadBuf<'_>) -> io::Result<usize> {
        let input = self.input.get(self.input_pos..).unwrap_or_default();
        let (in_before, out_before) = (self.inflater.total_in(), self.inflater.total_out());
        let out = buf.initialize_unfilled();
        let room = out.len();
        let status = self.inflater.decompress(input, out, FlushDecompress::None).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("corrupt compressed input: {e}"))
        })?;
        // Both deltas are bounded by the slices' lengths, so they fit in usize.
        let consumed = usize::try_from(self.inflater.total_in() - in_before).unwrap_or(input.len());
        let produced = usize::try_from(self.inflater.total_out() - out_before).unwrap_or(room);
        self.input_pos += consumed;
        buf.advance(produced);
        self.inflater_full = produced == room;
        if status == Status::StreamEnd {
            self.input_ended = true;
        }
        if self.input_pos >= self.input.len() {
            self.input.clear();
            self.input_pos = 0;
        }
        Ok(produced)
    }
}

impl<S: AsyncWrite + Unpin> Deflate<S> {
    /// Writes the pending compressed output to the transport.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.output_pos < self.output.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.output[self.output_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.output_pos += n;
        }
        self.output.clear();
        self.output_pos = 0;
        Poll::Ready(Ok(()))
    }

    /// Room for the deflater's output (the buffer is empty after a drain).
    fn reserve_output(&mut self) {
        if self.output.capacity() < OUTPUT_CHUNK {
            self.output.reserve_exact(OUTPUT_CHUNK);
        }
    }
}

/// An error of the deflater, which only reports misuse: not the peer's doing.
fn deflate_error(e: flate2::CompressError) -> io::Error {
    io::Error::other(format!("compression failed: {e}"))
}

impl<S: AsyncRead + Unpin> AsyncRead for Deflate<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.input_ended {
                // The client ended its stream: nothing can follow (end of file).
                return Poll::Ready(Ok(()));
            }
            if this.input_pos < this.input.len() || this.inflater_full {
                if this.inflate(buf)? > 0 {
                    return Poll::Ready(Ok(()));
                }
                if this.input_pos < this.input.len() && !this.input_ended {
                    // Input left yet nothing came out: cannot happen with room in `buf`; do
                    // not spin on it.
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "compressed input makes no progress",
                    )));
                }
                continue;
            }
            let mut chunk = [0u8; INPUT_CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if read.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => this.input.extend_from_slice(read.filled()),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    if this.input.capacity() > 0 {
                        this.input = Vec::new();
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deflate<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            ready!(this.poll_drain(cx))?;
            this.reserve_output();
            let deflater = this.deflater.get_or_insert_with(|| Compress::new(Compression::new(LEVEL), false));
            let before = deflater.total_in();
            let step = &data[..data.len().min(INPUT_STEP)];
            deflater.compress_vec(step, &mut this.output, FlushCompress::None).map_err(deflate_error)?;
            let consumed = usize::try_from(deflater.total_in() - before).unwrap_or(step.len());
            // New input: the next flush starts a new sync flush.
            this.unflushed = true;
            this.flushing = false;
            if consumed > 0 {
                return Poll::Ready(Ok(consumed));
            }
            // The output filled up before any input went in: write it out, then go on.
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            ready!(this.poll_drain(cx))?;
            if !this.unflushed {
                break;
            }
            let Some(deflater) = this.deflater.as_mut() else {
                this.unflushed = false;
                break;
            };
            this.output.reserve_exact(OUTPUT_CHUNK);
            // One sync flush (an empty stored block ends it on a byte boundary), then drain what
            // the deflater still holds until it leaves room in the buffer.
            let flush = if this.flushing { FlushCompress::None } else { FlushCompress::Sync };
            deflater.compress_vec(&[], &mut this.output, flush).map_err(deflate_error)?;
            this.flushing = true;
            if this.output.len() < this.output.capacity() {
                this.unflushed = false;
                this.flushing = false;
            }
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    use super::*;

    /// The client's side: raw deflate with a sync flush per write, raw inflate of what comes.
    struct Peer {
        io: DuplexStream,
        deflater: Compress,
        inflater: Decompress,
    }

    impl Peer {
        fn new(io: DuplexStream) -> Self {
            Self { io, deflater: Compress::new(Compression::new(6), false), inflater: Decompress::new(false) }
        }

        fn compress(&mut self, data: &[u8]) -> Vec<u8> {
            let mut out = Vec::with_capacity(data.len() + 1024);
            self.deflater.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
            out
        }

        async fn send(&mut self, data: &[u8]) {
            let wire = self.compress(data);
            self.io.write_all(&wire).await.unwrap();
        }

        /// Reads until `want` inflated bytes arrived.
        async fn receive(&mut self, want: usize) -> Vec<u8> {
            let mut plain = Vec::with_capacity(want + 1024);
            let mut wire = [0u8; 4096];
            while plain.len() < want {
                let n = self.io.read(&mut wire).await.unwrap();
                assert!(n > 0, "closed after {} of {want} bytes", plain.len());
                let mut input = &wire[..n];
                while !input.is_empty() {
                    plain.reserve(64 * 1024);
                    let before = self.inflater.total_in();
                    self.inflater.decompress_vec(input, &mut plain, FlushDecompress::None).unwrap();
                    let used = (self.inflater.total_in() - before) as usize;
                    input = &input[used..];
                }
            }
            plain
        }
    }

    fn pair() -> (Deflate<DuplexStream>, Peer) {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        (Deflate::new(ours, Vec::new()), Peer::new(theirs))
    }

    #[tokio::test]
    async fn every_flush_delivers_what_was_written() {
        let (mut ours, mut peer) = pair();
        for line in [&b"* OK first\r\n"[..], b"* 1 EXISTS\r\n", b"a OK done\r\n"] {
            ours.write_all(line).await.unwrap();
            ours.flush().await.unwrap();
            // Without a flush from us the peer would wait forever here.
            assert_eq!(peer.receive(line.len()).await, line);
        }
    }

    #[tokio::test]
    async fn the_deflater_is_freed_when_idle_and_the_stream_goes_on() {
        let (mut ours, mut peer) = pair();
        let text = b"* 1 FETCH (FLAGS (\\Seen) UID 1)\r\n".repeat(50);
        ours.write_all(&text).await.unwrap();
        ours.flush().await.unwrap();
        assert!(ours.deflater.is_some());
        ours.release_idle_memory();
        assert!(ours.deflater.is_none() && ours.output.capacity() == 0 && !ours.holds_idle_memory());
        // A new deflater continues the same stream; the peer's inflater does not notice.
        ours.write_all(&text).await.unwrap();
        ours.flush().await.unwrap();
        let got = peer.receive(2 * text.len()).await;
        assert_eq!(got, [text.clone(), text].concat());
    }

    #[tokio::test]
    async fn unflushed_output_keeps_the_deflater() {
        let (mut ours, _peer) = pair();
        ours.write_all(b"* OK pending\r\n").await.unwrap();
        ours.release_idle_memory();
        assert!(ours.deflater.is_some(), "released before the flush");
    }

    #[tokio::test]
    async fn large_writes_pass_in_bounded_pieces() {
        let (mut ours, mut peer) = pair();
        // Incompressible: the output is larger than the input, and far larger than a chunk.
        let mut x: u32 = 1;
        let data: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let writer = async {
            ours.write_all(&data).await.unwrap();
            ours.flush().await.unwrap();
            ours
        };
        let (ours, got) = tokio::join!(writer, peer.receive(data.len()));
        assert_eq!(got, data);
        assert!(ours.output.capacity() <= 2 * OUTPUT_CHUNK);
    }

    #[tokio::test]
    async fn reads_inflate_in_the_callers_chunks() {
        let (mut ours, mut peer) = pair();
        // A bomb: 4 MiB of one byte is a few KiB compressed.
        let bomb = vec![b'a'; 4 << 20];
        let wire = peer.compress(&bomb);
        assert!(wire.len() < 8 * 1024, "{} bytes", wire.len());
        peer.io.write_all(&wire).await.unwrap();
        let mut buf = vec![0u8; 8 * 1024];
        let mut total = 0;
        while total < bomb.len() {
            let n = ours.read(&mut buf).await.unwrap();
            assert!(n > 0 && n <= buf.len());
            assert!(ours.input.len() <= INPUT_CHUNK);
            total += n;
        }
        assert_eq!(total, bomb.len());
        assert_eq!(ours.inflated().1, bomb.len() as u64);
    }

    #[tokio::test]
    async fn bytes_received_before_the_switch_are_inflated_first() {
        let (ours, theirs) = tokio::io::duplex(1024);
        let mut peer = Peer::new(theirs);
        let early = peer.compress(b"b NOOP\r\n");
        let mut ours = Deflate::new(ours, early);
        peer.send(b"c LOGOUT\r\n").await;
        let mut got = vec![0u8; 18];
        ours.read_exact(&mut got).await.unwrap();
        assert_eq!(got, b"b NOOP\r\nc LOGOUT\r\n");
    }

    #[tokio::test]
    async fn garbage_is_an_invalid_data_error() {
        let (mut ours, mut peer) = pair();
        // BTYPE 11 (reserved) in the first block header.
        peer.io.write_all(&[0xff, 0xff, 0xff, 0xff]).await.unwrap();
        let mut buf = [0u8; 64];
        let err = ours.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn a_final_block_ends_the_input() {
        let (mut ours, mut peer) = pair();
        let mut wire = Vec::with_capacity(1024);
        peer.deflater.compress_vec(b"a NOOP\r\n", &mut wire, FlushCompress::Finish).unwrap();
        peer.io.write_all(&wire).await.unwrap();
        peer.io.write_all(b"junk after the end").await.unwrap();
        let mut got = Vec::new();
        ours.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"a NOOP\r\n");
    }

    #[test]
    fn the_stream_itself_is_small() {
        // The large states (inflater, deflater) are boxed by flate2; the stream is a few words.
        let size = std::mem::size_of::<Deflate<DuplexStream>>();
        assert!(size < 256, "{size} bytes");
    }
}
