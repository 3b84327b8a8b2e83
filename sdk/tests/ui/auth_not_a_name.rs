use inphms_sdk::route;

#[route("/hello", auth = "my token")]
fn hello() -> &'static str {
    "hello"
}

fn main() {}
