//! Item 16 (issue 17): a 1 GiB download, streamed by the host, against a bare hyper server
//! streaming the same file.
//!
//! - **The file**: 1 GiB of pseudo-random bytes (xorshift, real bytes, not a sparse file:
//!   holes would be read as the zero page, which no real file is), written once per run
//!   into the staged `test_http`'s `static/` folder and `fsync`ed before the first
//!   transfer (so no write-back competes with the transfers); it then stays in the page
//!   cache, 1 GiB fitting in memory: the item measures the serving path, not the disk. It
//!   is removed at the end of the item.
//! - **Measures**, per server and route, each transfer a new connection (`Connection:
//!   close`) read to its last byte by the suite's client as fast as it can over loopback
//!   (a Rust reader: blocking `read`s of 256 KiB into one buffer, the first 4 KiB checked
//!   against what was served): MiB per second; the server's CPU per MiB (`utime + stime`
//!   of its process from `/proc/PID/stat`, all threads, from before the request to the
//!   last byte, divided by 1,024); the server's peak `VmRSS` growth during the transfer
//!   (sampled every 5 ms, against the reading before the request). Rounds: 3 (1 with
//!   `--quick`), the servers interleaved in each; medians of MiB/s and CPU, the largest
//!   RSS growth. Each route is warmed first by one transfer cut after 16 MiB.
//! - **Host routes** (`inphms-host --load base,web,test_http`), each a row: the `File`
//!   body kind (`/test_http/send_file?path=`, the file sent from disk by the host's
//!   `FileBody`); the static file path (`/test_http/static/...`, the same `FileBody` after
//!   the static lookup); a pulled stream (`/test_http/stream_bytes/1024`: the addon's
//!   producer asked for each next 1 MiB chunk across the ABI on the blocking pool, its
//!   bytes made in memory, not read from the file: the baseline's CPU is a file's).
//! - **Baseline**: `bench-baseline --file PATH`, bare hyper streaming the file as the
//!   host's `FileBody` does (the host's chunk size, `pread` on the blocking pool).
//! - **Targets** (issue 17): the host's CPU per MiB ≤ 1.5x the baseline's, and its RSS
//!   growth < 32 MiB, for each route.

use crate::model::{fmt_ms, fmt_ratio, verdict, Options, Row};
use crate::procfs;
use crate::servers::{Env, Kind, Server};
use crate::stats::{max, median};
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The download's size.
const SIZE: u64 = 1 << 30;
/// Its name in `test_http`'s `static/` folder.
const FILE_NAME: &str = "bench-download.bin";
/// The client's read size.
const READ_SIZE: usize = 256 * 1024;
/// The bytes of each answer checked against what was served.
const CHECKED: usize = 4096;
/// The warm-up transfer's cut.
const WARM_BYTES: u64 = 16 << 20;

