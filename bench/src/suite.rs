//! The measurements, by issue 7's numbering. Items 1–4 are [`SCENARIOS`] (a server, a load,
//! a baseline to compare with), run interleaved by [`run_throughput`]; items 5–9 are one
//! function each, returning its rows of the second table: [`item5_startup`],
//! [`item6_memory`], [`item7_swap`] (SIGHUP swaps under keep-alive load), [`item8_phoenix`]
//! (re-execs under connection-per-request load) and [`item9_cron`] (NOTIFY latency and job
//! throughput, on a PostgreSQL database of the suite's own).

use crate::client;
use crate::loadgen::{run_bounded, Generator, Load, Stats};
use crate::median;
use crate::pg;
use crate::procfs::{self, Counters};
use crate::report::{fmt_ms, fmt_ratio, verdict, Row};
use crate::servers::{self, host_command, install_library, stage_addon, Env, Kind, Server};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The suite's settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub quick: bool,
    /// Rounds of the interleaved throughput runs.
    pub rounds: usize,
    /// Each measured run.
    pub duration: Duration,
    /// Load before each measured run, on the same server process.
    pub warmup: Duration,
    pub connections: u32,
    /// Start-ups measured per server (item 5).
    pub startups: usize,
    /// Requests before the last RSS reading (item 6).
    pub rss_requests: u64,
    /// Items to run (`None`: all).
    pub only: Option<Vec<String>>,
    pub generator: Generator,
    pub clk_tck: f64,
}

impl Options {
    pub fn wants(&self, item: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|i| i == item))
    }
}

/// The JSON-RPC body of item 3 (the web client's call shape).
pub const JSONRPC_BODY: &str = r#"{"jsonrpc":"2.0","method":"call","params":{},"id":1}"#;

/// Targets as ratios to the reference baseline.
#[derive(Debug, Clone, Copy, Default)]
pub struct Targets {
    pub rps_min: Option<f64>,
    pub cpu_max: Option<f64>,
}

/// One throughput scenario: a server, the load, what the first response must contain, and
/// the baseline scenario it is compared with.
pub struct Scenario {
    pub key: &'static str,
    pub item: &'static str,
    pub name: &'static str,
    pub kind: Kind,
    /// Builds the load once the server is up (may prepare state, e.g. a session).
    pub load: fn(&Server) -> Result<Load, String>,
    pub expect: &'static str,
    pub reference: Option<&'static str>,
    pub targets: Targets,
}

const TEST_ADDONS: &str = "base,web,test_http";

/// Items 1–4, in the order they run in each round: baselines and host alternate.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        key: "base-get",
        item: "1",
        name: "keep-alive GET (baseline hello world)",
        kind: Kind::BASELINE,
        load: |_| Ok(Load::get("/")),
        expect: "Hello, World!",
        reference: None,
        targets: Targets { rps_min: None, cpu_max: None },
    },
    Scenario {
        key: "host-health",
        item: "1",
        name: "keep-alive GET /web/health, access log on (default)",
        kind: Kind::HOST,
        load: |_| Ok(Load::get("/web/health")),
        expect: "pass",
        reference: Some("base-get"),
        targets: Targets { rps_min: Some(0.85), cpu_max: Some(1.3) },
    },
    Scenario {
        key: "base-blocking",
        item: "1",
        name: "keep-alive GET, baseline with spawn_blocking per request (the host's hand-off alone)",
        kind: Kind::Baseline { mode: "--spawn-blocking" },
        load: |_| Ok(Load::get("/")),
        expect: "Hello, World!",
        reference: Some("base-get"),
        targets: Targets { rps_min: None, cpu_max: None },
    },
    Scenario {
        key: "base-block-in-place",
        item: "1",
        name: "keep-alive GET, baseline with block_in_place per request (an alternative hand-off)",
        kind: Kind::Baseline { mode: "--block-in-place" },
        load: |_| Ok(Load::get("/")),
        expect: "Hello, World!",
        reference: Some("base-get"),
        targets: Targets { rps_min: None, cpu_max: None },
    },
    Scenario {
        key: "host-health-nolog",
        item: "1",
        name: "keep-alive GET /web/health, access log off",
        kind: Kind::Host { load: "", access_log: false },
        load: |_| Ok(Load::get("/web/health")),
        expect: "pass",
        reference: Some("base-get"),
        targets: Targets { rps_min: Some(0.85), cpu_max: Some(1.3) },
    },
    Scenario {
        key: "host-session-read",
        item: "2",
        name: "keep-alive GET /web/health, session cookie (item 1 plus one session read per request)",
        kind: Kind::Host { load: TEST_ADDONS, access_log: true },
        load: |s| Ok(Load::get("/web/health").header("Cookie", &format!("session_id={}", session(s)?))),
        expect: "pass",
        reference: Some("base-get"),
        targets: Targets { rps_min: Some(0.6), cpu_max: None },
    },
    Scenario {
        key: "host-session-read-handler",
        item: "2",
        name: "keep-alive GET /test_http/get/x, session cookie (a blocking handler reading the session)",
        kind: Kind::Host { load: TEST_ADDONS, access_log: true },
        load: |s| Ok(Load::get("/test_http/get/x").header("Cookie", &format!("session_id={}", session(s)?))),
        expect: "1",
        reference: Some("base-get"),
        targets: Targets { rps_min: None, cpu_max: None },
    },
    Scenario {
        key: "host-session-write",
        item: "2",
        name: "keep-alive GET /test_http/set/x/<n>, session cookie, n varies (one session write per request)",
        kind: Kind::Host { load: TEST_ADDONS, access_log: true },
        load: |s| {
            Ok(Load::get("/test_http/set/x/")
                .counter_suffix()
                .header("Cookie", &format!("session_id={}", session(s)?)))
        },
        expect: "ok",
        reference: Some("base-get"),
        targets: Targets { rps_min: None, cpu_max: None },
    },
    Scenario {
        key: "base-post",
        item: "3",
        name: "keep-alive POST with the JSON-RPC body (baseline)",
        kind: Kind::BASELINE,
        load: |_| Ok(Load::post_json("/web/webclient/version_info", JSONRPC_BODY)),
        expect: "Hello, World!",
        reference: None,
        targets: Targets { rps_min: None, cpu_max: None },
    },
    Scenario {
        key: "host-version-info",
        item: "3",
        name: "keep-alive POST /web/webclient/version_info (json route, JSON-RPC body)",
        kind: Kind::HOST,
        load: |_| Ok(Load::post_json("/web/webclient/version_info", JSONRPC_BODY)),
        expect: "server_version",
        reference: Some("base-post"),
        targets: Targets { rps_min: None, cpu_max: None },
    },
    Scenario {
        key: "base-close",
        item: "4",
        name: "Connection: close GET (baseline)",
        kind: Kind::BASELINE,
        load: |_| Ok(Load::get("/").close()),
        expect: "Hello, World!",
        reference: None,
        targets: Targets { rps_min: None, cpu_max: None },
    },
    Scenario {
        key: "host-close",
        item: "4",
        name: "Connection: close GET /web/health",
        kind: Kind::HOST,
        load: |_| Ok(Load::get("/web/health").close()),
        expect: "pass",
        reference: Some("base-close"),
        targets: Targets { rps_min: None, cpu_max: None },
    },
];

