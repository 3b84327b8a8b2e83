use inphms_sdk::route;

#[route("/web/health", auth = "none", overrides = "web addon")]
fn health() -> &'static str {
    "ok"
}

fn main() {}
