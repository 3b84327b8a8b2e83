//! Helpers for the tests of request bodies: a chunked upload generated on the fly (no body
//! held whole in the test) that tells how much of it was sent before the answer, a body
//! declared and never sent, a body that drips, and what `/proc` tells about the server
//! (memory, open files and mappings under a folder).

use crate::{HttpConn, Response};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A chunked body generated as it is sent: `prefix`, then `fill` bytes up to `total`, in
/// chunks of `chunk` bytes from one small buffer, each after `pace` when given.
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    /// The first bytes of the body.
    pub prefix: &'a [u8],
    /// The byte that fills the rest.
    pub fill: u8,
    /// The body's size.
    pub total: u64,
    /// The size of each chunk.
    pub chunk: usize,
    /// A wait before each chunk.
    pub pace: Option<Duration>,
}

impl Upload<'_> {
    /// `total` bytes of `fill`, in chunks of 64 KiB, as fast as they go.
    pub fn filled(fill: u8, total: u64) -> Upload<'static> {
        Upload {
            prefix: b"",
            fill,
            total,
            chunk: 64 * 1024,
            pace: None,
        }
    }
}

/// How an upload went: how much of it the client could send, and the answer.
#[derive(Debug)]
pub struct Uploaded {
    /// The body bytes written to the socket (accepted by the kernel: the server read at
    /// most that much, and at least that less the socket buffers).
    pub sent: u64,
    /// Whether the whole body (and its last chunk) was written.
    pub finished: bool,
    /// The answer; an error when there was none to read (a server that answers early and
    /// closes while the client is still writing makes its kernel reset the connection,
    /// which may drop the answer: that is still an early refusal).
    pub answer: std::io::Result<Response>,
}

impl Uploaded {
    /// Whether the server refused the body before the client could send it all: an
    /// answer other than 200 while the client was still writing, or the connection cut
    /// under it.
    pub fn refused_early(&self) -> bool {
        !self.finished && self.answer.as_ref().map_or(true, |r| r.status != 200)
    }
}

/// Posts `upload` (chunked) to `path`, with `headers` added to `Host`,
/// `Transfer-Encoding: chunked` and `Connection: close`.
///
/// The server may answer before the body is sent (413, 503...): a failed write stops the
/// upload and the answer is read all the same.
pub fn post_chunked(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    upload: &Upload<'_>,
) -> std::io::Result<Response> {
    upload_chunked(port, path, headers, upload).answer
}

/// [`post_chunked`], telling how much of the body was sent.
pub fn upload_chunked(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    upload: &Upload<'_>,
) -> Uploaded {
    let Upload {
        prefix,
        fill,
        total,
        chunk,
        pace,
    } = *upload;
    let mut conn = match HttpConn::connect(port) {
        Ok(c) => c,
        Err(e) => {
            return Uploaded {
                sent: 0,
                finished: false,
                answer: Err(e),
            }
        }
    };
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let filled = vec![fill; chunk];
    let mut sent = 0u64;
    let written = (|| -> std::io::Result<()> {
        conn.send(head.as_bytes())?;
        let mut prefix = prefix;
        let mut frame = Vec::with_capacity(chunk + 32);
        while sent < total {
            if let Some(p) = pace {
                std::thread::sleep(p);
            }
            let n = (chunk as u64).min(total - sent) as usize;
            frame.clear();
            frame.extend_from_slice(format!("{n:x}\r\n").as_bytes());
            let from_prefix = prefix.len().min(n);
            frame.extend_from_slice(&prefix[..from_prefix]);
            prefix = &prefix[from_prefix..];
            frame.extend_from_slice(&filled[..n - from_prefix]);
            frame.extend_from_slice(b"\r\n");
            conn.send(&frame)?;
            sent += n as u64;
        }
        conn.send(b"0\r\n\r\n")?;
        conn.stream().flush()
    })();
    let answer = match conn.read_response(false) {
        Ok(resp) => Ok(resp),
        // Neither sent nor answered: the write's error tells more.
        Err(read) => Err(written
            .as_ref()
            .err()
            .map_or(read, |w| std::io::Error::new(w.kind(), w.to_string()))),
    };
    Uploaded {
        sent,
        finished: written.is_ok(),
        answer,
    }
}

/// Sends only the head of a `POST` declaring a body of `length` bytes (not one of them
/// sent) and reads the answer, waiting at most `wait`: a body refused from its
/// `Content-Length` alone is answered at once.
pub fn declare_only(
    port: u16,
    path: &str,
    length: u64,
    wait: Duration,
) -> std::io::Result<Response> {
    let mut conn = HttpConn::connect(port)?;
    conn.stream().set_read_timeout(Some(wait))?;
    conn.send(
        format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n"
        )
        .as_bytes(),
    )?;
    conn.read_response(false)
}

/// A body that drips: the head of a `POST` declaring `length` bytes, then one byte, then
/// one byte every `pace` until the server answers (or `most` has passed). Gives the answer
/// and how long after the head it came.
pub fn drip(
    port: u16,
    path: &str,
    length: u64,
    pace: Duration,
    most: Duration,
) -> std::thread::JoinHandle<(std::io::Result<Response>, Duration)> {
    let path = path.to_owned();
    std::thread::spawn(move || {
        let mut conn = match HttpConn::connect(port) {
            Ok(c) => c,
            Err(e) => return (Err(e), Duration::ZERO),
        };
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\nx"
        );
        if let Err(e) = conn.send(head.as_bytes()) {
            return (Err(e), Duration::ZERO);
        }
        let started = Instant::now();
        let answered = Arc::new(AtomicBool::new(false));
        let writer = {
            let answered = Arc::clone(&answered);
            let mut stream = match conn.stream().try_clone() {
                Ok(s) => s,
                Err(e) => return (Err(e), Duration::ZERO),
            };
            std::thread::spawn(move || {
                let mut dripped = 1u64;
                while dripped < length
                    && !answered.load(Ordering::Acquire)
                    && started.elapsed() < most
                {
                    std::thread::sleep(pace);
                    if stream.write_all(b"x").is_err() {
                        break;
                    }
                    dripped += 1;
                }
            })
        };
        let _ = conn.stream().set_read_timeout(Some(most));
        let answer = conn.read_response(false);
        let took = started.elapsed();
        answered.store(true, Ordering::Release);
        let _ = writer.join();
        (answer, took)
    })
}

/// A field of `/proc/<pid>/status` in KiB (`"VmRSS"`, `"VmHWM"`...).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The files the process `pid` has open under `dir` (deleted ones too: their link names
/// the folder they were in).
pub fn open_files_under(pid: u32, dir: &Path) -> Vec<PathBuf> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter(|target| target.starts_with(dir))
        .collect()
}

/// The lines of `/proc/<pid>/maps` that map a file under `dir`.
pub fn mappings_under(pid: u32, dir: &Path) -> Vec<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let dir = dir.display().to_string();
    maps.lines()
        .filter(|l| l.contains(&dir))
        .map(str::to_owned)
        .collect()
}

/// FNV-1a 64 of `data`, as `test_http`'s `/test_http/body_digest` writes it.
pub fn fnv_hex(data: &[u8]) -> String {
    let mut fnv: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        fnv = (fnv ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{fnv:016x}")
}
