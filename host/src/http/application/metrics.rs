//! `/metrics` (`--metrics`): the host's Prometheus series ([`crate::metrics`]), served
//! before routing, to loopback clients and the `proxy_trusted` networks only. The client
//! judged is the one proxy mode resolved only when the peer is one of a non-empty
//! `proxy_trusted`: a request relayed by a trusted proxy for an outside client is that
//! client's, and refused (403). Otherwise (proxy mode off, or `proxy_trusted` empty, which
//! trusts any peer's forwarded headers) the peer itself is judged: an `X-Forwarded-For:
//! 127.0.0.1` from outside gets nothing. Off, `/metrics` goes to routing (404 unless an
//! addon declares it).

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
        let client = self.scraper(ctx);
        if !self.may_scrape(client) {
            tracing::debug!(target: "inphms.http", "/metrics refused to {client}");
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

    /// The address judged: the client proxy mode resolved when the peer is one of a
    /// non-empty `proxy_trusted`, else the peer (an empty list trusts any peer's headers:
    /// they prove nothing).
    fn scraper(&self, ctx: &Ctx) -> std::net::IpAddr {
        let peer = ctx.peer.ip().to_canonical();
        let relayed = ctx.client.forwarded
            && !self.trusted_proxies.is_empty()
            && self.trusted_proxies.iter().any(|c| c.contains(peer));
        if relayed {
            ctx.client.remote_addr
        } else {
            peer
        }
    }

    /// Whether `client` may read the metrics: a loopback address, or one of `proxy_trusted`.
    fn may_scrape(&self, client: std::net::IpAddr) -> bool {
        let client = client.to_canonical();
        client.is_loopback() || self.trusted_proxies.iter().any(|c| c.contains(client))
    }
}
