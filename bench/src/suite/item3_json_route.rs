//! Item 3: a json route, `POST /web/webclient/version_info` with the web client's JSON-RPC
//! body, under keep-alive load.
//!
//! - **Measures**: as item 1 (requests per second, latency, CPU per request).
//! - **Baseline**: `bench-baseline` answering the same POST (`base-post`: it reads the body
//!   and answers its hello world).
//! - **Target**: none (measured; `cargo xtask bench --instructions` counts its instructions
//!   per request).

use crate::loadgen::Load;
use crate::model::{Scenario, Targets};
use crate::servers::Kind;

/// The JSON-RPC body of item 3 (the web client's call shape).
pub const JSONRPC_BODY: &str = r#"{"jsonrpc":"2.0","method":"call","params":{},"id":1}"#;

/// The scenarios of item 3, in the order they run in each round.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        key: "base-post",
        item: "3",
        name: "keep-alive POST with the JSON-RPC body (baseline)",
        kind: Kind::BASELINE,
        load: |_| Ok(Load::post_json("/web/webclient/version_info", JSONRPC_BODY)),
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
        key: "host-version-info",
        item: "3",
        name: "keep-alive POST /web/webclient/version_info (json route, JSON-RPC body)",
        kind: Kind::HOST,
        load: |_| Ok(Load::post_json("/web/webclient/version_info", JSONRPC_BODY)),
        expect: "server_version",
        reference: Some("base-post"),
        targets: Targets {
            rps_min: None,
            cpu_max: None,
        },
        peer: None,
        peer_targets: Targets::NONE,
    },
];
