//! Test addon: a route for every dispatcher path (results, each error class, panics,
//! sessions, CSRF, CORS, body limits and spooled bodies, slow handlers, multipart uploads,
//! websockets), inline copies (`blocking = false`) of the session, auth, CSRF and CORS
//! routes, a custom `plain` dispatcher and a command. Used by the integration tests in `tests/`.

use inphms_sdk::{
    command, post_load, route, Dispatcher, Endpoint, EndpointResult, Error, Host, Json, Message,
    PushStream, RecvError, Request, Response, Result, WebSocket, WsHandler,
};
use serde_json::{json, Value};

mod async_routes;
mod review;
mod review_sessions;
mod ws_async;
mod ws_push;

#[post_load]
fn post_load(_host: &Host) -> Result<()> {
    tracing::info!(target: "inphms.addons.test_http", "test_http: post_load");
    Ok(())
}

/// Echoes the http parameters (query, form, URL arguments).
#[route("/test_http/echo", auth = "none")]
fn echo(req: &mut Request) -> Json<Value> {
    Json(Value::Object(req.params().clone()))
}

/// A typed path argument.
#[route("/test_http/item/<int:id>", auth = "none")]
fn item(_req: &mut Request, id: i64) -> String {
    format!("item {id}")
}

/// Echoes the JSON-RPC params.
#[route("/test_http/json_echo", type = "json", auth = "none")]
fn json_echo(req: &mut Request) -> Value {
    Value::Object(req.params().clone())
}

/// Adds two JSON-RPC params.
#[route("/test_http/add", type = "json", auth = "none")]
fn add(_req: &mut Request, a: i64, b: i64) -> Value {
    json!(a + b)
}

/// Returns nothing: `result` is omitted.
#[route("/test_http/none", type = "json", auth = "none")]
fn none(_req: &mut Request) {}

/// Raises the error named by the `kind` argument.
#[route(["/test_http/error/<string:kind>", "/test_http/json_error/<string:kind>"], auth = "none", csrf = false)]
fn error(_req: &mut Request, kind: String) -> Result<String> {
    Err(make_error(&kind))
}

/// The same errors through the json dispatcher.
#[route("/test_http/rpc_error/<string:kind>", type = "json", auth = "none")]
fn rpc_error(_req: &mut Request, kind: String) -> Result<Value> {
    Err(make_error(&kind))
}

fn make_error(kind: &str) -> Error {
    match kind {
        "user" => Error::user("Nope, you can't"),
        "access" => Error::access("Forbidden thing"),
        "missing" => Error::not_found("No such thing"),
        "expired" => Error::session_expired("Session expired"),
        _ => Error::internal("secret internal detail").with_debug("Traceback: secret"),
    }
}

/// Panics.
#[route("/test_http/panic", auth = "none")]
fn panic_http(_req: &mut Request) -> String {
    panic!("secret panic detail");
}

/// Panics in a json route.
#[route("/test_http/json_panic", type = "json", auth = "none")]
fn panic_json(_req: &mut Request) -> Value {
    panic!("secret panic detail");
}

/// Sleeps `ms` milliseconds.
#[route("/test_http/sleep/<int:ms>", auth = "none", save_session = false)]
fn sleep(_req: &mut Request, ms: i64) -> String {
    tracing::info!(target: "inphms.addons.test_http", "sleep {ms} ms: started");
    std::thread::sleep(std::time::Duration::from_millis(ms.max(0) as u64));
    format!("slept {ms}")
}

/// Sleeps `ms` milliseconds, as a JSON-RPC route (the `limit_time_real` answer of json).
#[route(
    "/test_http/json_sleep/<int:ms>",
    type = "json",
    auth = "none",
    save_session = false
)]
fn json_sleep(_req: &mut Request, ms: i64) -> Value {
    tracing::info!(target: "inphms.addons.test_http", "json sleep {ms} ms: started");
    std::thread::sleep(std::time::Duration::from_millis(ms.max(0) as u64));
    json!(ms)
}

/// Logs `login` in (rotates the session id).
#[route("/test_http/login/<string:login>", auth = "none")]
fn login(req: &mut Request, login: String) -> String {
    req.session.finalize_login(&login, 2);
    format!("logged in as {login}")
}

/// Logs out (rotates the session id).
#[route("/test_http/logout", auth = "none")]
fn logout(req: &mut Request) -> String {
    req.session.logout(false);
    "logged out".into()
}

