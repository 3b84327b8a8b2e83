use inphms_sdk::route;

#[route("item", auth = "none")]
fn item() -> String {
    String::new()
}

fn main() {}
