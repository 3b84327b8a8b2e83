//! Receiving a request body, in bounded memory, disk and time.
//!
//! * A body of at most `http_body_spool` bytes is received into memory (a single frame is
//!   kept as hyper gave it, without a copy; more frames go to a buffer grown by doubling
//!   from what has arrived, never sized from `Content-Length`); a larger one is written, as
//!   it arrives, to an unnamed temporary file in `<data_dir>/tmp/` (`O_TMPFILE`: it has no
//!   name to leave behind, and its blocks are freed when the request ends, however it ends,
//!   even when the process is killed), then handed to the handler as a read-only mapping of
//!   that file: clean, file-backed pages the kernel can drop, not anonymous memory.
//! * Two budgets of the host ([`Budgets`] of [`Budget`]s), charged until the request ends ([`Charge`]):
//!   `limit_memory_bodies` for every byte a body holds in memory (received, in a spool
//!   file's write batch, or mapped for its handler), `limit_disk_bodies` for the bytes in
//!   spool files. Bytes are charged as they arrive, never ahead of them. A body that does not
//!   fit is answered 503 with `Retry-After` as soon as that is known: before reading it when
//!   its `Content-Length` plus what is held does not fit now (a check that reserves
//!   nothing), else at the byte that passes a budget. Buffers sized by the client are
//!   reserved fallibly (`try_reserve`): a failed allocation is a 503 too, never an abort.
//! * The size limit is exact: 413 from `Content-Length` before reading, or as soon as the
//!   bytes received pass it. A body larger than a whole budget it needs is refused the same
//!   way (it could never be held).
//! * Time ([`Pace`]): a body that sends no byte for `http_body_timeout`, or that has taken
//!   longer than that and averages less than `http_body_min_rate` bytes per second past it,
//!   is answered 408, with `Connection: close`.

use super::response::{self, HttpResult};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, RETRY_AFTER};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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

/// A budget of bytes shared by the requests being served, charged by each ([`Charge`]).
#[derive(Debug, Default)]
pub struct Budget(AtomicU64);

impl Budget {
    /// The bytes charged right now (all requests).
    pub fn held(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Whether `bytes` more would fit within `limit` now, besides the `own` bytes already
    /// charged by the asking request (which `bytes` replaces): a check that reserves nothing.
    fn fits(&self, bytes: u64, own: u64, limit: u64) -> bool {
        self.held()
            .saturating_sub(own)
            .checked_add(bytes)
            .is_some_and(|total| total <= limit)
    }
}

/// The two budgets of one host's request bodies, shared by all its requests (owned by the
/// composition root through [`HttpState`](super::HttpState)).
#[derive(Debug, Default)]
pub struct Budgets {
    /// Body bytes held in memory by the requests being served (received, in a spool batch,
    /// or mapped for a handler): `limit_memory_bodies`.
    pub memory: Arc<Budget>,
    /// Body bytes in spool files of the requests being served: `limit_disk_bodies`.
    pub disk: Arc<Budget>,
}

impl Budgets {
    /// The body bytes held in memory right now (all requests).
    pub fn held(&self) -> u64 {
        self.memory.held()
    }
}

/// Bytes charged to a shared [`Budget`], released when dropped. The default charges no
/// budget (a body the host made itself, or none).
#[derive(Debug, Default)]
pub struct Charge {
    budget: Option<Arc<Budget>>,
    bytes: u64,
}

impl Charge {
    /// Nothing charged, yet, to `budget`.
    fn to(budget: &Arc<Budget>) -> Charge {
        Charge {
            budget: Some(Arc::clone(budget)),
            bytes: 0,
        }
    }

    /// Sets the charge to `bytes`: more is charged within `limit` for all requests
    /// together, less is given back.
    fn set_to(&mut self, bytes: u64, limit: u64) -> Result<(), BodyError> {
        let Some(budget) = &self.budget else {
            self.bytes = bytes;
            return Ok(());
        };
        let held = &budget.0;
        let Some(more) = bytes.checked_sub(self.bytes) else {
            held.fetch_sub(self.bytes - bytes, Ordering::AcqRel);
            self.bytes = bytes;
            return Ok(());
        };
        if more == 0 {
            return Ok(());
        }
        held.fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
            held.checked_add(more).filter(|total| *total <= limit)
        })
        .map_err(|_| BodyError::Busy)?;
        self.bytes = bytes;
        Ok(())
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if let Some(budget) = self.budget.as_ref().filter(|_| self.bytes > 0) {
            budget.0.fetch_sub(self.bytes, Ordering::AcqRel);
        }
    }
}

