//! Project automation, run as `cargo xtask TASK` (alias in `.cargo/config.toml`).
//!
//! - `cargo xtask test [ARGS...]`: builds the whole workspace (the `inphms-host` binary and
//!   the addon libraries the integration tests load), builds the special test addons
//!   ([`build_test_addons`]), then runs `cargo test --workspace ARGS...`.
//!
//! Standard library only: this crate must build before anything else.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let task = args.next();
    let result = match task.as_ref().and_then(|t| t.to_str()) {
        Some("test") => test(args.collect()),
        Some("help" | "-h" | "--help") | None => {
            println!("{}", USAGE);
            Ok(())
        }
        Some(other) => Err(format!("unknown task '{other}'\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: cargo xtask test [CARGO TEST ARGS...]\n\n\
    test   build the workspace and the test addons, then run cargo test --workspace";

/// The root of the workspace.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ has a parent")
        .to_owned()
}

/// `cargo` (the one running this task, when known), run from the workspace root.
fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

/// Runs `cmd`, failing when it does not succeed.
fn run(mut cmd: Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    eprintln!("xtask: running {shown}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

/// `cargo xtask test`: build, build the test addons, test.
fn test(extra: Vec<OsString>) -> Result<(), String> {
    let mut build = cargo();
    build.args(["build", "--workspace"]);
    run(build)?;
    build_test_addons()?;
    let mut test = cargo();
    test.args(["test", "--workspace"]).args(extra);
    run(test)
}

/// Builds the test addons that cannot be workspace members, because they need another SDK
/// feature set or another panic strategy (the `exclude` list of the root `Cargo.toml`), so
/// that the integration tests find their libraries. Runs between the workspace build and
/// the tests.
///
/// It does nothing yet: each such addon adds its build here (e.g. a `cargo build
/// --manifest-path addons/<name>/Cargo.toml` with its own profile or features).
fn build_test_addons() -> Result<(), String> {
    Ok(())
}
