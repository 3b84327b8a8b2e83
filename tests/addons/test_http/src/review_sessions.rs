//! Routes for the regression tests of the security review's session findings
//! (`tests/tests/review_sessions.rs`): a request that changes its session and finishes only
//! once the test says so (a save racing a logout).

use inphms_sdk::{route, Error, Request, Result};
use std::time::{Duration, Instant};

/// Sets `key` to `value` in the session, logs that it waits, then waits (at most 30 s) for
/// the file `?file=` to exist before returning (the session is saved after).
#[route(
    "/test_http/review/set_when/<string:key>/<string:value>",
    auth = "none"
)]
fn set_when(req: &mut Request, key: String, value: String) -> Result<String> {
    let file: String = req.param("file")?;
    req.session.set(&key, &value);
    tracing::info!(target: "inphms.addons.test_http", "set_when {key}: waiting for {file}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::path::Path::new(&file).exists() {
        if Instant::now() > deadline {
            return Err(Error::internal(format!("{file} never appeared")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(format!("{key} set"))
}
