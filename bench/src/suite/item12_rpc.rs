//! Item 12 (issue 20): Odoo's external API under keep-alive load: `common.version` over
//! XML-RPC (`POST /xmlrpc/2/common`) and over `/jsonrpc`, and `object.execute_kw` of a
//! method an addon registers (`test_db.note.search_count`, one `SELECT` in its own
//! transaction) over XML-RPC, after the caller's uid and password are checked (remembered
//! after the first call, as Odoo's ormcache).
//!
//! - **Measures**: as item 1 (requests per second, latency, CPU per request).
//! - **Baseline**: `bench-baseline` answering a POST (`base-post`, item 3) for `version`,
//!   beside the json route of item 3 (`host-version-info`); `bench-baseline-db`'s
//!   transaction (`base-db-tx`, item 10) for `execute_kw`.
//! - **Target**: none (measured).

use crate::loadgen::Load;
use crate::model::{Scenario, Targets};
use crate::pg;
use crate::servers::{Kind, ROUTE_DB};

/// `common.version()` as Python's `xmlrpc.client` sends it.
pub const XMLRPC_VERSION: &str = "<?xml version='1.0'?>\n<methodCall>\n<methodName>version</methodName>\n<params>\n</params>\n</methodCall>\n";

/// `common.version()` over `/jsonrpc`.
pub const JSONRPC_VERSION: &str = r#"{"jsonrpc":"2.0","method":"call","params":{"service":"common","method":"version","args":[]},"id":1}"#;

fn xml(path: &str, body: String) -> Load {
    Load {
        method: "POST",
        body: Some(body),
        ..Load::get(path)
    }
    .header("Content-Type", "text/xml")
}

/// `execute_kw(db, 2, 'admin', 'test_db.note', 'search_count', [[]])` on the suite's
/// database (admin is user 2 with the password `admin` in a new database).
fn execute_kw() -> String {
    let db = pg::database_name(ROUTE_DB);
    format!(
        "<?xml version='1.0'?>\n<methodCall>\n<methodName>execute_kw</methodName>\n<params>\n\
         <param><value><string>{db}</string></value></param>\n\
         <param><value><int>2</int></value></param>\n\
         <param><value><string>admin</string></value></param>\n\
         <param><value><string>test_db.note</string></value></param>\n\
         <param><value><string>search_count</string></value></param>\n\
         <param><value><array><data><value><array><data></data></array></value></data></array></value></param>\n\
         </params>\n</methodCall>\n"
    )
}

/// The scenarios of item 12, in the order they run in each round.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        key: "host-xmlrpc-version",
        item: "12",
        name: "keep-alive POST /xmlrpc/2/common version (XML-RPC)",
        kind: Kind::HOST,
        load: |_| Ok(xml("/xmlrpc/2/common", XMLRPC_VERSION.to_owned())),
        expect: "protocol_version",
        reference: Some("base-post"),
        targets: Targets::NONE,
        peer: Some("host-version-info"),
        peer_targets: Targets::NONE,
    },
    Scenario {
        key: "host-jsonrpc-version",
        item: "12",
        name: "keep-alive POST /jsonrpc common.version (JSON-RPC)",
        kind: Kind::HOST,
        load: |_| Ok(Load::post_json("/jsonrpc", JSONRPC_VERSION)),
        expect: "protocol_version",
        reference: Some("base-post"),
        targets: Targets::NONE,
        peer: Some("host-version-info"),
        peer_targets: Targets::NONE,
    },
    Scenario {
        key: "host-xmlrpc-execute-kw",
        item: "12",
        name: "keep-alive POST /xmlrpc/2/object execute_kw test_db.note search_count (XML-RPC, one SELECT)",
        kind: Kind::HostDb,
        load: |_| Ok(xml("/xmlrpc/2/object", execute_kw())),
        expect: "<int>",
        reference: Some("base-db-tx"),
        targets: Targets::NONE,
        peer: Some("host-db-count"),
        peer_targets: Targets::NONE,
    },
];
