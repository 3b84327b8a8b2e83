//! [`Output`]: where log lines go (stderr or `--logfile`), buffered in memory and written
//! in batches by a flusher thread.
//!
//! Writing every line with its own `write(2)` cost more than a fifth of the CPU of a cheap
//! request (one access-log line each; see BENCHMARKS.md). Lines that may wait (the
//! access log's, see `netsvc::log_batched`) are appended to a buffer instead; the first
//! line into an empty buffer wakes the flusher thread, which waits
//! [`FLUSH_DELAY`] and writes everything gathered meanwhile in one call. So an idle server
//! never wakes up, a busy one writes a few dozen times a second, and a line reaches the
//! file at most [`FLUSH_DELAY`] after it was logged. Every other line (start-up, warnings,
//! addons' records), a buffer past [`MAX_BUFFERED`], and [`Output::flush`] (called before
//! the process exits or re-executes itself) write at once, in order with everything
//! before them.
//!
//! A process killed with SIGKILL loses at most the last [`FLUSH_DELAY`] of access-log
//! lines.

use std::io::Write;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How long a line may wait in the buffer.
pub const FLUSH_DELAY: Duration = Duration::from_millis(20);

/// Past this many bytes buffered, the thread logging writes the buffer itself.
pub const MAX_BUFFERED: usize = 64 * 1024;

/// The log output: a sink and the lines not yet written to it.
pub struct Output {
    /// Held while writing to the sink; taken before `pending` (never the other way round),
    /// so that batches reach the sink in the order their lines were logged.
    sink: Mutex<Box<dyn Write + Send>>,
    pending: Mutex<Pending>,
    wake: Condvar,
}

struct Pending {
    buf: Vec<u8>,
    /// The buffer of the last batch written, emptied, to take the next batch: two buffers
    /// serve in turn instead of one allocated per batch (see [`Output::write_pending`]).
    spare: Vec<u8>,
    /// Whether the flusher thread runs (until it does, every line is written at once).
    flusher: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Output {
    /// An output writing to stderr, unbuffered until [`Output::start_flusher`].
    pub fn stderr() -> Output {
        Output {
            sink: Mutex::new(Box::new(std::io::stderr())),
            pending: Mutex::new(Pending {
                buf: Vec::new(),
                spare: Vec::new(),
                flusher: false,
            }),
            wake: Condvar::new(),
        }
    }

    /// Writes what is buffered, then sends the following lines to `sink`.
    pub fn set_sink(&self, sink: Box<dyn Write + Send>) {
        let mut current = lock(&self.sink);
        self.write_pending(&mut current);
        *current = sink;
    }

    /// Appends one line (the newline is added) made by `fill`; `urgent` lines, and every
    /// line while no flusher thread runs, are written before this returns.
    pub fn line(&self, urgent: bool, fill: impl FnOnce(&mut Vec<u8>)) {
        let mut pending = lock(&self.pending);
        let was_empty = pending.buf.is_empty();
        fill(&mut pending.buf);
        pending.buf.push(b'\n');
        if urgent || !pending.flusher || pending.buf.len() >= MAX_BUFFERED {
            drop(pending);
            self.flush();
        } else if was_empty {
            drop(pending);
            self.wake.notify_one();
        }
    }

    /// Writes every buffered line now.
    pub fn flush(&self) {
        let mut sink = lock(&self.sink);
        self.write_pending(&mut sink);
    }

    fn write_pending(&self, sink: &mut Box<dyn Write + Send>) {
        let mut batch = {
            let mut pending = lock(&self.pending);
            let next = std::mem::take(&mut pending.spare);
            std::mem::replace(&mut pending.buf, next)
        };
        if !batch.is_empty() {
            // Nowhere to report a failing log output; the lines are dropped.
            let _ = sink.write_all(&batch);
            let _ = sink.flush();
        }
        // The emptied buffer takes the batch after next, with the capacity it grew to. A
        // buffer per batch (as before) allocated and freed a 64-128 KiB block a few hundred
        // times a second under load, each time elsewhere in glibc's arenas: the pages touched
        // between two `malloc_trim`s kept spreading, and RSS under load grew after the
        // warm-up (BENCHMARKS.md, item 6). Two long-lived buffers stay where they are (at
        // most 2 x 128 KiB, kept when idle). One grown further by an outsized line is freed.
        if batch.capacity() <= 2 * MAX_BUFFERED {
            batch.clear();
            let mut pending = lock(&self.pending);
            if pending.spare.capacity() == 0 {
                pending.spare = batch;
            }
        }
    }

    /// Starts the flusher thread (once; later calls do nothing). Lines are buffered from
    /// then on. Needs `&'static self`: the output lives as long as the process.
    pub fn start_flusher(&'static self) {
        {
            let mut pending = lock(&self.pending);
            if pending.flusher {
                return;
            }
            pending.flusher = true;
        }
        let spawned = std::thread::Builder::new()
            .name("log-flusher".into())
            .spawn(move || loop {
                {
                    let pending = lock(&self.pending);
                    let _pending = self
                        .wake
                        .wait_while(pending, |p| p.buf.is_empty())
                        .unwrap_or_else(PoisonError::into_inner);
                }
                std::thread::sleep(FLUSH_DELAY);
                self.flush();
            });
        if spawned.is_err() {
            // No thread: keep writing every line at once.
            lock(&self.pending).flusher = false;
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
        let out = output_with(&rec);
        out.start_flusher();
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
        let out = output_with(&rec);
        out.start_flusher();
        out.line(false, |b| b.extend_from_slice(b"info"));
        out.line(true, |b| b.extend_from_slice(b"warning"));
        assert_eq!(*rec.0.lock().unwrap(), vec![b"info\nwarning\n".to_vec()]);
        out.line(false, |b| b.extend_from_slice(b"later"));
        out.flush();
        assert_eq!(
            rec.0.lock().unwrap().concat(),
            b"info\nwarning\nlater\n".to_vec()
        );
    }

    #[test]
    fn a_full_buffer_is_written_by_the_logging_thread() {
        let rec = Recorder::default();
        let out = output_with(&rec);
        out.start_flusher();
        let chunk = vec![b'x'; 1024];
        for _ in 0..(MAX_BUFFERED / 1024 + 1) {
            out.line(false, |b| b.extend_from_slice(&chunk));
        }
        assert_eq!(rec.0.lock().unwrap().len(), 1);
    }
}
