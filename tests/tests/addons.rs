//! Addons (issue 3): load order and `post_load`, the `web` routes, refusals with their
//! one-line reasons, a panicking route, a scaffolded third-party addon, `inphms-host addons`.
//! Everything runs the real binary with real cdylib addons.

use inphms_tests::{http_get, repo_root, request, target_dir, with_test_addons, TestDir};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The special builds made by `cargo xtask test` (see `xtask`'s `BUILDS`).
fn test_addon_build(name: &str) -> PathBuf {
    let dir = target_dir().join("test-addons").join(name);
    assert!(
        dir.join(format!("lib{name}.so")).is_file(),
        "{} is missing: run `cargo xtask test` (it builds the special test addons)",
        dir.display()
    );
    dir
}

/// The index of the first line of `log` containing `needle`.
fn line_of(log: &str, needle: &str) -> usize {
    log.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{log}"))
}

#[test]
fn base_and_web_load_in_order_and_post_load_runs_once() {
    let td = TestDir::new();
    let server = td.server(["--load", "web,base"]).start();
    let resp = http_get(server.port(), "/base/status", &[]);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), r#"{"post_load_runs":1}"#);
    let log = server.stderr();
    let base_load = line_of(&log, "loading addon base");
    let base_post = line_of(&log, "base: post_load (run 1");
    let web_load = line_of(&log, "loading addon web");
    let web_post = line_of(&log, "web: post_load");
    assert!(
        base_load < base_post && base_post < web_load && web_load < web_post,
        "{log}"
    );
    assert_eq!(log.matches("base: post_load").count(), 1, "{log}");
    assert_eq!(log.matches("web: post_load").count(), 1, "{log}");
    // The addon's own tracing reaches the host's log, in Odoo's format, with its target.
    let line = log.lines().nth(base_post).unwrap();
    assert!(
        line.contains(" INFO ? inphms.addons.base: base: post_load"),
        "{line}"
    );
}

#[test]
fn web_health_and_version_info() {
    let td = TestDir::new();
    let server = td.server(Vec::<&str>::new()).start();
    let port = server.port();
    let resp = http_get(port, "/web/health", &[]);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), r#"{"status":"pass"}"#);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    assert!(resp.header("set-cookie").is_none());
    // Even with a valid-looking session cookie, health never creates or saves a session.
    let sid = "a".repeat(84);
    let resp = http_get(
        port,
        "/web/health",
        &[("Cookie", &format!("session_id={sid}"))],
    );
    assert_eq!(resp.status, 200);
    assert!(resp.header("set-cookie").is_none());
    assert!(!td.home().join(".local/share/Inphms/sessions/aa").exists());

    let body = r#"{"jsonrpc":"2.0","method":"call","id":42,"params":{}}"#;
    let raw = format!(
        "POST /web/webclient/version_info HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let resp = request(port, raw.as_bytes());
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    let cargo_toml = std::fs::read_to_string(repo_root().join("host/Cargo.toml")).unwrap();
    let version = cargo_toml
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("host/Cargo.toml has a literal version");
    let mut parts = version.split('.').map(|p| p.parse::<u64>().unwrap());
    let (major, minor, micro) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let serie = format!("{major}.{minor}");
    assert_eq!(
        v,
        serde_json::json!({
            "jsonrpc": "2.0",
            "id": 42,
            "result": {
                "server_version": serie,
                "server_version_info": [major, minor, micro, "final", 0, ""],
                "server_serie": serie,
                "protocol_version": 1
            }
        })
    );
}

/// An addons folder holding every kind of broken addon (searched before the test addons, it
/// shadows their sources of `test_abi_break` and `test_panic_abort` with the special builds).
fn broken_addons(td: &TestDir) -> PathBuf {
    td.copy_addon(&test_addon_build("test_abi_break"), "addons");
    td.copy_addon(&test_addon_build("test_panic_abort"), "addons");
    // test_http's library in a folder of another name: it declares 'test_http'.
    td.write(
        "addons/renamed/__manifest__.toml",
        "name = \"Renamed\"\nlicense = \"LGPL-3\"\ndepends = [\"base\"]\nlibrary = \"librenamed.so\"\n",
    );
    std::fs::copy(
        inphms_tests::built_lib("test_http"),
        td.join("addons/renamed/librenamed.so"),
    )
    .unwrap();
    td.addon(
        "addons",
        "nolib",
        "name = \"No library\"\nlicense = \"LGPL-3\"\n",
    );
    td.addon(
        "addons",
        "cycle_a",
        "name = \"A\"\nlicense = \"LGPL-3\"\ndepends = [\"cycle_b\"]\n",
    );
    td.addon(
        "addons",
        "cycle_b",
        "name = \"B\"\nlicense = \"LGPL-3\"\ndepends = [\"cycle_a\"]\n",
    );
    td.addon(
        "addons",
        "shop",
        "name = \"Shop\"\nlicense = \"LGPL-3\"\ndepends = [\"stock\"]\n",
    );
    td.join("addons")
}

