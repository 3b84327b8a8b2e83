//! [`Services`]: what one host's request path shares across its generations (the registries
//! and the databases behind them, the budgets of request bodies, the requests in flight,
//! the open websockets, the push streams of streamed answers, the metrics). Built once by the composition root (`service::server`) and handed
//! to each [`Application`](super::application::Application) by `Arc`, so that two hosts in
//! one process share none of it.

use super::body::Budgets;
use super::inflight::InFlight;
use super::session_merge::SaveLocks;
use super::stream_body::Streams;
use super::websocket::Sockets;
use crate::metrics::Metrics;
use crate::modules::registry::Registries;
use crate::sql_db::Databases;
use std::sync::Arc;

/// The state of one host's request path; see the [module docs](self).
#[derive(Debug)]
pub struct Services {
    /// The registries of the databases served (and, through them, the databases).
    pub registries: Arc<Registries>,
    /// The memory and disk budgets of request bodies (`limit_memory_bodies`,
    /// `limit_disk_bodies`).
    pub bodies: Budgets,
    /// The requests in flight and the stuck handlers (SIGQUIT, `limit_time_stuck`).
    pub inflight: Arc<InFlight>,
    /// The open websockets.
    pub websockets: Arc<Sockets>,
    /// The push streams (response bodies fed through the `stream_*` callbacks).
    pub streams: Arc<Streams>,
    /// The host's metrics (`--metrics`; `/metrics`).
    pub metrics: Arc<Metrics>,
    /// The locks of session saves (a save merges under its session id's lock).
    pub session_saves: SaveLocks,
}

impl Services {
    /// Nothing in flight yet, on `registries`, recording into `metrics`.
    pub fn new(registries: Arc<Registries>, metrics: Arc<Metrics>) -> Arc<Services> {
        Arc::new(Services {
            metrics,
            registries,
            bodies: Budgets::default(),
            inflight: Arc::default(),
            websockets: Arc::default(),
            streams: Arc::default(),
            session_saves: SaveLocks::default(),
        })
    }

    /// The databases (the registries').
    pub fn databases(&self) -> &Arc<Databases> {
        self.registries.databases()
    }
}
