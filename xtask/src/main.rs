//! Project automation, run as `cargo xtask TASK` (alias in `.cargo/config.toml`).
//!
//! - `cargo xtask test [ARGS...]`: installs what the tests need beside Rust and PostgreSQL
//!   when missing (`.ci/test-deps`: passlib, chromium, selenium), builds the whole workspace (the `inphms-host` binary and
//!   the addon libraries the integration tests load), builds the special test addons
//!   (listed in [`BUILDS`]; the test addons live in `tests/addons/`), then runs
//!   `cargo test --workspace ARGS...`.
//! - `cargo xtask bench [--quick] [SUITE ARGS...]`: installs the load generator and nginx
//!   (the peer server) when missing ([`ensure_load_generator`], [`ensure_nginx`]), builds what [`BUILDS`] lists for it in release (the host,
//!   the addons, the bench crate, and the `v1` and `v2` builds of `test_swap` into
//!   `target/release/bench-addons/`), then runs `target/release/bench-suite`, which prints
//!   the table and updates `BENCHMARKS.md` (see `bench/src/lib.rs`); `cargo xtask bench
//!   --instructions` counts instructions per request under callgrind instead.
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
    bench  install wrk and nginx if missing, build in release, run the benchmarks (issue 7) and\n       \
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

/// The folder of the test addons (not shipped: the host does not search it unless told).
const TEST_ADDONS: &str = "tests/addons";

/// A task of `cargo xtask` that builds something.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Task {
    /// `cargo xtask run` (release).
    Run,
    /// `cargo xtask test` (debug; it builds the whole workspace first).
    Test,
    /// `cargo xtask bench` (release).
    Bench,
}

impl Task {
    /// Whether the task builds in release mode.
    fn release(self) -> bool {
        matches!(self, Task::Run | Task::Bench)
    }

    /// The folder of the task's profile in the target folder.
    fn profile_dir(self) -> PathBuf {
        target_dir().join(if self.release() { "release" } else { "debug" })
    }

    /// Where the task's assembled addon builds go (`<name>/` each, the manifest beside the
    /// library, as a shipped addon): `target/test-addons/` for the tests,
    /// `target/release/bench-addons/` for the benchmarks.
    fn assembled_dir(self) -> PathBuf {
        match self {
            Task::Test => target_dir().join("test-addons"),
            Task::Run | Task::Bench => self.profile_dir().join("bench-addons"),
        }
    }
}

/// How a [`Build`] is made.
#[derive(Clone, Copy)]
enum How {
    /// The workspace package as is (`cargo build -p <package>`).
    Package,
    /// The test addon built with `features` (`cargo build -p <package> --features ...`),
    /// assembled into `<package>-<variant>/`.
    Variant {
        variant: &'static str,
        features: &'static str,
    },
    /// The workspace's test addon rebuilt with `-C panic=abort` on its own crate
    /// (`cargo rustc`), assembled into `<package>/`: the host must refuse it.
    PanicAbort,
    /// A test addon that is not a workspace member (its SDK features would leak into every
    /// member), built with the workspace's `Cargo.lock` and target folder (so dependencies
    /// are reused), assembled into `<package>/`.
    OutsideWorkspace,
}

/// One thing `cargo xtask` builds, and the tasks that need it.
struct Build {
    package: &'static str,
    how: How,
    tasks: &'static [Task],
}

