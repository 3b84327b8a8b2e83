//! Response bodies produced as they are sent: a pull stream (the host asks the addon for
//! each next chunk once the client took the one before), a push stream ([`PushStream`]: any
//! code, on any thread, appends chunks or server-sent events later), or a file from disk.
//! The constructors are on [`Response`](crate::Response): [`Response::stream`](crate::Response::stream),
//! [`Response::push`](crate::Response::push), [`Response::event_stream`](crate::Response::event_stream),
//! [`Response::file`](crate::Response::file).
//!
//! No thread is held between chunks: a pull stream's producer is called briefly for each
//! chunk (on the host's blocking pool), a push stream holds nothing but its queue, and a file
//! is read by the host. A stream still running when its addon is swapped (SIGHUP) finishes
//! on the build that started it (libraries are never unloaded).
//!
//! ```no_run
//! use inphms_sdk::{route, PushStream, Request, Response, Result};
//!
//! /// 1 GiB of zeros, a MiB at a time, with a known length.
//! #[route("/export/zeros", auth = "public")]
//! fn zeros(_req: &mut Request) -> Result<Response> {
//!     let chunks = (0..1024).map(|_| vec![0u8; 1 << 20]);
//!     Ok(Response::stream(chunks).length(1 << 30).header("Content-Type", "application/octet-stream"))
//! }
//!
//! /// Server-sent events: the stream is kept (here by a thread) and fed later.
//! #[route("/events", auth = "public")]
//! fn events(_req: &mut Request) -> Result<Response> {
//!     let stream = PushStream::open(64)?;
//!     let feeder = stream.clone();
//!     std::thread::spawn(move || {
//!         for n in 0..3 {
//!             let _ = feeder.event(Some("tick"), &n.to_string());
//!         }
//!         // Dropping the last handle ends the response.
//!     });
//!     Ok(Response::event_stream(&stream))
//! }
//! # fn main() {}
//! ```

use crate::abi::{HttpRequest, Invocation, ItemKind, Outcome};
use crate::{host, Error, Result};
use abi_stable::std_types::ROption;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

/// A pull stream's producer: the next chunk, `None` at the end.
type Chunks = Box<dyn Iterator<Item = Vec<u8>> + Send>;

/// The producers of the pull streams being sent, by handle (this addon's own table).
// global: addon-side, one table per addon image (as `host::API`); not host state
static PRODUCERS: LazyLock<Mutex<HashMap<u64, Chunks>>> = LazyLock::new(Default::default);
static NEXT: AtomicU64 = AtomicU64::new(1);

fn producers() -> std::sync::MutexGuard<'static, HashMap<u64, Chunks>> {
    PRODUCERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A pull stream's producer inside a [`Response`](crate::Response), until the response
/// crosses to the host (then it is registered and polled by handle).
#[derive(Clone)]
pub(crate) struct Producer(Arc<Mutex<Option<Chunks>>>);

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Producer")
    }
}

impl Producer {
    pub(crate) fn new(chunks: Chunks) -> Producer {
        Producer(Arc::new(Mutex::new(Some(chunks))))
    }

    /// Registers the producer for the host to poll; its handle (0 once taken already).
    pub(crate) fn register(self) -> u64 {
        let taken = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(chunks) = taken else { return 0 };
        let handle = NEXT.fetch_add(1, Ordering::Relaxed);
        producers().insert(handle, chunks);
        handle
    }
}

/// [`ItemKind::StreamPoll`]: the next chunk of `handle` (in the response's body), or no
/// response at the end (the producer is then dropped).
pub(crate) fn poll(handle: u64) -> Outcome {
    // Out of the table while it runs: a slow producer holds no lock over the others.
    let Some(mut chunks) = producers().remove(&handle) else {
        return crate::registry::error_outcome(Error::internal(format!("no pull stream {handle}")));
    };
    match chunks.next() {
        Some(chunk) => {
            producers().insert(handle, chunks);
            Outcome {
                response: ROption::RSome(crate::abi::HttpResponse {
                    body: chunk.into(),
                    ..Default::default()
                }),
                ..Outcome::default()
            }
        }
        None => Outcome::default(),
    }
}

/// [`ItemKind::StreamDrop`]: forgets the producer of `handle`.
pub(crate) fn drop_stream(handle: u64) -> Outcome {
    let dropped = producers().remove(&handle);
    drop(dropped);
    Outcome::default()
}

/// Whether an invocation is one of this module's, and its answer.
pub(crate) fn invoke(inv: &Invocation<'_>) -> Option<Outcome> {
    match inv.kind {
        ItemKind::StreamPoll => Some(poll(inv.handle)),
        ItemKind::StreamDrop => Some(drop_stream(inv.handle)),
        _ => None,
    }
}

