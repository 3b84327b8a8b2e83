//! Item 11 (issue 23): idle keep-alive connections. What each open, idle HTTP connection
//! costs the server in memory, and whether a new client is still answered as fast while
//! they are open.
//!
//! - **Measures**, for each server in turn (the baseline, the host, nginx): the latency of
//!   500 requests, each on a new connection (`Connection: close`), one at a time (p99);
//!   then N connections (10,000; fewer when the open-file limit does not allow them, the
//!   row says how many) opened one after the other, each sending one `GET` and reading its
//!   answer, then kept open and idle; 2.5 s later (past the host's 2 s heap trim) the
//!   growth of the server's `RssAnon` (heap, stacks; nginx's master and workers added up)
//!   divided by N, and the threads; then the 500 new-connection requests again, with the N
//!   connections open; then every idle connection must still answer a request.
//! - **Baseline**: `bench-baseline` (hyper, a task per connection, as the host); **peer**:
//!   nginx (2 workers, access log on).
//! - **Target**: the host's growth ≤ 2 KiB per idle connection; a new client's p99 with
//!   the N connections open ≤ its p99 before plus 1 ms (the usual p99, with the
//!   granularity of a loaded 2-core machine).

use crate::model::{fmt_ms, verdict, Options, Row};
use crate::procfs;
use crate::servers::{Env, Kind, Server};
use crate::stats::percentile;
use inphms_test_support::http;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Idle connections per server (when the open-file limit allows).
const CONNECTIONS: usize = 10_000;
/// Requests of each latency probe.
const PROBES: usize = 500;
/// Descriptors kept for everything else (the suite's files, pipes, the probes).
const SPARE_FDS: u64 = 256;

/// What one server showed.
struct Idle {
    growth_kib: i64,
    threads_before: u64,
    threads_after: u64,
    p99_before_us: f64,
    p99_during_us: f64,
}

impl Idle {
    fn per_connection(&self, n: usize) -> f64 {
        self.growth_kib as f64 / n as f64
    }
}

/// Raises the soft open-file limit to the hard one (the servers started afterwards inherit
/// it); returns the soft limit then. (Item 15 raises it the same way.)
pub(crate) fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit write to / read from the struct passed, owned here.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// Reads one HTTP/1.1 answer (headers and a `Content-Length` body) from `s`; its status.
fn read_answer(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<u16, String> {
    buf.clear();
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status: u16 = head
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("not an HTTP answer: {head:?}"))?;
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| format!("no Content-Length in {head:?}"))?;
            if buf.len() >= end + 4 + length {
                return Ok(status);
            }
        }
        if buf.len() > 64 * 1024 {
            return Err("an answer larger than 64 KiB".into());
        }
        let n = s.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Sends one keep-alive `GET path` on `s` and reads its answer (must be 200).
fn request(s: &mut TcpStream, path: &str, buf: &mut Vec<u8>) -> Result<(), String> {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    match read_answer(s, buf)? {
        200 => Ok(()),
        other => Err(format!("status {other}")),
    }
}

