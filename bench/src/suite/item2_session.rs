//! Item 2: the same keep-alive load with a session cookie: a session read per request on
//! `/web/health`, a blocking handler reading its session, an async one doing the same, and
//! a session write per request.
//!
//! - **Measures**: as item 1 (requests per second, latency, CPU per request); the session
//!   is made once by `/test_http/set/x/1` before the load (`session`).
//! - **Baseline**: `bench-baseline`'s keep-alive GET (`base-get`, item 1).
//! - **Target**: the session read on `/web/health` at ≥ 0.8x the baseline's requests per
//!   second (issue 23; 0.6x in issue 7); an async handler reading its session
//!   (`host-session-read-async`, `/test_async/get/x`) at ≥ 0.6x (issue 17; the blocking
//!   handler's row, which had that target, is kept as measured); the write is measured,
//!   no target.
//! - **PostgreSQL store** (issue 21, `host-session-read-pg`): the same session read with
//!   `session_store = postgresql`, whose per-host cache (invalidated by NOTIFY) should make
//!   it cost what the filesystem store's cached read does: ≥ 0.9x `host-session-read`.

use crate::loadgen::Load;
use crate::model::{Scenario, Targets};
use crate::servers::{Kind, Server};
use inphms_test_support::http;
use std::time::Duration;

/// The addons of the host of item 2 (`test_http` has the session routes).
const TEST_ADDONS: &str = "base,web,test_http";

/// The scenarios of item 2, in the order they run in each round.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        key: "host-session-read",
        item: "2",
        name: "keep-alive GET /web/health, session cookie (item 1 plus one session read per request)",
        kind: Kind::Host { load: TEST_ADDONS, access_log: true },
        load: |s| Ok(Load::get("/web/health").header("Cookie", &format!("session_id={}", session(s)?))),
        expect: "pass",
        reference: Some("base-get"),
        targets: Targets { rps_min: Some(0.8), cpu_max: None },
        peer: None,
        peer_targets: Targets::NONE,
    },
    Scenario {
        key: "host-session-read-pg",
        item: "2",
        name: "keep-alive GET /web/health, session cookie, sessions in PostgreSQL (a cached read per request)",
        kind: Kind::HostPgSessions { load: TEST_ADDONS },
        load: |s| Ok(Load::get("/web/health").header("Cookie", &format!("session_id={}", session(s)?))),
        expect: "pass",
        reference: Some("host-session-read"),
        targets: Targets { rps_min: Some(0.9), cpu_max: None },
        peer: None,
        peer_targets: Targets::NONE,
    },
    Scenario {
        key: "host-session-read-handler",
        item: "2",
        name: "keep-alive GET /test_http/get/x, session cookie (a blocking handler reading the session)",
        kind: Kind::Host { load: TEST_ADDONS, access_log: true },
        load: |s| Ok(Load::get("/test_http/get/x").header("Cookie", &format!("session_id={}", session(s)?))),
        expect: "1",
        reference: Some("base-get"),
        // Measured, no target: the issue-17 target moved to the async route below.
        targets: Targets { rps_min: None, cpu_max: None },
        peer: None,
        peer_targets: Targets::NONE,
    },
    Scenario {
        key: "host-session-read-async",
        item: "2",
        name: "keep-alive GET /test_async/get/x, session cookie (an async handler reading the session, polled on the runtime worker)",
        kind: Kind::Host { load: TEST_ADDONS, access_log: true },
        load: |s| Ok(Load::get("/test_async/get/x").header("Cookie", &format!("session_id={}", session(s)?))),
        expect: "1",
        reference: Some("base-get"),
        targets: Targets { rps_min: Some(0.6), cpu_max: None },
        peer: None,
        peer_targets: Targets::NONE,
    },
    Scenario {
        key: "host-session-write",
        item: "2",
        name: "keep-alive GET /test_http/set/x/<n>, session cookie, n varies (one session write per request)",
        kind: Kind::Host { load: TEST_ADDONS, access_log: true },
        load: |s| {
            Ok(Load::get("/test_http/set/x/")
                .counter_suffix()
                .header("Cookie", &format!("session_id={}", session(s)?)))
        },
        expect: "ok",
        reference: Some("base-get"),
        targets: Targets { rps_min: None, cpu_max: None },
        peer: None,
        peer_targets: Targets::NONE,
    },
];

/// Creates a session holding `x = "1"` (`/test_http/set/x/1`) and returns its id.
fn session(server: &Server) -> Result<String, String> {
    let r = http::send(
        server.port,
        "GET",
        "/test_http/set/x/1",
        &[],
        b"",
        Duration::from_secs(5),
    )
    .map_err(|e| format!("/test_http/set/x/1: {e}"))?;
    if r.status != 200 {
        return Err(format!(
            "/test_http/set/x/1 answered {}: {}",
            r.status,
            r.text()
        ));
    }
    r.cookie("session_id")
        .ok_or_else(|| "/test_http/set/x/1 set no session_id cookie".to_owned())
}
