//! Item 6: memory. The resident set of the host and of the baseline idle after start,
//! after a warm-up, and after `--requests` (1,000,000) keep-alive requests.
//!
//! - **Measures**: `VmRSS` 1 s after start, after the first tenth of the requests, at the
//!   end and 2.5 s later, reached by consecutive load runs on one process; the growth after the warm-up in
//!   `VmRSS` and in `RssAnon` (heap and stacks, without mapped files).
//! - **Baseline**: `bench-baseline` under the same load on `/`.
//! - **Target**: idle RSS ≤ 8 MiB (issue 23; 20 MiB in issue 7); no growth after the
//!   warm-up, judged on `RssAnon` with an allowance of 1% of the warm RSS or 256 KiB (page
//!   granularity), whichever is larger. The idle RSS 2.5 s after the last request (past the
//!   host's heap trim) is given beside the idle RSS after start, no target.

use crate::loadgen::Load;
use crate::model::{fmt_mib, fmt_ratio, verdict, Options, Row};
use crate::procfs;
use crate::servers::{Env, Kind, Server};
use std::time::{Duration, Instant};

/// The idle RSS target (issue 23; 20 MiB in issue 7), in MiB.
const IDLE_TARGET_MIB: f64 = 8.0;

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
    /// `VmRSS` 2.5 s after the last request (past the host's 2 s heap trim).
    rested_kib: u64,
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
    std::thread::sleep(Duration::from_millis(2500));
    let rested_kib = rss();
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
        rested_kib,
    })
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
            baseline: fmt_mib(b.idle_kib),
            host: fmt_mib(h.idle_kib),
            peer: "—".into(),
            ratio: ratio(h.idle_kib, b.idle_kib),
            target: format!("≤ {IDLE_TARGET_MIB} MiB"),
            met: verdict(h.idle_kib as f64 / 1024.0 <= IDLE_TARGET_MIB),
        },
        Row {
            item: "6".into(),
            measure: format!("RSS after warm-up (MiB; host after {} requests, baseline after {})", h.warm_requests, b.warm_requests),
            baseline: fmt_mib(b.warm_kib),
            host: fmt_mib(h.warm_kib),
            peer: "—".into(),
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
            baseline: fmt_mib(b.end_kib),
            host: fmt_mib(h.end_kib),
            peer: "—".into(),
            ratio: ratio(h.end_kib, b.end_kib),
            target: "no growth after warm-up (judged on RssAnon)".into(),
            // Allow page-granularity noise: 1% of the warm RSS or 256 KiB.
            met: verdict((hag as f64) <= (h.warm_kib as f64 * 0.01).max(256.0)),
        },
        Row {
            item: "6".into(),
            measure: format!(
                "idle RSS 2.5 s after the last of those requests (MiB; over the idle RSS after start: host {:+} KiB, baseline {:+} KiB)",
                h.rested_kib as i64 - h.idle_kib as i64,
                b.rested_kib as i64 - b.idle_kib as i64
            ),
            baseline: fmt_mib(b.rested_kib),
            host: fmt_mib(h.rested_kib),
            peer: "—".into(),
            ratio: ratio(h.rested_kib, b.rested_kib),
            target: "".into(),
            met: "".into(),
        },
    ])
}
