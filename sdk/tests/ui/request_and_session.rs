use inphms_sdk::route;

#[route("/item", auth = "none")]
fn item(_req: &mut inphms_sdk::Request, _session: &mut inphms_sdk::Session) -> String {
    String::new()
}

fn main() {}
