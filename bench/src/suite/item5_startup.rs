//! Item 5: start-up, from the spawn to the first 200 on `/web/health`.
//!
//! - **Measures**: the median of `--startups` (10) starts, each in a fresh data folder,
//!   the baseline, the host (`base` and `web`) and nginx alternating; the host's min–max
//!   beside it.
//! - **Baseline**: `bench-baseline`'s start to its first 200; **peer**: nginx's (2 workers).
//! - **Target**: the host's median ≤ 10 ms (issue 23; 50 ms in issue 7).

use crate::model::{fmt_ratio, verdict, Options, Row};
use crate::servers::{Env, Kind, Server};
use crate::stats::{max, median, min};

/// The target, in milliseconds.
const TARGET_MS: f64 = 10.0;

/// Item 5: spawn to first 200, median of `opts.startups`, the baseline, the host (base and
/// web) and nginx (when installed) alternating, each in a fresh folder.
pub fn item5_startup(env: &Env, opts: &Options) -> Result<Vec<Row>, String> {
    let (mut base, mut host, mut peer) = (Vec::new(), Vec::new(), Vec::new());
    let nginx = Kind::Nginx { access_log: true };
    for i in 0..opts.startups {
        let mut kinds = vec![(Kind::BASELINE, &mut base), (Kind::HOST, &mut host)];
        if env.nginx.is_ok() {
            kinds.push((nginx.clone(), &mut peer));
        }
        for (kind, into) in kinds {
            let dir = env.scratch(&format!("startup-{i}"))?;
            let server = Server::start(env, &kind, &dir)?;
            into.push(server.startup.as_secs_f64() * 1e3);
            server.stop();
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    let (b, h) = (median(&base), median(&host));
    eprintln!("bench: start-up: baseline {b:.1} ms, host {h:.1} ms (host runs: {host:.1?}), nginx {peer:.1?}");
    Ok(vec![Row {
        item: "5".into(),
        measure: format!("start-up: spawn to first 200 on /web/health, median of {} (ms; host min–max {:.1}–{:.1})", opts.startups, min(&host), max(&host)),
        baseline: format!("{b:.1}"),
        host: format!("{h:.1}"),
        peer: if peer.is_empty() { "—".into() } else { format!("{:.1}", median(&peer)) },
        ratio: fmt_ratio(h / b),
        target: format!("≤ {TARGET_MS} ms"),
        met: verdict(h <= TARGET_MS),
    }])
}