/// Who is logged in: needs a logged-in session.
#[route("/test_http/whoami", auth = "user")]
fn whoami(req: &mut Request) -> String {
    req.session.login().unwrap_or_default().to_owned()
}

/// The same, as JSON-RPC.
#[route("/test_http/json_whoami", type = "json", auth = "user")]
fn json_whoami(req: &mut Request) -> Value {
    json!(req.session.login())
}

/// The user of an `auth = "bearer"` request (an API key's), as the handler sees it; the
/// session change it makes must not be saved.
#[route("/test_http/bearer_uid", type = "json", auth = "bearer")]
fn bearer_uid(req: &mut Request) -> Value {
    req.session.set("touched_by_bearer", true);
    json!(req.session.uid())
}

/// The same, as an http route.
#[route("/test_http/bearer_uid_http", auth = "bearer")]
fn bearer_uid_http(req: &mut Request) -> String {
    req.session.uid().map(|u| u.to_string()).unwrap_or_default()
}

/// The session's user as an `auth = "public"` handler sees it (the public user when nobody
/// is logged in on a database), and a session change (saved, without that user).
#[route("/test_http/public_uid", type = "json", auth = "public")]
fn public_uid(req: &mut Request) -> Value {
    req.session.set("seen_public", true);
    json!(req.session.uid())
}

/// Stores a value in the session (which is then saved).
#[route("/test_http/set/<string:key>/<string:value>", auth = "none")]
fn set(req: &mut Request, key: String, value: String) -> String {
    req.session.set(&key, &value);
    "ok".into()
}

/// Reads a session value without changing the session (no cookie).
#[route("/test_http/get/<string:key>", auth = "none")]
fn get(req: &mut Request, key: String) -> String {
    req.session.get::<String>(&key).unwrap_or_default()
}

/// A CSRF token for the current session (the session is saved so the token stays valid).
#[route("/test_http/csrf_token", auth = "none")]
fn csrf_token(req: &mut Request) -> String {
    req.session.touch();
    req.csrf_token()
}

/// A form post checked for CSRF.
#[route("/test_http/form", auth = "none", methods = ["POST"])]
fn form(req: &mut Request) -> Json<Value> {
    Json(Value::Object(req.params().clone()))
}

/// A CORS route.
#[route("/test_http/cors", auth = "none", cors = "*", methods = ["GET", "POST"], csrf = false)]
fn cors(_req: &mut Request) -> String {
    "cors".into()
}

// Inline copies (`blocking = false`) of the session, auth, CSRF and CORS routes above,
// under `/test_http/inline/`: served by the host's synchronous path when no database is
// chosen and there is no body, so the tests can check that it answers exactly as the
// asynchronous path does for the blocking originals. Same bodies, same options.

/// [`set`], inline.
#[route(
    "/test_http/inline/set/<string:key>/<string:value>",
    auth = "none",
    blocking = false
)]
fn inline_set(req: &mut Request, key: String, value: String) -> String {
    set(req, key, value)
}

/// [`get`], inline.
#[route("/test_http/inline/get/<string:key>", auth = "none", blocking = false)]
fn inline_get(req: &mut Request, key: String) -> String {
    get(req, key)
}

/// [`login`], inline.
#[route(
    "/test_http/inline/login/<string:login>",
    auth = "none",
    blocking = false
)]
fn inline_login(req: &mut Request, login: String) -> String {
    self::login(req, login)
}

/// [`whoami`], inline.
#[route("/test_http/inline/whoami", auth = "user", blocking = false)]
fn inline_whoami(req: &mut Request) -> String {
    whoami(req)
}

/// [`form`], inline.
#[route("/test_http/inline/form", auth = "none", methods = ["POST"], blocking = false)]
fn inline_form(req: &mut Request) -> Json<Value> {
    form(req)
}

/// [`cors`], inline.
#[route(
    "/test_http/inline/cors",
    auth = "none",
    cors = "*",
    methods = ["GET", "POST"],
    csrf = false,
    blocking = false
)]
fn inline_cors(req: &mut Request) -> String {
    cors(req)
}

/// Accepts at most 16 bytes of body.
#[route(
    "/test_http/small",
    auth = "none",
    csrf = false,
    max_content_length = 16
)]
fn small(req: &mut Request) -> String {
    format!("{} bytes", req.body().len())
}

