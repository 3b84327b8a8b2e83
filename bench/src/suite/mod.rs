//! The measurements, by issue 7's numbering, a file per item; each file's `//!` doc says
//! what the item measures, its baseline and its target.
//!
//! - Items 1–4, 10 and 12 ([`item1_health`], [`item2_session`], [`item3_json_route`],
//!   [`item4_close`], [`item10_db_route`], [`item12_rpc`]) are throughput scenarios ([`Scenario`]: a
//!   server, a load, a baseline and a peer to compare with: nginx for `/web/health`),
//!   listed by [`THROUGHPUT_ITEMS`] and run interleaved by [`run_throughput`]
//!   ([`throughput`]).
//! - Items 5–9, 11 and 12 are one function each, returning its rows of the second table
//!   ([`OTHER_ITEMS`]): [`item5_startup`], [`item6_memory`], [`item7_swap`] (SIGHUP swaps
//!   under keep-alive load), [`item8_phoenix`] (re-execs under connection-per-request load),
//!   [`item9_cron`] (NOTIFY latency and job throughput, on a PostgreSQL database of the
//!   suite's own), [`item11_idle_connections`] (what idle keep-alive connections cost),
//!   [`item13_bus`] (the bus's fan-out latency across two hosts),
//!   [`item14_nginx_hosts`] (a logged-in route through nginx, three hosts against one),
//!   [`item15_websockets`] (10,000 websockets, idle then echoing; its client is
//!   `ws_load`), [`item16_download`] (a 1 GiB download against a bare hyper server),
//!   [`item17_identity`] (logins against the hash that bounds them, and a logged-in
//!   session read against item 2's) and [`item18_workers`] (workers mode against the
//!   threaded server: throughput and idle memory).
//!   Items 7 and 8 share their host (`swap_host`).
//!
//! The suite fills the types of [`crate::model`]; it does not know how they are printed
//! ([`crate::report`]).

pub mod item10_db_route;
pub mod item11_idle_connections;
pub mod item12_rpc;
pub mod item13_bus;
pub mod item14_nginx_hosts;
pub mod item15_websockets;
pub mod item16_download;
pub mod item17_identity;
pub mod item18_workers;
pub mod item1_health;
pub mod item2_session;
pub mod item3_json_route;
pub mod item4_close;
pub mod item5_startup;
pub mod item6_memory;
pub mod item7_swap;
pub mod item8_phoenix;
pub mod item9_cron;
mod swap_host;
pub mod throughput;
mod ws_load;

use crate::model::{Options, Row, Scenario};
use crate::servers::Env;

pub use throughput::{first_request, run_throughput};

/// The scenarios of items 1–4 and 10, item by item; within an item, in the order they run in each
/// round (baselines and host alternate).
pub const THROUGHPUT_ITEMS: &[&[Scenario]] = &[
    item1_health::SCENARIOS,
    item2_session::SCENARIOS,
    item3_json_route::SCENARIOS,
    item4_close::SCENARIOS,
    item10_db_route::SCENARIOS,
    item12_rpc::SCENARIOS,
];

/// Every throughput scenario, in the order they run in each round.
pub fn scenarios() -> impl Iterator<Item = &'static Scenario> {
    THROUGHPUT_ITEMS.iter().flat_map(|item| item.iter())
}

/// An item of the second table: its rows, or why it could not be measured.
pub type Item = fn(&Env, &Options) -> Result<Vec<Row>, String>;

/// The items of the second table, in order: (item, function).
pub const OTHER_ITEMS: &[(&str, Item)] = &[
    ("5", item5_startup::item5_startup),
    ("6", item6_memory::item6_memory),
    ("7", item7_swap::item7_swap),
    ("8", item8_phoenix::item8_phoenix),
    ("9", item9_cron::item9_cron),
    ("11", item11_idle_connections::item11_idle_connections),
    ("13", item13_bus::item13_bus),
    ("14", item14_nginx_hosts::item14_nginx_hosts),
    ("15", item15_websockets::item15_websockets),
    ("16", item16_download::item16_download),
    ("17", item17_identity::item17_identity),
    ("18", item18_workers::item18_workers),
];

#[cfg(test)]
mod tests {
    use super::scenarios;

    #[test]
    fn scenarios_run_in_item_order_and_their_baselines_exist() {
        let all: Vec<_> = scenarios().collect();
        let keys: Vec<&str> = all.iter().map(|s| s.key).collect();
        assert_eq!(
            keys,
            [
                "base-get",
                "nginx-health",
                "host-health",
                "base-blocking",
                "base-block-in-place",
                "nginx-health-nolog",
                "host-health-nolog",
                "host-session-read",
                "host-session-read-pg",
                "host-session-read-handler",
                "host-session-read-async",
                "host-session-write",
                "base-post",
                "host-version-info",
                "base-close",
                "nginx-close",
                "host-close",
                "base-db-tx",
                "base-db-autocommit",
                "host-db-count",
                "host-db-count-async",
                "host-xmlrpc-version",
                "host-jsonrpc-version",
                "host-xmlrpc-execute-kw",
            ]
        );
        for s in &all {
            for r in s.reference.iter().chain(&s.peer) {
                let i = all.iter().position(|o| o.key == *r);
                let me = all.iter().position(|o| o.key == s.key);
                assert!(
                    matches!((i, me), (Some(i), Some(me)) if i < me),
                    "{}: no scenario {r} before it",
                    s.key
                );
            }
        }
    }
}
