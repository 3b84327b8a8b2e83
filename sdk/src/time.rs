//! Timers of the host for async routes: [`sleep`] waits on the host's runtime, holding no
//! thread (an addon has no runtime of its own: `tokio::time::sleep` in addon code panics).

use std::time::Duration;

/// Waits `duration` on a timer of the host's runtime: in an async route, no thread waits.
/// Outside a host (a unit test) or on a host without timers, the calling thread sleeps.
///
/// ```
/// use inphms_sdk::{route, time, Request};
/// use std::time::Duration;
///
/// /// Answers after half a second, holding no thread meanwhile.
/// #[route("/slow_hello", auth = "none")]
/// async fn slow_hello(_req: &mut Request<'_>) -> String {
///     time::sleep(Duration::from_millis(500)).await;
///     "hello".to_owned()
/// }
/// # fn main() {}
/// ```
pub async fn sleep(duration: Duration) {
    let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    let timer = crate::host::api()
        .ok()
        .and_then(|api| api.sleep().map(|f| f(api.ctx(), ms)));
    match timer {
        Some(timer) => timer.await,
        None => std::thread::sleep(duration),
    }
}
