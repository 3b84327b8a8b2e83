//! Two hosts in one process (issue 16, "host services with a context, not globals"): the
//! host is also a library, and `service::server::Host` is its composition root. Two hosts
//! built from two configurations share none of their state: each addon callback reaches its
//! own host through the `ctx` of the `HostApi` it was given (the configuration sections it
//! reads, the websockets it asks for), and each host has its own pools (with their `cron_db`),
//! registries, requests in flight, body budgets and websockets.

use inphms_host::config::Config;
use inphms_host::http::websocket;
use inphms_host::service::server::Host;
use std::ffi::OsString;
use std::sync::Arc;
use std::time::Instant;

/// A host whose configuration file says `[web] greeting = <greeting>` and
/// `cron_db = <cron_db>`.
fn host(dir: &std::path::Path, greeting: &str, cron_db: &str) -> Host {
    let path = dir.join(format!("{greeting}.conf"));
    std::fs::write(
        &path,
        format!("[options]\ncron_db = \"{cron_db}\"\n\n[web]\ngreeting = \"{greeting}\"\n"),
    )
    .expect("write the configuration");
    let args = [OsString::from("--config"), path.into_os_string()];
    let config = Config::parse(&args).unwrap_or_else(|e| panic!("{e}"));
    Host::new(Arc::new(config), None)
}

/// What an addon reads with `Host.config("web", "greeting")`, through `api`.
fn greeting(host: &Host) -> Option<String> {
    let api = host.api;
    (api.config_get())(api.ctx(), "web".into(), "greeting".into())
        .into_option()
        .map(|s| s.into_string())
}

#[test]
fn two_hosts_in_one_process_share_no_state() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let a = host(dir.path(), "hello_a", "cron_a");
    let b = host(dir.path(), "hello_b", "cron_b");

    // The addons' callbacks find their own host through the handle they are given.
    assert_ne!(a.api.ctx(), b.api.ctx());
    assert_eq!(greeting(&a).as_deref(), Some("\"hello_a\""));
    assert_eq!(greeting(&b).as_deref(), Some("\"hello_b\""));

    // Each host has its pools, which wake the cron workers of its own `cron_db`.
    assert!(!Arc::ptr_eq(&a.databases, &b.databases));
    assert_eq!(a.databases.pools().cron_db(), "cron_a");
    assert_eq!(b.databases.pools().cron_db(), "cron_b");

    // Registries: one host set up is not the other.
    a.registries.setup(Arc::clone(&a.config), Vec::new(), a.api);
    assert!(a.registries.config().is_some());
    assert!(b.registries.config().is_none());

    // Requests in flight and stuck handlers (SIGQUIT, limit_time_stuck) are per host.
    let uri: hyper::Uri = "/a/only".parse().expect("a path");
    let tracked = a
        .http
        .inflight
        .enter(&hyper::Method::GET, &uri, Instant::now());
    let stuck = tracked.stuck();
    assert_eq!(a.http.inflight.snapshot().len(), 1);
    assert_eq!(a.http.inflight.stuck(), 1);
    assert!(b.http.inflight.snapshot().is_empty());
    assert_eq!(b.http.inflight.stuck(), 0);
    drop((stuck, tracked));
    assert!(a.http.inflight.snapshot().is_empty());

    // A host that stops refuses websocket upgrades; the other still takes them.
    websocket::set_accepting(&a.http.websockets, false);
    websocket::set_accepting(&b.http.websockets, true);
    assert_eq!(
        websocket::reserve(&a.http.websockets, usize::MAX).err(),
        Some("the server is stopping")
    );
    assert!(websocket::reserve(&b.http.websockets, usize::MAX).is_ok());
    // A socket id of one host is unknown to the other's callbacks.
    let api = b.api;
    let sent = (api.ws_send().expect("ws_send"))(
        api.ctx(),
        1,
        inphms_sdk::abi::WsMessage::Text("x".into()),
    );
    assert!(sent.is_err());
    let queued = (api.ws_send_queued().expect("ws_send_queued"))(
        api.ctx(),
        1,
        inphms_sdk::abi::WsMessage::Text("x".into()),
    );
    assert!(queued.is_err());

    // Push streams are per host: a stream opened through one host's API is unknown to
    // the other's.
    let (api_a, api_b) = (a.api, b.api);
    let stream = (api_a.stream_open().expect("stream_open"))(api_a.ctx(), 4);
    assert_ne!(stream, 0);
    let pushed =
        (api_b.stream_push().expect("stream_push"))(api_b.ctx(), stream, b"x".to_vec().into());
    assert!(pushed.is_err(), "b does not know a's stream");
    let pushed =
        (api_a.stream_push().expect("stream_push"))(api_a.ctx(), stream, b"x".to_vec().into());
    assert!(pushed.is_ok(), "{pushed:?}");
    (api_a.stream_close().expect("stream_close"))(api_a.ctx(), stream);

    // The body budgets are per host.
    assert!(!std::ptr::eq(&a.http.bodies, &b.http.bodies));
    assert_eq!(a.http.bodies.held(), 0);
}
