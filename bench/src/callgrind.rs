//! Instructions per request, counted by `valgrind --tool=callgrind` (`bench-suite
//! --instructions`): unlike the wall-clock runs, the counts do not depend on what else the
//! machine is doing, so they compare two builds of the request path precisely.
//!
//! For each scenario (a server and its load, from [`suite::scenarios`]): the server starts
//! under callgrind, its first answer is checked, the load runs for a warm-up, the counters
//! are zeroed (`callgrind_control -z`), the load runs again with 8 connections, the counters
//! are dumped (`callgrind_control -d`) and the dump's total is divided by the requests the
//! load generator counted. Background work (the log flusher, the 2 s tick) is counted too;
//! it is a few instructions per request.

use crate::loadgen::Stats;
use crate::model::{Options, Scenario};
use crate::servers::{Env, Server};
use crate::suite;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The scenarios counted, baselines first (a host row is compared with its scenario's
/// reference baseline).
pub const KEYS: &[&str] = &[
    "base-get",
    "host-health",
    "host-session-read",
    "base-post",
    "host-version-info",
];

/// Connections of the counted load (the server runs slowly under callgrind).
const CONNECTIONS: u32 = 8;
const WARMUP: Duration = Duration::from_secs(3);
const MEASURED: Duration = Duration::from_secs(8);

/// One scenario's count.
#[derive(Clone)]
pub struct Count {
    pub scenario: &'static Scenario,
    pub requests: u64,
    pub instructions: u64,
}

impl Count {
    pub fn per_request(&self) -> f64 {
        self.instructions as f64 / self.requests.max(1) as f64
    }
}

/// Counts the scenarios of [`KEYS`], or those `opts.only` names (in this mode its entries
/// are keys of [`suite::scenarios`], e.g. `base-close,host-close`). With `keep`, each dump is kept there as `<key>.callgrind`,
/// for `callgrind_annotate`.
pub fn run(env: &Env, opts: &Options, keep: Option<&Path>) -> Result<Vec<Count>, String> {
    let keys: Vec<&str> = match &opts.only {
        None => KEYS.to_vec(),
        Some(only) => {
            if let Some(unknown) = only
                .iter()
                .find(|k| !suite::scenarios().any(|s| s.key == k.as_str()))
            {
                let all: Vec<&str> = suite::scenarios().map(|s| s.key).collect();
                return Err(format!(
                    "--only {unknown}: with --instructions, --only takes scenario keys ({})",
                    all.join(", ")
                ));
            }
            only.iter().map(String::as_str).collect()
        }
    };
    if let Some(dir) = keep {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    for tool in ["valgrind", "callgrind_control"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Err(format!(
                "{tool} is not installed (it comes with valgrind: apt-get install valgrind)"
            ));
        }
    }
    let mut counts = Vec::new();
    for key in keys {
        let scenario = suite::scenarios()
            .find(|s| s.key == key)
            .ok_or_else(|| format!("no scenario {key}"))?;
        eprintln!("bench: callgrind: {key} ({})", scenario.kind.describe());
        let count = count(env, opts, scenario, keep)?;
        eprintln!(
            "bench:   {} requests, {:.0} instructions per request",
            count.requests,
            count.per_request()
        );
        counts.push(count);
    }
    Ok(counts)
}

fn count(
    env: &Env,
    opts: &Options,
    sc: &'static Scenario,
    keep: Option<&Path>,
) -> Result<Count, String> {
    let dir = env.scratch(&format!("callgrind-{}", sc.key))?;
    let out = dir.join("callgrind.out");
    let wrapper = [
        "valgrind".to_owned(),
        "--tool=callgrind".to_owned(),
        format!("--callgrind-out-file={}", out.display()),
    ];
    let server = Server::start_wrapped(env, &sc.kind, &dir, &[], &wrapper)?;
    let load = suite::first_request(sc, &server)?;
    opts.generator
        .run(server.port, &load, CONNECTIONS, WARMUP, &dir)?;
    control(server.pid, "-z")?;
    let stats: Stats = opts
        .generator
        .run(server.port, &load, CONNECTIONS, MEASURED, &dir)?;
    control(server.pid, "-d")?;
    let dump = dir.join("callgrind.out.1");
    let instructions = wait_for_total(&dump, Duration::from_secs(60))?;
    server.stop();
    if let Some(keep) = keep {
        let kept = keep.join(format!("{}.callgrind", sc.key));
        std::fs::copy(&dump, &kept)
            .map_err(|e| format!("cannot keep the dump as {}: {e}", kept.display()))?;
        eprintln!("bench:   dump kept as {}", kept.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
    if stats.requests == 0 || stats.errors * 1000 > stats.requests {
        return Err(format!(
            "{}: {} errors in {} requests under callgrind",
            sc.key, stats.errors, stats.requests
        ));
    }
    Ok(Count {
        scenario: sc,
        requests: stats.requests,
        instructions,
    })
}

/// `callgrind_control <flag> <pid>`.
fn control(pid: u32, flag: &str) -> Result<(), String> {
    let out = Command::new("callgrind_control")
        .arg(flag)
        .arg(pid.to_string())
        .output()
        .map_err(|e| format!("cannot run callgrind_control: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "callgrind_control {flag} {pid} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The `totals:` line of a dump (its last line: the file is complete once it is there).
fn wait_for_total(path: &Path, timeout: Duration) -> Result<u64, String> {
    let start = Instant::now();
    loop {
        if let Some(total) = std::fs::read_to_string(path)
            .ok()
            .as_deref()
            .and_then(total_of)
        {
            return Ok(total);
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "no complete callgrind dump at {} after {timeout:?}",
                path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn total_of(dump: &str) -> Option<u64> {
    dump.lines()
        .rev()
        .find_map(|l| l.strip_prefix("totals: "))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The counts as a Markdown table, each host row against its reference baseline.
pub fn table(counts: &[Count]) -> String {
    let mut s = String::from(
        "| scenario | server | requests | instructions per request | vs baseline |\n|---|---|---|---|---|\n",
    );
    for c in counts {
        let reference = c
            .scenario
            .reference
            .and_then(|r| counts.iter().find(|b| b.scenario.key == r));
        let ratio = reference
            .map(|b| format!("{:.2}x", c.per_request() / b.per_request()))
            .unwrap_or_else(|| "(baseline)".to_owned());
        s.push_str(&format!(
            "| {} | `{}` | {} | {:.1}k | {ratio} |\n",
            c.scenario.name,
            c.scenario.kind.describe(),
            c.requests,
            c.per_request() / 1000.0
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::total_of;

    #[test]
    fn reads_the_dump_total() {
        let dump =
            "version: 1\ncreator: callgrind-3.19.0\nsummary: 1234\nfn=x\n0 1\ntotals: 1240\n";
        assert_eq!(total_of(dump), Some(1240));
        // Not yet complete: the summary alone is not taken.
        assert_eq!(total_of("summary: 77\nfn=x\n"), None);
    }
}
