//! The `{{name}}` addon.

use inphms_sdk::{command, route, Request};

/// `GET /{{name}}/hello` answers a greeting.
#[route("/{{name}}/hello", auth = "public")]
fn hello(_req: &mut Request) -> String {
    "Hello from {{name}}".to_owned()
}

/// Says hello from the command line: `inphms-host {{name}} [WORDS...]`.
#[command(name = "{{name}}")]
fn hello_command(args: &[String]) -> i32 {
    println!("Hello from {{name}}: {}", args.join(" "));
    0
}

inphms_sdk::addon!();
