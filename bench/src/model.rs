//! What a run is and what it yields: the suite's settings ([`Options`]), the throughput
//! scenarios of items 1–4 ([`Scenario`], [`Targets`]) and their samples ([`Sample`],
//! [`Measured`]), the rows of the second table ([`Row`]), and the formatting of the values
//! in both tables. [`crate::suite`] fills these types and [`crate::report`] prints them;
//! neither imports the other.

use crate::loadgen::{Generator, Load, Stats};
use crate::servers::{Kind, Server};
use crate::stats::median;
use std::time::Duration;

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

/// Targets as ratios to the reference baseline (or to the peer).
#[derive(Debug, Clone, Copy, Default)]
pub struct Targets {
    pub rps_min: Option<f64>,
    pub cpu_max: Option<f64>,
}

impl Targets {
    /// No target.
    pub const NONE: Targets = Targets {
        rps_min: None,
        cpu_max: None,
    };
}

/// One throughput scenario: a server, the load, what the first response must contain, and
/// the scenarios it is compared with: its baseline (`reference`, a bare hyper server built
/// like the host) and its peer (`peer`: nginx for `/web/health`, the autocommit baseline
/// for the database route), each with its own targets.
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
    pub peer: Option<&'static str>,
    pub peer_targets: Targets,
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

/// A row of the second table (items 5–9 and 11).
#[derive(Debug, Clone)]
pub struct Row {
    pub item: String,
    pub measure: String,
    pub baseline: String,
    pub host: String,
    /// nginx's figure (the peer), `—` when it has none.
    pub peer: String,
    /// host/baseline.
    pub ratio: String,
    pub target: String,
    pub met: String,
}

impl Row {
    /// A row with no baseline (`—` in the baseline and ratio columns).
    pub fn host_only(item: &str, measure: String, host: String, target: &str, met: String) -> Row {
        Row {
            item: item.into(),
            measure,
            baseline: "—".into(),
            host,
            peer: "—".into(),
            ratio: "—".into(),
            target: target.into(),
            met,
        }
    }
}

/// Microseconds as `123 us` or `1.23 ms`.
pub fn fmt_ms(us: f64) -> String {
    if us.is_nan() {
        "—".into()
    } else if us < 1000.0 {
        format!("{us:.0} us")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

/// A ratio as `0.85x`; `—` when not finite.
pub fn fmt_ratio(r: f64) -> String {
    if r.is_finite() {
        format!("{r:.2}x")
    } else {
        "—".into()
    }
}

/// KiB as MiB with one decimal.
pub fn fmt_mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// The `met` column: `yes` or a bold `no`.
pub fn verdict(met: bool) -> String {
    if met {
        "yes".into()
    } else {
        "**no**".into()
    }
}
