//! Receiving a request body, in bounded memory and time.
//!
//! * A body of at most `http_body_spool` bytes is received into memory (a single frame is
//!   kept as hyper gave it, without a copy); a larger one is written, as it arrives, to an
//!   unnamed temporary file in `<data_dir>/tmp/` (`O_TMPFILE`: it has no name to leave
//!   behind, and its blocks are freed when the request ends, however it ends, even when the
//!   process is killed), then handed to the handler as a read-only mapping of that file:
//!   clean, file-backed pages the kernel can drop, not anonymous memory.
//! * Every byte a body holds in memory (received, or mapped for its handler) is charged to
//!   one process-wide budget, `limit_memory_bodies`, until the request ends ([`Charge`]);
//!   a body that does not fit is answered 503 with `Retry-After`. Buffers sized by the
//!   client are reserved fallibly (`try_reserve`): a failed allocation is a 503 too, never
//!   an abort.
//! * The size limit is exact: 413 from `Content-Length` before reading, or as soon as the
//!   bytes received pass it. A body larger than the whole budget is refused the same way
//!   (it could never be held).
//! * `http_body_timeout`: a body that sends no byte for that long is answered 408, with
//!   `Connection: close`.

use super::response::{self, HttpResult};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, RETRY_AFTER};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What a client is told to wait before retrying a body refused for lack of memory.
pub const RETRY_AFTER_SECS: u64 = 5;

/// How much of a spooled body is gathered before one write to its file (on the blocking
/// pool): one hand-off per batch, not per frame.
const SPOOL_BATCH: usize = 128 * 1024;

/// The folder of the spool files, under the data dir.
pub fn spool_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tmp")
}

/// Removes what a killed process may have left in the spool folder (the files are unnamed
/// on Linux; a file system without `O_TMPFILE` gets a name for an instant). Called at start,
/// before serving.
pub fn remove_leftovers(data_dir: &Path) {
    let dir = spool_dir(data_dir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut removed = 0usize;
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_file())
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(target: "inphms.http", "removed {removed} leftover request body file(s) from {}", dir.display());
    }
}

/// Body bytes held in memory by the requests being served, process-wide.
static HELD: AtomicU64 = AtomicU64::new(0);

/// The body bytes held in memory right now (all requests).
pub fn held() -> u64 {
    HELD.load(Ordering::Acquire)
}

/// Bytes charged to the process-wide body budget, released when dropped.
#[derive(Debug, Default)]
pub struct Charge(u64);

impl Charge {
    /// Sets the charge to `bytes`: more is charged within `limit` for all requests
    /// together, less is given back.
    fn set_to(&mut self, bytes: u64, limit: u64) -> Result<(), BodyError> {
        let Some(more) = bytes.checked_sub(self.0) else {
            HELD.fetch_sub(self.0 - bytes, Ordering::AcqRel);
            self.0 = bytes;
            return Ok(());
        };
        if more == 0 {
            return Ok(());
        }
        HELD.fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
            held.checked_add(more).filter(|total| *total <= limit)
        })
        .map_err(|_| BodyError::Busy)?;
        self.0 = bytes;
        Ok(())
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if self.0 > 0 {
            HELD.fetch_sub(self.0, Ordering::AcqRel);
        }
    }
}

/// A received request body, as the handler reads it: bytes in memory or a mapped spool
/// file, and their charge to the budget, held until it is dropped (the request's end).
#[derive(Debug, Default)]
pub struct RequestBody {
    held: Held,
    _charge: Charge,
}

#[derive(Debug, Default)]
enum Held {
    #[default]
    Empty,
    Memory(Bytes),
    /// The mapping of an unnamed file: the file's blocks are freed when it is unmapped.
    Mapped(memmap2::Mmap),
}

impl RequestBody {
    /// No body.
    pub fn empty() -> RequestBody {
        RequestBody::default()
    }

    /// A body the host made itself (not charged to the budget).
    pub fn from_bytes(bytes: Bytes) -> RequestBody {
        RequestBody {
            held: Held::Memory(bytes),
            _charge: Charge::default(),
        }
    }

    /// Whether the body is a mapped spool file (large: parsing it is not for the event loop).
    pub fn is_spooled(&self) -> bool {
        matches!(self.held, Held::Mapped(..))
    }
}

impl std::ops::Deref for RequestBody {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.held {
            Held::Empty => &[],
            Held::Memory(b) => b,
            Held::Mapped(m) => m,
        }
    }
}

/// Why a body was not received.
#[derive(Debug)]
pub enum BodyError {
    /// Larger than the limit (413).
    TooLarge,
    /// No byte for `http_body_timeout` (408, connection closed).
    Timeout,
    /// The memory budget or an allocation refused it (503, `Retry-After`).
    Busy,
    /// The spool file could not be made or written (503, `Retry-After`, logged).
    Spool(std::io::Error),
    /// The client's body was malformed or cut (400).
    Broken,
}

