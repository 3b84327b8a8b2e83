//! Addon libraries that cannot load, against the real binary (issue 15): a truncated
//! library and one copied in place in two halves, installed under load with SIGHUP and with
//! `--dev=reload`, are refused in one line (or waited for) and never kill the host, whose
//! current generation serves on with no failed request; the complete file then swaps in.
//! And a server-wide addon named in `--load` with a broken manifest, a dependency cycle or
//! a missing dependency is left out with one line, and the rest serves.

use inphms_tests::swap::{install_swap_bytes, install_swap_lib, swap_build, write_in_place, Load};
use inphms_tests::{http_get, with_test_addons, Server, TestDir};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A server loading `test_swap` v1 from `<td>/addons`, with `extra` arguments.
fn swap_server(td: &TestDir, extra: &[&str]) -> Server {
    let addons = td.join("addons");
    install_swap_lib(&addons, &swap_build("v1"));
    let mut args = vec![
        "--addons-path",
        addons.to_str().unwrap(),
        "--load",
        "base,web,test_swap",
    ];
    args.extend_from_slice(extra);
    td.server(args).start()
}

/// The lines of `log` that contain `needle`.
fn lines_with(log: &str, needle: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// `test_swap` v2's bytes and its library's path in `<td>/addons`.
fn v2_and_lib(td: &TestDir) -> (Vec<u8>, PathBuf) {
    let v2 = std::fs::read(swap_build("v2")).unwrap();
    (v2, td.join("addons/test_swap/libtest_swap.so"))
}

/// Checks the one refusal of the log: it names the library, says what is wrong with it
/// (`len` bytes on disk), and generation 1 keeps serving.
fn assert_one_refusal(server: &Server, lib: &Path, len: usize) {
    let log = server.stderr();
    let refused = lines_with(&log, "swap refused");
    assert_eq!(refused.len(), 1, "one refusal line:\n{log}");
    let line = &refused[0];
    assert!(
        line.contains("generation 1 keeps serving: addon 'test_swap' refused: "),
        "{line}"
    );
    assert!(line.contains(&lib.display().to_string()), "{line}");
    assert!(line.contains(": is truncated or damaged: "), "{line}");
    assert!(
        line.contains(&format!("past the end of the file ({len} bytes)")),
        "{line}"
    );
    assert_eq!(
        http_get(server.port(), "/test_swap/version", &[]).text(),
        "v1"
    );
}

/// Waits for v2 under `load`, then checks: no failed request, v1 until v2, the host alive.
fn assert_swapped_to_v2(server: &Server, load: Load) {
    let swapped = inphms_tests::wait_until(Duration::from_secs(30), || load.seen("v2"));
    let (failures, answers) = load.finish();
    let log = server.stderr();
    assert!(swapped, "v2 never served:\n{log}");
    assert_eq!(failures, 0, "no request may fail:\n{log}");
    let first_v2 = answers.iter().position(|a| a == "v2").unwrap();
    assert!(first_v2 > 0, "v1 served until the swap");
    assert!(answers[..first_v2].iter().all(|a| a == "v1"));
    assert!(log.contains("generation 2 serving after"), "{log}");
    assert!(log.contains("reloaded: test_swap"), "{log}");
    let health = http_get(server.port(), "/web/health", &[]);
    assert_eq!(health.status, 200, "the host is alive");
    assert_eq!(
        http_get(server.port(), "/test_swap/version", &[]).text(),
        "v2"
    );
}

#[test]
fn sighup_refuses_a_truncated_library_then_swaps_the_complete_one() {
    let td = TestDir::new();
    let server = swap_server(&td, &[]);
    let load = Load::start(server.port(), "/test_swap/version", 2);
    assert!(inphms_tests::wait_until(Duration::from_secs(10), || load.seen("v1")));
    let (v2, lib) = v2_and_lib(&td);
    let cut = v2.len() * 3 / 5;
    install_swap_bytes(&td.join("addons"), &v2[..cut]);
    server.signal("HUP");
    assert!(
        server.wait_for_log("swap refused", Duration::from_secs(20)),
        "{}",
        server.stderr()
    );
    assert_one_refusal(&server, &lib, cut);
    install_swap_bytes(&td.join("addons"), &v2);
    server.signal("HUP");
    assert_swapped_to_v2(&server, load);
    assert_eq!(server.stderr().matches("swap refused").count(), 1);
}

#[test]
fn sighup_refuses_a_library_copied_in_two_halves_then_swaps_it() {
    let td = TestDir::new();
    let server = swap_server(&td, &[]);
    let load = Load::start(server.port(), "/test_swap/version", 2);
    assert!(inphms_tests::wait_until(Duration::from_secs(10), || load.seen("v1")));
    let (v2, lib) = v2_and_lib(&td);
    // The first half written over the installed v1, in place, and a SIGHUP meanwhile.
    let half = v2.len() / 2;
    write_in_place(&lib, 0, &v2[..half]);
    server.signal("HUP");
    assert!(
        server.wait_for_log("swap refused", Duration::from_secs(20)),
        "{}",
        server.stderr()
    );
    assert_one_refusal(&server, &lib, half);
    write_in_place(&lib, half as u64, &v2[half..]);
    server.signal("HUP");
    assert_swapped_to_v2(&server, load);
    assert_eq!(server.stderr().matches("swap refused").count(), 1);
}

#[test]
fn dev_reload_refuses_a_truncated_library_once_then_swaps_the_complete_one() {
    let td = TestDir::new();
    let server = swap_server(&td, &["--dev=reload"]);
    let load = Load::start(server.port(), "/test_swap/version", 2);
    assert!(inphms_tests::wait_until(Duration::from_secs(10), || load.seen("v1")));
    let (v2, lib) = v2_and_lib(&td);
    let cut = v2.len() * 3 / 5;
    install_swap_bytes(&td.join("addons"), &v2[..cut]);
    // Seen, settled (two checks 2 s apart), tried and refused.
    assert!(
        server.wait_for_log("swap refused", Duration::from_secs(30)),
        "{}",
        server.stderr()
    );
    assert_one_refusal(&server, &lib, cut);
    // The complete file settles over two more checks: a retry of the truncated one in
    // that time would be a second refusal line.
    install_swap_bytes(&td.join("addons"), &v2);
    assert_swapped_to_v2(&server, load);
    let log = server.stderr();
    assert_eq!(log.matches("swap refused").count(), 1, "{log}");
    assert_eq!(
        log.matches("autoreload: test_swap changed; waiting for it to stop changing")
            .count(),
        2,
        "{log}"
    );
}

#[test]
fn dev_reload_waits_for_a_library_copied_in_two_halves() {
    let td = TestDir::new();
    let server = swap_server(&td, &["--dev=reload"]);
    let load = Load::start(server.port(), "/test_swap/version", 2);
    assert!(inphms_tests::wait_until(Duration::from_secs(10), || load.seen("v1")));
    let (v2, lib) = v2_and_lib(&td);
    let half = v2.len() / 2;
    write_in_place(&lib, 0, &v2[..half]);
    // The watcher saw the first half; the writer pauses until then, then writes the rest.
    let waiting = "autoreload: test_swap changed; waiting for it to stop changing";
    assert!(
        server.wait_for_log(waiting, Duration::from_secs(20)),
        "{}",
        server.stderr()
    );
    write_in_place(&lib, half as u64, &v2[half..]);
    assert_swapped_to_v2(&server, load);
    let log = server.stderr();
    // The rest came before the next check (2 s later): no refusal. Were the writer held up
    // past it, the half would be refused once, then the whole swapped in.
    let refusals = lines_with(&log, "swap refused");
    assert!(refusals.len() <= 1, "{log}");
    for line in &refusals {
        assert!(
            line.contains(&format!("past the end of the file ({half} bytes)")),
            "{line}"
        );
    }
    assert_eq!(log.matches(waiting).count(), 1 + refusals.len(), "{log}");
}

/// Starts a server with the addons of `manifests` (name, manifest) in its addons path and
/// `broken` in `--load` with base, web and test_http; checks that it serves and that
/// `broken` is refused in one line holding `reason`.
fn broken_load(manifests: &[(&str, &str)], broken: &str, reason: &str) {
    let td = TestDir::new();
    for (name, manifest) in manifests {
        td.addon("addons", name, manifest);
    }
    let addons = td.join("addons");
    let server = td
        .server([
            "--addons-path",
            &with_test_addons(&[&addons]),
            "--load",
            &format!("base,web,test_http,{broken}"),
        ])
        .start();
    let port = server.port();
    let health = http_get(port, "/web/health", &[]);
    assert_eq!(
        (health.status, health.text()),
        (200, r#"{"status":"pass"}"#.to_owned())
    );
    assert_eq!(http_get(port, "/base/status", &[]).status, 200);
    assert_eq!(http_get(port, "/test_http/item/7", &[]).text(), "item 7");
    let log = server.stderr();
    let refused = lines_with(&log, &format!("addon '{broken}' "));
    assert_eq!(refused.len(), 1, "one line about '{broken}':\n{log}");
    let line = &refused[0];
    assert!(
        line.contains(&format!(
            " ERROR ? inphms.modules.loading: addon '{broken}' refused: "
        )),
        "{line}"
    );
    let expected = reason.replace("{addons}", &addons.display().to_string());
    assert!(line.contains(&expected), "{expected:?} in {line}");
}

#[test]
fn a_broken_manifest_in_load_is_one_line_and_the_rest_serves() {
    broken_load(
        &[(
            "broken",
            "name = \"Broken\"\nlicense = \"LGPL-3\"\ndepends = \"base\"\n",
        )],
        "broken",
        "refused: {addons}/broken/__manifest__.toml line 3: ",
    );
}

#[test]
fn a_dependency_cycle_in_load_is_one_line_and_the_rest_serves() {
    broken_load(
        &[
            (
                "cycle_a",
                "name = \"A\"\nlicense = \"LGPL-3\"\ndepends = [\"cycle_b\"]\n",
            ),
            (
                "cycle_b",
                "name = \"B\"\nlicense = \"LGPL-3\"\ndepends = [\"cycle_a\"]\n",
            ),
        ],
        "cycle_a",
        "refused: {addons}/cycle_a/__manifest__.toml: dependency cycle: cycle_a -> cycle_b -> cycle_a",
    );
}

#[test]
fn a_missing_dependency_in_load_is_one_line_and_the_rest_serves() {
    broken_load(
        &[(
            "shop",
            "name = \"Shop\"\nlicense = \"LGPL-3\"\ndepends = [\"stock\"]\n",
        )],
        "shop",
        "refused: {addons}/shop/__manifest__.toml: depends on 'stock', which is in none of the addons paths ({addons}, ",
    );
}