#[test]
fn each_refusal_has_its_one_line_reason_and_the_rest_serves() {
    let td = TestDir::new();
    let addons = broken_addons(&td);
    let addons_s = addons.display().to_string();
    let server = td
        .server([
            "--addons-path",
            &with_test_addons(&[&addons]),
            "--load",
            "base,web,test_abi_break,test_panic_abort,renamed,nolib,test_http",
        ])
        .start();
    assert_eq!(http_get(server.port(), "/web/health", &[]).status, 200);
    assert_eq!(
        http_get(server.port(), "/test_http/item/7", &[]).text(),
        "item 7"
    );
    assert_eq!(
        http_get(server.port(), "/test_abi_break/hello", &[]).status,
        404
    );
    let log = server.stderr();
    let line = |needle: &str| {
        log.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{log}"))
            .to_owned()
    };
    let abi = line("addon 'test_abi_break' refused");
    assert!(abi.contains(" ERROR ? inphms.modules.loading: "), "{abi}");
    assert!(
        abi.contains("libtest_abi_break.so: ABI layout differs from the host's inphms-sdk"),
        "{abi}"
    );
    assert!(
        abi.contains("type 'AddonModule', field 'panic_unwind', mismatched type"),
        "the type and field are named: {abi}"
    );
    assert!(
        abi.len() < 600,
        "one short line, not the layout tree: {abi}"
    );
    let abort = line("addon 'test_panic_abort' refused");
    assert!(
        abort.contains("built with panic = \"abort\"; expected panic = \"unwind\""),
        "{abort}"
    );
    let renamed = line("addon 'renamed' refused");
    assert!(
        renamed.contains("declares the name 'test_http', expected 'renamed' (its folder name)"),
        "{renamed}"
    );
    let nolib = line("addon 'nolib' refused");
    assert!(nolib.contains("no compiled library; tried "), "{nolib}");
    assert!(
        nolib.contains(&format!("{}/nolib/libnolib.so", addons_s)),
        "{nolib}"
    );
    let cycle = line("addon 'cycle_a' skipped");
    assert!(
        cycle.contains(&format!(
            "{addons_s}/cycle_a/__manifest__.toml: dependency cycle: cycle_a -> cycle_b -> cycle_a"
        )),
        "{cycle}"
    );
    let missing = line("addon 'shop' skipped");
    assert!(
        missing.contains(&format!(
            "{addons_s}/shop/__manifest__.toml: depends on 'stock', which is in none of the addons paths ({addons_s}, "
        )),
        "{missing}"
    );
    // Each reason is logged once, on one line.
    for needle in [
        "'test_abi_break' refused",
        "'renamed' refused",
        "'cycle_a' skipped",
    ] {
        assert_eq!(log.matches(needle).count(), 1, "{needle}: {log}");
    }
}

#[test]
fn a_broken_server_wide_addon_is_left_out_at_start_up() {
    let td = TestDir::new();
    let addons = broken_addons(&td);
    let out = td
        .cmd([
            "server",
            "--addons-path",
            addons.to_str().unwrap(),
            "--load",
            "base,web,shop",
            "--stop-after-init",
        ])
        .run();
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stderr.contains(
            "addon 'shop' refused: {addons}/shop/__manifest__.toml: depends on 'stock', which is in none of the addons paths"
                .replace("{addons}", &addons.display().to_string())
                .as_str()
        ),
        "{out}"
    );
}

#[test]
fn a_panicking_route_answers_500_and_the_server_goes_on() {
    let td = TestDir::new();
    let server = td
        .server([
            "--addons-path",
            &with_test_addons(&[]),
            "--load",
            "base,web,test_http",
        ])
        .start();
    let port = server.port();
    for _ in 0..3 {
        let resp = http_get(port, "/test_http/panic", &[]);
        assert_eq!(resp.status, 500);
        let body = resp.text();
        assert!(body.contains("Internal Server Error"), "{body}");
        assert!(!body.contains("secret"), "no internals in the body: {body}");
        assert_eq!(http_get(port, "/web/health", &[]).status, 200);
    }
    assert!(
        server.stderr().contains("secret panic detail"),
        "the panic is logged"
    );
}

