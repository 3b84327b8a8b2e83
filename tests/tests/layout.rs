//! What a user of a fresh clone sees (issue 16): the built-in addons folder (`addons/`, which
//! the host always searches) holds only what ships, so the real binary's `help` and `addons`
//! commands, run as on a fresh clone (from the repository root, a clean `HOME` with no config
//! file, no `--addons-path`, no `INPHMS_ADDONS_ROOT`), show `base`, `web` and `bus` and the built-in
//! commands, and nothing of the test addons, which live in `tests/addons/`. Named in
//! `--addons-path`, the test addons are found and their command is listed: the same checks
//! see them when they are there.

use inphms_tests::{repo_root, test_addons_dir, Cmd, Output, TestDir};
use std::path::{Path, PathBuf};

/// The test addons, all in `tests/addons/`.
const TEST_ADDONS: [&str; 10] = [
    "test_abi_break",
    "test_bus",
    "test_db",
    "test_http",
    "test_old_sdk",
    "test_override",
    "test_override_more",
    "test_panic_abort",
    "test_sdk",
    "test_swap",
];

/// `inphms-host ARGS...` as on a fresh clone: run from the repository root with `HOME` the
/// test's empty folder and no `INPHMS_ADDONS_ROOT` (the harness clears the other variables).
fn fresh(td: &TestDir, args: &[&str]) -> Output {
    let out = Cmd::new(args)
        .home(td.home())
        .current_dir(repo_root())
        .env_remove("INPHMS_ADDONS_ROOT")
        .run();
    assert_eq!(out.code, Some(0), "{out}");
    out
}

/// The commands `help` lists: the first word of each line under "Available commands:".
fn commands(help: &Output) -> Vec<String> {
    let listed: Vec<String> = help
        .stdout
        .lines()
        .skip_while(|l| l.trim() != "Available commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    assert!(
        listed.iter().any(|c| c == "server") && listed.iter().any(|c| c == "addons"),
        "the built-in commands are listed: {help}"
    );
    listed
}

/// The rows of `addons`: each addon's name and folder (the first and the last column), in
/// the listed order.
fn addon_rows(addons: &Output) -> Vec<(String, PathBuf)> {
    let mut lines = addons.stdout.lines();
    let header = lines.next().unwrap_or_default();
    assert!(header.starts_with("NAME "), "a header first: {addons}");
    lines
        .filter(|l| !l.starts_with("broken: "))
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let (Some(name), Some(dir)) = (cols.first(), cols.last()) else {
                panic!("a row with a name and a folder: {l:?} in {addons}");
            };
            (name.to_string(), PathBuf::from(dir))
        })
        .collect()
}

/// `path` with symbolic links resolved (as the host shows the built-in folder).
fn canonical(path: &Path) -> PathBuf {
    path.canonicalize()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_fresh_clone_shows_only_the_shipped_addons_and_the_built_in_commands() {
    let td = TestDir::new();
    let help = fresh(&td, &["help"]);
    let listed = commands(&help);
    assert!(
        !listed.iter().any(|c| c.starts_with("test_")),
        "no command of a test addon: {help}"
    );
    // Addon-provided commands end with "(addon NAME)": only base's and web's may appear.
    for line in help.stdout.lines().filter(|l| l.contains("(addon ")) {
        assert!(
            line.ends_with("(addon base)") || line.ends_with("(addon web)"),
            "a command of an addon that does not ship: {line}\n{help}"
        );
    }
    assert!(!help.stdout.contains("test_"), "{help}");
    assert!(!help.stderr.contains("test_"), "{help}");

    let addons = fresh(&td, &["addons"]);
    let rows = addon_rows(&addons);
    let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
    // What ships: the server-wide base and web, and bus (installed per database).
    assert_eq!(names, ["base", "web", "bus"], "{addons}");
    let builtin = canonical(&repo_root().join("addons"));
    for (name, dir) in &rows {
        assert_eq!(canonical(dir), builtin.join(name), "{addons}");
    }
    assert!(!addons.stdout.contains("broken: "), "{addons}");
    assert!(!addons.stdout.contains("test_"), "{addons}");
    assert!(!addons.stderr.contains("test_"), "{addons}");
}

#[test]
fn the_test_addons_are_found_when_named_in_the_addons_path() {
    let td = TestDir::new();
    let path = format!("--addons-path={}", test_addons_dir().display());

    let help = fresh(&td, &[&path, "help"]);
    let test_http_cmd = help
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some("test_http_cmd"))
        .unwrap_or_else(|| panic!("test_http_cmd listed: {help}"));
    assert!(test_http_cmd.ends_with("(addon test_http)"), "{help}");
    assert!(commands(&help).iter().any(|c| c == "test_http_cmd"));

    let addons = fresh(&td, &[&path, "addons"]);
    let rows = addon_rows(&addons);
    let mut names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    let mut expected = vec!["base", "bus", "web"];
    expected.extend(TEST_ADDONS);
    expected.sort_unstable();
    assert_eq!(names, expected, "{addons}");
    let tests = canonical(&test_addons_dir());
    let builtin = canonical(&repo_root().join("addons"));
    for (name, dir) in &rows {
        let home = if TEST_ADDONS.contains(&name.as_str()) {
            &tests
        } else {
            &builtin
        };
        assert_eq!(canonical(dir), home.join(name), "{addons}");
    }
}