/// Creates a session holding `x = "1"` (`/test_http/set/x/1`) and returns its id.
fn session(server: &Server) -> Result<String, String> {
    let r = client::request(
        server.port,
        "GET",
        "/test_http/set/x/1",
        &[],
        None,
        Duration::from_secs(5),
    )
    .map_err(|e| format!("/test_http/set/x/1: {e}"))?;
    if r.status != 200 {
        return Err(format!(
            "/test_http/set/x/1 answered {}: {}",
            r.status,
            r.text()
        ));
    }
    r.cookie("session_id")
        .ok_or_else(|| "/test_http/set/x/1 set no session_id cookie".to_owned())
}

/// One measured run.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub stats: Stats,
    /// Server CPU time (user + system, all threads) per request, in microseconds.
    pub cpu_us: f64,
    /// Server context switches per request (live threads).
    pub ctx_per_req: f64,
    /// Server threads at the end of the run.
    pub threads: u64,
}

/// Builds the scenario's load for `server` and checks its first request (status 200 and
/// the expected text).
pub fn first_request(sc: &Scenario, server: &Server) -> Result<Load, String> {
    let load = (sc.load)(server)?;
    let first = client::request(
        server.port,
        load.method,
        &load.first_path(),
        &load.headers,
        load.body.as_deref(),
        Duration::from_secs(5),
    )
    .map_err(|e| format!("{}: first request: {e}", sc.key))?;
    if first.status != 200 || !first.text().contains(sc.expect) {
        return Err(format!(
            "{}: the first request answered {} {:?}, expected 200 with {:?}",
            sc.key,
            first.status,
            first.text(),
            sc.expect
        ));
    }
    Ok(load)
}

/// Starts the scenario's server, checks one request, warms up, then measures.
fn run_scenario(env: &Env, opts: &Options, sc: &Scenario, round: usize) -> Result<Sample, String> {
    let dir = env.scratch(&format!("{}-{round}", sc.key))?;
    let server = Server::start(env, &sc.kind, &dir)?;
    let load = first_request(sc, &server)?;
    opts.generator
        .run(server.port, &load, opts.connections, opts.warmup, &dir)?;
    let before = Counters::read(server.pid);
    let stats = opts
        .generator
        .run(server.port, &load, opts.connections, opts.duration, &dir)?;
    let after = Counters::read(server.pid);
    let threads = procfs::threads(server.pid).unwrap_or(0);
    if stats.errors * 1000 > stats.requests {
        return Err(format!(
            "{}: {} of {} responses were errors (non-2xx/3xx or socket errors); server log:\n{}",
            sc.key,
            stats.errors,
            stats.requests,
            server.log_tail()
        ));
    }
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let requests = stats.requests.max(1) as f64;
    Ok(Sample {
        cpu_us: (after.ticks.saturating_sub(before.ticks)) as f64 / opts.clk_tck / requests * 1e6,
        ctx_per_req: after.ctx_switches.saturating_sub(before.ctx_switches) as f64 / requests,
        threads,
        stats,
    })
}

/// The samples of one scenario over the rounds.
pub struct Measured<'a> {
    pub scenario: &'a Scenario,
    pub samples: Vec<Sample>,
}

