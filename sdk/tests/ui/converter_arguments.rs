use inphms_sdk::route;

#[route("/item/<int(min=1):id>", auth = "none")]
fn item(id: i64) -> String {
    id.to_string()
}

fn main() {}