/// The p99 (µs) of [`PROBES`] requests on `path`, each on a new connection.
fn probe(server: &Server, path: &str) -> Result<f64, String> {
    let mut lat = Vec::with_capacity(PROBES);
    for _ in 0..PROBES {
        let t = Instant::now();
        let r = http::send(server.port, "GET", path, &[], b"", Duration::from_secs(5))
            .map_err(|e| format!("a new client's request: {e}"))?;
        if r.status != 200 {
            return Err(format!("a new client's request answered {}", r.status));
        }
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok(percentile(&lat, 99.0))
}

/// Opens `n` idle keep-alive connections to `kind` and measures ([`Idle`]).
fn idle_of(env: &Env, kind: &Kind, n: usize) -> Result<Idle, String> {
    let dir = env.scratch("idle-connections")?;
    let server = Server::start(env, kind, &dir)?;
    let path = kind.ready_path();
    let who = kind.describe();
    // Warm the paths (first-touch pages) before the readings.
    probe(&server, path)?;
    let p99_before_us = probe(&server, path)?;
    std::thread::sleep(Duration::from_millis(2500));
    let anon_before = procfs::family_rss_anon_kib(server.pid).unwrap_or(0);
    let threads_before = procfs::family_threads(server.pid).unwrap_or(0);
    let mut conns = Vec::with_capacity(n);
    let mut buf = Vec::with_capacity(1024);
    for i in 0..n {
        let mut s = TcpStream::connect(("127.0.0.1", server.port))
            .map_err(|e| format!("{who}: connection {i} of {n}: connect: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| format!("set_read_timeout: {e}"))?;
        request(&mut s, path, &mut buf)
            .map_err(|e| format!("{who}: connection {i} of {n}: {e}"))?;
        conns.push(s);
    }
    std::thread::sleep(Duration::from_millis(2500));
    let anon_after = procfs::family_rss_anon_kib(server.pid).unwrap_or(0);
    let threads_after = procfs::family_threads(server.pid).unwrap_or(0);
    let p99_during_us = probe(&server, path)?;
    // Every idle connection is still served (none was dropped to make room).
    for (i, s) in conns.iter_mut().enumerate() {
        request(s, path, &mut buf)
            .map_err(|e| format!("{who}: idle connection {i} of {n}, used again: {e}"))?;
    }
    drop(conns);
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Idle {
        growth_kib: anon_after as i64 - anon_before as i64,
        threads_before,
        threads_after,
        p99_before_us,
        p99_during_us,
    })
}

/// Item 11: idle keep-alive connections (see the module's doc).
pub fn item11_idle_connections(env: &Env, _opts: &Options) -> Result<Vec<Row>, String> {
    let limit = raise_nofile();
    let n = CONNECTIONS.min(limit.saturating_sub(SPARE_FDS) as usize);
    if n < 1000 {
        return Err(format!(
            "the open-file limit is {limit}: too few for 1,000 idle connections (raise `ulimit -Hn`)"
        ));
    }
    let b = idle_of(env, &Kind::BASELINE, n)?;
    let h = idle_of(env, &Kind::HOST, n)?;
    let x = match &env.nginx {
        Ok(_) => Some(idle_of(env, &Kind::Nginx { access_log: true }, n)?),
        Err(e) => {
            eprintln!("bench: item 11 without nginx: {e}");
            None
        }
    };
    let kib = |i: &Idle| format!("{:.2}", i.per_connection(n));
    let peer = |f: &dyn Fn(&Idle) -> String| x.as_ref().map(f).unwrap_or_else(|| "—".into());
    let ratio = |h: f64, b: f64| crate::model::fmt_ratio(h / b);
    eprintln!(
        "bench: idle connections: growth KiB baseline {:+}, host {:+}, nginx {}; threads host {} -> {}",
        b.growth_kib,
        h.growth_kib,
        x.as_ref().map(|x| format!("{:+}", x.growth_kib)).unwrap_or_default(),
        h.threads_before,
        h.threads_after
    );
    let per_conn = h.per_connection(n);
    let allowed = h.p99_before_us + 1000.0;
    Ok(vec![
        Row {
            item: "11".into(),
            measure: format!(
                "{n} idle keep-alive connections: RssAnon growth per connection (KiB; total: baseline {:+}, host {:+}, nginx {} KiB; host threads {} before, {} with them open)",
                b.growth_kib,
                h.growth_kib,
                x.as_ref().map(|x| format!("{:+}", x.growth_kib)).unwrap_or_else(|| "—".into()),
                h.threads_before,
                h.threads_after
            ),
            baseline: kib(&b),
            host: kib(&h),
            peer: peer(&|x| kib(x)),
            ratio: ratio(per_conn, b.per_connection(n)),
            target: "≤ 2 KiB".into(),
            met: verdict(per_conn <= 2.0),
        },
        Row {
            item: "11".into(),
            measure: format!(
                "a new client meanwhile: p99 of {PROBES} requests, a connection each, with the {n} connections open (before them: baseline {}, host {}, nginx {})",
                fmt_ms(b.p99_before_us),
                fmt_ms(h.p99_before_us),
                x.as_ref().map(|x| fmt_ms(x.p99_before_us)).unwrap_or_else(|| "—".into())
            ),
            baseline: fmt_ms(b.p99_during_us),
            host: fmt_ms(h.p99_during_us),
            peer: peer(&|x| fmt_ms(x.p99_during_us)),
            ratio: ratio(h.p99_during_us, b.p99_during_us),
            target: format!("≤ p99 before + 1 ms ({})", fmt_ms(allowed)),
            met: verdict(h.p99_during_us <= allowed),
        },
    ])
}
