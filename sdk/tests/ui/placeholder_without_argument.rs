use inphms_sdk::route;

#[route("/shop/<int:shop_id>/item/<int:id>", auth = "none")]
fn item(id: i64) -> String {
    id.to_string()
}

fn main() {}
