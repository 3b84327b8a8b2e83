//! Item 4: `GET /web/health` with `Connection: close`: a new TCP connection per request.
//!
//! - **Measures**: as item 1 (requests per second, latency, CPU per request).
//! - **Baseline**: `bench-baseline` with `Connection: close` (`base-close`).
//! - **Target**: none (measured).

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
    },
];
