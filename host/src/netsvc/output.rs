//! [`Output`]: where log lines go (stderr or `--logfile`), buffered in memory and written
//! in batches by a flusher thread.
//!
//! Writing every line with its own `write(2)` cost more than a fifth of the CPU of a cheap
//! request (one access-log line each; see BENCHMARKS.md). Lines that may wait (the
//! access log's, see `netsvc::log_batched`) are appended to a buffer of the thread
//! logging them instead, each with the time it was appended; the first such line after a
//! write wakes the flusher thread, which waits [`FLUSH_DELAY`] and writes everything
//! gathered meanwhile in one call, the threads' lines merged in time order. So an idle server never wakes up, a busy one writes a few dozen
//! times a second, and a line reaches the file at most [`FLUSH_DELAY`] after it was
//! logged. Every other line (start-up, warnings, addons' records), a buffer past
//! [`MAX_BUFFERED`], and [`Output::flush`] (called before the process exits or
//! re-executes itself) write at once, after everything logged before them.
//!
//! A buffer per thread, not one shared: a request's line is then appended under a lock
//! that only its own thread takes (and the flusher, once per batch), so the workers
//! neither wait for each other nor pass the buffer's memory between their cores on every
//! request. The lines of a batch are merged by the time each was appended (taken under its
//! buffer's lock), and a batch takes every buffer at one instant (all their locks held), so
//! the file has the lines of the process in time order, across threads and batches.
//!
//! A process killed with SIGKILL loses at most the last [`FLUSH_DELAY`] of access-log
//! lines.

use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long a line may wait in the buffer.
pub const FLUSH_DELAY: Duration = Duration::from_millis(20);

/// Past this many bytes buffered by one thread, that thread writes every buffer itself.
pub const MAX_BUFFERED: usize = 64 * 1024;

/// The log output: a sink, and the lines of each thread not yet written to it.
pub struct Output {
    /// Held while writing to the sink, and while the threads' buffers are gathered for it
    /// (taken before a [`Shard`]'s lock, never the other way round), so that batches
    /// reach the sink in the order their lines were logged.
    sink: Mutex<Sink>,
    /// The buffers of the threads that logged a line that may wait.
    shards: Mutex<Vec<Arc<Shard>>>,
    /// Whether the flusher thread runs (until it does, every line is written at once).
    flusher: AtomicBool,
    /// Set by the first line buffered after a write, which wakes the flusher: the others
    /// only read it, so the threads share no written memory per line.
    armed: AtomicBool,
    /// The flusher waits on `wake` (with `sleeper`) until `armed` is set.
    sleeper: Mutex<()>,
    wake: Condvar,
    /// The origin of the lines' times.
    epoch: Instant,
}

struct Sink {
    out: Box<dyn Write + Send>,
    /// A batch: the threads' lines merged in time order, then the line written at once.
    /// Kept from one batch to the next. (So are the threads' buffers: a block of 64-128
    /// KiB allocated per batch, a few hundred times a second, made RSS grow under load:
    /// BENCHMARKS.md, item 6.)
    merged: Vec<u8>,
}

/// Lines of one thread, each with the time it was appended.
#[derive(Default)]
struct Lines {
    bytes: Vec<u8>,
    /// For each line: nanoseconds since the output's epoch, and the end of the line in
    /// `bytes`.
    ends: Vec<(u64, usize)>,
}

impl Lines {
    /// The line `i`.
    fn line(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1].1 };
        &self.bytes[start..self.ends[i].1]
    }

    fn recycle(&mut self) {
        recycle(&mut self.bytes);
        if self.ends.capacity() > MAX_BUFFERED / 16 {
            self.ends = Vec::new();
        } else {
            self.ends.clear();
        }
    }
}

/// One thread's waiting lines.
#[derive(Default)]
struct Shard {
    /// Filled by its thread.
    buf: Mutex<Lines>,
    /// The emptied buffer of the last batch, which takes the next one's place: the thread
    /// never waits for a write, and neither buffer is allocated again. Only taken under
    /// the sink's lock.
    spare: Mutex<Lines>,
}

