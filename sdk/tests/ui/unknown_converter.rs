use inphms_sdk::route;

#[route("/item/<uuid:id>", auth = "none")]
fn item(id: String) -> String {
    id
}

fn main() {}
