//! Item 1: keep-alive `GET /web/health`, the host's cheapest route, against a bare hyper
//! hello world.
//!
//! - **Measures**: requests per second, latency (p50, p99), server CPU per request,
//!   context switches and threads under `wrk -t1 -c32` keep-alive load, with the access log
//!   on (the default) and off (`--log-handler werkzeug:WARNING`).
//! - **Baseline**: `bench-baseline` (`base-get`), served as the host serves connections;
//!   two more baselines show the cost of a per-request hand-off alone (`spawn_blocking`,
//!   `block_in_place`), no target.
//! - **Target**: the host at ≥ 0.85x the baseline's requests per second and ≤ 1.3x its
//!   CPU per request, with and without the access log.

use crate::loadgen::Load;
use crate::model::{Scenario, Targets};
use crate::servers::Kind;

/// The scenarios of item 1, in the order they run in each round.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        key: "base-get",
        item: "1",
        name: "keep-alive GET (baseline hello world)",
        kind: Kind::BASELINE,
        load: |_| Ok(Load::get("/")),
        expect: "Hello, World!",
        reference: None,
        targets: Targets {
            rps_min: None,
            cpu_max: None,
        },
    },
    Scenario {
        key: "host-health",
        item: "1",
        name: "keep-alive GET /web/health, access log on (default)",
        kind: Kind::HOST,
        load: |_| Ok(Load::get("/web/health")),
        expect: "pass",
        reference: Some("base-get"),
        targets: Targets {
            rps_min: Some(0.85),
            cpu_max: Some(1.3),
        },
    },
    Scenario {
        key: "base-blocking",
        item: "1",
        name:
            "keep-alive GET, baseline with spawn_blocking per request (the host's hand-off alone)",
        kind: Kind::Baseline {
            mode: "--spawn-blocking",
        },
        load: |_| Ok(Load::get("/")),
        expect: "Hello, World!",
        reference: Some("base-get"),
        targets: Targets {
            rps_min: None,
            cpu_max: None,
        },
    },
    Scenario {
        key: "base-block-in-place",
        item: "1",
        name: "keep-alive GET, baseline with block_in_place per request (an alternative hand-off)",
        kind: Kind::Baseline {
            mode: "--block-in-place",
        },
        load: |_| Ok(Load::get("/")),
        expect: "Hello, World!",
        reference: Some("base-get"),
        targets: Targets {
            rps_min: None,
            cpu_max: None,
        },
    },
    Scenario {
        key: "host-health-nolog",
        item: "1",
        name: "keep-alive GET /web/health, access log off",
        kind: Kind::Host {
            load: "",
            access_log: false,
        },
        load: |_| Ok(Load::get("/web/health")),
        expect: "pass",
        reference: Some("base-get"),
        targets: Targets {
            rps_min: Some(0.85),
            cpu_max: Some(1.3),
        },
    },
];
