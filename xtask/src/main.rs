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

/// Builds the test addons that cannot come out of the workspace build, into
/// `target/test-addons/<name>/` (the manifest beside the library, as a shipped addon):
///
/// - `test_abi_break`: not a workspace member (its SDK feature `abi-break-test` changes a
///   root-module field type and would leak into every member); built with the workspace's
///   `Cargo.lock` and target folder, so dependencies are reused.
/// - `test_panic_abort`: the workspace member rebuilt with `-C panic=abort` on its own crate
///   (`cargo rustc`), which the host must refuse.
///
/// Runs between the workspace build and the tests.
fn build_test_addons() -> Result<(), String> {
    let root = root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let out = target.join("test-addons");
    let lib = |name: &str| target.join("debug").join(format!("lib{name}.so"));

    let abi_break = root.join("addons/test_abi_break");
    std::fs::copy(root.join("Cargo.lock"), abi_break.join("Cargo.lock"))
        .map_err(|e| format!("cannot copy Cargo.lock into {}: {e}", abi_break.display()))?;
    let mut build = cargo();
    build
        .args(["build", "--manifest-path"])
        .arg(abi_break.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target);
    run(build)?;
    assemble(
        &abi_break,
        &lib("test_abi_break"),
        &out.join("test_abi_break"),
    )?;

    let mut build = cargo();
    build.args([
        "rustc",
        "-p",
        "test_panic_abort",
        "--lib",
        "--",
        "-C",
        "panic=abort",
    ]);
    run(build)?;
    assemble(
        &root.join("addons/test_panic_abort"),
        &lib("test_panic_abort"),
        &out.join("test_panic_abort"),
    )
}

/// Puts `addon_dir`'s manifest and the library `lib` into `dest` (replaced).
fn assemble(addon_dir: &Path, lib: &Path, dest: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dest);
    std::fs::create_dir_all(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    for (from, name) in [
        (addon_dir.join("__manifest__.toml"), "__manifest__.toml"),
        (
            lib.to_owned(),
            lib.file_name().and_then(|n| n.to_str()).unwrap_or("lib.so"),
        ),
    ] {
        std::fs::copy(&from, dest.join(name)).map_err(|e| {
            format!(
                "cannot copy {} into {}: {e}",
                from.display(),
                dest.display()
            )
        })?;
    }
    Ok(())
}