impl Measured<'_> {
    pub fn rps(&self) -> f64 {
        median(&self.samples.iter().map(|s| s.stats.rps).collect::<Vec<_>>())
    }
    pub fn cpu(&self) -> f64 {
        median(&self.samples.iter().map(|s| s.cpu_us).collect::<Vec<_>>())
    }
    pub fn of(&self, f: impl Fn(&Sample) -> f64) -> f64 {
        median(&self.samples.iter().map(f).collect::<Vec<_>>())
    }
}

/// Items 1–4: every scenario wanted, once per round, in [`SCENARIOS`] order.
pub fn run_throughput<'a>(env: &Env, opts: &Options) -> Result<Vec<Measured<'a>>, String> {
    let mut measured: Vec<Measured> = SCENARIOS
        .iter()
        .filter(|s| opts.wants(s.item))
        .map(|scenario| Measured {
            scenario,
            samples: Vec::new(),
        })
        .collect();
    for round in 1..=opts.rounds {
        for m in measured.iter_mut() {
            eprintln!(
                "bench: round {round}/{}: {} ({})",
                opts.rounds,
                m.scenario.key,
                m.scenario.kind.describe()
            );
            let s = run_scenario(env, opts, m.scenario, round)?;
            eprintln!(
                "bench:   {:.0} req/s, p50 {}, p99 {}, {:.2} us CPU/req, {} errors",
                s.stats.rps,
                fmt_ms(s.stats.p50_us),
                fmt_ms(s.stats.p99_us),
                s.cpu_us,
                s.stats.errors
            );
            m.samples.push(s);
        }
    }
    Ok(measured)
}

