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

#[cfg(test)]
mod tests {
    use super::*;

    fn route(routing_type: &str, methods: &[&str]) -> RouteDescriptor {
        RouteDescriptor {
            id: 0,
            endpoint: "test::cors".into(),
            paths: RVec::from(vec![RString::from("/cors")]),
            routing_type: routing_type.into(),
            auth: "none".into(),
            methods: methods.iter().map(|m| RString::from(*m)).collect(),
            cors: ROption::RSome("*".into()),
            csrf: false,
            save_session: false,
            readonly: false,
            websocket: false,
            blocking: true,
            max_content_length: ROption::RNone,
            overrides: "".into(),
            require_origin: false,
            asynchronous: false,
        }
    }

    fn header<'a>(resp: &'a HttpResult, name: &str) -> Option<&'a str> {
        resp.headers().get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn a_normal_answer_gets_origin_and_methods_only() {
        let mut resp = response::plain(200, "ok");
        add_cors(
            &mut resp,
            &"https://a.example".into(),
            &route("http", &[]),
            false,
        );
        assert_eq!(
            header(&resp, "access-control-allow-origin"),
            Some("https://a.example")
        );
        assert_eq!(
            header(&resp, "access-control-allow-methods"),
            Some("GET, POST")
        );
        assert_eq!(header(&resp, "access-control-max-age"), None);
        assert_eq!(header(&resp, "access-control-allow-headers"), None);
    }

    #[test]
    fn the_preflight_also_gets_max_age_and_allowed_headers() {
        let mut resp = response::plain(200, "");
        add_cors(
            &mut resp,
            &"*".into(),
            &route("http", &["GET", "PUT"]),
            true,
        );
        assert_eq!(header(&resp, "access-control-allow-origin"), Some("*"));
        assert_eq!(
            header(&resp, "access-control-allow-methods"),
            Some("GET, PUT")
        );
        assert_eq!(header(&resp, "access-control-max-age"), Some("86400"));
        assert_eq!(
            header(&resp, "access-control-allow-headers"),
            Some("Origin, X-Requested-With, Content-Type, Accept, Authorization")
        );
    }

    #[test]
    fn a_json_route_allows_post_and_a_bad_origin_is_left_out() {
        let mut resp = response::plain(200, "");
        add_cors(
            &mut resp,
            &"bad\norigin".into(),
            &route("json", &["GET"]),
            false,
        );
        assert_eq!(header(&resp, "access-control-allow-origin"), None);
        assert_eq!(header(&resp, "access-control-allow-methods"), Some("POST"));
    }

    #[test]
    fn route_finish_adds_cors_only_for_a_cors_route_and_always_nosniff() {
        let mut plain = route("http", &[]);
        plain.cors = ROption::RNone;
        let resp = route_finish(
            &RouteEntry {
                addon: 0,
                route: plain,
                metrics: None,
            },
            response::plain(200, "ok"),
        );
        assert_eq!(header(&resp, "access-control-allow-origin"), None);
        assert_eq!(header(&resp, "x-content-type-options"), Some("nosniff"));
        let resp = route_finish(
            &RouteEntry {
                addon: 0,
                route: route("http", &[]),
                metrics: None,
            },
            response::plain(200, "ok"),
        );
        assert_eq!(header(&resp, "access-control-allow-origin"), Some("*"));
        assert_eq!(header(&resp, "x-content-type-options"), Some("nosniff"));
    }
}
