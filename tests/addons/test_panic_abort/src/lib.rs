//! Test addon; its `panic = "abort"` build must be refused by the host.

use inphms_sdk::{route, Request};

/// Served only by the unwind build.
#[route("/test_panic_abort/hello", auth = "none")]
fn hello(_req: &mut Request) -> String {
    "unwind build".into()
}

inphms_sdk::addon!();
