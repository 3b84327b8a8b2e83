//! The request path's series ([`HttpMetrics`]) and their pre-resolved handles per route
//! ([`RouteMetrics`]). The `route` label is the route's pattern as the addon declared it
//! (`/web/content/<int:id>`), never the raw path, so the number of series stays bounded:
//! requests no route matched are `route="none"`, static files `route="static"`.

use super::latency_histogram;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The labels of a request count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: &'static str,
}

/// The label of a route's other series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

/// Methods with a series of their own; any other is `OTHER`.
const METHODS: [&str; 8] = [
    "GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER",
];
/// Status classes.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn method_index(method: &hyper::Method) -> usize {
    match *method {
        hyper::Method::GET => 0,
        hyper::Method::POST => 1,
        hyper::Method::HEAD => 2,
        hyper::Method::PUT => 3,
        hyper::Method::DELETE => 4,
        hyper::Method::PATCH => 5,
        hyper::Method::OPTIONS => 6,
        _ => 7,
    }
}

fn class_index(status: u16) -> usize {
    (usize::from(status / 100).clamp(1, 5)) - 1
}

/// The request path's series.
#[derive(Debug)]
pub struct HttpMetrics {
    enabled: bool,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    request_bytes: Family<RouteLabels, Counter>,
    response_bytes: Family<RouteLabels, Counter>,
    /// Requests no route matched (404, 405).
    pub unmatched: Option<Arc<RouteMetrics>>,
    /// Static files.
    pub static_files: Option<Arc<RouteMetrics>>,
    /// `/metrics` itself.
    pub scrape: Option<Arc<RouteMetrics>>,
}

impl HttpMetrics {
    pub(super) fn new(enabled: bool) -> HttpMetrics {
        let mut m = HttpMetrics {
            enabled,
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            request_bytes: Family::default(),
            response_bytes: Family::default(),
            unmatched: None,
            static_files: None,
            scrape: None,
        };
        m.unmatched = m.route("none");
        m.static_files = m.route("static");
        m.scrape = m.route("/metrics");
        m
    }

    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "http_requests",
            "HTTP requests answered, by route pattern, method and status class",
            self.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer, by route pattern",
            self.duration.clone(),
        );
        registry.register(
            "http_request_body_bytes",
            "Bytes of request bodies received, by route pattern",
            self.request_bytes.clone(),
        );
        registry.register(
            "http_response_body_bytes",
            "Bytes of response bodies sent (as declared by the answer), by route pattern",
            self.response_bytes.clone(),
        );
    }

    /// The handles of the route `pattern` (`None` when metrics are off: nothing is
    /// recorded). Built with each generation's route table, not per request.
    pub fn route(&self, pattern: &str) -> Option<Arc<RouteMetrics>> {
        if !self.enabled {
            return None;
        }
        Some(Arc::new(RouteMetrics {
            route: pattern.to_owned(),
            requests: self.requests.clone(),
            duration_family: self.duration.clone(),
            request_bytes_family: self.request_bytes.clone(),
            response_bytes_family: self.response_bytes.clone(),
            by_status: std::array::from_fn(|_| OnceLock::new()),
            per_route: OnceLock::new(),
        }))
    }
}

/// A route's series other than the request counts, created at its first request (a route
/// never requested makes no series).
struct PerRoute {
    duration: Histogram,
    request_bytes: Counter,
    response_bytes: Counter,
}

/// One route's series, resolved once: recording a request is atomic additions and one
/// histogram observation.
pub struct RouteMetrics {
    route: String,
    requests: Family<RequestLabels, Counter>,
    /// The request counter of each (method, status class), created at its first request
    /// (so unused combinations make no series).
    by_status: [OnceLock<Counter>; METHODS.len() * CLASSES.len()],
    duration_family: Family<RouteLabels, Histogram, fn() -> Histogram>,
    request_bytes_family: Family<RouteLabels, Counter>,
    response_bytes_family: Family<RouteLabels, Counter>,
    per_route: OnceLock<PerRoute>,
}

impl std::fmt::Debug for RouteMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteMetrics")
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

impl RouteMetrics {
    /// Records one request answered `status` after `elapsed`, with its body sizes.
    pub fn record(
        &self,
        method: &hyper::Method,
        status: u16,
        elapsed: Duration,
        request_bytes: u64,
        response_bytes: u64,
    ) {
        let (m, c) = (method_index(method), class_index(status));
        self.by_status[m * CLASSES.len() + c]
            .get_or_init(|| {
                self.requests.get_or_create_owned(&RequestLabels {
                    route: self.route.clone(),
                    method: METHODS[m],
                    status: CLASSES[c],
                })
            })
            .inc();
        let per_route = self.per_route.get_or_init(|| {
            let labels = RouteLabels {
                route: self.route.clone(),
            };
            PerRoute {
                duration: self.duration_family.get_or_create_owned(&labels),
                request_bytes: self.request_bytes_family.get_or_create_owned(&labels),
                response_bytes: self.response_bytes_family.get_or_create_owned(&labels),
            }
        });
        per_route.duration.observe(elapsed.as_secs_f64());
        if request_bytes > 0 {
            per_route.request_bytes.inc_by(request_bytes);
        }
        if response_bytes > 0 {
            per_route.response_bytes.inc_by(response_bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_methods_are_bounded() {
        assert_eq!(class_index(101), 0);
        assert_eq!(class_index(204), 1);
        assert_eq!(class_index(404), 3);
        assert_eq!(class_index(599), 4);
        assert_eq!(class_index(0), 0);
        assert_eq!(class_index(999), 4);
        assert_eq!(
            method_index(&hyper::Method::from_bytes(b"PROPFIND").unwrap()),
            7
        );
    }

    #[test]
    fn off_records_nothing() {
        assert!(HttpMetrics::new(false).route("/x").is_none());
        assert!(HttpMetrics::new(false).unmatched.is_none());
    }
}
