//! Review of the async routes (issue 17) against the real binary and `test_http`'s
//! `/test_async/*`: an async json route past `limit_time_real` answers the error name a
//! sync one does (`builtins.Exception`, issue 19), and a cancelled handler whose state
//! panics when dropped neither ends the process (async-ffi drops a future in an
//! `extern "C"` function, where a panic aborts) nor stops the serving.

use inphms_tests::{http_get, rpc_call, Server, TestDir};
use serde_json::json;

fn start(args: &[&str]) -> (TestDir, Server) {
    let td = TestDir::new();
    let server = td.test_http_server(args).start_healthy();
    (td, server)
}

#[test]
fn an_async_json_route_past_limit_time_real_answers_the_sync_routes_error_name() {
    let (_td, server) = start(&["--limit-time-real=1"]);
    let port = server.port();
    let (status, v) = rpc_call(port, "/test_async/forever_json", json!({}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["error"]["data"]["name"], "builtins.Exception", "{v}");
    assert_eq!(v["id"], 1, "{v}");
    // The host serves on.
    let (status, v) = rpc_call(port, "/test_async/add", json!({"a": 2, "b": 3}));
    assert_eq!((status, &v["result"]), (200, &json!(5)), "{v}");
}

#[test]
fn a_cancelled_async_handler_whose_drop_panics_does_not_end_the_process() {
    let (_td, server) = start(&["--limit-time-real=1"]);
    let port = server.port();
    for _ in 0..2 {
        let resp = http_get(port, "/test_async/drop_panic", &[]);
        assert_eq!(resp.status, 504, "{}\n{}", resp.text(), server.stderr());
        let resp = http_get(port, "/test_async/sleep/1", &[]);
        assert_eq!(resp.status, 200, "{}", server.stderr());
        assert_eq!(resp.text(), "slept 1");
    }
    let log = server.stderr();
    assert!(
        log.contains("dropped a cancelled handler's state on purpose"),
        "the drop's panic is not logged: {log}"
    );
    assert!(
        log.contains("panicked while dropped"),
        "the contained drop is not reported: {log}"
    );
}

#[test]
fn a_push_stream_an_async_handler_opened_and_did_not_answer_with_is_dropped() {
    let (_td, server) = start(&[]);
    let port = server.port();
    let resp = http_get(port, "/test_async/push_then_fail", &[]);
    assert!(resp.status >= 400, "{} {}", resp.status, resp.text());
    // As for a sync handler (`stream_body::Opening`): the stream no answer sends is
    // dropped (a push to it refused), not kept in the host's registry with its chunks.
    let resp = http_get(port, "/test_async/stashed_push", &[]);
    assert_eq!(resp.status, 200, "{}", server.stderr());
    assert_eq!(resp.text(), "refused", "{}", server.stderr());
}
