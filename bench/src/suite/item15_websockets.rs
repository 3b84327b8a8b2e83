//! Item 15 (issue 17): 10,000 websockets served by event callbacks, idle and then
//! echoing.
//!
//! - **Measures**, for each server in turn (the baseline, then the host with `test_http`
//!   on its event-model echo route `/test_http/ws_events`, whose callbacks run on the
//!   blocking pool as any route's by default, then on `/test_http/ws_events_inline`, the
//!   same echo declared `blocking = false`: its callbacks run on the runtime's thread), with one socket open and one
//!   message echoed first (the threads a socket's life uses are started):
//!   1. **idle**: 11 s later (past tokio's 10 s keep-alive of idle blocking-pool threads
//!      and the host's 2 s heap trim), `VmRSS`, `RssAnon` and the threads; then N sockets
//!      (10,000; fewer when the open-file limit does not allow them, the rows say how
//!      many) opened one after the other, each counted once its greeting is read; 2.5 s
//!      after the last, `VmRSS` and `RssAnon` again (their growth / N: the memory of an
//!      idle socket, as item 11 measures an idle connection) and the threads; 11 s after
//!      the last, the threads again;
//!   2. **echo**: the same N sockets each sending one message a second for 30 s (15 s
//!      with `--quick`), socket `i` at `i/N` s into each second, each waiting for its echo
//!      ([`ws_load`](super::ws_load)): messages lost (not echoed within 5 s) and the echo
//!      latency's p50 and p99, on the client's clock per message.
//! - **The load generator** is the suite's process: tokio-tungstenite clients on one
//!   current-thread runtime. It shares the machine's 2 cores with the server it
//!   measures (and everything else running), so the latencies include its own scheduling;
//!   the echo row says how many sends left more than 5 ms late.
//! - **Baseline** (a reference row, no target): `bench-baseline --websocket`, a bare
//!   tokio-tungstenite echo server on the host's hyper setup and buffer sizes.
//! - **Host**: `inphms-host --load base,web,test_http`, its caps raised by flags above N
//!   (`--http-max-connections`, `--websocket-max-connections`), every other setting its
//!   default (pings after 30 s of silence, Odoo's rate limit: one message a second is
//!   within it).
//! - **Targets** (issue 17), judged for both host routes: the host's `VmRSS` growth ≤ 16 KiB per idle socket; its
//!   threads with the N sockets open equal to its threads idle, both read once the
//!   blocking pool's idle threads have ended (11 s after the last activity: a socket
//!   whose events ran on the pool holds none of its threads; the reading 2.5 s after the
//!   last open, pool threads included, is shown beside it); no message lost; echo p99
//!   ≤ 20 ms.

use super::item11_idle_connections::raise_nofile;
use super::ws_load::{self, EchoRun, Ws};
use crate::model::{fmt_ms, fmt_ratio, verdict, Options, Row};
use crate::procfs;
use crate::servers::{Env, Kind, Server};
use crate::stats::{max, percentile};
use std::time::{Duration, Instant};

/// Sockets per server (when the open-file limit allows).
const SOCKETS: usize = 10_000;
/// Descriptors kept for everything else in the suite and in the server.
const SPARE_FDS: u64 = 512;
/// The host's event-model echo routes (`test_http`): callbacks on the blocking pool (the
/// default), and inline (`blocking = false`).
const HOST_PATHS: [(&str, &str); 2] = [
    (
        "/test_http/ws_events",
        "callbacks on the blocking pool (default)",
    ),
    (
        "/test_http/ws_events_inline",
        "callbacks inline, `blocking = false`",
    ),
];
/// After this long without activity, tokio's blocking pool has ended its idle threads
/// (their keep-alive is 10 s).
const POOL_IDLE: Duration = Duration::from_secs(11);
/// When the memory is read after the last open (past the host's 2 s heap trim).
const SETTLE: Duration = Duration::from_millis(2500);

/// What one server showed.
struct Sockets {
    n: usize,
    open_secs: f64,
    rss_growth_kib: i64,
    anon_growth_kib: i64,
    threads_idle: u64,
    threads_settle: u64,
    threads_after: u64,
    echo: EchoRun,
    /// Threads at the end of the echo load.
    threads_load: u64,
    /// The server's CPU per echoed message during the load (µs).
    server_cpu_us: f64,
    /// The client's (the suite's process) CPU during the load, in cores.
    client_cores: f64,
}

impl Sockets {
    fn per_socket(&self, kib: i64) -> f64 {
        kib as f64 / self.n as f64
    }
    fn p(&self, q: f64) -> f64 {
        percentile(&self.echo.latencies_us, q)
    }
}

/// The memory readings of `pid`: (VmRSS, RssAnon) in KiB.
fn memory(pid: u32) -> (u64, u64) {
    (
        procfs::rss_kib(pid).unwrap_or(0),
        procfs::rss_anon_kib(pid).unwrap_or(0),
    )
}

