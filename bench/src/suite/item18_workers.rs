//! Item 18 (issue 22): workers mode against the threaded server. Throughput of the host
//! with `--workers 2` (a master and two HTTP worker processes on the one socket, plus the
//! cron worker) and of the threaded server (`workers = 0`), in the same run, and what the
//! processes cost idle.
//!
//! - **Measures**, as items 1 and 2 (the same generator, connections, warm-up, duration and
//!   rounds, the servers alternating within a round): requests per second, p99 and server
//!   CPU per request (the master and its children added up) under keep-alive load on
//!   `/web/health` (answered inline) and on `/test_http/pid` (a blocking handler that reads
//!   no session); each with `--workers 2` at the default `worker_connections = 1`, where a
//!   worker answers `Connection: close` and holds one connection at a time (the load
//!   generator connects again after each answer, and the other connections wait in the
//!   listen queue: Odoo's prefork behaviour), and with `--worker-connections 64` (keep-alive
//!   honoured, a worker multiplexing connections as the threaded server does). Then the idle
//!   resident set 1 s after every worker is ready: `VmRSS` and `RssAnon` summed over the
//!   process tree (the master, the two HTTP workers and the cron worker; the threaded
//!   server is one process). CPU counts the workers that recycled during a run too (the
//!   master's reaped children: a worker recycles at `limit_request`, 65536 requests).
//! - **Baseline**: the threaded host (`inphms-host --load base,web,test_http`), whose
//!   figure is in the baseline column; the workers' in the host column.
//! - **Target**: none (measured).

use crate::loadgen::Load;
use crate::model::{fmt_mib, fmt_ms, fmt_ratio, Options, Row};
use crate::procfs::{self, Counters};
use crate::servers::{Env, Kind, Server};
use crate::stats::median;
use inphms_test_support::http;
use std::time::Duration;

/// The addons of the servers of item 18 (`test_http` has the blocking route).
const ADDONS: &str = "base,web,test_http";
const KIND: Kind = Kind::Host {
    load: ADDONS,
    access_log: true,
};

/// The servers compared: a label and the arguments after the usual ones.
const SERVERS: [(&str, &[&str]); 3] = [
    ("threaded", &[]),
    ("--workers 2", &["--workers", "2"]),
    (
        "--workers 2 --worker-connections 64",
        &["--workers", "2", "--worker-connections", "64"],
    ),
];

/// The routes loaded: a label, the path, and the text its answer holds.
const ROUTES: [(&str, &str, &str); 2] = [
    ("keep-alive GET /web/health", "/web/health", "pass"),
    (
        "keep-alive GET /test_http/pid (a blocking handler, no session)",
        "/test_http/pid",
        "",
    ),
];

/// One run's figures.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rps: f64,
    p99_us: f64,
    cpu_us: f64,
}

/// Starts a server with `extra` arguments in a fresh scratch folder, waiting until its
/// HTTP workers (if any) say they are ready.
fn start(env: &Env, extra: &[&str], name: &str) -> Result<Server, String> {
    let dir = env.scratch(name)?;
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let server = Server::start_with(env, &KIND, &dir, &extra)?;
    let workers = if extra.is_empty() { 0 } else { 2 };
    if workers > 0
        && server
            .wait_for_log(Duration::from_secs(30), |log| {
                log.matches("(http) ready after").count() >= workers
                    && log.contains("(cron) ready after")
            })
            .is_none()
    {
        return Err(format!(
            "{}: the workers were not ready within 30 s:\n{}",
            name,
            server.log_tail()
        ));
    }
    Ok(server)
}

/// Loads `path` on the server with `extra` arguments: a check, the warm-up, then the
/// measured run.
fn measure(
    env: &Env,
    opts: &Options,
    extra: &[&str],
    path: &str,
    expect: &str,
    name: &str,
) -> Result<Sample, String> {
    let server = start(env, extra, name)?;
    let first = http::send(server.port, "GET", path, &[], b"", Duration::from_secs(5))
        .map_err(|e| format!("{name}: first request: {e}"))?;
    if first.status != 200 || !first.text().contains(expect) {
        return Err(format!(
            "{name}: {path} answered {} {:?}",
            first.status,
            first.text()
        ));
    }
    let load = Load::get(path);
    opts.generator.run(
        server.port,
        &load,
        opts.connections,
        opts.warmup,
        &server.dir,
    )?;
    let before = ticks(server.pid);
    let stats = opts.generator.run(
        server.port,
        &load,
        opts.connections,
        opts.duration,
        &server.dir,
    )?;
    let after = ticks(server.pid);
    let recycled = server.log().matches("recycling: ").count();
    if stats.errors * 1000 > stats.requests {
        return Err(format!(
            "{name}: {} of {} responses were errors; server log:\n{}",
            stats.errors,
            stats.requests,
            server.log_tail()
        ));
    }
    let dir = server.dir.clone();
    server.stop();
    let _ = std::fs::remove_dir_all(dir);
    let requests = stats.requests.max(1) as f64;
    if recycled > 0 {
        eprintln!("bench:   ({recycled} worker recycle(s) during the runs)");
    }
    Ok(Sample {
        rps: stats.rps,
        p99_us: stats.p99_us,
        cpu_us: after.saturating_sub(before) as f64 / opts.clk_tck / requests * 1e6,
    })
}

