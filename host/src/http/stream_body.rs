//! Response bodies an addon produces as they are sent ([`inphms_sdk::abi::BodyStream`]):
//! pulled chunk by chunk from the addon ([`PullBody`]), pushed by any code through a handle
//! ([`PushBody`] and the registry behind the `stream_*` callbacks of the host API), or a
//! file from disk (a [`FileBody`]).
//!
//! * **Pull**: hyper asks for the next frame only once the frames before it are written or
//!   buffered (backpressure); the body then calls the addon's producer once
//!   ([`ItemKind::StreamPoll`]) on the blocking pool, one call in flight at most, and no
//!   thread is held between chunks. The body holds the addon ([`LoadedAddon`]) of the
//!   generation that answered, so a stream in flight across a swap finishes on the build
//!   that started it (libraries are never unloaded). When the body is dropped (finished,
//!   or its client gone), the producer is dropped in the addon ([`ItemKind::StreamDrop`]).
//!   A known length is sent as `Content-Length`; a producer that ends short of it ends
//!   the body with an error (hyper then aborts the connection: a short body is never
//!   taken for a whole one), one producing more is cut at the length.
//! * **Push**: [`open`] makes a bounded queue of chunks (its capacity chosen by the addon);
//!   [`push`] never blocks: past the capacity the stream is closed and the push refused, so
//!   a client that stopped reading holds at most that many chunks. [`close`] ends the body
//!   once the chunks before it are written. Each chunk is one frame, written (and flushed)
//!   as soon as the client can take it: a server-sent event pushed is on the wire at once.
//!   A stream opened by a handler and not sent by its answer (the handler failed, its
//!   answer was a 504, its transaction was retried) is dropped when its call ends
//!   ([`Opening`], [`discard`]), as is a pull stream's producer; further pushes are then
//!   refused. Handles are 63 random bits (not guessable by another addon; they fit an `i64`).
//! * **Pull**, cut: one poll of the producer that takes longer than `limit_time_real`
//!   aborts the response (the client sees a cut body); the host goes on, and the producer
//!   is dropped once that poll returns.
//! * **File**: opened when the answer is built, off the event loop (a path that is not a
//!   regular file, or a failure, is a 404), its length sent as
//!   `Content-Length`, read by [`FileBody`].

use super::file_body::FileBody;
use super::response::Body;
use crate::modules::LoadedAddon;
use abi_stable::std_types::ROption;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use inphms_sdk::abi::{BodyStream, Invocation, ItemKind, Outcome};
use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const TARGET: &str = "inphms.http";

// ---------------------------------------------------------------------------------------------
// Push streams

/// One push stream: the addon's side (the sender, until closed) and the body's (the
/// receiver, until the answer takes it).
struct PushEntry {
    tx: Option<mpsc::Sender<Bytes>>,
    rx: Option<mpsc::Receiver<Bytes>>,
}

/// The push streams of one host (the registry behind the `stream_*` callbacks): owned by
/// the composition root (through [`Services`](super::Services)) and passed to each
/// function here.
#[derive(Default)]
pub struct Streams {
    table: Mutex<HashMap<u64, PushEntry>>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("open", &streams(self).len())
            .finish()
    }
}

/// A poisoned lock only means a panic elsewhere; the map stays usable.
fn streams(all: &Streams) -> std::sync::MutexGuard<'_, HashMap<u64, PushEntry>> {
    all.table.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens a push stream holding at most `capacity` chunks not yet written; its handle: 63
/// random bits from the operating system's generator (never 0, never one in use), so that
/// an addon cannot push into another addon's stream by guessing (or counting) handles.
/// Opened during a handler's call ([`Opening`]), it is dropped with the call's answer
/// when that answer does not send it.
pub fn open(all: &Streams, capacity: u32) -> u64 {
    let capacity = usize::try_from(capacity.clamp(1, 65_536)).unwrap_or(1);
    let (tx, rx) = mpsc::channel(capacity);
    let mut table = streams(all);
    let id = loop {
        let id = rand::random::<u64>() >> 1;
        if id != 0 && !table.contains_key(&id) {
            break id;
        }
    };
    table.insert(
        id,
        PushEntry {
            tx: Some(tx),
            rx: Some(rx),
        },
    );
    drop(table);
    OPENED.with_borrow_mut(|opened| {
        if let Some(opened) = opened {
            opened.push(id);
        }
    });
    id
}