impl BodyError {
    /// The answer to the request.
    pub fn response(&self) -> HttpResult {
        match self {
            BodyError::TooLarge => response::html_error(413, None),
            BodyError::Timeout => {
                let mut r = response::html_error(408, None);
                r.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
                r
            }
            BodyError::Busy | BodyError::Spool(_) => busy(),
            BodyError::Broken => response::html_error(400, None),
        }
    }
}

/// 503 with `Retry-After`.
pub fn busy() -> HttpResult {
    let mut r = response::html_error(503, None);
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    r
}

/// The limits a body is received under (from the configuration).
#[derive(Debug, Clone, Copy)]
pub struct Limits<'a> {
    /// The largest body accepted (`max_content_length` or the route's).
    pub max: u64,
    /// Larger bodies are spooled (`http_body_spool`).
    pub spool: u64,
    /// The process-wide budget of body bytes in memory (`limit_memory_bodies`; `u64::MAX`
    /// for none).
    pub budget: u64,
    /// The longest wait for a byte (`http_body_timeout`); `None` waits forever.
    pub timeout: Option<Duration>,
    /// The data dir (the spool files go to its `tmp/`).
    pub data_dir: &'a Path,
}

/// Receives `body`, which declared `declared` bytes (`Content-Length`), under `limits`.
pub async fn receive(
    mut body: Incoming,
    declared: Option<u64>,
    limits: &Limits<'_>,
) -> Result<RequestBody, BodyError> {
    // A body larger than the whole budget could never be held for its handler: it is too
    // large, not a retry for later.
    let max = limits.max.min(limits.budget);
    if declared.is_some_and(|n| n > max) {
        return Err(BodyError::TooLarge);
    }
    let mut charge = Charge::default();
    let mut sink = if declared.is_some_and(|n| n > limits.spool) {
        Sink::Spool(Spool::create(limits.data_dir).await?)
    } else {
        Sink::Memory {
            first: None,
            buf: Vec::new(),
        }
    };
    let mut received: u64 = 0;
    // The time of the last byte (and of its write, for a spooled body). The timer is not
    // moved per frame (each move would register it again): when it fires early, it is set
    // again from the last byte. Without a timeout, its branch is off and it is never polled.
    let wait = limits.timeout.unwrap_or(Duration::from_secs(86_400));
    let mut last_byte = tokio::time::Instant::now();
    let deadline = tokio::time::sleep_until(last_byte + wait);
    tokio::pin!(deadline);
    loop {
        let frame = tokio::select! {
            biased;
            frame = body.frame() => frame,
            _ = &mut deadline, if limits.timeout.is_some() => {
                if last_byte + wait > tokio::time::Instant::now() {
                    deadline.as_mut().reset(last_byte + wait);
                    continue;
                }
                return Err(BodyError::Timeout);
            }
        };
        let data = match frame {
            None => break,
            Some(Err(_)) => return Err(BodyError::Broken),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if !data.is_empty() => data,
                // Trailers, or an empty frame: no progress.
                _ => continue,
            },
        };
        received = received.saturating_add(data.len() as u64);
        if received > max {
            return Err(BodyError::TooLarge);
        }
        last_byte = tokio::time::Instant::now();
        match &mut sink {
            Sink::Spool(spool) => {
                spool.push(&data).await?;
                last_byte = tokio::time::Instant::now();
            }
            Sink::Memory { first, buf } if received > limits.spool => {
                let mut spool = Spool::create(limits.data_dir).await?;
                if let Some(first) = first.take() {
                    spool.push(&first).await?;
                }
                spool.push(buf).await?;
                spool.push(&data).await?;
                last_byte = tokio::time::Instant::now();
                // The memory is given back; the spool's own batch is the host's, not sized
                // by the client.
                charge = Charge::default();
                sink = Sink::Spool(spool);
            }
            Sink::Memory { first, buf } => {
                if first.is_none() && buf.is_empty() {
                    charge.set_to(data.len() as u64, limits.budget)?;
                    *first = Some(data);
                    continue;
                }
                let needed = received as usize;
                if buf.capacity() < needed {
                    // To the declared size at once, else doubling, never past the spool
                    // threshold (the body goes to a file beyond it).
                    let target = declared
                        .map(|d| d as usize)
                        .unwrap_or(needed.saturating_mul(2))
                        .clamp(needed, (limits.spool as usize).max(needed));
                    let held_first = first.as_ref().map_or(0, Bytes::len);
                    charge.set_to((target + held_first) as u64, limits.budget)?;
                    buf.try_reserve_exact(target - buf.len())
                        .map_err(|_| BodyError::Busy)?;
                }
                if let Some(first) = first.take() {
                    buf.extend_from_slice(&first);
                }
                buf.extend_from_slice(&data);
                // The first frame, copied, is given back.
                charge.set_to(buf.capacity() as u64, limits.budget)?;
            }
        }
    }
    match sink {
        Sink::Memory { first: Some(b), .. } => Ok(RequestBody {
            held: Held::Memory(b),
            _charge: charge,
        }),
        Sink::Memory { buf, .. } if buf.is_empty() => Ok(RequestBody::empty()),
        Sink::Memory { buf, .. } => Ok(RequestBody {
            held: Held::Memory(Bytes::from(buf)),
            _charge: charge,
        }),
        Sink::Spool(spool) => {
            let file = spool.finish().await?;
            // The mapping's pages count in the process's memory once the handler reads
            // them: it is charged for its whole length while the request lasts.
            let mut charge = Charge::default();
            charge.set_to(received, limits.budget)?;
            // SAFETY: the file is unnamed and private to this process, and only read:
            // nothing truncates or writes it while the mapping lives.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| {
                tracing::warn!(target: "inphms.http", "cannot map a request body of {received} bytes: {e}; answered 503");
                BodyError::Busy
            })?;
            Ok(RequestBody {
                held: Held::Mapped(map),
                _charge: charge,
            })
        }
    }
}