#[test]
fn addons_command_lists_dependency_order_and_library_states() {
    let td = TestDir::new();
    let addons = broken_addons(&td);
    let out = td
        .cmd([
            format!("--addons-path={}", with_test_addons(&[&addons])),
            "addons".into(),
        ])
        .run();
    assert_eq!(out.code, Some(0), "{out}");
    let row = |name: &str| -> (usize, Vec<String>) {
        let (i, l) = out
            .stdout
            .lines()
            .enumerate()
            .find(|(_, l)| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{}", out.stdout));
        (i, l.split_whitespace().map(str::to_owned).collect())
    };
    let (base_i, base) = row("base");
    let (web_i, web) = row("web");
    let (http_i, http) = row("test_http");
    assert!(base_i < web_i && web_i < http_i, "{}", out.stdout);
    assert_eq!(base[2], "built");
    assert_eq!(web[3], "base");
    assert_eq!(http[2], "built");
    assert_eq!(row("test_abi_break").1[2], "incompatible");
    assert_eq!(row("test_panic_abort").1[2], "incompatible");
    assert_eq!(row("renamed").1[2], "incompatible");
    assert_eq!(row("nolib").1[2], "missing");
    assert!(out.stdout.contains("broken: cycle_a: "), "{}", out.stdout);
    assert!(out.stdout.contains("broken: shop: "), "{}", out.stdout);
}

/// Builds a scaffolded addon as its author would: `cargo build` in its own project. The
/// target folder is shared between runs to keep the build incremental.
fn cargo_build(project: &Path) {
    let target = target_dir().join("scaffold");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--quiet", "--manifest-path"])
        .arg(project.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("run cargo");
    assert!(
        status.success(),
        "cargo build of the scaffolded addon failed"
    );
    let lib = target.join("debug/libmy_shop.so");
    // Where the author's own `cargo build` would put it, so the host finds it with no
    // configuration: <project>/target/debug/.
    let dest = project.join("target/debug");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::copy(&lib, dest.join("libmy_shop.so")).unwrap();
}

#[test]
fn a_scaffolded_addon_builds_serves_and_runs_its_command() {
    let td = TestDir::new();
    let out = td
        .cmd(["scaffold", "MyShop", td.join("ext").to_str().unwrap()])
        .run();
    assert_eq!(out.code, Some(0), "{out}");
    let project = td.join("ext/my_shop");
    for f in ["__manifest__.toml", "Cargo.toml", "src/lib.rs"] {
        assert!(project.join(f).is_file(), "{f} written");
    }
    // An existing destination is an error.
    let again = td
        .cmd(["scaffold", "MyShop", td.join("ext").to_str().unwrap()])
        .run();
    assert_eq!(again.code, Some(1), "{again}");
    assert!(again.stderr.contains("already exists"), "{again}");

    cargo_build(&project);
    let ext = td.join("ext");
    let ext_s = ext.to_str().unwrap();
    let server = td
        .server(["--addons-path", ext_s, "--load", "base,web,my_shop"])
        .start();
    let resp = http_get(server.port(), "/my_shop/hello", &[]);
    assert_eq!(resp.status, 200, "{}", server.stderr());
    assert_eq!(resp.text(), "Hello from my_shop");

    let out = td
        .cmd([
            format!("--addons-path={ext_s}").as_str(),
            "my_shop",
            "a",
            "b",
        ])
        .timeout(Duration::from_secs(60))
        .run();
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stdout.trim(), "Hello from my_shop: a b");
    let help = td
        .cmd([format!("--addons-path={ext_s}").as_str(), "help"])
        .run();
    assert!(
        help.stdout.contains("my_shop") && help.stdout.contains("Says hello from the command line"),
        "{help}"
    );
}

#[test]
fn addon_commands_run_through_the_host() {
    let td = TestDir::new();
    let path = format!("--addons-path={}", with_test_addons(&[]));
    let out = td.cmd([path.as_str(), "test_http_cmd", "x", "y"]).run();
    assert_eq!(out.code, Some(3), "{out}");
    assert_eq!(out.stdout.trim(), "test_http_cmd args=x,y");
}