/// A push stream: a response body fed later, from any thread (another request's handler, a
/// cron job, a thread of the addon), with [`push`](Self::push) or, for server-sent events,
/// [`event`](Self::event). Cheap to clone; the response ends when [`close`](Self::close) is
/// called or the last clone is dropped. Pushing never blocks: at most `capacity` chunks wait
/// for the client, past which a push is refused (a client reading too slowly is not given
/// unbounded memory; the stream is then closed).
///
/// Opened by a route's handler, the stream is dropped when the handler returns unless its
/// answer sends it. Opened in a websocket callback (sync or async, see
/// [`socket_events`](crate::socket_events)) or on a thread of the addon, it is kept until
/// a response sends it, so a later request can answer with it: the host holds it, and the
/// chunks pushed into it, until then, even once closed.
///
/// ```no_run
/// # use inphms_sdk::{PushStream, Response, Result};
/// # fn f() -> Result<Response> {
/// let stream = PushStream::open(16)?;
/// stream.push(b"first chunk".to_vec())?;
/// Ok(Response::push(&stream).header("Content-Type", "text/plain"))
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PushStream(Arc<PushHandle>);

#[derive(Debug)]
struct PushHandle(u64);

impl Drop for PushHandle {
    fn drop(&mut self) {
        host::stream_close(self.0);
    }
}

impl PushStream {
    /// Opens a push stream holding at most `capacity` chunks not yet sent (at least 1).
    pub fn open(capacity: u32) -> Result<PushStream> {
        Ok(PushStream(Arc::new(PushHandle(host::stream_open(
            capacity.max(1),
        )?))))
    }

    /// The host's handle of the stream.
    pub fn id(&self) -> u64 {
        self.0 .0
    }

    /// Appends a chunk, written to the client as soon as it can take it. An error when the
    /// stream is closed, its client gone, or its queue full (then the stream is closed).
    pub fn push(&self, chunk: impl Into<Vec<u8>>) -> Result<()> {
        host::stream_push(self.id(), chunk.into())
    }

    /// Appends one server-sent event (`event: name` when given, then `data:` lines), flushed
    /// to the client as one chunk.
    pub fn event(&self, name: Option<&str>, data: &str) -> Result<()> {
        self.push(sse_event(name, data))
    }

    /// Ends the response once the chunks pushed before are written.
    pub fn close(&self) {
        host::stream_close(self.id());
    }
}

/// One server-sent event in the `text/event-stream` format.
///
/// ```
/// # use inphms_sdk::stream::sse_event;
/// assert_eq!(sse_event(Some("tick"), "a\nb"), b"event: tick\ndata: a\ndata: b\n\n");
/// ```
pub fn sse_event(name: Option<&str>, data: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 32);
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.replace(['\r', '\n'], " ").as_bytes());
        out.push(b'\n');
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.trim_end_matches('\r').as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// A request body, read incrementally: [`Request::body_reader`](crate::Request::body_reader)
/// (a `Read` over the body the host received, in memory or spooled to a file and mapped:
/// reading it in pieces keeps the handler's own memory small whatever the body's size).
pub type BodyReader<'a> = std::io::Cursor<&'a [u8]>;

pub(crate) fn body_reader<'a>(req: &HttpRequest<'a>) -> BodyReader<'a> {
    std::io::Cursor::new(req.body.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::BodyStream;

    #[test]
    fn a_pull_stream_is_polled_to_its_end_then_forgotten() {
        let r = crate::Response::stream((0..2u8).map(|i| vec![i; 3])).length(6);
        let abi = r.into_abi();
        let BodyStream::Pull { handle, length } = abi.stream else {
            panic!("a pull stream: {:?}", abi.stream);
        };
        assert_eq!(length, ROption::RSome(6));
        let chunk = |o: Outcome| o.response.into_option().map(|r| r.body.into_vec());
        assert_eq!(chunk(poll(handle)), Some(vec![0, 0, 0]));
        assert_eq!(chunk(poll(handle)), Some(vec![1, 1, 1]));
        assert_eq!(chunk(poll(handle)), None);
        // Ended: forgotten, a further poll is an error.
        assert!(poll(handle).error.is_some());
        // A dropped stream is forgotten too.
        let other = crate::Response::stream(std::iter::repeat(vec![1u8]));
        let BodyStream::Pull { handle, .. } = other.into_abi().stream else {
            panic!("a pull stream");
        };
        drop_stream(handle);
        assert!(poll(handle).error.is_some());
    }

    #[test]
    fn a_response_that_crossed_keeps_its_stream() {
        let file = crate::Response::file("/srv/export.csv").into_abi();
        assert_eq!(file.stream, BodyStream::File("/srv/export.csv".into()));
        let back = crate::Response::from_abi(file).into_abi();
        assert_eq!(back.stream, BodyStream::File("/srv/export.csv".into()));
        assert_eq!(
            crate::Response::html("x").into_abi().stream,
            BodyStream::Full
        );
    }
}
