//! Helpers for the tests of request bodies: a chunked upload generated on the fly (no body
//! held whole in the test), and what `/proc` tells about the server (memory, open files and
//! mappings under a folder).

use crate::{HttpConn, Response};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    let Upload {
        prefix,
        fill,
        total,
        chunk,
        pace,
    } = *upload;
    let mut conn = HttpConn::connect(port)?;
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.send(head.as_bytes())?;
    let filled = vec![fill; chunk];
    let sent = (|| -> std::io::Result<()> {
        let mut left = total;
        let mut prefix = prefix;
        let mut frame = Vec::with_capacity(chunk + 32);
        while left > 0 {
            if let Some(p) = pace {
                std::thread::sleep(p);
            }
            let n = (chunk as u64).min(left) as usize;
            frame.clear();
            frame.extend_from_slice(format!("{n:x}\r\n").as_bytes());
            let from_prefix = prefix.len().min(n);
            frame.extend_from_slice(&prefix[..from_prefix]);
            prefix = &prefix[from_prefix..];
            frame.extend_from_slice(&filled[..n - from_prefix]);
            frame.extend_from_slice(b"\r\n");
            conn.send(&frame)?;
            left -= n as u64;
        }
        conn.send(b"0\r\n\r\n")?;
        conn.stream().flush()
    })();
    match conn.read_response(false) {
        Ok(resp) => Ok(resp),
        // Neither sent nor answered: the write's error tells more.
        Err(read) => Err(sent.err().unwrap_or(read)),
    }
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
