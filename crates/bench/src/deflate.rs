//! The client side of COMPRESS=DEFLATE (RFC 4978): raw deflate both ways over any stream.
//!
//! Every flush is a sync flush, so each command reaches the server whole. What a write hands
//! over is compressed at once; the compressed bytes are written out before the next write is
//! accepted, so at most one write's worth waits here. Reads inflate into the caller's buffer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Compressed bytes read from the transport at a time.
const READ_CHUNK: usize = 16 * 1024;

/// A stream compressed with raw DEFLATE in both directions.
pub struct DeflateIo<T> {
    inner: T,
    deflater: Compress,
    inflater: Decompress,
    /// Compressed input not inflated yet: `input[input_pos..]`.
    input: Vec<u8>,
    input_pos: usize,
    /// Compressed output not written yet: `output[output_pos..]`.
    output: Vec<u8>,
    output_pos: usize,
    /// Data went into the deflater since the last sync flush.
    unflushed: bool,
}

impl<T> DeflateIo<T> {
    /// Compression over `inner`, starting now (after the tagged OK of COMPRESS).
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            deflater: Compress::new(Compression::new(6), false),
            inflater: Decompress::new(false),
            input: Vec::new(),
            input_pos: 0,
            output: Vec::new(),
            output_pos: 0,
            unflushed: false,
        }
    }

    /// Runs the deflater over `data` until it took all of it (and, with a sync flush, until it
    /// gave all its output).
    fn deflate(&mut self, mut data: &[u8], flush: FlushCompress) -> io::Result<()> {
        loop {
            self.output.reserve(data.len() / 2 + 4096);
            let before = self.deflater.total_in();
            self.deflater.compress_vec(data, &mut self.output, flush).map_err(io::Error::other)?;
            let used = usize::try_from(self.deflater.total_in() - before).unwrap_or(data.len());
            data = data.get(used..).unwrap_or_default();
            if data.is_empty() && self.output.len() < self.output.capacity() {
                return Ok(());
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> DeflateIo<T> {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.output_pos < self.output.len() {
            let pending = self.output.get(self.output_pos..).unwrap_or_default();
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.output_pos += n;
        }
        self.output.clear();
        self.output_pos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for DeflateIo<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            // Also with no input left: the inflater may hold what a full buffer did not take.
            let input = this.input.get(this.input_pos..).unwrap_or_default();
            let (before_in, before_out) = (this.inflater.total_in(), this.inflater.total_out());
            let out = buf.initialize_unfilled();
            if out.is_empty() {
                return Poll::Ready(Ok(()));
            }
            this.inflater
                .decompress(input, out, FlushDecompress::None)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            this.input_pos += usize::try_from(this.inflater.total_in() - before_in).unwrap_or(input.len());
            let produced = usize::try_from(this.inflater.total_out() - before_out).unwrap_or(0);
            if produced > 0 {
                buf.advance(produced);
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                return Poll::Ready(Ok(()));
            }
            this.input.drain(..this.input_pos);
            this.input_pos = 0;
            this.input.extend_from_slice(read.filled());
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for DeflateIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        this.deflate(data, FlushCompress::None)?;
        this.unflushed = true;
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.unflushed {
            ready!(this.poll_drain(cx))?;
            this.deflate(&[], FlushCompress::Sync)?;
            this.unflushed = false;
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
