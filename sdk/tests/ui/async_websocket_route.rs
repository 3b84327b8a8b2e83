use inphms_sdk::route;

#[route("/ws", auth = "none", websocket = true)]
async fn ws(req: &mut inphms_sdk::Request<'_>) -> inphms_sdk::Result<()> {
    let _ = req;
    Ok(())
}

fn main() {}
