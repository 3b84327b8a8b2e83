//! What the RPC tests share (`rpc_xmlrpc`, `rpc_jsonrpc`): a server on a fresh database
//! (identity's `Site`: `base`, `web`, admin's password `admin-pw` at cheap rounds), an API
//! key of admin's, and Python scripts run against the server with their output as JSON.

#![allow(dead_code)]

#[path = "../identity/support.rs"]
pub mod identity;

pub use identity::Site;
use serde_json::Value;
use std::process::Command;

/// admin's password on a [`Site`].
pub const ADMIN_PW: &str = "admin-pw";

/// A new API key of admin's (`inphms-host users apikey`).
pub fn api_key(site: &Site) -> String {
    let out = site.users(&["apikey", "admin", "--name", "rpc"], None);
    assert_eq!(out.code, Some(0), "{out}");
    out.stdout.trim().to_owned()
}

/// Runs the Python `script` with `args` (`sys.argv[1:]`); its standard output read as
/// JSON (the script prints one JSON document).
pub fn python(script: &str, args: &[&str]) -> Value {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python failed: {stderr}\n{stdout}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
}