/// What the handler received as its body: `{"len", "fnv" (FNV-1a 64 as hex), "mapped"}`,
/// where `mapped` is the file the body is a mapping of (from `/proc/self/maps`), or null
/// for a body in memory. `?sleep_ms=N` sleeps before answering (the body stays held).
#[route(
    "/test_http/body_digest",
    auth = "none",
    csrf = false,
    save_session = false,
    methods = ["POST"]
)]
fn body_digest(req: &mut Request) -> Json<Value> {
    let body = req.body();
    tracing::info!(target: "inphms.addons.test_http", "body_digest: started, {} bytes", body.len());
    let mut fnv: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body {
        fnv = (fnv ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mapped = if body.is_empty() {
        None
    } else {
        mapping_of(body.as_ptr() as usize)
    };
    if let Some(ms) = req.query("sleep_ms").and_then(|v| v.parse::<u64>().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    Json(json!({"len": body.len(), "fnv": format!("{fnv:016x}"), "mapped": mapped}))
}

/// The file mapped at `addr` in this process, from `/proc/self/maps` (`None` for
/// anonymous memory).
fn mapping_of(addr: usize) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| {
        let mut fields = line.splitn(6, ' ');
        let (start, end) = fields.next()?.split_once('-')?;
        let (start, end) = (
            usize::from_str_radix(start, 16).ok()?,
            usize::from_str_radix(end, 16).ok()?,
        );
        if !(start..end).contains(&addr) {
            return None;
        }
        let path = fields.nth(4).unwrap_or("").trim();
        (path.starts_with('/')).then(|| path.to_owned())
    })
}

/// Sets its own `Date` and `Server` headers.
#[route("/test_http/headers", auth = "none")]
fn headers(_req: &mut Request) -> Response {
    Response::text("headers")
        .header("Server", "test_http")
        .header("Date", "Thu, 01 Jan 2026 00:00:00 GMT")
}

/// The client as the handler sees it (after proxy handling).
#[route("/test_http/client", auth = "none")]
fn client(req: &mut Request) -> Json<Value> {
    Json(json!({"remote_addr": req.remote_addr(), "scheme": req.scheme(), "host": req.host()}))
}

/// A route of the custom `plain` routing type.
#[route("/test_http/plain/<int:n>", type = "plain", auth = "none")]
fn plain(_req: &mut Request, n: i64) -> Value {
    json!(n * 2)
}

/// A dispatcher for the `plain` routing type: GET only, answers the value as text/plain.
struct PlainDispatcher;

impl Dispatcher for PlainDispatcher {
    const ROUTING_TYPE: &'static str = "plain";

    fn is_compatible(req: &Request) -> bool {
        req.method() == "GET"
    }

    fn dispatch(req: &mut Request, endpoint: Endpoint) -> Result<Response> {
        match endpoint.call(req)? {
            EndpointResult::Value(v) => Ok(Response::text(format!(
                "plain:{}",
                v.map(|v| v.to_string()).unwrap_or_default()
            ))),
            EndpointResult::Response(r) => Ok(r),
        }
    }
}
inphms_sdk::register_dispatcher!(PlainDispatcher);

/// The files of a multipart upload: `[{name, filename, content_type, text}]`.
#[route("/test_http/upload", auth = "none", csrf = false, methods = ["POST"])]
fn upload(req: &mut Request) -> Json<Value> {
    let files: Vec<Value> = req
        .files()
        .into_iter()
        .map(|f| {
            json!({
                "name": f.name,
                "filename": f.filename,
                "content_type": f.content_type,
                "text": f.text(),
            })
        })
        .collect();
    Json(json!({"files": files, "form": req.form()}))
}

/// A websocket that waits 300 ms for a message: answers `got <text>` or `timeout`, then
/// closes with 4000 `bye`.
#[route("/test_http/ws_timeout", auth = "none", websocket = true)]
fn ws_timeout(req: &mut Request) -> Result<()> {
    let ws = req.websocket()?;
    match ws.recv_timeout(std::time::Duration::from_millis(300)) {
        Ok(m) => ws.send(format!("got {}", String::from_utf8_lossy(m.as_bytes())))?,
        Err(RecvError::Timeout) => ws.send("timeout")?,
        Err(RecvError::Closed) => return Ok(()),
    }
    ws.close(4000, "bye")?;
    // Wait for the client's answer to the close.
    while ws.recv().is_some() {}
    Ok(())
}

/// A websocket whose handler says `bye` and returns at once: the host closes it with 1000.
#[route("/test_http/ws_bye", auth = "none", websocket = true)]
fn ws_bye(req: &mut Request) -> Result<()> {
    req.websocket()?.send("bye")
}

/// A websocket whose handler panics after its greeting: the host closes it with 1011.
#[route("/test_http/ws_panic", auth = "none", websocket = true)]
fn ws_panic(req: &mut Request) -> Result<()> {
    let ws = req.websocket()?;
    ws.send("about to fail")?;
    panic!("secret websocket panic");
}

/// A plain route asking for a websocket: a 400 from the SDK.
#[route("/test_http/not_a_websocket", auth = "none")]
fn not_a_websocket(req: &mut Request) -> Result<String> {
    req.websocket().map(|_| "unexpected".to_owned())
}

/// A websocket served by event callbacks (issue 17): greets with `open <socket id>`, then
/// answers `count` with the number of `count`s this session has seen (kept in the session,
/// saved after each callback), `fail` by failing (the host closes with 1011), and echoes
/// anything else.
struct EventEcho;

impl WsHandler for EventEcho {
    fn on_open(&mut self, ws: &WebSocket, _req: &mut Request) -> Result<()> {
        ws.send(format!("open {}", ws.id()))
    }

    fn on_message(&mut self, ws: &WebSocket, req: &mut Request, message: Message) -> Result<()> {
        match message.as_text() {
            Some("count") => {
                let n: u64 = req.session.get("ws_count").unwrap_or(0) + 1;
                req.session.set("ws_count", n);
                ws.send(format!("count {n}"))
            }
            Some("fail") => Err(Error::internal("websocket callback failure")),
            Some("panic") => panic!("secret websocket callback panic"),
            Some("slow_set") => {
                // A session change made over a slow call (a request saves meanwhile).
                tracing::info!(target: "inphms.addons.test_http", "test_http: slow_set started");
                req.session.set("ws_key", "ws");
                std::thread::sleep(std::time::Duration::from_millis(1500));
                ws.send("slow_set done")
            }
            _ => ws.send(message),
        }
    }

    fn on_close(&mut self, _ws: &WebSocket, _req: &mut Request, code: u16, _reason: &str) {
        tracing::info!(target: "inphms.addons.test_http", "test_http: ws_events closed with {code} (socket {})", _ws.id());
    }
}

#[route("/test_http/ws_events", auth = "none", websocket = true)]
fn ws_events(req: &mut Request) -> Result<()> {
    req.websocket()?.serve(EventEcho)
}

/// The same echo with its callbacks run inline on the runtime's thread (`blocking = false`:
/// a quick callback, no hand-off to the blocking pool per message; bench item 15).
#[route(
    "/test_http/ws_events_inline",
    auth = "none",
    websocket = true,
    blocking = false
)]
fn ws_events_inline(req: &mut Request) -> Result<()> {
    req.websocket()?.serve(EventEcho)
}