/// Item 5: spawn to first 200, median of `opts.startups`, the baseline and the host (base
/// and web) alternating, each in a fresh folder.
pub fn item5_startup(env: &Env, opts: &Options) -> Result<Vec<Row>, String> {
    let (mut base, mut host) = (Vec::new(), Vec::new());
    for i in 0..opts.startups {
        for (kind, into) in [(Kind::BASELINE, &mut base), (Kind::HOST, &mut host)] {
            let dir = env.scratch(&format!("startup-{i}"))?;
            let server = Server::start(env, &kind, &dir)?;
            into.push(server.startup.as_secs_f64() * 1e3);
            server.stop();
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    let (b, h) = (median(&base), median(&host));
    eprintln!("bench: start-up: baseline {b:.1} ms, host {h:.1} ms (host runs: {host:.1?})");
    Ok(vec![Row {
        item: "5".into(),
        measure: format!("start-up: spawn to first 200 on /web/health, median of {} (ms; host min–max {:.1}–{:.1})", opts.startups, min(&host), max(&host)),
        baseline: format!("{b:.1}"),
        host: format!("{h:.1}"),
        ratio: fmt_ratio(h / b),
        target: "≤ 50 ms".into(),
        met: verdict(h <= 50.0),
    }])
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// RSS readings of one server for item 6.
struct Memory {
    idle_kib: u64,
    warm_kib: u64,
    /// `RssAnon` after the warm-up and at the end.
    warm_anon_kib: u64,
    end_anon_kib: u64,
    warm_requests: u64,
    end_kib: u64,
    requests: u64,
    curve: Vec<(u64, u64)>,
}

/// Loads `kind` with keep-alive `load` until `total` requests were served, in runs of
/// `chunk`, reading RSS after start (1 s idle), after the warm-up (the first tenth of the
/// requests) and at the end.
fn memory_of(
    env: &Env,
    opts: &Options,
    kind: &Kind,
    load: &Load,
    total: u64,
) -> Result<Memory, String> {
    let dir = env.scratch("memory")?;
    let server = Server::start(env, kind, &dir)?;
    std::thread::sleep(Duration::from_secs(1));
    let rss = || procfs::rss_kib(server.pid).unwrap_or(0);
    let anon = || procfs::rss_anon_kib(server.pid).unwrap_or(0);
    let idle_kib = rss();
    let chunk = if opts.quick {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(3)
    };
    let deadline = Instant::now() + Duration::from_secs(60 + total / 2_000);
    let (mut served, mut curve) = (0u64, Vec::new());
    let mut warm = None;
    while served < total {
        if Instant::now() > deadline {
            return Err(format!(
                "{}: {served} of {total} requests served before the deadline",
                kind.describe()
            ));
        }
        let st = opts
            .generator
            .run(server.port, load, opts.connections, chunk, &dir)?;
        if st.errors > 0 {
            return Err(format!(
                "{}: {} errors during the RSS run",
                kind.describe(),
                st.errors
            ));
        }
        served += st.requests;
        curve.push((served, rss()));
        if warm.is_none() && served >= total / 10 {
            warm = Some((served, rss(), anon()));
        }
    }
    let (end_kib, end_anon_kib) = (rss(), anon());
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let (warm_requests, warm_kib, warm_anon_kib) = warm.unwrap_or((served, end_kib, end_anon_kib));
    Ok(Memory {
        idle_kib,
        warm_kib,
        warm_anon_kib,
        end_anon_kib,
        warm_requests,
        end_kib,
        requests: served,
        curve,
    })
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// Item 6: idle RSS after start, and RSS after `opts.rss_requests` keep-alive requests on
/// `/web/health` (and on the baseline), with the growth after warm-up.
pub fn item6_memory(env: &Env, opts: &Options) -> Result<Vec<Row>, String> {
    let n = opts.rss_requests;
    let b = memory_of(env, opts, &Kind::BASELINE, &Load::get("/"), n)?;
    let h = memory_of(env, opts, &Kind::HOST, &Load::get("/web/health"), n)?;
    eprintln!(
        "bench: host RSS (requests, KiB): idle {} then {:?}",
        h.idle_kib, h.curve
    );
    eprintln!(
        "bench: baseline RSS (requests, KiB): idle {} then {:?}",
        b.idle_kib, b.curve
    );
    let ratio = |h: u64, b: u64| fmt_ratio(h as f64 / b.max(1) as f64);
    let growth = |m: &Memory| m.end_kib as i64 - m.warm_kib as i64;
    let anon_growth = |m: &Memory| m.end_anon_kib as i64 - m.warm_anon_kib as i64;
    let hg = growth(&h);
    let hag = anon_growth(&h);
    Ok(vec![
        Row {
            item: "6".into(),
            measure: "idle RSS after start (MiB)".into(),
            baseline: mib(b.idle_kib),
            host: mib(h.idle_kib),
            ratio: ratio(h.idle_kib, b.idle_kib),
            target: "≤ 20 MiB".into(),
            met: verdict(h.idle_kib as f64 / 1024.0 <= 20.0),
        },
        Row {
            item: "6".into(),
            measure: format!("RSS after warm-up (MiB; host after {} requests, baseline after {})", h.warm_requests, b.warm_requests),
            baseline: mib(b.warm_kib),
            host: mib(h.warm_kib),
            ratio: ratio(h.warm_kib, b.warm_kib),
            target: "".into(),
            met: "".into(),
        },
        Row {
            item: "6".into(),
            measure: format!(
                "RSS after ≥ {n} keep-alive requests (MiB; host {} requests, baseline {}); growth after warm-up in KiB, VmRSS: host {hg:+}, baseline {:+}; RssAnon (heap, stacks): host {hag:+}, baseline {:+}",
                h.requests,
                b.requests,
                growth(&b),
                anon_growth(&b)
            ),
            baseline: mib(b.end_kib),
            host: mib(h.end_kib),
            ratio: ratio(h.end_kib, b.end_kib),
            target: "no growth after warm-up (judged on RssAnon)".into(),
            // Allow page-granularity noise: 1% of the warm RSS or 256 KiB.
            met: verdict((hag as f64) <= (h.warm_kib as f64 * 0.01).max(256.0)),
        },
    ])
}

/// A row of the second table with no baseline.
fn host_row(item: &str, measure: String, host: String, target: &str, met: String) -> Row {
    Row {
        item: item.into(),
        measure,
        baseline: "—".into(),
        host,
        ratio: "—".into(),
        target: target.into(),
        met,
    }
}

/// The nearest-rank percentile `p` (0–100) of `values`; `NaN` when empty.
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

/// The host of items 7 and 8: `base`, `web` and `test_swap`, the latter from an addons
/// folder of its own (`--addons-path`), where a swap installs the other build.
const SWAP_KIND: Kind = Kind::Host {
    load: "base,web,test_swap",
    access_log: true,
};

/// The release build `variant` (`v1`, `v2`) of `test_swap`, assembled by `cargo xtask bench`
/// in `target/release/bench-addons/test_swap-<variant>/`.
fn swap_build(env: &Env, variant: &str) -> Result<PathBuf, String> {
    let lib = env
        .bin_dir
        .join("bench-addons")
        .join(format!("test_swap-{variant}"))
        .join("libtest_swap.so");
    if lib.is_file() {
        Ok(lib)
    } else {
        Err(format!(
            "{} is missing: `cargo xtask bench` builds it (cargo build --release -p test_swap --features {variant}, then a copy)",
            lib.display()
        ))
    }
}

/// Starts the host with `test_swap` v1 staged in `dir/addons` (and `extra` options); returns
/// it and the addon's folder, where [`install_library`] puts the next build.
fn swap_server(env: &Env, dir: &Path, extra: &[&str]) -> Result<(Server, PathBuf), String> {
    let addon = dir.join("addons").join("test_swap");
    stage_addon(&env.addon_src("test_swap"), &swap_build(env, "v1")?, &addon)?;
    let mut args = vec![
        "--addons-path".to_owned(),
        dir.join("addons").display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let server = Server::start_with(env, &SWAP_KIND, dir, &args)?;
    expect_version(&server, "v1")?;
    Ok((server, addon))
}

/// Checks that `/test_swap/version` answers `variant`.
fn expect_version(server: &Server, variant: &str) -> Result<(), String> {
    let r = client::request(
        server.port,
        "GET",
        "/test_swap/version",
        &[],
        None,
        Duration::from_secs(5),
    )
    .map_err(|e| format!("/test_swap/version: {e}"))?;
    if r.status == 200 && r.text() == variant {
        Ok(())
    } else {
        Err(format!(
            "/test_swap/version answered {} {:?}, expected {variant}; server log:\n{}",
            r.status,
            r.text(),
            server.log_tail()
        ))
    }
}

/// The milliseconds of the host's `generation N serving after X ms` line in `log`.
fn swap_ms(log: &str, generation: usize) -> Option<f64> {
    let needle = format!("generation {generation} serving after ");
    let at = log.find(&needle)? + needle.len();
    log[at..].split(" ms").next()?.trim().parse().ok()
}

/// What the last swap line says is kept mapped: `N library images kept mapped (M MiB)`.
fn images_kept(log: &str) -> Option<String> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("library images kept mapped"))?;
    let part = line.split("); ").last()?;
    Some(part.split(", swap").next()?.trim().to_owned())
}

/// Item 7: swaps under keep-alive load. The host serves `test_swap` v1; `wrk -c32` loads
/// `/test_swap/version` in back-to-back 1 s runs (so each second has its own count), and
/// 300 ms into one of them the other build is installed (copy and rename) and SIGHUP sent.
/// Five swaps alternate v2 and v1 on one process; between them the server is idle and its
/// RSS is read, to give the growth per swap. Failed requests are wrk's non-2xx responses and
/// socket errors over every run of every swap; the duration is the host's own measure (`generation N
/// serving after X ms`); the throughput ratio compares the 1 s run of the swap with the one
/// before it.
pub fn item7_swap(env: &Env, opts: &Options) -> Result<Vec<Row>, String> {
    const SWAPS: usize = 5;
    // Runs of 1 s per swap, and the one that gets the SIGHUP (the middle of ~6 s).
    let (slices, at) = if opts.quick { (4, 2) } else { (6, 3) };
    let dir = env.scratch("swap")?;
    let (server, addon) = swap_server(env, &dir, &[])?;
    let load = Load::get("/test_swap/version");
    let run = |d: Duration| {
        opts.generator
            .run(server.port, &load, opts.connections, d, &dir)
    };
    run(opts.warmup)?;
    let rss = || {
        std::thread::sleep(Duration::from_millis(500));
        procfs::rss_kib(server.pid).unwrap_or(0)
    };
    let mut rss_kib = vec![rss()];
    let (mut requests, mut failed) = (0u64, 0u64);
    let (mut durations, mut before, mut during, mut ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for n in 1..=SWAPS {
        let variant = if n % 2 == 1 { "v2" } else { "v1" };
        let generation = n + 1;
        install_library(&swap_build(env, variant)?, &addon)?;
        let refused_before = server.log().matches("swap refused").count();
        let mut runs: Vec<Stats> = Vec::new();
        for k in 0..slices {
            let hup = (k == at).then(|| {
                let pid = server.pid;
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(300));
                    servers::signal(pid, "HUP")
                })
            });
            let st = run(Duration::from_secs(1))?;
            if let Some(h) = hup {
                h.join().map_err(|_| "the SIGHUP thread panicked")??;
            }
            requests += st.requests;
            failed += st.errors;
            runs.push(st);
        }
        let needle = format!("generation {generation} serving after ");
        let log = server
            .wait_for_log(Duration::from_secs(20), |l| {
                l.contains(&needle) || l.matches("swap refused").count() > refused_before
            })
            .ok_or_else(|| {
                format!(
                    "swap {n} to {variant}: no `{needle}` line within 20 s:\n{}",
                    server.log_tail()
                )
            })?;
        let ms = swap_ms(&log, generation)
            .ok_or_else(|| format!("swap {n} to {variant} was refused:\n{}", server.log_tail()))?;
        expect_version(&server, variant)?;
        rss_kib.push(rss());
        let (b, d) = (runs[at - 1].rps, runs[at].rps);
        eprintln!(
            "bench: swap {n} to {variant}: {ms:.1} ms; req/s per second {:?}; errors {}; RSS {} KiB",
            runs.iter().map(|r| r.rps.round()).collect::<Vec<_>>(),
            runs.iter().map(|r| r.errors).sum::<u64>(),
            rss_kib[n]
        );
        durations.push(ms);
        before.push(b);
        during.push(d);
        ratios.push(d / b);
    }
    let kept = images_kept(&server.log()).unwrap_or_default();
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let deltas: Vec<i64> = rss_kib
        .windows(2)
        .map(|w| w[1] as i64 - w[0] as i64)
        .collect();
    let growth = (rss_kib[SWAPS] as f64 - rss_kib[0] as f64) / SWAPS as f64;
    let worst = max(&durations);
    Ok(vec![
        host_row(
            "7",
            format!("swap under load: failed requests (wrk non-2xx + socket errors; {SWAPS} swaps v1→v2→v1..., each in {slices} s of `wrk -c{}` keep-alive on /test_swap/version; {requests} requests)", opts.connections),
            failed.to_string(),
            "0",
            verdict(failed == 0),
        ),
        host_row(
            "7",
            format!("swap duration (ms; the host's `generation N serving after X ms`; median of {SWAPS}, max {worst:.1}; all: {})", durations.iter().map(|d| format!("{d:.1}")).collect::<Vec<_>>().join(", ")),
            format!("{:.1}", median(&durations)),
            "≤ 20 ms",
            verdict(worst <= 20.0),
        ),
        host_row(
            "7",
            format!("throughput in the second of the swap / the second before (1 s wrk runs; median of {SWAPS}, min {:.2}x; req/s medians {:.0} before, {:.0} during)", min(&ratios), median(&before), median(&during)),
            fmt_ratio(median(&ratios)),
            "",
            String::new(),
        ),
        host_row(
            "7",
            format!("RSS growth per swap (KiB; idle VmRSS after each swap minus before, mean of {SWAPS}; each: {}; {} MiB before the first; {kept} at the end)", deltas.iter().map(|d| format!("{d:+}")).collect::<Vec<_>>().join(", "), mib(rss_kib[0])),
            format!("{growth:+.0}"),
            "",
            String::new(),
        ),
    ])
}

/// One request of item 8's clients.
struct Answer {
    start: Instant,
    end: Instant,
    /// 1 (`v1`) or 2 (`v2`) for a 200; 0 otherwise.
    version: u8,
    outcome: Outcome,
}

#[derive(PartialEq)]
enum Outcome {
    Ok,
    Refused,
    Failed(String),
}

/// A client of item 8: a new connection per request (`Connection: close`) to
/// `/test_swap/version` until `stop`; publishes the version of each answer in `last`.
fn phoenix_client(
    port: u16,
    stop: Arc<AtomicBool>,
    last: Arc<AtomicU8>,
) -> std::thread::JoinHandle<Vec<Answer>> {
    std::thread::spawn(move || {
        let mut answers = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            let start = Instant::now();
            let r = client::request(
                port,
                "GET",
                "/test_swap/version",
                &[],
                None,
                Duration::from_secs(10),
            );
            let end = Instant::now();
            let (version, outcome) = match r {
                Ok(r) if r.status == 200 => {
                    let v = match r.text().as_str() {
                        "v1" => 1,
                        "v2" => 2,
                        _ => 0,
                    };
                    (v, Outcome::Ok)
                }
                Ok(r) => (0, Outcome::Failed(format!("status {}", r.status))),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    (0, Outcome::Refused)
                }
                Err(e) => (0, Outcome::Failed(e.to_string())),
            };
            if version != 0 {
                last.store(version, Ordering::Relaxed);
            }
            answers.push(Answer {
                start,
                end,
                version,
                outcome,
            });
        }
        answers
    })
}

