//! Test addon whose root module layout differs from the host's (see its Cargo.toml).

use inphms_sdk::{route, Request};

/// Never served: the host refuses this library.
#[route("/test_abi_break/hello", auth = "none")]
fn hello(_req: &mut Request) -> String {
    "should not load".into()
}

inphms_sdk::addon!();
