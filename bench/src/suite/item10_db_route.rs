//! Item 10 (issue 17): a route running one `SELECT` through the SDK cursor, `test_db`'s
//! `GET /test_db/count` (`readonly = true`, a blocking handler) and its async twin
//! `GET /test_db/count_async`, against a bare hyper + deadpool-postgres server running the
//! same query.
//!
//! - **Measures**: as item 1 (requests per second, latency, the server's CPU per request;
//!   PostgreSQL's own CPU is not counted), on a database of the suite's own with `test_db`
//!   installed ([`crate::servers::Env::test_db`]); the table has no rows, so the query's
//!   cost is the round trips.
//! - **Baseline**: `bench-baseline-db` running the query in the same kind of transaction as
//!   the host's cursor for a read-only route (`BEGIN ISOLATION LEVEL REPEATABLE READ READ
//!   ONLY`, the `SELECT`, `COMMIT`: three round trips), the statement prepared once per
//!   connection; its **peer** column: the same query in autocommit (one round trip).
//! - **Target**: the async route (`host-db-count-async`, `/test_db/count_async`: the
//!   handler's future polled on the runtime worker, the statement awaited, its `BEGIN`
//!   sent with it) at ≥ 0.8x the transaction baseline's requests per second (issue 17);
//!   the blocking route (0.47x when the issue was filed) and both against autocommit are
//!   measured (0.20x then).

use crate::loadgen::Load;
use crate::model::{Scenario, Targets};
use crate::servers::Kind;

/// The scenarios of item 10, in the order they run in each round.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        key: "base-db-tx",
        item: "10",
        name: "keep-alive GET, bare hyper + deadpool-postgres: BEGIN REPEATABLE READ READ ONLY, the SELECT, COMMIT",
        kind: Kind::BaselineDb { autocommit: false },
        load: |_| Ok(Load::get("/")),
        expect: "notes in",
        reference: None,
        targets: Targets::NONE,
        peer: None,
        peer_targets: Targets::NONE,
    },
    Scenario {
        key: "base-db-autocommit",
        item: "10",
        name: "keep-alive GET, bare hyper + deadpool-postgres: the SELECT in autocommit",
        kind: Kind::BaselineDb { autocommit: true },
        load: |_| Ok(Load::get("/")),
        expect: "notes in",
        reference: Some("base-db-tx"),
        targets: Targets::NONE,
        peer: None,
        peer_targets: Targets::NONE,
    },
    Scenario {
        key: "host-db-count",
        item: "10",
        name: "keep-alive GET /test_db/count (one SELECT through the SDK cursor, read-only route)",
        kind: Kind::HostDb,
        load: |_| Ok(Load::get("/test_db/count")),
        expect: "notes in",
        reference: Some("base-db-tx"),
        // Measured, no target: the issue-17 target moved to the async route below.
        targets: Targets::NONE,
        peer: Some("base-db-autocommit"),
        peer_targets: Targets::NONE,
    },
    Scenario {
        key: "host-db-count-async",
        item: "10",
        name: "keep-alive GET /test_db/count_async (the same SELECT awaited on the async cursor, BEGIN pipelined with it)",
        kind: Kind::HostDb,
        load: |_| Ok(Load::get("/test_db/count_async")),
        expect: "notes in",
        reference: Some("base-db-tx"),
        targets: Targets {
            rps_min: Some(0.8),
            cpu_max: None,
        },
        peer: Some("base-db-autocommit"),
        peer_targets: Targets::NONE,
    },
];