/// An event websocket answering each message with `user <login>`, the session's login
/// (identity on websockets: the host checks the session token before each call).
struct WhoamiSocket;

impl WsHandler for WhoamiSocket {
    fn on_message(&mut self, ws: &WebSocket, req: &mut Request, _message: Message) -> Result<()> {
        ws.send(format!("user {}", req.session.login().unwrap_or_default()))
    }
}

/// [`WhoamiSocket`] behind `auth = "user"`.
#[route("/test_http/ws_user", auth = "user", websocket = true)]
fn ws_user(req: &mut Request) -> Result<()> {
    req.websocket()?.serve(WhoamiSocket)
}

/// [`WhoamiSocket`] behind `auth = "bearer"`: refused by the host at the upgrade.
#[route("/test_http/ws_bearer", auth = "bearer", websocket = true)]
fn ws_bearer(req: &mut Request) -> Result<()> {
    req.websocket()?.serve(WhoamiSocket)
}

/// Sends `text` to the open websocket `id` from this (plain http) request.
#[route("/test_http/ws_send/<int:id>", auth = "none", save_session = false)]
fn ws_send(req: &mut Request, id: i64) -> Result<String> {
    let text: String = req.param("text")?;
    WebSocket::from_id(id as u64).send(text)?;
    Ok("sent".to_owned())
}

/// Sends up to `n` messages of 64 KiB to websocket `id` without waiting: how many were
/// queued, and why the next was refused (a client that does not read fills its queue).
#[route(
    "/test_http/ws_flood/<int:id>/<int:n>",
    auth = "none",
    save_session = false
)]
fn ws_flood(_req: &mut Request, id: i64, n: i64) -> String {
    let ws = WebSocket::from_id(id as u64);
    let payload = "f".repeat(64 * 1024);
    for i in 0..n {
        if let Err(e) = ws.send(payload.as_str()) {
            return format!("queued {i}, then: {e}");
        }
    }
    format!("queued {n}")
}

