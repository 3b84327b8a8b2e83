use inphms_sdk::{post_dispatch, Request, Result};

#[post_dispatch]
fn post(_req: &mut Request) -> Result<()> {
    Ok(())
}

fn main() {}
