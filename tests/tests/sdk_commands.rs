//! Addon commands through the real binary (issue 18): the `test_sdk` addon's
//! `test_sdk_greet` declares its arguments with clap through the SDK, so `--help` lists
//! them (with the host's common options), a bad argument gets clap's error and exit code 2
//! without running the command, and the command reads the configuration (`-c FILE`: an
//! addon section and an unknown `[options]` key) as a route does.

use inphms_tests::{with_test_addons, Output, TestDir};

fn greet(td: &TestDir, args: &[&str]) -> Output {
    let path = format!("--addons-path={}", with_test_addons(&[]));
    let mut all = vec![path.as_str(), "test_sdk_greet"];
    all.extend_from_slice(args);
    td.cmd(all).run()
}

#[test]
fn help_lists_the_addons_options_and_the_common_ones() {
    let td = TestDir::new();
    let out = greet(&td, &["--help"]);
    assert_eq!(out.code, Some(0), "{out}");
    for expected in [
        "Usage: inphms-host test_sdk_greet",
        "Greets someone with the configured greeting.",
        "--name <name>",
        "Who to greet",
        "--times <times>",
        "--shout",
        "Common options",
        "-c, --config <FILE>",
        "-d, --database <DB>",
    ] {
        assert!(out.stdout.contains(expected), "{expected:?} in:\n{out}");
    }
    assert!(
        !out.stdout.contains("hello"),
        "the command did not run: {out}"
    );
}

#[test]
fn the_parsed_arguments_reach_the_command() {
    let td = TestDir::new();
    let out = greet(&td, &["--name", "ada", "--times", "2", "--shout"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stdout, "HELLO ADA\nHELLO ADA\n", "{out}");
}

#[test]
fn bad_arguments_get_claps_error_and_code_2() {
    let td = TestDir::new();
    let missing = greet(&td, &["--times", "2"]);
    assert_eq!(missing.code, Some(2), "{missing}");
    assert!(
        missing
            .stderr
            .contains("the following required arguments were not provided")
            && missing.stderr.contains("--name <name>"),
        "{missing}"
    );
    assert_eq!(missing.stdout, "", "the command did not run: {missing}");

    let range = greet(&td, &["--name", "x", "--times", "9"]);
    assert_eq!(range.code, Some(2), "{range}");
    assert!(
        range
            .stderr
            .contains("invalid value '9' for '--times <times>'"),
        "{range}"
    );

    let unknown = greet(&td, &["--name", "x", "--frobnicate"]);
    assert_eq!(unknown.code, Some(2), "{unknown}");
    assert!(
        unknown
            .stderr
            .contains("unexpected argument '--frobnicate'"),
        "{unknown}"
    );
    assert!(
        unknown.stderr.contains("inphms-host test_sdk_greet"),
        "{unknown}"
    );
}

#[test]
fn the_command_reads_the_configuration_file() {
    let td = TestDir::new();
    let conf = td.config(
        "inphms.conf",
        "[options]\ntest_sdk_suffix = \"!\"\n\n[test_sdk]\ngreeting = \"bonjour\"\n",
    );
    let conf = conf.to_str().expect("a UTF-8 path");
    let out = greet(&td, &["-c", conf, "--name", "ada"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stdout, "bonjour ada!\n", "{out}");

    // `--config=FILE` too, and without one the defaults.
    let out = greet(&td, &[&format!("--config={conf}"), "--name", "bob"]);
    assert_eq!(out.stdout, "bonjour bob!\n", "{out}");
    let out = greet(&td, &["--name", "bob"]);
    assert_eq!(out.stdout, "hello bob\n", "{out}");
}

#[test]
fn a_bad_configuration_file_is_refused_before_the_command() {
    let td = TestDir::new();
    let out = greet(&td, &["-c", "/nonexistent/inphms.conf", "--name", "ada"]);
    assert_ne!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("/nonexistent/inphms.conf"), "{out}");
    assert_eq!(out.stdout, "", "{out}");
}
