//! Test addon that says it was built with inphms-sdk 0.2 (see its Cargo.toml).

use inphms_sdk::{route, Request};

/// Never served: the host refuses this library.
#[route("/test_old_sdk/hello", auth = "none")]
fn hello(_req: &mut Request) -> String {
    "should not load".into()
}

inphms_sdk::addon!();