/// A received request body, as the handler reads it: bytes in memory or a mapped spool
/// file, and their charge to the budget, held until it is dropped (the request's end).
#[derive(Debug, Default)]
pub struct RequestBody {
    held: Held,
    _charge: Charge,
    /// A spooled body's charge to the disk budget (its file's blocks, freed with it).
    _disk: Charge,
}

#[derive(Debug, Default)]
enum Held {
    #[default]
    Empty,
    Memory(Bytes),
    /// The mapping of an unnamed file, and the file (handed to a handler that asks for it,
    /// reopened read-only): its blocks are freed when both are gone.
    Mapped(memmap2::Mmap, std::fs::File),
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
            _disk: Charge::default(),
        }
    }

    /// Whether the body is a mapped spool file (large: parsing it is not for the event loop).
    pub fn is_spooled(&self) -> bool {
        matches!(self.held, Held::Mapped(..))
    }

    /// The descriptor of a spooled body's file (for [`inphms_sdk::abi::HttpRequest::body_file`]).
    pub fn spool_fd(&self) -> Option<i32> {
        match &self.held {
            Held::Mapped(_, file) => Some(std::os::fd::AsRawFd::as_raw_fd(file)),
            _ => None,
        }
    }
}

impl std::ops::Deref for RequestBody {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.held {
            Held::Empty => &[],
            Held::Memory(b) => b,
            Held::Mapped(m, _) => m,
        }
    }
}

/// Why a body was not received.
#[derive(Debug)]
pub enum BodyError {
    /// Larger than the limit (413).
    TooLarge,
    /// No byte for `http_body_timeout`, or slower than `http_body_min_rate` past it (408,
    /// connection closed).
    Timeout,
    /// The memory or disk budget, or an allocation, refused it (503, `Retry-After`).
    Busy,
    /// The spool file could not be made or written (503, `Retry-After`, logged).
    Spool(std::io::Error),
    /// The client's body was malformed or cut (400).
    Broken,
}