/// What each task builds, in order. `cargo xtask test` builds the whole workspace first,
/// so it lists only what the workspace build does not make. The builds of `test_swap` come
/// with `v1` last, so that the workspace's library is v1 again afterwards.
const BUILDS: &[Build] = &[
    Build {
        package: "inphms-host",
        how: How::Package,
        tasks: &[Task::Run, Task::Bench],
    },
    Build {
        package: "base",
        how: How::Package,
        tasks: &[Task::Run, Task::Bench],
    },
    Build {
        package: "web",
        how: How::Package,
        tasks: &[Task::Run, Task::Bench],
    },
    Build {
        package: "bus",
        how: How::Package,
        tasks: &[Task::Run, Task::Bench],
    },
    Build {
        package: "test_http",
        how: How::Package,
        tasks: &[Task::Bench],
    },
    Build {
        package: "test_bus",
        how: How::Package,
        tasks: &[Task::Bench],
    },
    Build {
        package: "test_db",
        how: How::Package,
        tasks: &[Task::Bench],
    },
    Build {
        package: "inphms-bench",
        how: How::Package,
        tasks: &[Task::Bench],
    },
    Build {
        package: "test_abi_break",
        how: How::OutsideWorkspace,
        tasks: &[Task::Test],
    },
    Build {
        package: "test_old_sdk",
        how: How::OutsideWorkspace,
        tasks: &[Task::Test],
    },
    Build {
        package: "test_panic_abort",
        how: How::PanicAbort,
        tasks: &[Task::Test],
    },
    Build {
        package: "test_swap",
        how: How::Variant {
            variant: "v2",
            features: "v2",
        },
        tasks: &[Task::Test, Task::Bench],
    },
    Build {
        package: "test_swap",
        how: How::Variant {
            variant: "fail_post_load",
            features: "fail_post_load",
        },
        tasks: &[Task::Test],
    },
    Build {
        package: "test_swap",
        how: How::Variant {
            variant: "v1",
            features: "",
        },
        tasks: &[Task::Test, Task::Bench],
    },
];

/// Builds what [`BUILDS`] lists for `task`: the plain packages in one cargo run, then each
/// special build, assembled into [`Task::assembled_dir`].
fn build_for(task: Task) -> Result<(), String> {
    let builds: Vec<&Build> = BUILDS.iter().filter(|b| b.tasks.contains(&task)).collect();
    let packages: Vec<&str> = builds
        .iter()
        .filter(|b| matches!(b.how, How::Package))
        .map(|b| b.package)
        .collect();
    if !packages.is_empty() {
        let mut build = cargo();
        build.arg("build");
        release_flag(&mut build, task);
        for package in packages {
            build.args(["-p", package]);
        }
        run(build)?;
    }
    for b in builds {
        build_special(task, b)?;
    }
    Ok(())
}

/// Adds `--release` to `cmd` when `task` builds in release mode.
fn release_flag(cmd: &mut Command, task: Task) {
    if task.release() {
        cmd.arg("--release");
    }
}

/// Makes the special build `b` (nothing for [`How::Package`]) and assembles it.
fn build_special(task: Task, b: &Build) -> Result<(), String> {
    let root = root();
    let src = root.join(TEST_ADDONS).join(b.package);
    let mut build = cargo();
    let folder = match b.how {
        How::Package => return Ok(()),
        How::Variant { variant, features } => {
            build.args(["build", "-p", b.package, "--features", features]);
            format!("{}-{variant}", b.package)
        }
        How::PanicAbort => {
            build.args(["rustc", "-p", b.package, "--lib"]);
            b.package.to_owned()
        }
        How::OutsideWorkspace => {
            std::fs::copy(root.join("Cargo.lock"), src.join("Cargo.lock"))
                .map_err(|e| format!("cannot copy Cargo.lock into {}: {e}", src.display()))?;
            build
                .args(["build", "--manifest-path"])
                .arg(src.join("Cargo.toml"))
                .arg("--target-dir")
                .arg(target_dir());
            b.package.to_owned()
        }
    };
    release_flag(&mut build, task);
    if matches!(b.how, How::PanicAbort) {
        build.args(["--", "-C", "panic=abort"]);
    }
    run(build)?;
    let lib = task.profile_dir().join(format!("lib{}.so", b.package));
    assemble(&src, &lib, &task.assembled_dir().join(folder))
}

/// `cargo xtask run`: builds `inphms-host` and the `base` and `web` addons in release mode
/// (a plain `cargo run -p inphms-host` would not build the addon libraries), then runs the
/// server with `args` until it exits.
fn serve(args: Vec<OsString>) -> Result<(), String> {
    build_for(Task::Run)?;
    let mut server = Command::new(Task::Run.profile_dir().join("inphms-host"));
    server.current_dir(root()).args(args);
    run(server)
}