/// The number of push streams in the registry (open, or waiting for their answer).
pub fn open_count(all: &Streams) -> usize {
    streams(all).len()
}

thread_local! {
    // The push streams opened by the handler running on this thread (`None`: none runs).
    // global: thread-local invocation context, as `application::current`
    static OPENED: std::cell::RefCell<Option<Vec<u64>>> = const { std::cell::RefCell::new(None) };
}

/// While alive, the push streams opened on this thread are the running handler's: those
/// its answer does not send are dropped when the call ends ([`Opening::finish`]), or when
/// it is tried again ([`Opening::retry`]); the stream of an answer that is itself thrown
/// away (a retry, a 504) is dropped by [`discard`]. A stream opened on another thread (one
/// the addon started) is not tracked: it lives until it is closed and answered.
#[derive(Debug)]
pub struct Opening {
    streams: Arc<Streams>,
    addon: Option<Arc<LoadedAddon>>,
    /// The stream of the last attempt's answer, until the call ends.
    last: Option<BodyStream>,
}

impl Opening {
    /// Starts tracking the streams of the handler of `addon` about to run on this thread.
    pub fn begin(streams: &Arc<Streams>, addon: Option<&Arc<LoadedAddon>>) -> Opening {
        OPENED.set(Some(Vec::new()));
        Opening {
            streams: Arc::clone(streams),
            addon: addon.cloned(),
            last: None,
        }
    }

    /// Before another attempt of the call (a retried transaction): what the attempt
    /// before opened or answered with is dropped.
    pub fn retry(&mut self) {
        let opened = OPENED.replace(Some(Vec::new())).unwrap_or_default();
        for id in opened {
            drop_push(&self.streams, id);
        }
        if let Some(stream) = self.last.take() {
            discard(&self.streams, self.addon.as_ref(), &stream);
        }
    }

    /// Records the answer of an attempt (dropped by the next [`retry`](Self::retry)).
    pub fn answered(&mut self, outcome: &Outcome) {
        self.last = answer_stream(outcome).cloned();
    }

    /// The call ended with `outcome` (`None`: it failed without one): every stream opened
    /// during the call that `outcome` does not send is dropped.
    pub fn finish(mut self, outcome: Option<&Outcome>) {
        let kept = outcome.and_then(answer_stream).cloned();
        if kept.is_none() {
            if let Some(stream) = self.last.take() {
                discard(&self.streams, self.addon.as_ref(), &stream);
            }
        }
        let opened = OPENED.take().unwrap_or_default();
        for id in opened {
            if kept != Some(BodyStream::Push(id)) {
                drop_push(&self.streams, id);
            }
        }
    }
}

impl Drop for Opening {
    fn drop(&mut self) {
        OPENED.set(None);
    }
}

/// The push streams opened while `f` runs on this thread, added to `opened`: an async
/// handler's poll (its thread may change from one poll to the next, so each is tracked on
/// its own; [`drop_unsent`] at the end, as [`Opening::finish`]).
pub fn opened_during<R>(opened: &mut Vec<u64>, f: impl FnOnce() -> R) -> R {
    struct Restore<'a> {
        outer: Option<Vec<u64>>,
        opened: &'a mut Vec<u64>,
    }
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let during = OPENED.replace(self.outer.take()).unwrap_or_default();
            self.opened.extend(during);
        }
    }
    let outer = OPENED.replace(Some(Vec::new()));
    let _restore = Restore { outer, opened };
    f()
}

/// Drops the push streams in `opened` that `outcome` does not send (`None`: the call was
/// cancelled or failed without one).
pub fn drop_unsent(all: &Streams, opened: Vec<u64>, outcome: Option<&Outcome>) {
    let kept = outcome.and_then(answer_stream);
    for id in opened {
        if kept != Some(&BodyStream::Push(id)) {
            drop_push(all, id);
        }
    }
}

/// The streamed body of an outcome's response, if any.
pub(crate) fn answer_stream(outcome: &Outcome) -> Option<&BodyStream> {
    outcome
        .response
        .as_ref()
        .into_option()
        .map(|r| &r.stream)
        .filter(|s| !matches!(s, BodyStream::Full | BodyStream::File(_)))
}