/// Writes `SIZE` pseudo-random bytes to `path` and syncs them to disk; the first
/// [`CHECKED`] bytes.
fn write_file(path: &Path) -> Result<Vec<u8>, String> {
    let mut file =
        File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut chunk = vec![0u8; 1 << 20];
    let mut head = Vec::new();
    for _ in 0..(SIZE >> 20) {
        for word in chunk.chunks_exact_mut(8) {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        if head.is_empty() {
            head = chunk[..CHECKED].to_vec();
        }
        file.write_all(&chunk)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    file.sync_all()
        .map_err(|e| format!("cannot sync {}: {e}", path.display()))?;
    Ok(head)
}

/// The peak `VmRSS` of a process while a transfer runs, sampled every 5 ms by a thread.
struct PeakRss {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl PeakRss {
    fn start(pid: u32) -> PeakRss {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(procfs::rss_kib(pid).unwrap_or(0)));
        let thread = {
            let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    if let Some(kib) = procfs::rss_kib(pid) {
                        peak.fetch_max(kib, Ordering::AcqRel);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        PeakRss { stop, peak, thread }
    }

    /// Stops sampling (one last reading first); the peak, in KiB.
    fn stop(self, pid: u32) -> u64 {
        if let Some(kib) = procfs::rss_kib(pid) {
            self.peak.fetch_max(kib, Ordering::AcqRel);
        }
        self.stop.store(true, Ordering::Release);
        let _ = self.thread.join();
        self.peak.load(Ordering::Acquire)
    }
}

/// One transfer's figures.
#[derive(Debug, Clone, Copy)]
struct Transfer {
    mib_per_s: f64,
    /// Server CPU per MiB, in microseconds.
    cpu_us_per_mib: f64,
    rss_growth_kib: i64,
}

/// Reads the answer's head from `s` (status 200 and `Content-Length: SIZE` required);
/// the body bytes read with it.
fn read_head(s: &mut TcpStream, buf: &mut [u8]) -> Result<Vec<u8>, String> {
    let mut got = Vec::new();
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let status = head.split_whitespace().nth(1).unwrap_or("");
            if status != "200" {
                return Err(format!("answered {status}: {head:?}"));
            }
            let length: Option<u64> = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok());
            if length != Some(SIZE) {
                return Err(format!("Content-Length {length:?}, expected {SIZE}"));
            }
            return Ok(got[end + 4..].to_vec());
        }
        if got.len() > 64 * 1024 {
            return Err("a head larger than 64 KiB".into());
        }
        let n = s.read(buf).map_err(|e| format!("read the head: {e}"))?;
        if n == 0 {
            return Err("the server closed before its head".into());
        }
        got.extend_from_slice(&buf[..n]);
    }
}

/// Downloads `path` from `server` (its first bytes must be `head`), reading `upto` bytes
/// of it (all: `SIZE`), and measures the transfer.
fn download(server: &Server, path: &str, head: &[u8], upto: u64) -> Result<Transfer, String> {
    let pid = server.pid;
    let clk = procfs::clk_tck();
    let mut s =
        TcpStream::connect(("127.0.0.1", server.port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| format!("set_read_timeout: {e}"))?;
    let mut buf = vec![0u8; READ_SIZE];
    let rss_before = procfs::rss_kib(pid).unwrap_or(0);
    let sampler = PeakRss::start(pid);
    let cpu_before = procfs::Counters::read(pid).ticks;
    let started = Instant::now();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut first = read_head(&mut s, &mut buf)?;
    let mut read = first.len() as u64;
    while first.len() < head.len() {
        let n = s.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!("the body ended after {} bytes", first.len()));
        }
        first.extend_from_slice(&buf[..n]);
        read += n as u64;
    }
    if first[..head.len()] != *head {
        return Err("the body's first bytes are not those served".into());
    }
    while read < upto {
        let n = s
            .read(&mut buf)
            .map_err(|e| format!("read at byte {read}: {e}"))?;
        if n == 0 {
            return Err(format!("the body ended after {read} of {SIZE} bytes"));
        }
        read += n as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu_after = procfs::Counters::read(pid).ticks;
    let peak = sampler.stop(pid);
    let mib = read as f64 / (1 << 20) as f64;
    Ok(Transfer {
        mib_per_s: mib / secs,
        cpu_us_per_mib: cpu_after.saturating_sub(cpu_before) as f64 / clk * 1e6 / mib,
        rss_growth_kib: peak as i64 - rss_before as i64,
    })
}

/// What one server and route showed over the rounds.
struct Route {
    name: String,
    path: String,
    head: Vec<u8>,
    transfers: Vec<Transfer>,
}

impl Route {
    fn mib_per_s(&self) -> f64 {
        median(
            &self
                .transfers
                .iter()
                .map(|t| t.mib_per_s)
                .collect::<Vec<_>>(),
        )
    }
    fn cpu(&self) -> f64 {
        median(
            &self
                .transfers
                .iter()
                .map(|t| t.cpu_us_per_mib)
                .collect::<Vec<_>>(),
        )
    }
    fn rss_growth_mib(&self) -> f64 {
        max(&self
            .transfers
            .iter()
            .map(|t| t.rss_growth_kib as f64)
            .collect::<Vec<_>>())
            / 1024.0
    }
}

/// Item 16: a 1 GiB download (see the module's doc).
pub fn item16_download(env: &Env, opts: &Options) -> Result<Vec<Row>, String> {
    let file: PathBuf = env.addons.join("test_http").join("static").join(FILE_NAME);
    eprintln!("bench: writing the 1 GiB file {}", file.display());
    let head = write_file(&file)?;
    let result = measure(env, opts, &file, &head);
    let _ = std::fs::remove_file(&file);
    result
}

fn measure(env: &Env, opts: &Options, file: &Path, head: &[u8]) -> Result<Vec<Row>, String> {
    let base_dir = env.scratch("download-baseline")?;
    let host_dir = env.scratch("download-host")?;
    let file_arg = file.display().to_string();
    let baseline = Server::start_with(
        env,
        &Kind::BASELINE,
        &base_dir,
        &["--file".to_owned(), file_arg.clone()],
    )?;
    let host = Server::start(
        env,
        &Kind::Host {
            load: "base,web,test_http",
            access_log: true,
        },
        &host_dir,
    )?;
    let route = |name: &str, path: String, head: &[u8]| Route {
        name: name.to_owned(),
        path,
        head: head.to_vec(),
        transfers: Vec::new(),
    };
    let mut base = route("bare hyper, the file", "/".into(), head);
    let mut routes = [
        route(
            "the `File` body kind (`/test_http/send_file?path=`)",
            format!("/test_http/send_file?path={file_arg}"),
            head,
        ),
        route(
            "the static file path (`/test_http/static/…`)",
            format!("/test_http/static/{FILE_NAME}"),
            head,
        ),
        route(
            "a pulled stream (`/test_http/stream_bytes/1024`, 1 MiB chunks made by the addon)",
            "/test_http/stream_bytes/1024".into(),
            &[b'z'; CHECKED],
        ),
    ];
    for r in std::iter::once(&base).chain(routes.iter()) {
        let server = if r.path == "/" { &baseline } else { &host };
        download(server, &r.path, &r.head, WARM_BYTES)
            .map_err(|e| format!("warming {}: {e}", r.name))?;
    }
    for round in 0..opts.rounds {
        let t = download(&baseline, "/", head, SIZE)
            .map_err(|e| format!("round {}: the baseline: {e}", round + 1))?;
        base.transfers.push(t);
        for r in routes.iter_mut() {
            let t = download(&host, &r.path, &r.head, SIZE).map_err(|e| {
                format!("round {}: {}: {e}\n{}", round + 1, r.name, host.log_tail())
            })?;
            r.transfers.push(t);
        }
        eprintln!(
            "bench: 1 GiB download round {}: MiB/s baseline {:.0}, host {}",
            round + 1,
            base.transfers[round].mib_per_s,
            routes
                .iter()
                .map(|r| format!("{:.0}", r.transfers[round].mib_per_s))
                .collect::<Vec<_>>()
                .join(" / ")
        );
    }
    baseline.stop();
    host.stop();
    let _ = std::fs::remove_dir_all(&base_dir);
    let _ = std::fs::remove_dir_all(&host_dir);
    let rounds = opts.rounds;
    let mut rows = Vec::new();
    for r in &routes {
        let cpu_ratio = r.cpu() / base.cpu();
        rows.push(Row {
            item: "16".into(),
            measure: format!(
                "1 GiB download, MiB/s: {} (median of {rounds}; a new connection each, read as fast as the client can over loopback)",
                r.name
            ),
            baseline: format!("{:.0}", base.mib_per_s()),
            host: format!("{:.0}", r.mib_per_s()),
            peer: "—".into(),
            ratio: fmt_ratio(r.mib_per_s() / base.mib_per_s()),
            target: String::new(),
            met: String::new(),
        });
        rows.push(Row {
            item: "16".into(),
            measure: format!(
                "1 GiB download, server CPU per MiB: {} (utime + stime over the transfer / 1,024; median of {rounds})",
                r.name
            ),
            baseline: fmt_ms(base.cpu()),
            host: fmt_ms(r.cpu()),
            peer: "—".into(),
            ratio: fmt_ratio(cpu_ratio),
            target: "≤ 1.5x the baseline".into(),
            met: verdict(cpu_ratio <= 1.5),
        });
        rows.push(Row {
            item: "16".into(),
            measure: format!(
                "1 GiB download, server VmRSS growth: {} (MiB; the peak during the transfer, sampled every 5 ms; the largest of {rounds})",
                r.name
            ),
            baseline: format!("{:.1}", base.rss_growth_mib()),
            host: format!("{:.1}", r.rss_growth_mib()),
            peer: "—".into(),
            ratio: "—".into(),
            target: "< 32 MiB".into(),
            met: verdict(r.rss_growth_mib() < 32.0),
        });
    }
    Ok(rows)
}