impl BodyError {
    /// The answer to the request, with `Connection: close`: the body is left unread (in
    /// part, or all of it when refused at once), so the connection cannot carry another
    /// request.
    pub fn response(&self) -> HttpResult {
        let mut r = match self {
            BodyError::TooLarge => response::html_error(413, None),
            BodyError::Timeout => response::html_error(408, None),
            BodyError::Busy | BodyError::Spool(_) => busy(),
            BodyError::Broken => response::html_error(400, None),
        };
        r.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        r
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
    /// The process-wide budget of body bytes in spool files (`limit_disk_bodies`;
    /// `u64::MAX` for none).
    pub disk: u64,
    /// The longest wait for a byte (`http_body_timeout`), also the grace period of
    /// `min_rate`; `None` waits forever.
    pub timeout: Option<Duration>,
    /// The least average rate, in bytes per second, of a body that has taken longer than
    /// `timeout` (`http_body_min_rate`; 0 for none): see [`Pace`].
    pub min_rate: u64,
    /// The data dir (the spool files go to its `tmp/`).
    pub data_dir: &'a Path,
    /// The budgets charged (the host's).
    pub budgets: &'a Budgets,
}

/// When a body being received is late: `timeout` after its last byte, or (with a minimum
/// rate) `timeout` after it began plus one second per `min_rate` bytes received, as Apache's
/// `RequestReadTimeout body=...,MinRate=...`. Both move only forward as bytes arrive, so one
/// timer, set again when it fires early, is enough.
struct Pace {
    start: tokio::time::Instant,
    timeout: Duration,
    min_rate: u64,
}

impl Pace {
    /// The time by which the body must have sent more (a byte, or enough for the rate).
    fn due(&self, last_byte: tokio::time::Instant, received: u64) -> tokio::time::Instant {
        let gap = last_byte + self.timeout;
        if self.min_rate == 0 {
            return gap;
        }
        let earned =
            u64::try_from(u128::from(received) * 1_000_000_000 / u128::from(self.min_rate))
                .unwrap_or(u64::MAX);
        // Far enough (a century) not to overflow an `Instant`.
        let earned = Duration::from_nanos(earned.min(3_155_760_000_000_000_000));
        gap.min(self.start + self.timeout + earned)
    }
}

/// Receives `body`, which declared `declared` bytes (`Content-Length`), under `limits`.
///
/// A body that cannot fit the budgets now is refused before any byte of it is read (a
/// check that reserves nothing); then bytes are charged as they arrive, never ahead.
pub async fn receive(
    mut body: Incoming,
    declared: Option<u64>,
    limits: &Limits<'_>,
) -> Result<RequestBody, BodyError> {
    // A body larger than the whole budget (or, spooled, than the whole disk budget) could
    // never be held for its handler: it is too large, not a retry for later.
    let max = limits.max.min(limits.budget);
    if let Some(n) = declared {
        if n > max || (n > limits.spool && n > limits.disk) {
            return Err(BodyError::TooLarge);
        }
        if !limits.budgets.memory.fits(n, 0, limits.budget)
            || (n > limits.spool && !limits.budgets.disk.fits(n, 0, limits.disk))
        {
            return Err(BodyError::Busy);
        }
    }
    let mut charge = Charge::to(&limits.budgets.memory);
    let mut sink = if declared.is_some_and(|n| n > limits.spool) {
        Sink::Spool(Spool::create(limits).await?)
    } else {
        Sink::Memory {
            first: None,
            buf: Vec::new(),
        }
    };
    let mut received: u64 = 0;
    // The time of the last byte (and of its write, for a spooled body). The timer is not
    // moved per frame (each move would register it again): when it fires early, it is set
    // again from the pace. Without a timeout, its branch is off and it is never polled.
    let pace = Pace {
        start: tokio::time::Instant::now(),
        timeout: limits.timeout.unwrap_or(Duration::from_secs(86_400)),
        min_rate: limits.min_rate,
    };
    let mut last_byte = pace.start;
    let deadline = tokio::time::sleep_until(pace.due(last_byte, 0));
    tokio::pin!(deadline);
    loop {
        let frame = tokio::select! {
            biased;
            frame = body.frame() => frame,
            _ = &mut deadline, if limits.timeout.is_some() => {
                let now = tokio::time::Instant::now();
                let due = pace.due(last_byte, received);
                if due > now {
                    deadline.as_mut().reset(due);
                    continue;
                }
                if last_byte + pace.timeout > now {
                    tracing::info!(target: "inphms.http", "request body below the minimum rate ({received} bytes in {:.1}s, at least {} bytes/s past the first {}s); answered 408", pace.start.elapsed().as_secs_f64(), pace.min_rate, pace.timeout.as_secs());
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
                spool.admit(received, 0, limits)?;
                spool.push(&data).await?;
                last_byte = tokio::time::Instant::now();
            }
            Sink::Memory { first, buf } if received > limits.spool => {
                let mut spool = Spool::create(limits).await?;
                // The buffer's charge is about to go: the bytes it holds count once.
                spool.admit(received, charge.bytes, limits)?;
                if let Some(first) = first.take() {
                    spool.push(&first).await?;
                }
                spool.push(buf).await?;
                spool.push(&data).await?;
                last_byte = tokio::time::Instant::now();
                // The memory is given back (the spool's batch is charged on its own).
                charge = Charge::to(&limits.budgets.memory);
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
                    // Doubling from what is needed, never past what the body declared nor
                    // past the spool threshold (the body goes to a file beyond it): a
                    // client is charged for what it sent, not for what it announced.
                    let most = declared
                        .unwrap_or(limits.spool)
                        .min(limits.spool)
                        .max(received) as usize;
                    let target = needed.max(buf.capacity().saturating_mul(2)).min(most);
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
            _disk: Charge::default(),
        }),
        Sink::Memory { buf, .. } if buf.is_empty() => Ok(RequestBody::empty()),
        Sink::Memory { buf, .. } => Ok(RequestBody {
            held: Held::Memory(Bytes::from(buf)),
            _charge: charge,
            _disk: Charge::default(),
        }),
        Sink::Spool(spool) => {
            // The batch and its charge go first: the mapping takes their place.
            let (file, disk) = spool.finish().await?;
            // The mapping's pages count in the process's memory once the handler reads
            // them: it is charged for its whole length while the request lasts.
            let mut charge = Charge::to(&limits.budgets.memory);
            charge.set_to(received, limits.budget)?;
            // SAFETY: the file is unnamed and private to this process, and only read:
            // nothing truncates or writes it while the mapping lives.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| {
                tracing::warn!(target: "inphms.http", "cannot map a request body of {received} bytes: {e}; answered 503");
                BodyError::Busy
            })?;
            Ok(RequestBody {
                held: Held::Mapped(map, file),
                _charge: charge,
                _disk: disk,
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
    /// Grown as needed up to [`SPOOL_BATCH`], charged to the memory budget.
    batch: Vec<u8>,
    batch_charge: Charge,
    /// The bytes received so far, charged to the disk budget as they arrive.
    disk: Charge,
    budget: u64,
}

impl Spool {
    /// An unnamed file in the spool folder (created when missing).
    async fn create(limits: &Limits<'_>) -> Result<Spool, BodyError> {
        let dir = spool_dir(limits.data_dir);
        let file = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            tempfile::tempfile_in(&dir)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r)
        .map_err(spool_failed)?;
        Ok(Spool {
            file: Some(file),
            batch: Vec::new(),
            batch_charge: Charge::to(&limits.budgets.memory),
            disk: Charge::to(&limits.budgets.disk),
            budget: limits.budget,
        })
    }

    /// Charges the body's `received` bytes to the disk budget, after checking that they
    /// could still be mapped for the handler now (the memory budget, besides this spool's
    /// batch and the request's other charge `own`): a body that cannot fit is refused as
    /// soon as it is known, not once whole.
    fn admit(&mut self, received: u64, own: u64, limits: &Limits<'_>) -> Result<(), BodyError> {
        if received > limits.disk {
            return Err(BodyError::TooLarge);
        }
        if !limits
            .budgets
            .memory
            .fits(received, self.batch_charge.bytes + own, limits.budget)
        {
            return Err(BodyError::Busy);
        }
        self.disk.set_to(received, limits.disk)
    }

    /// Adds `data`, writing a full batch.
    async fn push(&mut self, mut data: &[u8]) -> Result<(), BodyError> {
        while !data.is_empty() {
            let room = SPOOL_BATCH - self.batch.len();
            let n = room.min(data.len());
            let needed = self.batch.len() + n;
            if self.batch.capacity() < needed {
                let target = needed
                    .max(self.batch.capacity().saturating_mul(2))
                    .min(SPOOL_BATCH);
                self.batch_charge.set_to(target as u64, self.budget)?;
                self.batch
                    .try_reserve_exact(target - self.batch.len())
                    .map_err(|_| BodyError::Busy)?;
            }
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

    /// Writes what is left and frees the batch (and its charge); the file and its charge to
    /// the disk budget.
    async fn finish(mut self) -> Result<(std::fs::File, Charge), BodyError> {
        self.flush().await?;
        let file = self
            .file
            .take()
            .ok_or_else(|| spool_failed(std::io::Error::other("spool file closed")))?;
        Ok((file, self.disk))
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
        let budgets = Budgets::default();
        let before = budgets.held();
        let mut a = Charge::to(&budgets.memory);
        a.set_to(600, before + 1000).unwrap();
        let mut b = Charge::to(&budgets.memory);
        assert!(matches!(b.set_to(500, before + 1000), Err(BodyError::Busy)));
        b.set_to(400, before + 1000).unwrap();
        // Growing is charging the difference only.
        a.set_to(600, before + 1000).unwrap();
        assert_eq!(budgets.held(), before + 1000);
        drop(a);
        assert_eq!(budgets.held(), before + 400);
        drop(b);
        assert_eq!(budgets.held(), before);
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

    #[test]
    fn fitting_reserves_nothing_and_counts_the_askers_own_charge_once() {
        let budget = Budget::default();
        budget.0.store(700, Ordering::Release);
        assert!(budget.fits(300, 0, 1000));
        assert!(!budget.fits(301, 0, 1000));
        // 100 of the 700 are the asker's: 400 more would replace them.
        assert!(budget.fits(400, 100, 1000));
        assert!(!budget.fits(u64::MAX, 0, u64::MAX));
        assert_eq!(budget.held(), 700);
    }

    #[test]
    fn a_body_is_due_a_byte_per_timeout_and_its_rate_past_the_first_timeout() {
        let start = tokio::time::Instant::now();
        let s = Duration::from_secs;
        let pace = Pace {
            start,
            timeout: s(10),
            min_rate: 1024,
        };
        // Nothing yet: due at the timeout.
        assert_eq!(pace.due(start, 0), start + s(10));
        // A byte every second, 1 byte each: the rate, not the gap, decides (10 s + 20/1024).
        let due = pace.due(start + s(20), 20);
        assert!(due < start + s(11) && due > start + s(10), "{due:?}");
        // Fast enough: the gap decides.
        assert_eq!(pace.due(start + s(12), 1024 * 1024), start + s(22));
        // No minimum rate: only the gap.
        let pace = Pace {
            min_rate: 0,
            ..pace
        };
        assert_eq!(pace.due(start + s(20), 20), start + s(30));
        // No overflow for a huge body at a tiny rate.
        let pace = Pace {
            min_rate: 1,
            ..pace
        };
        assert!(pace.due(start, u64::MAX) == start + s(10));
    }
}