/// Item 8: phoenix re-execs under load. With `--limit-swaps 0` every swap is a re-exec of
/// the process (same pid, the listening socket handed over). Four clients open a new
/// connection per request to `/test_swap/version`; after 1 s the other build is installed
/// and SIGHUP sent, then the clients go on until the new image answers and 1 s more, three
/// times (once with `--quick`). Refused connections and other failures are counted over the
/// whole run; the worst latency (connect to the last byte) is over the requests in flight
/// between the SIGHUP and the first answer of the new image.
pub fn item8_phoenix(env: &Env, opts: &Options) -> Result<Vec<Row>, String> {
    const CLIENTS: usize = 4;
    let reexecs = if opts.quick { 1 } else { 3 };
    let dir = env.scratch("phoenix")?;
    let (server, addon) = swap_server(env, &dir, &["--limit-swaps", "0"])?;
    let stop = Arc::new(AtomicBool::new(false));
    let last = Arc::new(AtomicU8::new(1));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| phoenix_client(server.port, stop.clone(), last.clone()))
        .collect();
    let mut windows: Vec<(Instant, u8)> = Vec::new();
    let mut result = Ok(());
    std::thread::sleep(Duration::from_secs(1));
    for n in 1..=reexecs {
        let (variant, v) = if n % 2 == 1 { ("v2", 2) } else { ("v1", 1) };
        if let Err(e) = install_library(&swap_build(env, variant)?, &addon) {
            result = Err(e);
            break;
        }
        let hup = Instant::now();
        if let Err(e) = server.signal("HUP") {
            result = Err(e);
            break;
        }
        windows.push((hup, v));
        let deadline = hup + Duration::from_secs(30);
        while last.load(Ordering::Relaxed) != v && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        if last.load(Ordering::Relaxed) != v {
            result = Err(format!(
                "re-exec {n}: {variant} did not answer within 30 s:\n{}",
                server.log_tail()
            ));
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    stop.store(true, Ordering::Relaxed);
    let answers: Vec<Answer> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap_or_default())
        .collect();
    result?;
    let log = server.log();
    let reloads = log.matches("Initiating server reload").count();
    let alive = Path::new(&format!("/proc/{}", server.pid)).exists();
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
    if reloads != reexecs || !alive {
        return Err(format!(
            "expected {reexecs} re-exec(s) of a live process, saw {reloads} `Initiating server reload` (alive: {alive})"
        ));
    }
    let refused = answers
        .iter()
        .filter(|a| a.outcome == Outcome::Refused)
        .count();
    let failures: Vec<&str> = answers
        .iter()
        .filter_map(|a| match &a.outcome {
            Outcome::Failed(e) => Some(e.as_str()),
            _ => None,
        })
        .collect();
    // Each re-exec: from its SIGHUP to the first answer of the new image.
    let (mut worst, mut gaps) = (Vec::new(), Vec::new());
    for (hup, v) in &windows {
        let Some(first) = answers
            .iter()
            .filter(|a| a.version == *v && a.end > *hup)
            .map(|a| a.end)
            .min()
        else {
            continue;
        };
        gaps.push((first - *hup).as_secs_f64() * 1e3);
        worst.push(
            answers
                .iter()
                .filter(|a| a.start < first && a.end > *hup)
                .map(|a| (a.end - a.start).as_secs_f64() * 1e3)
                .fold(0.0, f64::max),
        );
    }
    let steady: Vec<f64> = answers
        .iter()
        .filter(|a| windows.first().is_some_and(|(hup, _)| a.end < *hup))
        .map(|a| (a.end - a.start).as_secs_f64() * 1e3)
        .collect();
    eprintln!(
        "bench: phoenix: {} requests, {refused} refused, {} failed {:?}; worst latency per re-exec (ms) {worst:.1?}; SIGHUP to first new answer (ms) {gaps:.1?}",
        answers.len(),
        failures.len(),
        failures.iter().take(5).collect::<Vec<_>>()
    );
    let fmt_list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Ok(vec![
        host_row(
            "8",
            format!("phoenix re-exec under load: refused connections ({reexecs} re-exec(s) with `--limit-swaps 0`; {CLIENTS} clients, a new connection per request; {} requests)", answers.len()),
            refused.to_string(),
            "0",
            verdict(refused == 0),
        ),
        host_row(
            "8",
            format!("other failed requests during the same run{}", if failures.is_empty() { String::new() } else { format!(" (first: {})", failures[0]) }),
            failures.len().to_string(),
            "",
            String::new(),
        ),
        host_row(
            "8",
            format!("worst latency during the re-exec (ms; connect to last byte, requests in flight between SIGHUP and the first answer of the new image; max of {}: {}; SIGHUP to that first answer: {} ms; p99 before the re-execs {:.2} ms)", worst.len(), fmt_list(&worst), fmt_list(&gaps), percentile(&steady, 99.0)),
            format!("{:.1}", max(&worst)),
            "",
            String::new(),
        ),
    ])
}