/// Runs both phases on `kind` (see the module's doc).
fn measure(env: &Env, kind: &Kind, path: &str, n: usize, secs: u64) -> Result<Sockets, String> {
    let dir = env.scratch("websockets")?;
    let extra: Vec<String> = if kind.is_host() {
        vec![
            format!("--http-max-connections={}", n + 1000),
            format!("--websocket-max-connections={}", n + 100),
        ]
    } else {
        Vec::new()
    };
    let server = Server::start_with(env, kind, &dir, &extra)?;
    let who = kind.describe();
    let (pid, port) = (server.pid, server.port);
    let rt = ws_load::runtime()?;
    let clk = procfs::clk_tck();
    let measured = rt.block_on(async {
        let mut first = ws_load::open(port, path)
            .await
            .map_err(|e| format!("{who}: the first socket: {e}"))?;
        {
            use futures_util::{SinkExt, StreamExt};
            use tokio_tungstenite::tungstenite::Message;
            first
                .send(Message::text("warm"))
                .await
                .map_err(|e| format!("{who}: the first socket's message: {e}"))?;
            match first.next().await {
                Some(Ok(Message::Text(t))) if t.as_str() == "warm" => {}
                other => return Err(format!("{who}: the first socket's echo: {other:?}")),
            }
        }
        tokio::time::sleep(POOL_IDLE).await;
        let (rss0, anon0) = memory(pid);
        let threads_idle = procfs::threads(pid).unwrap_or(0);
        let started = Instant::now();
        let mut sockets: Vec<Ws> = Vec::with_capacity(n);
        for i in 0..n {
            let ws = ws_load::open(port, path)
                .await
                .map_err(|e| format!("{who}: socket {i} of {n}: {e}"))?;
            sockets.push(ws);
        }
        let open_secs = started.elapsed().as_secs_f64();
        tokio::time::sleep(SETTLE).await;
        let (rss1, anon1) = memory(pid);
        let threads_settle = procfs::threads(pid).unwrap_or(0);
        tokio::time::sleep(POOL_IDLE - SETTLE).await;
        let threads_after = procfs::threads(pid).unwrap_or(0);
        eprintln!(
            "bench: {who}: {n} websockets opened in {open_secs:.1} s; VmRSS {rss0} -> {rss1} KiB, RssAnon {anon0} -> {anon1} KiB; threads {threads_idle} idle, {threads_settle} 2.5 s after the last open, {threads_after} 11 s after"
        );
        let me = std::process::id();
        let (server0, client0) = (procfs::Counters::read(pid).ticks, procfs::cpu_ticks(me));
        let load_started = Instant::now();
        let (sockets, echo) = ws_load::echo_load(sockets, secs).await;
        let load_secs = load_started.elapsed().as_secs_f64();
        let (server1, client1) = (procfs::Counters::read(pid).ticks, procfs::cpu_ticks(me));
        let threads_load = procfs::threads(pid).unwrap_or(0);
        let ticks = |a: u64, b: u64| b.saturating_sub(a) as f64 / clk;
        let server_cpu_us = ticks(server0, server1) * 1e6 / echo.echoed.max(1) as f64;
        let client_cores = match (client0, client1) {
            (Some(a), Some(b)) => ticks(a, b) / load_secs,
            _ => f64::NAN,
        };
        Ok::<_, String>((
            Sockets {
                n,
                open_secs,
                rss_growth_kib: rss1 as i64 - rss0 as i64,
                anon_growth_kib: anon1 as i64 - anon0 as i64,
                threads_idle,
                threads_settle,
                threads_after,
                echo,
                threads_load,
                server_cpu_us,
                client_cores,
            },
            sockets,
            first,
        ))
    });
    // The server goes first: closing 10,000 sockets would otherwise run as many
    // `on_close` callbacks in a server about to be killed.
    server.stop();
    let (sockets, kept, first) = measured?;
    drop(kept);
    drop(first);
    drop(rt);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(sockets)
}

/// Item 15: 10,000 websockets, idle then echoing (see the module's doc).
pub fn item15_websockets(env: &Env, opts: &Options) -> Result<Vec<Row>, String> {
    let limit = raise_nofile();
    let n = SOCKETS.min(limit.saturating_sub(SPARE_FDS) as usize);
    if n < 1000 {
        return Err(format!(
            "the open-file limit is {limit}: too few for 1,000 websockets (raise `ulimit -Hn`)"
        ));
    }
    let secs = if opts.quick { 15 } else { 30 };
    let b = measure(
        env,
        &Kind::Baseline {
            mode: "--websocket",
        },
        "/",
        n,
        secs,
    )?;
    let mut rows = Vec::new();
    for (path, how) in HOST_PATHS {
        let h = measure(
            env,
            &Kind::Host {
                load: "base,web,test_http",
                access_log: true,
            },
            path,
            n,
            secs,
        )?;
        rows.extend(rows_for(n, secs, &b, &h, &format!("`{path}`, {how}")));
    }
    Ok(rows)
}

