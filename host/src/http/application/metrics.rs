//! `/metrics` (`--metrics`): the host's Prometheus series ([`crate::metrics`]), served
//! before routing, to loopback clients and the `proxy_trusted` networks only. The client
//! judged is the one proxy mode resolved: a request relayed by a trusted proxy for an outside
//! client is that client's, and refused (403). Off, `/metrics` goes to routing (404 unless
//! an addon declares it).

use super::*;

/// The path served.
const PATH: &str = "/metrics";

impl Application {
    /// The answer to `/metrics` when metrics are on; `None` for any other request.
    pub(super) fn serve_metrics(&self, ctx: &Ctx) -> Option<HttpResult> {
        let metrics = &self.services.metrics;
        if !metrics.enabled() || ctx.raw_path() != PATH {
            return None;
        }
        if let Some(m) = &metrics.http.scrape {
            let _ = ctx.route.set(Arc::clone(m));
        }
        if !self.may_scrape(ctx.client.remote_addr) {
            tracing::debug!(target: "inphms.http", "/metrics refused to {}", ctx.client.remote_addr);
            return Some(response::html_error(
                403,
                Some("The metrics are served to loopback and proxy_trusted addresses only."),
            ));
        }
        if ctx.method != Method::GET && ctx.method != Method::HEAD {
            let mut r = response::html_error(405, None);
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return Some(r);
        }
        let text = metrics.encode();
        let mut r = hyper::Response::new(if ctx.method == Method::HEAD {
            response::Body::empty()
        } else {
            response::Body::full(text)
        });
        let headers = r.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
        );
        headers.insert(
            hyper::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        Some(r)
    }

    /// Whether `client` may read the metrics: a loopback address, or one of `proxy_trusted`.
    fn may_scrape(&self, client: std::net::IpAddr) -> bool {
        let client = client.to_canonical();
        client.is_loopback() || self.trusted_proxies.iter().any(|c| c.contains(client))
    }
}
