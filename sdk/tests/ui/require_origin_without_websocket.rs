use inphms_sdk::route;

#[route("/feed", auth = "public", require_origin = true)]
fn feed() -> &'static str {
    "ok"
}

fn main() {}