/// Forgets push stream `id` (its answer is not sent): further pushes are refused.
fn drop_push(all: &Streams, id: u64) {
    if streams(all).remove(&id).is_some() {
        tracing::debug!(target: TARGET, "push stream {id}: its answer was not sent; dropped");
    }
}

/// Drops the streamed body of an answer that is not sent (a 504, an error, a retry): a
/// push stream is forgotten, a pull stream's producer dropped in its addon (on this thread
/// outside the runtime, else on the blocking pool).
pub fn discard(all: &Streams, addon: Option<&Arc<LoadedAddon>>, stream: &BodyStream) {
    match stream {
        BodyStream::Push(id) => drop_push(all, *id),
        BodyStream::Pull { handle, .. } => {
            let Some(addon) = addon.cloned() else { return };
            let handle = *handle;
            tracing::debug!(target: TARGET, "pull stream {handle} of addon {}: its answer was not sent; producer dropped", addon.name);
            let forget = move || {
                call(&addon, ItemKind::StreamDrop, handle);
            };
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn_blocking(forget);
                }
                Err(_) => forget(),
            }
        }
        BodyStream::Full | BodyStream::File(_) => {}
    }
}

/// [`discard`] for the stream of `outcome`'s response, if it has one.
pub fn discard_outcome(all: &Streams, addon: Option<&Arc<LoadedAddon>>, outcome: &Outcome) {
    if let Some(stream) = answer_stream(outcome) {
        discard(all, addon, stream);
    }
}

/// Why a push was refused.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// No such stream, or its response is over (client gone).
    #[error("the stream is closed (or its client gone)")]
    Closed,
    /// Its queue is full: the client reads too slowly. The stream is closed.
    #[error("the stream's queue is full: its client reads too slowly; the stream is closed")]
    Full,
}

/// Appends `chunk` to stream `id`, never blocking.
pub fn push(all: &Streams, id: u64, chunk: Bytes) -> Result<(), PushError> {
    if chunk.is_empty() {
        return Ok(());
    }
    let mut all = streams(all);
    let entry = all.get_mut(&id).ok_or(PushError::Closed)?;
    let tx = entry.tx.as_ref().ok_or(PushError::Closed)?;
    match tx.try_send(chunk) {
        Ok(()) => Ok(()),
        Err(mpsc::error::TrySendError::Closed(_)) => Err(PushError::Closed),
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::info!(target: TARGET, "push stream {id}: its client does not take its chunks; closed");
            entry.tx = None;
            Err(PushError::Full)
        }
    }
}

/// Ends stream `id` (its body ends after the chunks queued); idempotent.
pub fn close(all: &Streams, id: u64) {
    let mut all = streams(all);
    if let Some(entry) = all.get_mut(&id) {
        entry.tx = None;
        if entry.rx.is_none() {
            all.remove(&id);
        }
    }
}

/// The body of push stream `id` (once: `None` after, or for an unknown id).
fn take(streams_: &Arc<Streams>, id: u64) -> Option<PushBody> {
    let mut all = streams(streams_);
    let entry = all.get_mut(&id)?;
    let rx = entry.rx.take()?;
    if entry.tx.is_none() {
        all.remove(&id);
    }
    Some(PushBody {
        streams: Arc::clone(streams_),
        id,
        rx,
    })
}

/// A push stream's body: the chunks as they are pushed, until the stream is closed.
#[derive(Debug)]
pub struct PushBody {
    streams: Arc<Streams>,
    id: u64,
    rx: mpsc::Receiver<Bytes>,
}

impl Drop for PushBody {
    fn drop(&mut self) {
        // The response is over: further pushes are refused.
        streams(&self.streams).remove(&self.id);
    }
}

// ---------------------------------------------------------------------------------------------
// Pull streams

/// A pull stream's body: each chunk asked of the addon's producer once hyper wants it.
pub struct PullBody {
    addon: Arc<LoadedAddon>,
    handle: u64,
    /// Bytes still to send, when the length is known.
    remaining: Option<u64>,
    polling: Option<JoinHandle<Outcome>>,
    /// The longest one poll of the producer may take (`limit_time_real`).
    limit: Option<std::time::Duration>,
    /// When the poll under way is cut.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    done: bool,
}

