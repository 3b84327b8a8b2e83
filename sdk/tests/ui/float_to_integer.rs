use inphms_sdk::route;

#[route("/price/<float:amount>", auth = "none")]
fn price(amount: i64) -> String {
    amount.to_string()
}

fn main() {}
