//! Semver for addons (issue 18), through the real binary: the `test_sdk` library, its SDK
//! version rewritten in its bytes (the version strings its root module and type layouts
//! carry, same length, as a build against that SDK release would have them), is accepted
//! as a newer patch release of the host's SDK line and serves its routes, and refused as
//! another minor with a line saying it is a version mismatch, not a layout difference.

use inphms_tests::{built_lib, http_get, test_addon_src, TestDir};
use std::path::Path;

/// The SDK version `lib` was built with: the one after `inphms-sdk;` in its type layouts.
fn sdk_version(lib: &[u8]) -> String {
    let marker = b"inphms-sdk;";
    let at = lib
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("the library's layouts name inphms-sdk")
        + marker.len();
    lib[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b'.')
        .map(|b| char::from(*b))
        .collect()
}

/// `lib` with every occurrence of `from` replaced by `to` (same length), except in paths
/// of other crates (`<crate>-<version>/`), and how many were replaced.
///
/// The bytes around an occurrence say nothing more: string constants lie end to end in the
/// library's read-only data, so a version may sit between digits (a build of SDK 0.3.0
/// holds `charset=utf-8` then `0.3.0`, and `inphms_addon`, `0.3.0`, then `0;`). A version
/// of another crate that held `from` (`1.0.3.0`) would be rewritten too: its layouts would
/// then differ and the load below would fail, not pass unduly.
fn rewrite(lib: &[u8], from: &str, to: &str) -> (Vec<u8>, usize) {
    assert_eq!(from.len(), to.len());
    let mut out = lib.to_vec();
    let mut count = 0;
    let mut i = 0;
    while let Some(pos) = out[i..]
        .windows(from.len())
        .position(|w| w == from.as_bytes())
    {
        let at = i + pos;
        let in_a_path = at > 0 && out[at - 1] == b'-';
        if !in_a_path {
            out[at..at + to.len()].copy_from_slice(to.as_bytes());
            count += 1;
        }
        i = at + from.len();
    }
    (out, count)
}

/// An addons folder holding `test_sdk` with `lib` as its library.
fn addon_with(td: &TestDir, folder: &str, lib: &[u8]) -> std::path::PathBuf {
    let dir = td.join(folder).join("test_sdk");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::copy(
        test_addon_src("test_sdk").join("__manifest__.toml"),
        dir.join("__manifest__.toml"),
    )
    .expect("copy the manifest");
    std::fs::write(dir.join("libtest_sdk.so"), lib).expect("write the library");
    td.join(folder)
}

fn start(td: &TestDir, addons: &Path) -> inphms_tests::Server {
    let data = td.join("data");
    td.server([
        "--load",
        "base,web,test_sdk",
        "-D",
        data.to_str().expect("UTF-8"),
        "--addons-path",
        addons.to_str().expect("UTF-8"),
    ])
    .start_healthy()
}

#[test]
fn a_newer_patch_is_accepted_and_another_minor_is_a_version_mismatch() {
    let lib = std::fs::read(built_lib("test_sdk")).expect("libtest_sdk.so");
    let version = sdk_version(&lib);
    let parts: Vec<u32> = version
        .split('.')
        .map(|p| p.parse().expect("a number"))
        .collect();
    let [major, minor, patch] = parts[..] else {
        panic!("not major.minor.patch: {version}")
    };
    assert!(
        patch < 9 && minor < 9,
        "a one-digit bump keeps the length: {version}"
    );

    // A newer patch release of the same line: loaded, its routes served.
    let newer_patch = format!("{major}.{minor}.9");
    let (patched, count) = rewrite(&lib, &version, &newer_patch);
    assert!(count >= 3, "root module, SDK_VERSION and layouts: {count}");
    assert_eq!(sdk_version(&patched), newer_patch);
    let td = TestDir::new();
    let addons = addon_with(&td, "patch", &patched);
    let server = start(&td, &addons);
    let r = http_get(server.port(), "/test_sdk/extract/1", &[]);
    assert_eq!(r.status, 200, "{}\n{}", r.text(), server.stderr());
    assert!(
        !server.stderr().contains("addon 'test_sdk' refused"),
        "{}",
        server.stderr()
    );

    // Another minor: refused as a version mismatch, not a layout difference.
    let other_minor = format!("{major}.{}.{patch}", minor + 1);
    let (patched, _) = rewrite(&lib, &version, &other_minor);
    let td = TestDir::new();
    let addons = addon_with(&td, "minor", &patched);
    let server = start(&td, &addons);
    assert_eq!(
        http_get(server.port(), "/test_sdk/extract/1", &[]).status,
        404
    );
    let log = server.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("addon 'test_sdk' refused"))
        .unwrap_or_else(|| panic!("no refusal in:\n{log}"));
    assert!(
        line.contains(&format!(
            "SDK version mismatch: built with inphms-sdk {other_minor}, the host's is {version}"
        )),
        "{line}"
    );
    assert!(!line.contains("layout"), "{line}");
}
