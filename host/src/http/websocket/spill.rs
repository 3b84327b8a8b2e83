//! The upgraded connection as tungstenite reads it ([`SpillIo`]): tungstenite keeps a read
//! buffer per socket for the socket's whole life, so it is given a small one
//! ([`READ_BUFFER`]); this stream reads the socket in larger chunks ([`CHUNK`], on the
//! stack) and keeps what tungstenite did not take in a spill buffer, freed once taken. An
//! idle socket then holds [`READ_BUFFER`] bytes instead of 4 KiB (issue 17), while a large
//! message is still read from the socket [`CHUNK`] bytes at a time.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// tungstenite's read buffer (and the most it asks for at once): a message of the bus
/// (a subscription, a presence update) fits.
pub(super) const READ_BUFFER: usize = 512;

/// The most read from the socket at once.
const CHUNK: usize = 8192;

/// A stream whose reads come in [`CHUNK`]s, with a spill buffer (see the module docs).
pub(super) struct SpillIo<S> {
    inner: S,
    /// Read from the socket but not yet taken: `spill[taken..]`.
    spill: Vec<u8>,
    taken: usize,
}

impl<S> SpillIo<S> {
    pub(super) fn new(inner: S) -> SpillIo<S> {
        SpillIo {
            inner,
            spill: Vec::new(),
            taken: 0,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SpillIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.taken < this.spill.len() {
            let n = buf.remaining().min(this.spill.len() - this.taken);
            buf.put_slice(&this.spill[this.taken..this.taken + n]);
            this.taken += n;
            if this.taken == this.spill.len() {
                // Freed, not kept: the socket may now stay idle for hours.
                this.spill = Vec::new();
                this.taken = 0;
            }
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= CHUNK {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let mut chunk = [0u8; CHUNK];
        let mut read = ReadBuf::new(&mut chunk);
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
        let got = read.filled();
        let n = buf.remaining().min(got.len());
        buf.put_slice(&got[..n]);
        if n < got.len() {
            this.spill = got[n..].to_vec();
            this.taken = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SpillIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn small_reads_take_a_large_chunk_in_order_and_free_the_spill() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let sent: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        client.write_all(&sent).await.unwrap();
        drop(client);
        let mut io = SpillIo::new(server);
        let mut got = Vec::new();
        let mut small = [0u8; 100];
        loop {
            let n = io.read(&mut small).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&small[..n]);
        }
        assert_eq!(got, sent);
        assert_eq!(io.spill.capacity(), 0, "the spill is freed once taken");
    }
}
