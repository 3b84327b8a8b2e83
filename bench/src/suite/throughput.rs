//! The runner of items 1–4: each [`Scenario`] wanted starts a fresh server, checks one
//! request ([`first_request`]), warms up, then measures under the load generator while its
//! CPU time and context switches are read from `/proc` ([`run_throughput`]); the scenarios of
//! a round alternate baselines and host.

use super::scenarios;
use crate::loadgen::Load;
use crate::model::{fmt_ms, Measured, Options, Sample, Scenario};
use crate::procfs::{self, Counters};
use crate::servers::{Env, Server};
use inphms_test_support::http;
use std::time::Duration;

/// Builds the scenario's load for `server` and checks its first request (status 200 and
/// the expected text).
pub fn first_request(sc: &Scenario, server: &Server) -> Result<Load, String> {
    let load = (sc.load)(server)?;
    let headers: Vec<(&str, &str)> = load
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let first = http::send(
        server.port,
        load.method,
        &load.first_path(),
        &headers,
        load.body.as_deref().unwrap_or("").as_bytes(),
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
    let threads = procfs::family_threads(server.pid).unwrap_or(0);
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

/// Items 1–4: every scenario wanted, once per round, in [`scenarios`] order.
pub fn run_throughput<'a>(env: &Env, opts: &Options) -> Result<Vec<Measured<'a>>, String> {
    let mut measured: Vec<Measured> = scenarios()
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
