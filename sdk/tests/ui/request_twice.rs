use inphms_sdk::route;

#[route("/item", auth = "none")]
fn item(_a: &mut inphms_sdk::Request, _b: &inphms_sdk::Request) -> String {
    String::new()
}

fn main() {}
