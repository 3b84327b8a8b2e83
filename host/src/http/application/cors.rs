//! Odoo's CORS headers for a route with `cors`: on its answers and on the preflight.

use super::*;

/// Odoo's `CORS_MAX_AGE`.
pub(super) const CORS_MAX_AGE: &str = "86400";

/// Odoo's CORS headers; the preflight also gets the max age and allowed headers.
pub(super) fn add_cors(
    resp: &mut HttpResult,
    origin: &RString,
    route: &RouteDescriptor,
    preflight: bool,
) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(origin.as_str()) {
        h.insert("access-control-allow-origin", v);
    }
    let methods = if route.routing_type.as_str() == "json" {
        "POST".to_owned()
    } else if route.methods.is_empty() {
        "GET, POST".to_owned()
    } else {
        route
            .methods
            .iter()
            .map(RString::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Ok(v) = HeaderValue::from_str(&methods) {
        h.insert("access-control-allow-methods", v);
    }
    if preflight {
        h.insert(
            "access-control-max-age",
            HeaderValue::from_static(CORS_MAX_AGE),
        );
        h.insert(
            "access-control-allow-headers",
            HeaderValue::from_static(
                "Origin, X-Requested-With, Content-Type, Accept, Authorization",
            ),
        );
    }
}
