//! Item 1: keep-alive `GET /web/health`, the host's cheapest route, against a bare hyper
//! hello world.
//!
//! - **Measures**: requests per second, latency (p50, p99), server CPU per request,
//!   context switches and threads under `wrk -t1 -c32` keep-alive load, with the access log
//!   on (the default) and off (`--log-handler werkzeug:WARNING`).
//! - **Baseline**: `bench-baseline` (`base-get`), served as the host serves connections;
//!   two more baselines show the cost of a per-request hand-off alone (`spawn_blocking`,
//!   `block_in_place`), no target.
//! - **Peer**: nginx with 2 workers answering `return 200` with the same 17-byte body and
//!   headers (`nginx-health`, its access log on, written in batches; `nginx-health-nolog`),
//!   a private instance per run ([`crate::nginx`]).
//! - **Target**: the host at ≥ 0.85x the baseline's requests per second and ≤ 1.3x its
//!   CPU per request, with and without the access log (issue 7); with the access log on,
//!   at ≥ 1.0x nginx's requests per second and ≤ 1.0x its CPU per request (issue 23).

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
        peer: None,
        peer_targets: Targets::NONE,
    },
    Scenario {
        key: "nginx-health",
        item: "1",
        name: "keep-alive GET /web/health, nginx `return 200` (the peer), access log on",
        kind: Kind::Nginx { access_log: true },
        load: |_| Ok(Load::get("/web/health")),
        expect: "pass",
        reference: Some("base-get"),
        targets: Targets::NONE,
        peer: None,
        peer_targets: Targets::NONE,
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
        peer: Some("nginx-health"),
        peer_targets: Targets {
            rps_min: Some(1.0),
            cpu_max: Some(1.0),
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
        peer: None,
        peer_targets: Targets::NONE,
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
        peer: None,
        peer_targets: Targets::NONE,
    },
    Scenario {
        key: "nginx-health-nolog",
        item: "1",
        name: "keep-alive GET /web/health, nginx `return 200`, access log off",
        kind: Kind::Nginx { access_log: false },
        load: |_| Ok(Load::get("/web/health")),
        expect: "pass",
        reference: Some("base-get"),
        targets: Targets::NONE,
        peer: None,
        peer_targets: Targets::NONE,
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
        peer: Some("nginx-health-nolog"),
        peer_targets: Targets::NONE,
    },
];
