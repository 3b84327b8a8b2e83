//! A scaffolded addon builds wherever it is moved (issue 18): `inphms-host sdk-path` names
//! the host's SDK source; `scaffold` writes a `Cargo.toml` depending on `inphms-sdk` by
//! version with a `[patch.crates-io]` to that source. The test scaffolds into a temporary
//! folder outside the repository, moves the addon to another folder, builds it with
//! `cargo build --offline` (the workspace's target folder shared, so only the addon and
//! what its features change are compiled), and the host loads it and serves its route.

use inphms_tests::{http_get, repo_root, target_dir, TestDir};
use std::path::Path;
use std::process::Command;

#[test]
fn sdk_path_names_the_sdk_source() {
    let td = TestDir::new();
    let out = td.cmd(["sdk-path"]).run();
    assert_eq!(out.code, Some(0), "{out}");
    let printed = Path::new(out.stdout.trim());
    assert_eq!(
        printed,
        repo_root().join("sdk").canonicalize().unwrap(),
        "{out}"
    );
    assert!(printed.join("Cargo.toml").is_file());
    let extra = td.cmd(["sdk-path", "x"]).run();
    assert_eq!(extra.code, Some(2), "{extra}");
    assert!(extra.stderr.contains("takes no argument"), "{extra}");
}

#[test]
fn a_scaffolded_addon_moved_elsewhere_builds_offline_and_loads() {
    let td = TestDir::new();
    assert!(
        !td.path().starts_with(repo_root()),
        "the test folder is outside the repository"
    );
    let first = td.join("first");
    let out = td
        .cmd(["scaffold", "SdkScaffoldShop", first.to_str().unwrap()])
        .run();
    assert_eq!(out.code, Some(0), "{out}");
    let cargo_toml = std::fs::read_to_string(first.join("sdk_scaffold_shop/Cargo.toml")).unwrap();
    let sdk = td.cmd(["sdk-path"]).run().stdout.trim().to_owned();
    assert!(
        cargo_toml.contains("inphms-sdk = \"0.4.0\""),
        "{cargo_toml}"
    );
    assert!(
        cargo_toml.contains(&format!(
            "[patch.crates-io]\ninphms-sdk = {{ path = \"{sdk}\" }}"
        )),
        "{cargo_toml}"
    );

    // Moved to another folder, as an author moves a project.
    let moved_parent = td.join("elsewhere/addons");
    std::fs::create_dir_all(&moved_parent).unwrap();
    let project = moved_parent.join("sdk_scaffold_shop");
    std::fs::rename(first.join("sdk_scaffold_shop"), &project).unwrap();
    // The workspace's lock file, so the versions match what the shared target holds.
    std::fs::copy(repo_root().join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let target = target_dir();
    let build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--offline", "--quiet", "--manifest-path"])
        .arg(project.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run cargo");
    assert!(
        build.status.success(),
        "cargo build --offline of the moved addon failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    // Where the author's own `cargo build` would put it: <project>/target/debug/.
    let dest = project.join("target/debug");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::copy(
        target.join("debug/libsdk_scaffold_shop.so"),
        dest.join("libsdk_scaffold_shop.so"),
    )
    .unwrap();

    let server = td
        .server([
            "--addons-path",
            moved_parent.to_str().unwrap(),
            "--load",
            "base,web,sdk_scaffold_shop",
        ])
        .start();
    let resp = http_get(server.port(), "/sdk_scaffold_shop/hello", &[]);
    assert_eq!(resp.status, 200, "{}", server.stderr());
    assert_eq!(resp.text(), "Hello from sdk_scaffold_shop");
}