/// `cargo xtask test`: builds the workspace, then the special test addons ([`BUILDS`]:
/// `test_abi_break`, `test_old_sdk`, `test_panic_abort` and the builds of `test_swap`, into
/// `target/test-addons/`), then runs `cargo test --workspace EXTRA...`.
fn test(extra: Vec<OsString>) -> Result<(), String> {
    // What the tests need beside Rust and PostgreSQL (passlib, chromium, selenium), installed
    // when missing, so that this one command works on a fresh machine.
    let mut deps = Command::new("bash");
    deps.arg(root().join(".ci").join("test-deps"));
    run(deps)?;
    let mut build = cargo();
    build.args(["build", "--workspace"]);
    run(build)?;
    build_for(Task::Test)?;
    let mut test = cargo();
    test.args(["test", "--workspace"]).args(extra);
    run(test)
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

/// `cargo xtask bench`: load generator, the release builds of [`BUILDS`] (the host, the
/// addons, the bench crate, and the `v1` and `v2` builds of `test_swap` that items 7 and 8
/// swap between, into `target/release/bench-addons/test_swap-<variant>/`), then the suite
/// with `extra` (e.g. `--quick`).
fn bench(extra: Vec<OsString>) -> Result<(), String> {
    ensure_load_generator()?;
    ensure_nginx();
    build_for(Task::Bench)?;
    let shown: Vec<String> = extra
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut suite = Command::new(Task::Bench.profile_dir().join("bench-suite"));
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

/// Makes sure `wrk` (preferred) or `oha` is on the `PATH`: `apt-get install -y wrk`
/// ([`apt_install`]), else `cargo install oha --locked`.
fn ensure_load_generator() -> Result<(), String> {
    if runs("wrk") || runs("oha") {
        return Ok(());
    }
    match apt_install("wrk") {
        Ok(()) if runs("wrk") => return Ok(()),
        Ok(()) => eprintln!("xtask: wrk installed but does not run; trying oha"),
        Err(e) => eprintln!("xtask: {e}; trying oha"),
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

/// Where the suite looks for nginx (the peer of items 1 and 4, and of item 11): on the
/// `PATH`, else Debian's `/usr/sbin/nginx` (not on a user's `PATH`).
const NGINX: [&str; 2] = ["nginx", "/usr/sbin/nginx"];

/// Makes sure nginx is installed (`apt-get install -y nginx-light`, else `nginx`). The suite
/// runs private instances (its own prefix, configuration and pid file in a scratch folder);
/// it never starts, stops or reads the system service. Not fatal: without nginx the suite
/// measures everything else and says in nginx's rows why they are missing.
fn ensure_nginx() {
    let found = || {
        NGINX.iter().any(|n| {
            Command::new(n)
                .arg("-v")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok()
        })
    };
    if found() {
        return;
    }
    for package in ["nginx-light", "nginx"] {
        match apt_install(package) {
            Ok(()) if found() => return,
            Ok(()) => eprintln!("xtask: {package} installed but nginx does not run"),
            Err(e) => eprintln!("xtask: {e}"),
        }
    }
    eprintln!("xtask: no nginx: the suite's nginx rows will say so");
}

/// `apt-get update` (once per xtask run) and `apt-get install -y PACKAGE`, through `sudo`
/// when not root and `sudo` exists.
fn apt_install(package: &str) -> Result<(), String> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static UPDATED: AtomicBool = AtomicBool::new(false);
    if !runs("apt-get") {
        return Err(format!("cannot install {package}: no apt-get"));
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root && !runs("sudo") {
        return Err(format!("cannot install {package}: not root and no sudo"));
    }
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
    if !UPDATED.swap(true, Ordering::Relaxed) {
        run(apt(&["update"]))?;
    }
    run(apt(&["install", "-y", package]))
}