/// `mib` MiB of the byte `z`, pulled a MiB at a time, its length announced.
#[route(
    "/test_http/stream_bytes/<int:mib>",
    auth = "none",
    save_session = false
)]
fn stream_bytes(_req: &mut Request, mib: i64) -> Response {
    let mib = mib.clamp(0, 4096) as u64;
    Response::stream((0..mib).map(|_| vec![b'z'; 1 << 20]))
        .length(mib << 20)
        .header("Content-Type", "application/octet-stream")
}

/// Producers of `/test_http/stream_slow` alive (test only: what the tests read through
/// `/test_http/producers_alive` to see that the host dropped them).
static PRODUCERS_ALIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A producer of `left` chunks of 64 KiB, each after 200 ms, counted in [`PRODUCERS_ALIVE`].
pub(crate) struct SlowChunks {
    left: u64,
}

impl SlowChunks {
    pub(crate) fn new(left: u64) -> SlowChunks {
        PRODUCERS_ALIVE.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        SlowChunks { left }
    }
}

impl Iterator for SlowChunks {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        std::thread::sleep(std::time::Duration::from_millis(200));
        Some(vec![b's'; 1 << 16])
    }
}

impl Drop for SlowChunks {
    fn drop(&mut self) {
        PRODUCERS_ALIVE.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// `n` chunks of 64 KiB, each produced in 200 ms (a client can leave mid-chunk).
#[route("/test_http/stream_slow/<int:n>", auth = "none", save_session = false)]
fn stream_slow(_req: &mut Request, n: i64) -> Response {
    Response::stream(SlowChunks::new(n.clamp(0, 10_000) as u64))
        .header("Content-Type", "application/octet-stream")
}

/// How many producers of `/test_http/stream_slow` are alive.
#[route("/test_http/producers_alive", auth = "none", save_session = false)]
fn producers_alive(_req: &mut Request) -> String {
    PRODUCERS_ALIVE
        .load(std::sync::atomic::Ordering::Acquire)
        .to_string()
}

/// Two chunks, then a producer that panics: the host cuts the response (the client sees
/// a short body) and serves on.
#[route("/test_http/stream_panic", auth = "none", save_session = false)]
fn stream_panic(_req: &mut Request) -> Response {
    Response::stream((0..3).map(|i| {
        if i == 2 {
            panic!("secret producer panic");
        }
        b"chunk\n".to_vec()
    }))
}

/// `n` lines `line <i>`, pulled one by one, chunked (no length).
#[route("/test_http/stream_lines/<int:n>", auth = "none", save_session = false)]
fn stream_lines(_req: &mut Request, n: i64) -> Response {
    Response::stream((0..n.max(0)).map(|i| format!("line {i}\n").into_bytes()))
        .header("Content-Type", "text/plain")
}

/// The push streams opened by `/test_http/sse`, fed by `/test_http/sse_push`.
static SSE: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<u64, PushStream>>> =
    std::sync::LazyLock::new(Default::default);

/// Server-sent events: the first event says the stream's id; others come from
/// `/test_http/sse_push/<id>` until `/test_http/sse_close/<id>`.
#[route("/test_http/sse", auth = "none", save_session = false)]
fn sse(_req: &mut Request) -> Result<Response> {
    let stream = PushStream::open(16)?;
    stream.event(Some("hello"), &stream.id().to_string())?;
    SSE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(stream.id(), stream.clone());
    Ok(Response::event_stream(&stream))
}

#[route("/test_http/sse_push/<int:id>", auth = "none", save_session = false)]
fn sse_push(req: &mut Request, id: i64) -> Result<String> {
    let data: String = req.param("data")?;
    let stream = SSE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(id as u64))
        .cloned();
    let stream = stream.ok_or_else(|| Error::not_found("no such stream"))?;
    stream.event(Some("tick"), &data)?;
    Ok("pushed".to_owned())
}

#[route("/test_http/sse_close/<int:id>", auth = "none", save_session = false)]
fn sse_close(_req: &mut Request, id: i64) -> String {
    let stream = SSE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&(id as u64));
    if let Some(s) = stream {
        s.close();
    }
    "closed".to_owned()
}