impl std::fmt::Debug for PullBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullBody")
            .field("addon", &self.addon.name)
            .field("handle", &self.handle)
            .field("remaining", &self.remaining)
            .finish()
    }
}

fn call(addon: &LoadedAddon, kind: ItemKind, handle: u64) -> Outcome {
    let mut inv = Invocation::new(kind, 0);
    inv.handle = handle;
    (addon.library.module.call())(inv)
}

impl PullBody {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.polling.is_none() {
            let addon = Arc::clone(&self.addon);
            let handle = self.handle;
            self.polling = Some(tokio::task::spawn_blocking(move || {
                call(&addon, ItemKind::StreamPoll, handle)
            }));
            self.deadline = self.limit.map(|l| Box::pin(tokio::time::sleep(l)));
        }
        let Some(polling) = self.polling.as_mut() else {
            return Poll::Ready(None);
        };
        let joined = match Pin::new(polling).poll(cx) {
            Poll::Pending => {
                if let Some(deadline) = self.deadline.as_mut() {
                    if deadline.as_mut().poll(cx).is_ready() {
                        // The producer is stuck in addon code: the response is aborted (the
                        // poll's thread is left to finish; the producer is dropped after).
                        let limit = self.limit.unwrap_or_default().as_secs();
                        return Poll::Ready(Some(Err(self.fail(&format!(
                            "producer took longer than limit_time_real ({limit}s) for one chunk"
                        )))));
                    }
                }
                return Poll::Pending;
            }
            Poll::Ready(j) => j,
        };
        self.polling = None;
        self.deadline = None;
        let outcome = match joined {
            Ok(o) => o,
            Err(e) => return Poll::Ready(Some(Err(self.fail(&format!("producer task: {e}"))))),
        };
        if let Some(e) = outcome.error.as_ref().into_option() {
            let message = format!("producer failed: {}", e.message);
            return Poll::Ready(Some(Err(self.fail(&message))));
        }
        let chunk = match outcome.response.into_option() {
            Some(r) => Bytes::from_owner(r.body),
            None => {
                self.done = true;
                return match self.remaining {
                    Some(n) if n > 0 => Poll::Ready(Some(Err(
                        self.fail(&format!("producer ended {n} bytes short of its length"))
                    ))),
                    _ => Poll::Ready(None),
                };
            }
        };
        let chunk = match &mut self.remaining {
            Some(n) => {
                let keep = chunk.len().min(usize::try_from(*n).unwrap_or(usize::MAX));
                *n -= keep as u64;
                if *n == 0 {
                    self.done = true;
                }
                chunk.slice(..keep)
            }
            None => chunk,
        };
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn fail(&mut self, why: &str) -> io::Error {
        self.done = true;
        tracing::error!(target: TARGET, "streamed response of addon {} cut: {why}", self.addon.name);
        io::Error::other(why.to_owned())
    }
}

impl Drop for PullBody {
    fn drop(&mut self) {
        let addon = Arc::clone(&self.addon);
        let handle = self.handle;
        let polling = self.polling.take();
        let forget = move || {
            call(&addon, ItemKind::StreamDrop, handle);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                // A poll still running (the client left mid-chunk) has the producer out of
                // the SDK's table until it returns: StreamDrop only after it did, else it
                // finds nothing and the producer is put back for ever.
                rt.spawn(async move {
                    if let Some(polling) = polling {
                        let _ = polling.await;
                    }
                    let _ = tokio::task::spawn_blocking(forget).await;
                });
            }
            Err(_) => forget(),
        }
    }
}

use std::future::Future as _;

// ---------------------------------------------------------------------------------------------
// The body

/// A streamed body: pulled or pushed.
#[derive(Debug)]
pub enum StreamBody {
    /// Pulled from the addon.
    Pull(PullBody),
    /// Pushed by any code.
    Push(PushBody),
}

impl StreamBody {
    pub(super) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        match self {
            StreamBody::Pull(p) => p.poll_next(cx),
            StreamBody::Push(p) => p.rx.poll_recv(cx).map(|c| c.map(|c| Ok(Frame::data(c)))),
        }
    }

    pub(super) fn is_end_stream(&self) -> bool {
        match self {
            StreamBody::Pull(p) => p.done,
            StreamBody::Push(_) => false,
        }
    }

    pub(super) fn size_hint(&self) -> SizeHint {
        match self {
            StreamBody::Pull(PullBody {
                remaining: Some(n), ..
            }) => SizeHint::with_exact(*n),
            _ => SizeHint::default(),
        }
    }
}