/// Item 9: cron. A database of the suite's own, with `test_db` installed (its cron handler
/// `test_db.write_row` inserts a row whose `started` is `clock_timestamp()`: the moment the
/// handler runs, in the database's clock); a host with `--max-cron-threads 2` whose workers
/// LISTEN on that database (`--cron-db`), so that a trigger row and its NOTIFY commit
/// together.
///
/// - Latency: 50 jobs (20 with `--quick`) that are not due, each triggered in turn by a
///   transaction that inserts its `ir_cron_trigger` row, records `clock_timestamp()` and
///   sends `pg_notify('cron_trigger', db)`; the latency is the handler's `started` minus
///   that time. The next trigger waits until the job ran.
/// - Throughput: 1000 jobs due an hour ago inserted in one transaction with one NOTIFY;
///   jobs per second from the NOTIFY to the last job's `last_end`.
pub fn item9_cron(env: &Env, opts: &Options) -> Result<Vec<Row>, String> {
    let triggers = if opts.quick { 20 } else { 50 };
    const JOBS: usize = 1000;
    let db = pg::Database::new("cron")?;
    let dir = env.scratch("cron")?;
    let addons = dir.join("addons");
    stage_addon(
        &env.addon_src("test_db"),
        &env.bin_dir.join("libtest_db.so"),
        &addons.join("test_db"),
    )?;
    let addons_arg = addons.display().to_string();
    let mut init = host_command(env, &dir);
    init.current_dir(&dir)
        .args(["server", "--stop-after-init", "-D"])
        .arg(dir.join("data"))
        .args(pg::server_args())
        .args([
            "--addons-path",
            &addons_arg,
            "-d",
            &db.name,
            "-i",
            "test_db",
        ]);
    let (ok, _, err) = run_bounded(&mut init, Duration::from_secs(120))?;
    if !ok {
        return Err(format!("creating {} with test_db failed:\n{err}", db.name));
    }
    db.sql("CREATE TABLE bench_notify (job_id integer PRIMARY KEY, sent timestamp NOT NULL)")?;
    db.sql(&format!(
        "INSERT INTO ir_cron (cron_name, handler, interval_number, interval_type, nextcall) \
         SELECT 'bench notify ' || n, 'test_db.write_row', 1, 'days', now() AT TIME ZONE 'UTC' + interval '1 day' \
         FROM generate_series(1, {triggers}) n"
    ))?;
    let mut args = pg::server_args();
    args.extend(
        [
            "--addons-path",
            &addons_arg,
            "-d",
            &db.name,
            "--max-cron-threads",
            "2",
            "--cron-db",
            &db.name,
        ]
        .map(String::from),
    );
    let server = Server::start_with(env, &Kind::HOST, &dir, &args)?;
    // The first pass of each worker (after its LISTEN) runs base's autovacuum, due since
    // the install; the measures start after it.
    server
        .wait_for_log(Duration::from_secs(30), |l| {
            l.contains("cron worker(s) started")
                && l.contains("Auto-vacuum internal data\" (1) done")
        })
        .ok_or_else(|| {
            format!(
                "the cron workers did not make their first pass:\n{}",
                server.log_tail()
            )
        })?;
    std::thread::sleep(Duration::from_millis(500));
    let ids: Vec<i64> = db
        .sql("SELECT id FROM ir_cron WHERE cron_name LIKE 'bench notify %' ORDER BY id")?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let wait_for =
        |sql: &str, want: &str, timeout: Duration, every: Duration| -> Result<(), String> {
            let started = Instant::now();
            loop {
                let got = db.sql(sql)?;
                if got == want {
                    return Ok(());
                }
                if started.elapsed() > timeout {
                    return Err(format!(
                        "`{sql}` gave {got}, not {want}, within {timeout:?}:\n{}",
                        server.log_tail()
                    ));
                }
                std::thread::sleep(every);
            }
        };
    for id in &ids {
        db.sql(&format!(
            "BEGIN; INSERT INTO ir_cron_trigger (cron_id, call_at) VALUES ({id}, now() AT TIME ZONE 'UTC'); \
             INSERT INTO bench_notify (job_id, sent) VALUES ({id}, clock_timestamp() AT TIME ZONE 'UTC'); \
             SELECT pg_notify('cron_trigger', '{}'); COMMIT;",
            db.name
        ))?;
        // Not polling at once: the check would compete for the CPU with the job's start.
        std::thread::sleep(Duration::from_millis(100));
        wait_for(
            &format!("SELECT count(*) FROM test_db_cron_log WHERE job_id = {id}"),
            "1",
            Duration::from_secs(10),
            Duration::from_millis(50),
        )?;
    }
    let latencies: Vec<f64> = db
        .sql("SELECT extract(epoch FROM l.started - n.sent) * 1000 FROM bench_notify n JOIN test_db_cron_log l USING (job_id) ORDER BY 1")?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if latencies.len() != ids.len() {
        return Err(format!(
            "{} latencies for {} triggers",
            latencies.len(),
            ids.len()
        ));
    }
    eprintln!("bench: cron NOTIFY-to-start latencies (ms, sorted): {latencies:.1?}");

    db.sql(&format!(
        "BEGIN; INSERT INTO ir_cron (cron_name, handler, interval_number, interval_type, nextcall) \
         SELECT 'bench job ' || n, 'test_db.write_row', 1, 'days', now() AT TIME ZONE 'UTC' - interval '1 hour' \
         FROM generate_series(1, {JOBS}) n; \
         INSERT INTO bench_notify (job_id, sent) VALUES (0, clock_timestamp() AT TIME ZONE 'UTC'); \
         SELECT pg_notify('cron_trigger', '{}'); COMMIT;",
        db.name
    ))?;
    wait_for(
        "SELECT count(*) FROM ir_cron WHERE cron_name LIKE 'bench job %' AND last_outcome IS NOT NULL",
        &JOBS.to_string(),
        Duration::from_secs(300),
        // Rarely: the end time comes from the database, and each psql costs CPU.
        Duration::from_secs(1),
    )?;
    let row = db.sql(
        "SELECT extract(epoch FROM max(c.last_end) - (SELECT sent FROM bench_notify WHERE job_id = 0)), \
         extract(epoch FROM min(c.last_start) - (SELECT sent FROM bench_notify WHERE job_id = 0)) * 1000, \
         count(*) FILTER (WHERE c.last_outcome <> 'done'), \
         (SELECT count(*) FROM test_db_cron_log WHERE job_name LIKE 'bench job %'), \
         (SELECT count(DISTINCT job_id) FROM test_db_cron_log WHERE job_name LIKE 'bench job %') \
         FROM ir_cron c WHERE c.cron_name LIKE 'bench job %'",
    )?;
    server.stop();
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
    let f: Vec<&str> = row.split('|').collect();
    let num = |i: usize| -> Result<f64, String> {
        f.get(i)
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("cannot read the throughput row: {row}"))
    };
    let (secs, first_ms, not_done, runs, distinct) = (num(0)?, num(1)?, num(2)?, num(3)?, num(4)?);
    if not_done > 0.0 || runs != JOBS as f64 || distinct != JOBS as f64 {
        return Err(format!(
            "of {JOBS} due jobs: {not_done} not done, {runs} runs of {distinct} distinct jobs"
        ));
    }
    let rate = JOBS as f64 / secs;
    eprintln!("bench: cron: {JOBS} jobs in {secs:.3} s ({rate:.0}/s); first job started {first_ms:.1} ms after the NOTIFY");
    Ok(vec![
        host_row(
            "9",
            format!("cron: NOTIFY to job start, median and p99 (ms; {} triggers one at a time, `--max-cron-threads 2`, workers LISTENing on the job's database; start = the handler's `clock_timestamp()`; max {:.1})", latencies.len(), max(&latencies)),
            format!("{:.1} / {:.1}", median(&latencies), percentile(&latencies, 99.0)),
            "",
            String::new(),
        ),
        host_row(
            "9",
            format!("cron: jobs per second, {JOBS} trivial due jobs, 2 workers (one NOTIFY to the last job's end: {secs:.2} s; first job started {first_ms:.0} ms after the NOTIFY; each ran once)"),
            format!("{rate:.0}"),
            "",
            String::new(),
        ),
    ])
}

/// The items of the second table, in order: (item, function).
pub type Item = fn(&Env, &Options) -> Result<Vec<Row>, String>;
pub const OTHER_ITEMS: &[(&str, Item)] = &[
    ("5", item5_startup),
    ("6", item6_memory),
    ("7", item7_swap),
    ("8", item8_phoenix),
    ("9", item9_cron),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=50).map(f64::from).collect();
        assert_eq!(percentile(&v, 99.0), 50.0);
        assert_eq!(percentile(&v, 50.0), 25.0);
        assert!(percentile(&[], 99.0).is_nan());
    }

    #[test]
    fn reads_the_swap_line() {
        let log = "2026-11-26 02:20:01,583 1 INFO ? inphms.service.server: generation 3 serving after 8.1 ms (10 routes; reloaded: test_swap); 5 library images kept mapped (41 MiB), swap 2 of 16\n";
        assert_eq!(swap_ms(log, 3), Some(8.1));
        assert_eq!(swap_ms(log, 2), None);
        assert_eq!(
            images_kept(log).as_deref(),
            Some("5 library images kept mapped (41 MiB)")
        );
    }
}