/// The four rows of one host route against the baseline.
fn rows_for(n: usize, secs: u64, b: &Sockets, h: &Sockets, route: &str) -> Vec<Row> {
    let kib = |s: &Sockets, v: i64| format!("{:.2}", s.per_socket(v));
    let rss_h = h.per_socket(h.rss_growth_kib);
    let lost = |s: &Sockets| s.echo.sent - s.echo.echoed;
    let lost_text = |s: &Sockets| {
        let mut t = format!("{} of {}", lost(s), s.echo.sent);
        if s.echo.failed_sockets > 0 {
            t.push_str(&format!(
                " ({} sockets stopped; first: {})",
                s.echo.failed_sockets,
                s.echo
                    .first_error
                    .as_deref()
                    .unwrap_or("")
                    .replace('|', "\\|")
            ));
        }
        t
    };
    let expected = (n as u64) * secs;
    let latency = |s: &Sockets| format!("{} / {}", fmt_ms(s.p(50.0)), fmt_ms(s.p(99.0)));
    let p99_h = h.p(99.0);
    eprintln!(
        "bench: websockets echo p50/p99/max (ms): baseline {:.2}/{:.2}/{:.2}, host {:.2}/{:.2}/{:.2}; lost: baseline {}, host {}",
        b.p(50.0) / 1e3,
        b.p(99.0) / 1e3,
        max(&b.echo.latencies_us) / 1e3,
        h.p(50.0) / 1e3,
        h.p(99.0) / 1e3,
        max(&h.echo.latencies_us) / 1e3,
        lost_text(b),
        lost_text(h)
    );
    vec![
        Row {
            item: "15".into(),
            measure: format!(
                "{route}: {n} idle websockets: VmRSS growth per socket (KiB; 2.5 s after the last of them opened one after the other in {:.1} s (baseline {:.1} s); RssAnon per socket: baseline {}, host {}; totals VmRSS baseline {:+}, host {:+} KiB)",
                h.open_secs,
                b.open_secs,
                kib(b, b.anon_growth_kib),
                kib(h, h.anon_growth_kib),
                b.rss_growth_kib,
                h.rss_growth_kib
            ),
            baseline: kib(b, b.rss_growth_kib),
            host: kib(h, h.rss_growth_kib),
            peer: "—".into(),
            ratio: fmt_ratio(rss_h / b.per_socket(b.rss_growth_kib)),
            target: "≤ 16 KiB".into(),
            met: verdict(rss_h <= 16.0),
        },
        Row {
            item: "15".into(),
            measure: format!(
                "{route}: threads idle → with the {n} idle websockets, both 11 s after the last activity (the blocking pool's idle threads ended; 2.5 s after the last open: baseline {}, host {})",
                b.threads_settle, h.threads_settle
            ),
            baseline: format!("{} → {}", b.threads_idle, b.threads_after),
            host: format!("{} → {}", h.threads_idle, h.threads_after),
            peer: "—".into(),
            ratio: "—".into(),
            target: "unchanged".into(),
            met: verdict(h.threads_after <= h.threads_idle),
        },
        Row {
            item: "15".into(),
            measure: format!(
                "{route}: {n} websockets each sending one message a second for {secs} s, spread over the second: messages lost (not echoed within 5 s; {expected} scheduled)"
            ),
            baseline: lost_text(b),
            host: lost_text(h),
            peer: "—".into(),
            ratio: "—".into(),
            target: "0".into(),
            met: verdict(lost(h) == 0 && h.echo.sent == expected),
        },
        Row {
            item: "15".into(),
            measure: format!(
                "{route}: {n} echoing websockets: echo latency p50 / p99 (ms; one message a second each for {secs} s; the client's clock per message, the client on the same 2 cores; max: baseline {}, host {}; sends more than 5 ms late: baseline {}, host {}; the client's CPU: baseline's run {:.2} cores, host's {:.2}; server CPU per message: baseline {}, host {}; host threads at the end of the load: {})",
                fmt_ms(max(&b.echo.latencies_us)),
                fmt_ms(max(&h.echo.latencies_us)),
                b.echo.late_sends,
                h.echo.late_sends,
                b.client_cores,
                h.client_cores,
                fmt_ms(b.server_cpu_us),
                fmt_ms(h.server_cpu_us),
                h.threads_load
            ),
            baseline: latency(b),
            host: latency(h),
            peer: "—".into(),
            ratio: fmt_ratio(p99_h / b.p(99.0)),
            target: "p99 ≤ 20 ms".into(),
            met: verdict(p99_h <= 20_000.0),
        },
    ]
}
