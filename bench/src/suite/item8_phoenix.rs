//! Item 8: phoenix re-execs under load (`--limit-swaps 0`: every swap re-executes the
//! process, which keeps its pid and hands its listening socket over).
//!
//! - **Measures**: refused connections and other failed requests of four clients opening a
//!   new connection per request, over three re-execs; the worst latency of the requests in
//!   flight between the SIGHUP and the new image's first answer.
//! - **Baseline**: none (the p99 before the re-execs is given beside the worst latency).
//! - **Target**: no refused connection (issue 7); the worst latency ≤ 20 ms (issue 23).

use super::swap_host::{swap_build, swap_server};
use crate::model::{verdict, Options, Row};
use crate::servers::{install_library, Env};
use crate::stats::{max, percentile};
use inphms_test_support::http;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
            let r = http::send(
                port,
                "GET",
                "/test_swap/version",
                &[],
                b"",
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
        Row::host_only(
            "8",
            format!("phoenix re-exec under load: refused connections ({reexecs} re-exec(s) with `--limit-swaps 0`; {CLIENTS} clients, a new connection per request; {} requests)", answers.len()),
            refused.to_string(),
            "0",
            verdict(refused == 0),
        ),
        Row::host_only(
            "8",
            format!("other failed requests during the same run{}", if failures.is_empty() { String::new() } else { format!(" (first: {})", failures[0]) }),
            failures.len().to_string(),
            "",
            String::new(),
        ),
        Row::host_only(
            "8",
            format!("worst latency during the re-exec (ms; connect to last byte, requests in flight between SIGHUP and the first answer of the new image; max of {}: {}; SIGHUP to that first answer: {} ms; p99 before the re-execs {:.2} ms)", worst.len(), fmt_list(&worst), fmt_list(&gaps), percentile(&steady, 99.0)),
            format!("{:.1}", max(&worst)),
            "≤ 20 ms",
            verdict(!worst.is_empty() && max(&worst) <= 20.0),
        ),
    ])
}
