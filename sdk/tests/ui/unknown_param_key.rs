use inphms_sdk::route;

#[route("/item", auth = "none")]
fn item(#[param(fallback = 1)] page: i64) -> String {
    page.to_string()
}

fn main() {}
