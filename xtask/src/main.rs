//! Project automation, run as `cargo xtask TASK` (alias in `.cargo/config.toml`).
//!
//! - `cargo xtask test [ARGS...]`: builds the whole workspace (the `inphms-host` binary and
//!   the addon libraries the integration tests load), builds the special test addons
//!   ([`build_test_addons`]), then runs `cargo test --workspace ARGS...`.
//! - `cargo xtask bench [--quick] [SUITE ARGS...]`: installs the load generator when missing
//!   ([`ensure_load_generator`]), builds the host, the addons and the bench crate in release
//!   (and the `v1` and `v2` builds of `test_swap` into `target/release/bench-addons/`), then
//!   runs `target/release/bench-suite`, which prints the table and updates
//!   `BENCHMARKS.md` (see `bench/src/lib.rs`); `cargo xtask bench --instructions` counts
//!   instructions per request under callgrind instead.
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
        Some("run") => serve(args.collect()),
        Some("bench") => bench(args.collect()),
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

const USAGE: &str = "usage: cargo xtask test [CARGO TEST ARGS...]\n       \
    cargo xtask bench [--quick] [BENCH-SUITE ARGS...]\n\n\
    test   build the workspace and the test addons, then run cargo test --workspace\n\
    bench  install wrk if missing, build in release, run the benchmarks (issue 7) and\n       \
    write BENCHMARKS.md; --quick: one round of short runs; --instructions: instructions\n       \
    per request under callgrind; --help for the suite's options";

/// The root of the workspace.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ has a parent")
        .to_owned()
}

/// Cargo's target folder: `$CARGO_TARGET_DIR`, else `target/` at the root.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
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

/// `cargo xtask run`: builds `inphms-host` and the `base` and `web` addons in release mode
/// (a plain `cargo run -p inphms-host` would not build the addon libraries), then runs the
/// server with `args` until it exits.
fn serve(args: Vec<OsString>) -> Result<(), String> {
    let mut build = cargo();
    build.args([
        "build",
        "--release",
        "-p",
        "inphms-host",
        "-p",
        "base",
        "-p",
        "web",
    ]);
    run(build)?;
    let target = target_dir();
    let mut server = Command::new(target.join("release/inphms-host"));
    server.current_dir(root()).args(args);
    run(server)
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
/// - `test_swap-v2`, `test_swap-fail_post_load`, `test_swap-v1`: the builds of `test_swap`
///   with each feature (v1 last, so the workspace build is v1 again).
///
/// Runs between the workspace build and the tests.
fn build_test_addons() -> Result<(), String> {
    let root = root();
    let target = target_dir();
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
    )?;

    for (variant, features) in [
        ("v2", "v2"),
        ("fail_post_load", "fail_post_load"),
        ("v1", ""),
    ] {
        let mut build = cargo();
        build.args(["build", "-p", "test_swap", "--features", features]);
        run(build)?;
        assemble(
            &root.join("addons/test_swap"),
            &lib("test_swap"),
            &out.join(format!("test_swap-{variant}")),
        )?;
    }
    Ok(())
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

/// `cargo xtask bench`: load generator, release build, then the suite with `extra` (e.g.
/// `--quick`).
fn bench(extra: Vec<OsString>) -> Result<(), String> {
    ensure_load_generator()?;
    let mut build = cargo();
    build.args([
        "build",
        "--release",
        "-p",
        "inphms-host",
        "-p",
        "base",
        "-p",
        "web",
        "-p",
        "test_http",
        "-p",
        "test_db",
        "-p",
        "inphms-bench",
    ]);
    run(build)?;
    let target = target_dir();
    // The two builds of `test_swap` that items 7 and 8 swap between, in release, into
    // `target/release/bench-addons/test_swap-<variant>/` (v1 last, so that the workspace's
    // release build is v1 again).
    for (variant, features) in [("v2", "v2"), ("v1", "")] {
        let mut build = cargo();
        build.args([
            "build",
            "--release",
            "-p",
            "test_swap",
            "--features",
            features,
        ]);
        run(build)?;
        assemble(
            &root().join("addons/test_swap"),
            &target.join("release").join("libtest_swap.so"),
            &target
                .join("release")
                .join("bench-addons")
                .join(format!("test_swap-{variant}")),
        )?;
    }
    let shown: Vec<String> = extra
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut suite = Command::new(target.join("release").join("bench-suite"));
    suite
        .current_dir(root())
        .arg("--command")
        .arg(format!("cargo xtask bench {}", shown.join(" ")).trim_end())
        .args(extra);
    run(suite)
}

/// Whether `program` runs (`program --version`).
fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// Makes sure `wrk` (preferred) or `oha` is on the `PATH`: `apt-get update` and
/// `apt-get install -y wrk` (through `sudo` when not root and `sudo` exists), else
/// `cargo install oha --locked`.
fn ensure_load_generator() -> Result<(), String> {
    if runs("wrk") || runs("oha") {
        return Ok(());
    }
    if runs("apt-get") {
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let apt = |args: &[&str]| {
            let mut c = if is_root {
                Command::new("apt-get")
            } else {
                Command::new("sudo")
            };
            if !is_root {
                c.arg("apt-get");
            }
            c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
            c
        };
        if is_root || runs("sudo") {
            let installed =
                run(apt(&["update"])).and_then(|()| run(apt(&["install", "-y", "wrk"])));
            match installed {
                Ok(()) if runs("wrk") => return Ok(()),
                Ok(()) => eprintln!("xtask: wrk installed but does not run; trying oha"),
                Err(e) => eprintln!("xtask: {e}; trying oha"),
            }
        }
    }
    let mut install = cargo();
    install.args(["install", "oha", "--locked"]);
    run(install)?;
    if runs("oha") {
        Ok(())
    } else {
        Err("oha was installed but is not on the PATH (add ~/.cargo/bin)".into())
    }
}
