//! The host's Prometheus metrics (`--metrics`, served at `/metrics` by `http`): one
//! [`Metrics`] per host, built by the composition root (`service::server::Host`) and handed
//! down by `Arc` to the request path, the cron workers and the lifecycle; no static.
//!
//! Counters and histograms that move on the request path are pre-resolved per route
//! ([`RouteMetrics`]: one label set per route, the method and status class resolved once
//! each and kept), so a request costs a few atomic additions and one histogram lock, no
//! allocation. What is a state rather than an event (requests in flight, websockets open,
//! pool connections in use, the generation) is read at scrape time by the layer that owns
//! it ([`Metrics::gauges`]): nothing to keep up to date per request. With `--metrics` off,
//! nothing is recorded on the request path and `/metrics` is an unknown route (404).
//!
//! The names, types and labels are listed in README.md ("Metrics").

mod gauges;
mod route;

pub use gauges::{GaugeFn, Sample};
pub use route::{HttpMetrics, RouteMetrics};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Mutex;
use std::time::Duration;

/// The `Content-Type` of `/metrics` (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the latency buckets of requests and cron runs.
pub const LATENCY_BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The label of a cron job's series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    db: String,
    job: String,
}

/// The label of a session store's series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    store: &'static str,
}

/// The cron workers' series: runs, failures and duration per job.
#[derive(Debug)]
pub struct CronMetrics {
    enabled: bool,
    runs: Family<JobLabels, Counter>,
    failures: Family<JobLabels, Counter>,
    duration: Family<JobLabels, Histogram, fn() -> Histogram>,
}

impl CronMetrics {
    /// A run of `job` on `db` ended (`ok`: its work committed) after `elapsed`.
    pub fn job_ran(&self, db: &str, job: &str, ok: bool, elapsed: Duration) {
        if !self.enabled {
            return;
        }
        let labels = JobLabels {
            db: db.to_owned(),
            job: job.to_owned(),
        };
        self.runs.get_or_create(&labels).inc();
        if !ok {
            self.failures.get_or_create(&labels).inc();
        }
        self.duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }
}

/// The session stores' series: sessions read and written, by store type.
#[derive(Debug)]
pub struct SessionMetrics {
    read: Family<StoreLabels, Counter>,
    written: Family<StoreLabels, Counter>,
}

impl SessionMetrics {
    /// The counters of the store named `store` (its type: `filesystem`, ...): sessions
    /// read, sessions written.
    pub fn counters(&self, store: &'static str) -> (Counter, Counter) {
        let labels = StoreLabels { store };
        (
            self.read.get_or_create_owned(&labels),
            self.written.get_or_create_owned(&labels),
        )
    }
}

/// The lifecycle's series: swaps and re-execs.
#[derive(Debug, Default)]
pub struct ServiceMetrics {
    /// Addon swaps (SIGHUP, `--dev=reload`) that built a new generation.
    pub swaps: Counter,
    /// Re-execs (phoenix) of this process since it was first started (carried across the
    /// re-exec by [`REEXECS_ENV`]).
    pub reexecs: Counter,
}

/// The environment variable carrying the count of re-execs to the new image.
pub const REEXECS_ENV: &str = "INPHMS_REEXECS";

/// One host's metrics; see the [module docs](self).
#[derive(Debug)]
pub struct Metrics {
    enabled: bool,
    registry: Mutex<Registry>,
    /// The request path's series.
    pub http: HttpMetrics,
    /// The cron workers' series.
    pub cron: CronMetrics,
    /// The session stores' series.
    pub sessions: SessionMetrics,
    /// The lifecycle's series.
    pub service: ServiceMetrics,
}

impl Metrics {
    /// The metrics of a host; `enabled` (`--metrics`) serves `/metrics` and records the
    /// request path's series.
    pub fn new(enabled: bool) -> Metrics {
        let mut registry = Registry::with_prefix("inphms");
        let http = HttpMetrics::new(enabled);
        http.register(&mut registry);
        let cron = CronMetrics {
            enabled,
            runs: Family::default(),
            failures: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
        };
        registry.register(
            "cron_runs",
            "Cron job runs ended, by database and job",
            cron.runs.clone(),
        );
        registry.register(
            "cron_failures",
            "Cron job runs that failed (work rolled back), by database and job",
            cron.failures.clone(),
        );
        registry.register(
            "cron_run_duration_seconds",
            "Duration of cron job runs, by database and job",
            cron.duration.clone(),
        );
        let sessions = SessionMetrics {
            read: Family::default(),
            written: Family::default(),
        };
        registry.register(
            "sessions_read",
            "Sessions read from the session store, by store type",
            sessions.read.clone(),
        );
        registry.register(
            "sessions_written",
            "Sessions written to the session store, by store type",
            sessions.written.clone(),
        );
        let service = ServiceMetrics::default();
        if let Some(n) = std::env::var(REEXECS_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            service.reexecs.inc_by(n);
        }
        registry.register(
            "swaps",
            "Addon swaps that built a new generation (SIGHUP, --dev=reload)",
            service.swaps.clone(),
        );
        registry.register(
            "reexecs",
            "Re-execs of the process (memory, swap limit, stuck handlers, new binary)",
            service.reexecs.clone(),
        );
        Metrics {
            enabled,
            registry: Mutex::new(registry),
            http,
            cron,
            sessions,
            service,
        }
    }

    /// Whether `/metrics` is served (`--metrics`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Adds gauges read at each scrape by `read` (see [`GaugeFn`]); the name gets the
    /// `inphms_` prefix.
    pub fn gauges(&self, gauge: GaugeFn) {
        self.registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .register_collector(Box::new(gauge));
    }

    /// Every series in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(8192);
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry) {
            tracing::error!(target: "inphms.metrics", "cannot encode the metrics: {e}");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_move_and_are_encoded_with_the_prefix() {
        let m = Metrics::new(true);
        m.cron
            .job_ran("db1", "sweep", true, Duration::from_millis(3));
        m.cron
            .job_ran("db1", "sweep", false, Duration::from_millis(3));
        let (read, written) = m.sessions.counters("filesystem");
        read.inc();
        written.inc_by(2);
        m.service.swaps.inc();
        m.gauges(GaugeFn::new("generation", "The generation", || {
            vec![Sample::plain(7)]
        }));
        let text = m.encode();
        for line in [
            "inphms_cron_runs_total{db=\"db1\",job=\"sweep\"} 2",
            "inphms_cron_failures_total{db=\"db1\",job=\"sweep\"} 1",
            "inphms_cron_run_duration_seconds_count{db=\"db1\",job=\"sweep\"} 2",
            "inphms_sessions_read_total{store=\"filesystem\"} 1",
            "inphms_sessions_written_total{store=\"filesystem\"} 2",
            "inphms_swaps_total 1",
            "inphms_generation 7",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
