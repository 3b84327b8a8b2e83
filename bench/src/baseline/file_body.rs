//! `bench-baseline --file PATH` (item 16): every request is answered with the file at
//! `PATH`, streamed as the host's `http::file_body::FileBody` streams a file: the length
//! announced, one chunk of at most [`CHUNK_SIZE`] read with `pread` on tokio's blocking
//! pool each time hyper asks for the next frame (so at most one read in flight, none
//! ahead of the client), the buffer allocated on the runtime's worker. The file is opened
//! per request, off the event loop, as the host opens a file it sends.
//!
//! The chunk size is the host's (128 KiB), so the ratio of item 16 measures the host's
//! path to the file, not a different read size.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::{Request, Response, StatusCode};
use std::convert::Infallible;
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::task::JoinHandle;

/// The most bytes read (and held) per chunk: the host's `file_body::CHUNK_SIZE`.
pub const CHUNK_SIZE: usize = 128 * 1024;

/// A body streaming the `remaining` bytes of a file from `offset`.
pub struct FileBody {
    /// `None` for the empty body of an error.
    file: Option<Arc<File>>,
    offset: u64,
    remaining: u64,
    reading: Option<JoinHandle<io::Result<Bytes>>>,
}

/// Fills `buf` from `file` at `offset`.
fn read_into(file: &File, offset: u64, mut buf: Vec<u8>) -> io::Result<Bytes> {
    file.read_exact_at(&mut buf, offset)?;
    Ok(Bytes::from(buf))
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
            let (Some(file), true) = (&this.file, this.remaining > 0) else {
                return Poll::Ready(None);
            };
            let len = this.remaining.min(CHUNK_SIZE as u64) as usize;
            // Allocated and zeroed on the runtime's worker, as the host's `buffer`.
            let mut buf = Vec::new();
            if let Err(e) = buf.try_reserve_exact(len) {
                this.remaining = 0;
                return Poll::Ready(Some(Err(io::Error::new(io::ErrorKind::OutOfMemory, e))));
            }
            buf.resize(len, 0);
            let (file, offset) = (Arc::clone(file), this.offset);
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
            Ok(Err(e)) => {
                this.remaining = 0;
                return Poll::Ready(Some(Err(e)));
            }
            Err(joined) => {
                this.remaining = 0;
                return Poll::Ready(Some(Err(io::Error::other(joined))));
            }
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

/// Answers `req` with the file at `path` (500 with an empty body when it cannot be opened).
pub async fn handle(
    req: Request<Incoming>,
    path: Arc<PathBuf>,
) -> Result<Response<FileBody>, Infallible> {
    let _ = req.into_body().collect().await;
    let opened = tokio::task::spawn_blocking(move || {
        let file = File::open(path.as_path())?;
        let len = file.metadata()?.len();
        Ok::<_, io::Error>((file, len))
    })
    .await;
    let (file, len, status) = match opened {
        Ok(Ok((file, len))) => (Some(Arc::new(file)), len, StatusCode::OK),
        _ => (None, 0, StatusCode::INTERNAL_SERVER_ERROR),
    };
    let mut resp = Response::new(FileBody {
        file,
        offset: 0,
        remaining: len,
        reading: None,
    });
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/octet-stream"),
    );
    Ok(resp)
}
