use inphms_sdk::{auth_method, Request, Result};

#[auth_method]
fn token(_req: &mut Request) -> Result<()> {
    Ok(())
}

fn main() {}