/// The file at `?path=`, sent from disk by the host.
#[route("/test_http/send_file", auth = "none", save_session = false)]
fn send_file(req: &mut Request) -> Result<Response> {
    let path: String = req.param("path")?;
    tracing::info!(target: "inphms.addons.test_http", "send_file: answering");
    Ok(Response::file(path))
}

/// The body's length and its sum of bytes, read through `body_reader` in 64 KiB pieces.
#[route("/test_http/body_sum", auth = "none", methods = ["POST"], csrf = false, save_session = false)]
fn body_sum(req: &mut Request) -> Result<String> {
    use std::io::Read;
    let mut reader = req.body_reader();
    let mut buf = vec![0u8; 64 * 1024];
    let (mut len, mut sum) = (0u64, 0u64);
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| Error::internal(e.to_string()))?;
        if n == 0 {
            break;
        }
        len += n as u64;
        sum += buf[..n].iter().map(|b| u64::from(*b)).sum::<u64>();
    }
    Ok(format!("{len} {sum}"))
}

/// Whether the body was spooled to a file, and then its length and sum of bytes read
/// through `body_file` (kept past the request by a thread that reads it).
#[route("/test_http/body_file", auth = "none", methods = ["POST"], csrf = false, save_session = false)]
fn body_file(req: &mut Request) -> Result<String> {
    use std::io::Read;
    let Some(file) = req.body_file() else {
        return Ok(format!("in memory {}", req.body().len()));
    };
    let mut file = file.map_err(|e| Error::internal(e.to_string()))?;
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        file.read_to_end(&mut all).map(|_| all)
    });
    let all = reader
        .join()
        .map_err(|_| Error::internal("reader thread panicked"))?
        .map_err(|e| Error::internal(e.to_string()))?;
    let sum: u64 = all.iter().map(|b| u64::from(*b)).sum();
    Ok(format!("spooled {} {sum}", all.len()))
}

/// Prints its arguments and exits with 3.
#[command(name = "test_http_cmd")]
fn test_command(args: &[String]) -> i32 {
    println!("test_http_cmd args={}", args.join(","));
    3
}

inphms_sdk::addon!();

/// A value of the configuration file as the host lends it (`Host::config`), as JSON
/// (`null` when missing).
#[route("/test_http/config/<string:section>/<string:key>", auth = "none")]
fn config_value(_req: &mut Request, section: String, key: String) -> Json<Value> {
    Json(Host.config::<Value>(&section, &key).unwrap_or(Value::Null))
}

/// The id of the process serving (which worker, in workers mode).
#[route("/test_http/pid", auth = "none", save_session = false)]
fn pid(_req: &mut Request) -> String {
    std::process::id().to_string()
}

/// Dereferences a null pointer: the process dies of SIGSEGV (workers-mode crash test).
#[route("/test_http/crash", auth = "none", save_session = false)]
fn crash(_req: &mut Request) -> String {
    tracing::info!(target: "inphms.addons.test_http", "crash: dereferencing a null pointer in {}", std::process::id());
    let null: *const u64 = std::ptr::null();
    // SAFETY: none: this is the crash the workers-mode tests want (read_volatile keeps
    // the compiler from assuming it away).
    let value = unsafe { std::ptr::read_volatile(null) };
    value.to_string()
}

/// Allocates `mib` MiB, touches every page and keeps it for the life of the process (the
/// memory soft-limit test): answers the process id.
#[route("/test_http/grow/<int:mib>", auth = "none", save_session = false)]
fn grow(_req: &mut Request, mib: i64) -> String {
    let bytes = usize::try_from(mib.clamp(0, 1024)).unwrap_or(0) * 1024 * 1024;
    let kept: &'static mut [u8] = Box::leak(vec![1u8; bytes].into_boxed_slice());
    // Touch each page so that it counts in RSS.
    for page in kept.chunks_mut(4096) {
        page[0] = 2;
    }
    std::hint::black_box(&kept);
    std::process::id().to_string()
}

/// Spins on the CPU for `ms` milliseconds of this thread's CPU time (the `limit_time_cpu`
/// test).
#[route("/test_http/spin/<int:ms>", auth = "none", save_session = false)]
fn spin(_req: &mut Request, ms: i64) -> String {
    let want = std::time::Duration::from_millis(ms.clamp(0, 600_000) as u64);
    let began = std::time::Instant::now();
    let mut x = 0u64;
    while began.elapsed() < want {
        for i in 0..10_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
    }
    format!("spun {x}")
}
