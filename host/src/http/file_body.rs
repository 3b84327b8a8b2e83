//! A response body read from a file in bounded chunks, as hyper sends it.
//!
//! [`FileBody`] holds an open file and the byte range still to send. Each time hyper asks
//! for the next frame (it does only once the frames before it are written or buffered
//! within its write buffer: that is the backpressure), the body reads one chunk of at most
//! [`CHUNK_SIZE`] bytes with `pread` on tokio's blocking pool and hands it over. One read
//! is in flight at most; no read runs ahead of the client. So a response holds at most
//! hyper's write buffer (about 400 KiB) and one chunk in memory, whatever the file's size
//! and however slowly the client reads.
//!
//! `sendfile(2)` is not used: hyper owns the connection and its framing (the write buffer
//! holding the head, HTTP/2 frames, a graceful drain), and offers no way to hand the socket
//! to the kernel for the body short of an upgrade (a `101` only).
//!
//! An I/O error mid-stream (the file truncated, a disk error, no memory for the chunk)
//! ends the body with that error, logged once: hyper then aborts the connection, so the
//! client sees a short body rather than a wrong one. A file that grew since its size was
//! read is sent at the size announced in `Content-Length`.

use std::fs::File;
use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::task::JoinHandle;

/// The most bytes read (and held) per chunk.
pub const CHUNK_SIZE: usize = 128 * 1024;

const LOG_TARGET: &str = "inphms.http";

/// A body streaming `len` bytes of a file from an offset (see the module documentation).
#[derive(Debug)]
pub struct FileBody {
    file: Arc<File>,
    /// For the log line of an error.
    path: PathBuf,
    /// Where the next chunk starts.
    offset: u64,
    /// Bytes still to send, the chunk being read included.
    remaining: u64,
    /// The chunk being read on the blocking pool.
    reading: Option<JoinHandle<io::Result<Bytes>>>,
}

impl FileBody {
    /// A body of the `len` bytes of `file` (named `path` in logs) from `offset`. The file
    /// may be shared (reads are positioned `pread`s, which leave no offset behind).
    pub fn new(file: impl Into<Arc<File>>, path: PathBuf, offset: u64, len: u64) -> FileBody {
        FileBody {
            file: file.into(),
            path,
            offset,
            remaining: len,
            reading: None,
        }
    }

    /// Bytes still to send.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Ends the body with `error`, logged (the only log line of this body: nothing is
    /// read after it).
    fn fail(&mut self, error: io::Error) -> io::Error {
        tracing::warn!(target: LOG_TARGET, path = %self.path.display(), offset = self.offset,
            remaining = self.remaining, error = %error,
            "static file read failed mid-response; connection aborted");
        self.remaining = 0;
        self.reading = None;
        error
    }
}

/// Reads exactly `len` bytes of `file` at `offset` into a new buffer, allocated fallibly.
pub fn read_chunk(file: &File, offset: u64, len: usize) -> io::Result<Bytes> {
    read_into(file, offset, buffer(len)?)
}

/// A zeroed buffer of `len` bytes; an allocation failure is an error, not an abort.
fn buffer(len: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(len)
        .map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e))?;
    buf.resize(len, 0);
    Ok(buf)
}

/// Fills `buf` from `file` at `offset`.
fn read_into(file: &File, offset: u64, mut buf: Vec<u8>) -> io::Result<Bytes> {
    match file.read_exact_at(&mut buf, offset) {
        Ok(()) => Ok(Bytes::from(buf)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the file is shorter than when its response began (truncated?)",
        )),
        Err(e) => Err(e),
    }
}

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        if this.reading.is_none() {
            if this.remaining == 0 {
                return Poll::Ready(None);
            }
            // At most `CHUNK_SIZE`, so the cast cannot truncate.
            let len = this.remaining.min(CHUNK_SIZE as u64) as usize;
            // Allocated here, on the runtime's worker (and so in its allocator arena, not
            // in one per thread of the blocking pool), where hyper will free it.
            let buf = match buffer(len) {
                Ok(buf) => buf,
                Err(e) => return Poll::Ready(Some(Err(this.fail(e)))),
            };
            let (file, offset) = (Arc::clone(&this.file), this.offset);
            this.reading = Some(tokio::task::spawn_blocking(move || {
                read_into(&file, offset, buf)
            }));
        }
        let Some(reading) = this.reading.as_mut() else {
            return Poll::Ready(None);
        };
        let read = ready!(Pin::new(reading).poll(cx));
        this.reading = None;
        let chunk = match read {
            Ok(Ok(chunk)) => chunk,
            Ok(Err(e)) => return Poll::Ready(Some(Err(this.fail(e)))),
            Err(joined) => return Poll::Ready(Some(Err(this.fail(io::Error::other(joined))))),
        };
        let n = chunk.len() as u64;
        this.offset += n;
        this.remaining -= n;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::io::Write;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    fn file_of(data: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(data).unwrap();
        let file = File::open(tmp.path()).unwrap();
        (tmp, file)
    }

    #[test]
    fn streams_the_range_in_bounded_chunks() {
        let data: Vec<u8> = (0..CHUNK_SIZE * 3 + 17).map(|i| (i % 251) as u8).collect();
        let (tmp, file) = file_of(&data);
        let mut body = FileBody::new(file, tmp.path().to_owned(), 5, data.len() as u64 - 10);
        assert_eq!(
            hyper::body::Body::size_hint(&body).exact(),
            Some(data.len() as u64 - 10)
        );
        let rt = runtime();
        let mut got = Vec::new();
        let mut frames = 0;
        while let Some(frame) = rt.block_on(body.frame()) {
            let chunk = frame.unwrap().into_data().unwrap();
            assert!(!chunk.is_empty() && chunk.len() <= CHUNK_SIZE);
            got.extend_from_slice(&chunk);
            frames += 1;
        }
        assert_eq!(frames, 4);
        assert_eq!(got, &data[5..data.len() - 5]);
        assert!(hyper::body::Body::is_end_stream(&body));
        assert_eq!(body.remaining(), 0);
    }

    #[test]
    fn a_truncated_file_ends_the_body_with_an_error() {
        let data = vec![7u8; CHUNK_SIZE + 100];
        let (tmp, file) = file_of(&data);
        let mut body = FileBody::new(file, tmp.path().to_owned(), 0, data.len() as u64);
        let rt = runtime();
        let first = rt.block_on(body.frame()).unwrap().unwrap();
        assert_eq!(first.into_data().unwrap().len(), CHUNK_SIZE);
        tmp.as_file().set_len(CHUNK_SIZE as u64 + 10).unwrap();
        let err = rt.block_on(body.frame()).unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        // Once: the body is over after its error.
        assert!(rt.block_on(body.frame()).is_none());
        assert!(hyper::body::Body::is_end_stream(&body));
    }

    #[test]
    fn empty_range_is_an_empty_body() {
        let (tmp, file) = file_of(b"abc");
        let mut body = FileBody::new(file, tmp.path().to_owned(), 3, 0);
        assert!(hyper::body::Body::is_end_stream(&body));
        assert!(runtime().block_on(body.frame()).is_none());
    }
}