/// The body of an addon's streamed answer, its `Content-Length` when known; an error text
/// when it cannot be made (a file that cannot be opened, an unknown push stream).
pub fn body_of(
    streams: Option<&Arc<Streams>>,
    stream: &inphms_sdk::abi::BodyStream,
    addon: Option<&Arc<LoadedAddon>>,
    poll_limit: Option<std::time::Duration>,
) -> Result<(Body, Option<u64>), String> {
    use inphms_sdk::abi::BodyStream as S;
    match stream {
        S::Full => Err("not a streamed body".to_owned()),
        S::Pull { handle, length } => {
            let addon = addon.ok_or("a pull stream from an unknown addon")?;
            let length = *length;
            Ok((
                Body::Stream(Box::new(StreamBody::Pull(PullBody {
                    addon: Arc::clone(addon),
                    handle: *handle,
                    remaining: length.into_option(),
                    polling: None,
                    limit: poll_limit,
                    deadline: None,
                    done: length == ROption::RSome(0),
                }))),
                length.into_option(),
            ))
        }
        S::Push(id) => {
            let streams = streams.ok_or("a push stream outside a host")?;
            let body =
                take(streams, *id).ok_or_else(|| format!("no push stream {id} to answer with"))?;
            Ok((Body::Stream(Box::new(StreamBody::Push(body))), None))
        }
        S::File(path) => {
            let path = std::path::PathBuf::from(path.as_str());
            let (file, len) = off_the_event_loop(|| open_file(&path))?;
            Ok((Body::from(FileBody::new(file, path, 0, len)), Some(len)))
        }
    }
}

/// Opens a file to send, and its length: a path that is not a regular file (a directory,
/// a FIFO, which would block its opener) is refused before it is opened.
fn open_file(path: &std::path::Path) -> Result<(std::fs::File, u64), String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let len = file
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .len();
    Ok((file, len))
}

/// Runs `f`, which touches the disk, without holding a worker of the event loop: on a
/// worker of the multi-threaded runtime, the worker's other tasks move to another thread
/// meanwhile (`block_in_place`: this thread becomes one of the blocking pool's for the
/// call); elsewhere (a blocking-pool thread, no runtime) it just runs.
fn off_the_event_loop<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) if rt.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_streams_are_bounded_and_end_when_closed() {
        let all = Arc::new(Streams::default());
        let id = open(&all, 2);
        push(&all, id, Bytes::from_static(b"a")).unwrap();
        // Empty chunks are skipped (an empty chunk ends a chunked body).
        push(&all, id, Bytes::new()).unwrap();
        push(&all, id, Bytes::from_static(b"b")).unwrap();
        // Full: refused, and the stream is closed.
        assert!(matches!(
            push(&all, id, Bytes::from_static(b"c")),
            Err(PushError::Full)
        ));
        assert!(matches!(
            push(&all, id, Bytes::from_static(b"d")),
            Err(PushError::Closed)
        ));
        let mut body = take(&all, id).expect("the body, once");
        assert!(take(&all, id).is_none());
        assert_eq!(body.rx.try_recv().unwrap(), "a");
        assert_eq!(body.rx.try_recv().unwrap(), "b");
        // The sender went with the close: the body ends after what was queued.
        assert!(matches!(
            body.rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
        drop(body);
        assert!(!streams(&all).contains_key(&id), "forgotten with its body");
    }

    #[test]
    fn a_stream_closed_before_its_answer_keeps_its_chunks() {
        let all = Arc::new(Streams::default());
        let id = open(&all, 8);
        push(&all, id, Bytes::from_static(b"all")).unwrap();
        close(&all, id);
        close(&all, id);
        let mut body = take(&all, id).expect("still there for its answer");
        assert_eq!(body.rx.try_recv().unwrap(), "all");
        assert!(body.rx.try_recv().is_err());
        drop(body);
        assert!(matches!(
            push(&all, id, Bytes::from_static(b"x")),
            Err(PushError::Closed)
        ));
        assert!(!streams(&all).contains_key(&id));
        assert!(take(&all, u64::MAX).is_none());
    }
}
