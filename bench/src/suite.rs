//! The measurements, by issue 7's numbering. Items 1–4 are [`SCENARIOS`] (a server, a load,
//! a baseline to compare with), run interleaved by [`run_throughput`]; items 5 and 6 are
//! [`item5_startup`] and [`item6_memory`]; items 7–9 are placeholders until the features
//! they need exist ([`item7_swap`], [`item8_phoenix`], [`item9_cron`]): each becomes a real
//! measurement by filling in its function, which returns its rows of the second table.

use crate::client;
use crate::loadgen::{Generator, Load, Stats};
use crate::median;
use crate::procfs::{self, Counters};
use crate::report::{fmt_ms, fmt_ratio, verdict, Row};
use crate::servers::{Env, Kind, Server};
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
            .map_or(true, |o| o.iter().any(|i| i == item))
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
        name: "keep-alive GET /test_http/get/x, session cookie (one session read per request)",
        kind: Kind::Host { load: TEST_ADDONS, access_log: true },
        load: |s| Ok(Load::get("/test_http/get/x").header("Cookie", &format!("session_id={}", session(s)?))),
        expect: "1",
        reference: Some("base-get"),
        targets: Targets { rps_min: Some(0.6), cpu_max: None },
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

/// Starts the scenario's server, checks one request, warms up, then measures.
fn run_scenario(env: &Env, opts: &Options, sc: &Scenario, round: usize) -> Result<Sample, String> {
    let dir = env.scratch(&format!("{}-{round}", sc.key))?;
    let server = Server::start(env, &sc.kind, &dir)?;
    let load = (sc.load)(&server)?;
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
            warm = Some((served, rss()));
        }
    }
    let end_kib = rss();
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let (warm_requests, warm_kib) = warm.unwrap_or((served, end_kib));
    Ok(Memory {
        idle_kib,
        warm_kib,
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
    let hg = growth(&h);
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
                "RSS after ≥ {n} keep-alive requests (MiB; host {} requests, baseline {}); growth after warm-up in KiB: host {hg:+}, baseline {:+}",
                h.requests,
                b.requests,
                growth(&b)
            ),
            baseline: mib(b.end_kib),
            host: mib(h.end_kib),
            ratio: ratio(h.end_kib, b.end_kib),
            target: "no growth after warm-up".into(),
            // Allow page-granularity noise: 1% of the warm RSS or 256 KiB.
            met: verdict((hg as f64) <= (h.warm_kib as f64 * 0.01).max(256.0)),
        },
    ])
}

fn not_yet(item: &str, measure: &str, needs: &str, target: &str) -> Row {
    Row {
        item: item.into(),
        measure: measure.into(),
        baseline: "—".into(),
        host: format!("not measured yet (needs {needs})"),
        ratio: "—".into(),
        target: target.into(),
        met: "—".into(),
    }
}

/// Item 7: swap under load. Needs the SIGHUP swap of the lifecycle issue.
pub fn item7_swap(_env: &Env, _opts: &Options) -> Result<Vec<Row>, String> {
    Ok(vec![
        not_yet("7", "swap under load: failed requests", "SIGHUP swap", "0"),
        not_yet("7", "swap duration", "SIGHUP swap", "≤ 20 ms"),
        not_yet(
            "7",
            "throughput in the second of the swap / the second before",
            "SIGHUP swap",
            "",
        ),
        not_yet("7", "RSS growth per swap", "SIGHUP swap", ""),
    ])
}

/// Item 8: phoenix re-exec under load. Needs the phoenix re-exec.
pub fn item8_phoenix(_env: &Env, _opts: &Options) -> Result<Vec<Row>, String> {
    Ok(vec![
        not_yet(
            "8",
            "phoenix re-exec under load: refused connections",
            "phoenix",
            "0",
        ),
        not_yet("8", "worst latency during the re-exec", "phoenix", ""),
    ])
}

/// Item 9: cron. Needs the databases issue (cron workers, NOTIFY).
pub fn item9_cron(_env: &Env, _opts: &Options) -> Result<Vec<Row>, String> {
    Ok(vec![
        not_yet("9", "cron: NOTIFY to job start, median and p99", "cron", ""),
        not_yet(
            "9",
            "cron: jobs per second, 1000 trivial due jobs, 2 workers",
            "cron",
            "",
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