thread_local! {
    /// This thread's buffer in each [`Output`] it logged to (in practice one), by the
    /// output's address. The output's registry holds the buffer too: lines left by a
    /// thread that ended are written with the next batch.
    // global: each thread's own log buffers, found without a lock on the hot path.
    static SHARDS: RefCell<Vec<(usize, Arc<Shard>)>> = const { RefCell::new(Vec::new()) };
}

/// Appends the lines of `threads` to `out`, in the order of their times (each thread's
/// lines are already in order).
fn merge(threads: &[MutexGuard<'_, Lines>], out: &mut Vec<u8>) {
    let mut next = vec![0usize; threads.len()];
    loop {
        let mut best: Option<(usize, u64)> = None;
        for (t, lines) in threads.iter().enumerate() {
            if let Some(&(at, _)) = lines.ends.get(next[t]) {
                if best.is_none_or(|(_, b)| at < b) {
                    best = Some((t, at));
                }
            }
        }
        let Some((t, _)) = best else { return };
        out.extend_from_slice(threads[t].line(next[t]));
        next[t] += 1;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keeps a buffer's capacity for the next batch, unless an outsized line grew it.
fn recycle(buf: &mut Vec<u8>) {
    if buf.capacity() > 2 * MAX_BUFFERED {
        *buf = Vec::new();
    } else {
        buf.clear();
    }
}

impl Output {
    /// An output writing to stderr, unbuffered until [`Output::start_flusher`].
    pub fn stderr() -> Output {
        Output {
            sink: Mutex::new(Sink {
                out: Box::new(std::io::stderr()),
                merged: Vec::new(),
            }),
            shards: Mutex::new(Vec::new()),
            flusher: AtomicBool::new(false),
            armed: AtomicBool::new(false),
            sleeper: Mutex::new(()),
            wake: Condvar::new(),
            epoch: Instant::now(),
        }
    }

    /// Writes what is buffered, then sends the following lines to `sink`.
    pub fn set_sink(&self, out: Box<dyn Write + Send>) {
        let mut sink = lock(&self.sink);
        self.write_batch(&mut sink, |_| ());
        sink.out = out;
    }

    /// Appends one line (the newline is added) made by `fill`; `urgent` lines, and every
    /// line while no flusher thread runs, are written before this returns.
    pub fn line(&self, urgent: bool, fill: impl FnOnce(&mut Vec<u8>)) {
        if urgent || !self.flusher.load(Ordering::Acquire) {
            return self.write_now(fill);
        }
        let key = self as *const Output as usize;
        let mut fill = Some(fill);
        let buffered = SHARDS.try_with(|shards| {
            if !shards.borrow().iter().any(|(k, _)| *k == key) {
                let shard = Arc::new(Shard::default());
                lock(&self.shards).push(Arc::clone(&shard));
                shards.borrow_mut().push((key, shard));
            }
            let shards = shards.borrow();
            let (_, shard) = shards.iter().find(|(k, _)| *k == key)?;
            let mut buf = lock(&shard.buf);
            // Taken under the lock: a batch holds every buffer's lock at once, so a line
            // left for the next batch is later than every line of this one.
            let at = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
            if let Some(fill) = fill.take() {
                fill(&mut buf.bytes);
            }
            buf.bytes.push(b'\n');
            let end = buf.bytes.len();
            buf.ends.push((at, end));
            Some(end >= MAX_BUFFERED)
        });
        match buffered {
            Ok(Some(true)) => self.flush(),
            Ok(Some(false)) => {
                if !self.armed.load(Ordering::Relaxed) && !self.armed.swap(true, Ordering::AcqRel) {
                    // Under `sleeper`: the flusher is either before its check of `armed`
                    // or waiting, never between the two.
                    let _sleeper = lock(&self.sleeper);
                    self.wake.notify_one();
                }
            }
            // A thread being torn down has no buffer left: its line is written at once.
            _ => {
                if let Some(fill) = fill.take() {
                    self.write_now(fill);
                }
            }
        }
    }

    /// Writes every buffered line, then the line `fill` makes, in one write.
    fn write_now(&self, fill: impl FnOnce(&mut Vec<u8>)) {
        let mut sink = lock(&self.sink);
        self.write_batch(&mut sink, |batch| {
            fill(batch);
            batch.push(b'\n');
        });
    }

    /// Writes every buffered line now.
    pub fn flush(&self) {
        let mut sink = lock(&self.sink);
        self.write_batch(&mut sink, |_| ());
    }

    /// Writes every thread's waiting lines merged in time order (each buffer taken at the
    /// same instant, its spare swapped in), then what `last` appends to the sink's own
    /// buffer: one write.
    fn write_batch(&self, sink: &mut Sink, last: impl FnOnce(&mut Vec<u8>)) {
        // Disarmed before the buffers are taken: a line buffered after this either is
        // taken now or arms the flusher again, never neither.
        self.armed.store(false, Ordering::SeqCst);
        let Sink { out, merged } = sink;
        let mut registry = lock(&self.shards);
        {
            let mut bufs: Vec<MutexGuard<'_, Lines>> =
                registry.iter().map(|s| lock(&s.buf)).collect();
            let mut spares: Vec<MutexGuard<'_, Lines>> =
                registry.iter().map(|s| lock(&s.spare)).collect();
            for (buf, spare) in bufs.iter_mut().zip(spares.iter_mut()) {
                std::mem::swap(&mut **buf, &mut **spare);
            }
            // The threads may go on logging.
            drop(bufs);
            spares.retain(|l| !l.ends.is_empty());
            merge(&spares, merged);
            for spare in spares.iter_mut() {
                spare.recycle();
            }
        }
        // Only the registry holds the buffer of a thread that ended: drop it.
        registry.retain(|shard| Arc::strong_count(shard) > 1);
        drop(registry);
        last(merged);
        if !merged.is_empty() {
            // Nowhere to report a failing log output; the lines are dropped.
            let _ = out.write_all(merged);
            let _ = out.flush();
        }
        recycle(merged);
    }

    /// Starts the flusher thread (once; later calls do nothing). Lines are buffered from
    /// then on. Needs `&'static self`: the output lives as long as the process.
    pub fn start_flusher(&'static self) {
        if self.flusher.swap(true, Ordering::AcqRel) {
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("log-flusher".into())
            .spawn(move || loop {
                {
                    let sleeper = lock(&self.sleeper);
                    let _sleeper = self
                        .wake
                        .wait_while(sleeper, |()| !self.armed.load(Ordering::Acquire))
                        .unwrap_or_else(PoisonError::into_inner);
                }
                std::thread::sleep(FLUSH_DELAY);
                self.flush();
            });
        if spawned.is_err() {
            // No thread: keep writing every line at once.
            self.flusher.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A sink recording each write call.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// An output to `rec` whose flusher runs (lines that may wait are buffered).
    fn buffered(rec: &Recorder) -> &'static Output {
        let out = output_with(rec);
        out.start_flusher();
        out
    }

    fn output_with(rec: &Recorder) -> &'static Output {
        let out: &'static Output = Box::leak(Box::new(Output::stderr()));
        out.set_sink(Box::new(rec.clone()));
        out
    }

    #[test]
    fn without_flusher_every_line_is_written_at_once() {
        let rec = Recorder::default();
        let out = output_with(&rec);
        out.line(false, |b| b.extend_from_slice(b"one"));
        out.line(false, |b| b.extend_from_slice(b"two"));
        assert_eq!(
            *rec.0.lock().unwrap(),
            vec![b"one\n".to_vec(), b"two\n".to_vec()]
        );
    }

    #[test]
    fn lines_are_batched_then_written_within_the_delay() {
        let rec = Recorder::default();
        let out = buffered(&rec);
        for i in 0..100 {
            out.line(false, |b| {
                b.extend_from_slice(format!("line {i}").as_bytes())
            });
        }
        assert!(rec.0.lock().unwrap().is_empty(), "written before the delay");
        std::thread::sleep(FLUSH_DELAY * 10);
        let writes = rec.0.lock().unwrap().clone();
        assert!(writes.len() <= 2, "{} writes for 100 lines", writes.len());
        let all: Vec<u8> = writes.concat();
        let expected: String = (0..100).map(|i| format!("line {i}\n")).collect();
        assert_eq!(String::from_utf8(all).unwrap(), expected);
    }

    #[test]
    fn urgent_lines_and_flush_write_everything_in_order() {
        let rec = Recorder::default();
        let out = buffered(&rec);
        out.line(false, |b| b.extend_from_slice(b"info"));
        out.line(true, |b| b.extend_from_slice(b"warning"));
        assert_eq!(
            *rec.0.lock().unwrap(),
            vec![b"info\nwarning\n".to_vec()],
            "one write"
        );
        out.line(false, |b| b.extend_from_slice(b"later"));
        out.flush();
        assert_eq!(
            rec.0.lock().unwrap().concat(),
            b"info\nwarning\nlater\n".to_vec()
        );
    }

    #[test]
    fn every_threads_lines_are_written_each_in_order_and_ended_threads_let_go() {
        let rec = Recorder::default();
        let out = buffered(&rec);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    for n in 0..50 {
                        out.line(false, |b| {
                            b.extend_from_slice(format!("t{t} {n}").as_bytes())
                        });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        std::thread::sleep(FLUSH_DELAY * 10);
        let text = String::from_utf8(rec.0.lock().unwrap().concat()).unwrap();
        for t in 0..4 {
            let mine: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with(&format!("t{t} ")))
                .collect();
            let expected: Vec<String> = (0..50).map(|n| format!("t{t} {n}")).collect();
            assert_eq!(mine, expected, "thread {t}'s lines, in order");
        }
        assert_eq!(text.lines().count(), 200);
        // The threads have ended (joined): the next write lets their buffers go.
        out.flush();
        assert!(
            lock(&out.shards).is_empty(),
            "the buffers of ended threads are dropped once written"
        );
    }

    #[test]
    fn the_lines_of_several_threads_are_merged_in_time_order() {
        let rec = Recorder::default();
        let out = buffered(&rec);
        let (to_other, other_rx) = std::sync::mpsc::channel::<u32>();
        let (to_main, main_rx) = std::sync::mpsc::channel::<u32>();
        let other = std::thread::spawn(move || {
            while let Ok(n) = other_rx.recv() {
                out.line(false, |b| {
                    b.extend_from_slice(format!("other {n}").as_bytes())
                });
                let _ = to_main.send(n);
            }
        });
        for n in 0..20 {
            out.line(false, |b| {
                b.extend_from_slice(format!("main {n}").as_bytes())
            });
            to_other.send(n).unwrap();
            main_rx.recv().unwrap();
        }
        drop(to_other);
        other.join().unwrap();
        out.flush();
        let text = String::from_utf8(rec.0.lock().unwrap().concat()).unwrap();
        let expected: String = (0..20).map(|n| format!("main {n}\nother {n}\n")).collect();
        assert_eq!(text, expected);
    }

    #[test]
    fn an_urgent_line_follows_the_lines_other_threads_buffered_before_it() {
        let rec = Recorder::default();
        let out = buffered(&rec);
        std::thread::spawn(move || out.line(false, |b| b.extend_from_slice(b"access")))
            .join()
            .unwrap();
        out.line(true, |b| b.extend_from_slice(b"warning"));
        // The other thread's buffer first (whether this write or the flusher wrote it).
        assert_eq!(
            rec.0.lock().unwrap().concat(),
            b"access\nwarning\n".to_vec()
        );
    }

    #[test]
    fn a_threads_two_buffers_serve_in_turn_without_new_allocations() {
        let rec = Recorder::default();
        let out = buffered(&rec);
        let shard = || Arc::clone(&lock(&out.shards)[0]);
        let mut seen = Vec::new();
        for round in 0..4 {
            out.line(false, |b| {
                b.extend_from_slice(format!("round {round}").as_bytes())
            });
            seen.push(lock(&shard().buf).bytes.as_ptr());
            out.flush();
        }
        assert_eq!(rec.0.lock().unwrap().len(), 4);
        assert_ne!(seen[0], seen[1], "the spare takes the next batch");
        assert_eq!(seen[0], seen[2], "the first buffer is back, not a new one");
        assert_eq!(seen[1], seen[3]);
    }

    #[test]
    fn a_full_buffer_is_written_by_the_logging_thread() {
        let rec = Recorder::default();
        let out = buffered(&rec);
        let chunk = vec![b'x'; 1024];
        for _ in 0..(MAX_BUFFERED / 1024 + 1) {
            out.line(false, |b| b.extend_from_slice(&chunk));
        }
        assert_eq!(rec.0.lock().unwrap().len(), 1);
    }
}
