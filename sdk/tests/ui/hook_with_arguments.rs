use inphms_sdk::{pre_dispatch, Request, Response, Result};

#[pre_dispatch(first)]
fn pre(_req: &mut Request) -> Result<Option<Response>> {
    Ok(None)
}

fn main() {}
