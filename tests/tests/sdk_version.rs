//! The SDK's versioning (issue 16): 0.3 gave `HostApi` its `HostCtx` and every callback a
//! `ctx` argument, a breaking change, so an addon built with inphms-sdk 0.2 is refused with
//! one clear line naming both versions, and the host serves on with the others. The old
//! addon is `tests/addons/test_old_sdk`, built by `cargo xtask test` with the SDK's
//! `old-sdk-version-test` feature (it declares 0.2.0, as a real 0.2 build does, to
//! abi_stable's version check and in `sdk_version`).

use inphms_tests::{http_get, target_dir, with_test_addons, TestDir};

#[test]
fn an_addon_built_with_sdk_0_2_is_refused_in_one_line() {
    let td = TestDir::new();
    let build = target_dir().join("test-addons").join("test_old_sdk");
    assert!(
        build.join("libtest_old_sdk.so").is_file(),
        "{} is missing: run `cargo xtask test` (it builds the special test addons)",
        build.display()
    );
    // Searched before the test addons: its build shadows the source folder there.
    td.copy_addon(&build, "addons");
    let server = td
        .server([
            "--addons-path",
            &with_test_addons(&[&td.join("addons")]),
            "--load",
            "base,web,test_old_sdk,test_http",
        ])
        .start();
    let port = server.port();
    assert_eq!(http_get(port, "/web/health", &[]).status, 200);
    assert_eq!(http_get(port, "/test_http/item/7", &[]).text(), "item 7");
    assert_eq!(http_get(port, "/test_old_sdk/hello", &[]).status, 404);
    let log = server.stderr();
    let refused = log
        .lines()
        .find(|l| l.contains("addon 'test_old_sdk' refused"))
        .unwrap_or_else(|| panic!("no refusal of test_old_sdk in:\n{log}"));
    let sdk = inphms_sdk_version();
    assert!(
        refused.contains(&format!(
            "libtest_old_sdk.so: built with inphms-sdk 0.2.0, expected a version compatible \
             with the host's {sdk}: rebuild the addon against this SDK"
        )),
        "{refused}"
    );
    assert!(refused.len() < 400, "one short line: {refused}");
}

/// The SDK version the host is built with: the workspace's (this crate shares it).
fn inphms_sdk_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
