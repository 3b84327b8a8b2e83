//! Item 4: `GET /web/health` with `Connection: close`: a new TCP connection per request.
//!
//! - **Measures**: as item 1 (requests per second, latency, CPU per request).
//! - **Baseline**: `bench-baseline` with `Connection: close` (`base-close`).
//! - **Peer**: nginx (as in item 1, access log on) with `Connection: close`.
//! - **Target**: the host at ≥ 1.0x nginx's requests per second (issue 23).

use crate::loadgen::Load;
use crate::model::{Scenario, Targets};
use crate::servers::Kind;

/// The scenarios of item 4, in the order they run in each round.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        key: "base-close",
        item: "4",
        name: "Connection: close GET (baseline)",
        kind: Kind::BASELINE,
        load: |_| Ok(Load::get("/").close()),
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
        key: "nginx-close",
        item: "4",
        name: "Connection: close GET /web/health, nginx `return 200` (the peer), access log on",
        kind: Kind::Nginx { access_log: true },
        load: |_| Ok(Load::get("/web/health").close()),
        expect: "pass",
        reference: Some("base-close"),
        targets: Targets::NONE,
        peer: None,
        peer_targets: Targets::NONE,
    },
    Scenario {
        key: "host-close",
        item: "4",
        name: "Connection: close GET /web/health",
        kind: Kind::HOST,
        load: |_| Ok(Load::get("/web/health").close()),
        expect: "pass",
        reference: Some("base-close"),
        targets: Targets {
            rps_min: None,
            cpu_max: None,
        },
        peer: Some("nginx-close"),
        peer_targets: Targets {
            rps_min: Some(1.0),
            cpu_max: None,
        },
    },
];