/// The CPU ticks of the server's processes: the live ones, and the workers its master
/// reaped (a worker recycled at `limit_request` during a run keeps counting).
fn ticks(pid: u32) -> u64 {
    Counters::read(pid).ticks + procfs::reaped_children_ticks(pid).unwrap_or(0)
}

/// `VmRSS` and `RssAnon` (KiB) summed over the server's process tree, 1 s after it (and
/// its workers) is ready, and the number of processes.
fn idle_memory(env: &Env, extra: &[&str], name: &str) -> Result<(u64, u64, usize), String> {
    let server = start(env, extra, name)?;
    std::thread::sleep(Duration::from_secs(1));
    let family = procfs::family(server.pid);
    let rss = family
        .iter()
        .map(|p| procfs::rss_kib(*p).unwrap_or(0))
        .sum();
    let anon = family
        .iter()
        .map(|p| procfs::rss_anon_kib(*p).unwrap_or(0))
        .sum();
    let dir = server.dir.clone();
    server.stop();
    let _ = std::fs::remove_dir_all(dir);
    Ok((rss, anon, family.len()))
}

/// Item 18: the routes under load on each server, round after round, then the idle memory.
pub fn item18_workers(env: &Env, opts: &Options) -> Result<Vec<Row>, String> {
    // samples[route][server]
    let mut samples = vec![vec![Vec::<Sample>::new(); SERVERS.len()]; ROUTES.len()];
    for round in 1..=opts.rounds {
        for (r, (route, path, expect)) in ROUTES.iter().enumerate() {
            for (s, (label, extra)) in SERVERS.iter().enumerate() {
                eprintln!(
                    "bench: round {round}/{}: item 18, {route}, {label}",
                    opts.rounds
                );
                let sample = measure(env, opts, extra, path, expect, &format!("w18-{r}-{s}"))?;
                eprintln!(
                    "bench:   {:.0} req/s, p99 {}, {:.2} us CPU/req",
                    sample.rps,
                    fmt_ms(sample.p99_us),
                    sample.cpu_us
                );
                samples[r][s].push(sample);
            }
        }
    }
    let of = |v: &[Sample], f: fn(&Sample) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());
    let mut rows = Vec::new();
    for (r, (route, _, _)) in ROUTES.iter().enumerate() {
        let threaded = &samples[r][0];
        for (s, (label, _)) in SERVERS.iter().enumerate().skip(1) {
            let workers = &samples[r][s];
            let (t_rps, w_rps) = (of(threaded, |x| x.rps), of(workers, |x| x.rps));
            let (t_cpu, w_cpu) = (of(threaded, |x| x.cpu_us), of(workers, |x| x.cpu_us));
            let (t_p99, w_p99) = (of(threaded, |x| x.p99_us), of(workers, |x| x.p99_us));
            rows.push(Row {
                item: "18".into(),
                measure: format!(
                    "{route}, `{label}` against the threaded server: req/s (p99; CPU per request, all processes: workers {w_cpu:.1} us, threaded {t_cpu:.1} us; ratio of CPU {})",
                    fmt_ratio(w_cpu / t_cpu)
                ),
                baseline: format!("{t_rps:.0} ({})", fmt_ms(t_p99)),
                host: format!("{w_rps:.0} ({})", fmt_ms(w_p99)),
                peer: "—".into(),
                ratio: fmt_ratio(w_rps / t_rps),
                target: "".into(),
                met: "".into(),
            });
        }
    }
    let (t_rss, t_anon, t_procs) = idle_memory(env, SERVERS[0].1, "w18-idle-threaded")?;
    let (w_rss, w_anon, w_procs) = idle_memory(env, SERVERS[1].1, "w18-idle-workers")?;
    rows.push(Row {
        item: "18".into(),
        measure: format!(
            "idle memory 1 s after ready, summed over the processes (MiB; `--workers 2`: {w_procs} processes, the master, 2 HTTP workers and the cron worker; threaded: {t_procs}): VmRSS (RssAnon: workers {}, threaded {})",
            fmt_mib(w_anon),
            fmt_mib(t_anon)
        ),
        baseline: fmt_mib(t_rss),
        host: fmt_mib(w_rss),
        peer: "—".into(),
        ratio: fmt_ratio(w_rss as f64 / t_rss.max(1) as f64),
        target: "".into(),
        met: "".into(),
    });
    Ok(rows)
}
