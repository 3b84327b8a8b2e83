//! Item 7: swaps under keep-alive load (SIGHUP with a new build of `test_swap` installed).
//!
//! - **Measures**: failed requests over five swaps (wrk's non-2xx responses and socket
//!   errors), each swap's duration (the host's own `generation N serving after X ms` line),
//!   the throughput of the second of the swap against the second before, and the idle RSS
//!   growth per swap.
//! - **Baseline**: none (the host against itself before the swap).
//! - **Target**: no failed request; every swap ≤ 5 ms (issue 23; 20 ms in issue 7).

use super::swap_host::{expect_version, swap_build, swap_server};
use crate::loadgen::{Load, Stats};
use crate::model::{fmt_mib, fmt_ratio, verdict, Options, Row};
use crate::procfs;
use crate::servers::{install_library, Env};
use crate::stats::{max, median, min};
use inphms_test_support::process;
use std::time::Duration;

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
                    process::signal(pid, "HUP")
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
        Row::host_only(
            "7",
            format!("swap under load: failed requests (wrk non-2xx + socket errors; {SWAPS} swaps v1→v2→v1..., each in {slices} s of `wrk -c{}` keep-alive on /test_swap/version; {requests} requests)", opts.connections),
            failed.to_string(),
            "0",
            verdict(failed == 0),
        ),
        Row::host_only(
            "7",
            format!("swap duration (ms; the host's `generation N serving after X ms`; median of {SWAPS}, max {worst:.1}; all: {})", durations.iter().map(|d| format!("{d:.1}")).collect::<Vec<_>>().join(", ")),
            format!("{:.1}", median(&durations)),
            "≤ 5 ms, every swap",
            verdict(worst <= 5.0),
        ),
        Row::host_only(
            "7",
            format!("throughput in the second of the swap / the second before (1 s wrk runs; median of {SWAPS}, min {:.2}x; req/s medians {:.0} before, {:.0} during)", min(&ratios), median(&before), median(&during)),
            fmt_ratio(median(&ratios)),
            "",
            String::new(),
        ),
        Row::host_only(
            "7",
            format!("RSS growth per swap (KiB; idle VmRSS after each swap minus before, mean of {SWAPS}; each: {}; {} MiB before the first; {kept} at the end)", deltas.iter().map(|d| format!("{d:+}")).collect::<Vec<_>>().join(", "), fmt_mib(rss_kib[0])),
            format!("{growth:+.0}"),
            "",
            String::new(),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

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
