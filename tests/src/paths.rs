//! Where things are: the repository root, the `inphms-host` binary under test (refused when
//! older than its sources), the workspace's target folder and the built addon libraries.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The root of the repository.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// The `inphms-host` binary: `$INPHMS_HOST_BIN`, else `inphms-host` in the target folder of
/// the running test (`target/debug/deps/X` → `target/debug/inphms-host`).
///
/// Panics when it is missing, or older than the sources of `host/` or `sdk/` (so that a test
/// never runs a stale binary): build it with `cargo build -p inphms-host`.
pub fn host_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("INPHMS_HOST_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable in target/<profile>/deps");
    let bin = profile_dir.join("inphms-host");
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is missing: build it with `cargo build -p inphms-host` (or run `cargo xtask test`)",
                bin.display()
            )
        });
    let root = repo_root();
    // Sources only: cargo rebuilds the binary when a source file is newer, but not when a
    // manifest changes without changing the build (a comment), so a manifest here would ask
    // for a rebuild that cargo declines.
    for dir in ["host/src", "sdk/src"] {
        if let Some((newest, path)) = newest_file(&root.join(dir)) {
            assert!(
                newest <= built,
                "{} is older than {}: rebuild it with `cargo build -p inphms-host` (or run `cargo xtask test`)",
                bin.display(),
                path.display()
            );
        }
    }
    bin
}

/// The most recently modified file under `path` (or `path` itself).
fn newest_file(path: &Path) -> Option<(SystemTime, PathBuf)> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return Some((meta.modified().ok()?, path.to_owned()));
    }
    std::fs::read_dir(path)
        .ok()?
        .flatten()
        .filter_map(|e| newest_file(&e.path()))
        .max_by_key(|(t, _)| *t)
}

/// The workspace's target folder: `$CARGO_TARGET_DIR` (relative to the repository root
/// when relative), else `target/` at the root.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => repo_root().join(dir),
        None => repo_root().join("target"),
    }
}

/// The debug build of the addon library `lib<name>.so` in the workspace's target folder
/// (`cargo build --workspace` makes it).
pub fn built_lib(name: &str) -> PathBuf {
    let lib = target_dir().join(format!("debug/lib{name}.so"));
    assert!(
        lib.is_file(),
        "{} is missing: run `cargo build --workspace`",
        lib.display()
    );
    lib
}

/// The folder of the test addons (`test_http`, `test_db`, `test_swap`, `test_panic_abort`,
/// `test_abi_break`): `tests/addons/`. The host does not search it by default (its built-in
/// addons folder is the repository's `addons/`, which holds only what ships), so a test that
/// loads a test addon names it in `--addons-path` ([`with_test_addons`]) or copies the addon
/// ([`crate::TestDir::copy_addon`] of [`test_addon_src`]).
pub fn test_addons_dir() -> PathBuf {
    repo_root().join("tests/addons")
}

/// The source folder of the test addon `name` (its manifest, `Cargo.toml`, `src/`).
pub fn test_addon_src(name: &str) -> PathBuf {
    test_addons_dir().join(name)
}

/// The `--addons-path` value of a test that loads test addons: the folders `first` (searched
/// first, so their addons shadow those of the same name), then [`test_addons_dir`].
pub fn with_test_addons(first: &[&Path]) -> String {
    let mut dirs: Vec<String> = first.iter().map(|d| d.display().to_string()).collect();
    dirs.push(test_addons_dir().display().to_string());
    dirs.join(",")
}
