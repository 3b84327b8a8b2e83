//! The gauges the composition root adds to the host's [`Metrics`]: read at each scrape
//! from the state that owns them (the requests in flight, the websockets, the pools, the
//! current generation), each through a weak reference, so that the metrics keep none of it
//! alive.

use crate::http::application::Application;
use crate::http::{websocket, Services};
use crate::metrics::{GaugeFn, Metrics, Sample};
use arc_swap::ArcSwap;
use std::sync::{Arc, Weak};

/// A value read through `weak` (nothing once it is gone).
fn through<T: Send + Sync + 'static>(
    weak: Weak<T>,
    read: impl Fn(&T) -> Vec<Sample> + Send + Sync + 'static,
) -> impl Fn() -> Vec<Sample> + Send + Sync + 'static {
    move || weak.upgrade().map(|t| read(&t)).unwrap_or_default()
}

fn count(n: usize) -> Vec<Sample> {
    vec![Sample::plain(i64::try_from(n).unwrap_or(i64::MAX))]
}

/// The request path's and the pools' gauges.
pub fn register(metrics: &Metrics, http: &Arc<Services>) {
    let w = Arc::downgrade(http);
    metrics.gauges(GaugeFn::new(
        "http_requests_in_flight",
        "Requests being served now (received, not yet answered).",
        through(w.clone(), |s: &Services| count(s.inflight.count())),
    ));
    metrics.gauges(GaugeFn::new(
        "websockets_open",
        "Websockets open now.",
        through(w.clone(), |s: &Services| {
            count(websocket::open_count(&s.websockets))
        }),
    ));
    let pools = Arc::downgrade(http.databases().pools());
    metrics.gauges(GaugeFn::new(
        "db_pool_connections_in_use",
        "PostgreSQL connections lent out now, by database.",
        through(pools.clone(), |p: &crate::sql_db::pool::Pools| {
            p.stats()
                .databases
                .into_iter()
                .map(|(db, used, _)| Sample::labelled("db", db, used as i64))
                .collect()
        }),
    ));
    metrics.gauges(GaugeFn::new(
        "db_pool_connections_idle",
        "PostgreSQL connections open and idle in the pools now, by database.",
        through(pools.clone(), |p: &crate::sql_db::pool::Pools| {
            p.stats()
                .databases
                .into_iter()
                .map(|(db, _, idle)| Sample::labelled("db", db, idle as i64))
                .collect()
        }),
    ));
    metrics.gauges(GaugeFn::counter(
        "db_pool_waits",
        "Connections asked for when none was free (the caller waited, at most 5 s).",
        through(pools.clone(), |p: &crate::sql_db::pool::Pools| {
            vec![Sample::plain(p.stats().waits as i64)]
        }),
    ));
    metrics.gauges(GaugeFn::counter(
        "db_pool_full",
        "Connections given up after the wait (The Connection Pool Is Full).",
        through(pools, |p: &crate::sql_db::pool::Pools| {
            vec![Sample::plain(p.stats().full as i64)]
        }),
    ));
}

/// The generation serving now.
pub fn register_generation(metrics: &Metrics, apps: &Arc<ArcSwap<Application>>) {
    metrics.gauges(GaugeFn::new(
        "generation",
        "The generation serving new requests (1 at start, +1 per swap).",
        through(Arc::downgrade(apps), |a: &ArcSwap<Application>| {
            vec![Sample::plain(a.load().generation as i64)]
        }),
    ));
}
