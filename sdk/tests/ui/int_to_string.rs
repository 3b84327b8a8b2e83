use inphms_sdk::route;

#[route("/item/<int:id>", auth = "none")]
fn item(_req: &mut inphms_sdk::Request, id: String) -> String {
    id
}

fn main() {}