/// Where the bytes received go.
enum Sink {
    /// Memory: the first frame as hyper gave it (no copy for a body of one frame), then a
    /// buffer once a second frame comes.
    Memory {
        first: Option<Bytes>,
        buf: Vec<u8>,
    },
    Spool(Spool),
}

/// A spool file being written, through a batch written on the blocking pool.
struct Spool {
    file: Option<std::fs::File>,
    batch: Vec<u8>,
}

impl Spool {
    /// An unnamed file in the spool folder (created when missing).
    async fn create(data_dir: &Path) -> Result<Spool, BodyError> {
        let dir = spool_dir(data_dir);
        let file = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            tempfile::tempfile_in(&dir)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r)
        .map_err(spool_failed)?;
        let mut batch = Vec::new();
        batch
            .try_reserve_exact(SPOOL_BATCH)
            .map_err(|_| BodyError::Busy)?;
        Ok(Spool {
            file: Some(file),
            batch,
        })
    }

    /// Adds `data`, writing a full batch.
    async fn push(&mut self, mut data: &[u8]) -> Result<(), BodyError> {
        while !data.is_empty() {
            let room = SPOOL_BATCH - self.batch.len();
            let n = room.min(data.len());
            self.batch.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.batch.len() == SPOOL_BATCH {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// Writes the batch to the file, on the blocking pool.
    async fn flush(&mut self) -> Result<(), BodyError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let (Some(mut file), batch) = (self.file.take(), std::mem::take(&mut self.batch)) else {
            return Err(spool_failed(std::io::Error::other("spool file closed")));
        };
        let (file, mut batch, written) = tokio::task::spawn_blocking(move || {
            let written = file.write_all(&batch);
            (file, batch, written)
        })
        .await
        .map_err(|e| spool_failed(std::io::Error::other(e.to_string())))?;
        written.map_err(spool_failed)?;
        batch.clear();
        self.file = Some(file);
        self.batch = batch;
        Ok(())
    }

    /// Writes what is left; the file.
    async fn finish(mut self) -> Result<std::fs::File, BodyError> {
        self.flush().await?;
        self.file
            .take()
            .ok_or_else(|| spool_failed(std::io::Error::other("spool file closed")))
    }
}

fn spool_failed(e: std::io::Error) -> BodyError {
    tracing::warn!(target: "inphms.http", "cannot spool a request body: {e}; answered 503");
    BodyError::Spool(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_stay_within_the_budget_and_are_released() {
        // One test touches the process-wide counter: others would race with it.
        let before = held();
        let mut a = Charge::default();
        a.set_to(600, before + 1000).unwrap();
        let mut b = Charge::default();
        assert!(matches!(b.set_to(500, before + 1000), Err(BodyError::Busy)));
        b.set_to(400, before + 1000).unwrap();
        // Growing is charging the difference only.
        a.set_to(600, before + 1000).unwrap();
        assert_eq!(held(), before + 1000);
        drop(a);
        assert_eq!(held(), before + 400);
        drop(b);
        assert_eq!(held(), before);
    }

    #[test]
    fn answers_name_the_limit() {
        let r = BodyError::Timeout.response();
        assert_eq!(r.status(), 408);
        assert_eq!(r.headers()[CONNECTION], "close");
        let r = BodyError::Busy.response();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[RETRY_AFTER], "5");
        assert_eq!(BodyError::TooLarge.response().status(), 413);
    }
}
