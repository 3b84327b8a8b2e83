//! The command line, the configuration and the logging, through the real binary: commands
//! and help, option precedence (default < file < environment < flag), `--save`, every kind
//! of bad input (exit 2, one line), the start-up checks, the pid file and the log format.

use inphms_tests::{is_root, Cmd, Output, TestDir};
use regex::Regex;
use std::path::Path;
use std::time::Duration;

const ROOT_WARNING: &str = "Running as user 'root' is a security risk.";

/// `inphms-host server ARGS... --addons-path=<dummy addons>` run from `td`.
fn server(td: &TestDir, args: &[&str]) -> Cmd {
    let addons = td.dummy_addons();
    td.cmd(["server"])
        .arg(format!("--addons-path={}", addons.display()))
        .args(args)
}

/// The stderr lines, without the root warning.
fn error_lines(out: &Output) -> Vec<&str> {
    out.stderr.lines().filter(|l| *l != ROOT_WARNING).collect()
}

/// Asserts exit code 2 and exactly one error line on stderr, equal to `expected`.
#[track_caller]
fn assert_bad(out: &Output, expected: &str) {
    assert_eq!(out.code, Some(2), "{out}");
    assert_eq!(error_lines(out), [expected], "{out}");
}

/// The value of `key` in the `[options]` of the saved file `text`.
fn saved<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("{key} = ");
    text.lines()
        .skip_while(|l| *l != "[options]")
        .take_while(|l| !l.starts_with('[') || *l == "[options]")
        .find_map(|l| l.strip_prefix(prefix.as_str()))
}

// ---------------------------------------------------------------------------------------------
// Commands

#[test]
fn help_lists_every_command_with_a_description() {
    let td = TestDir::new();
    let out = td.cmd(["help"]).run();
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("Available commands:"), "{out}");
    let line = Regex::new(r"(?m)^    (\w+)\s+(\S.*)$").unwrap();
    let names: Vec<&str> = line
        .captures_iter(&out.stdout)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    assert!(names.contains(&"server"), "{out}");
    assert!(names.contains(&"help"), "{out}");
    for flag in ["-h", "--help"] {
        let again = td.cmd([flag]).run();
        assert_eq!(again.code, Some(0), "{again}");
        assert_eq!(again.stdout, out.stdout, "{flag}");
    }
}

#[test]
fn unknown_command_exits_1_and_lists_the_known_ones() {
    let td = TestDir::new();
    let out = td.cmd(["frobnicate", "--x"]).run();
    assert_eq!(out.code, Some(1), "{out}");
    let lines = out.stderr_lines();
    assert_eq!(lines[0], "Unknown command 'frobnicate'", "{out}");
    assert!(
        lines[1].starts_with("Known commands: ")
            && lines[1].contains("help")
            && lines[1].contains("server"),
        "{out}"
    );
}

#[test]
fn no_command_means_server_and_stop_after_init_exits_0() {
    let td = TestDir::new();
    let addons = td.dummy_addons();
    let out = td
        .cmd([
            "--stop-after-init".to_owned(),
            format!("--addons-path={}", addons.display()),
        ])
        .run();
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("inphms: Inphms version "), "{out}");
}

#[test]
fn server_help_lists_the_options() {
    let td = TestDir::new();
    let out = td.cmd(["server", "--help"]).run();
    assert_eq!(out.code, Some(0), "{out}");
    for flag in [
        "--addons-path",
        "--http-port",
        "--db-filter",
        "--log-handler",
        "--no-http",
        "--stop-after-init",
        "--save",
    ] {
        assert!(out.stdout.contains(flag), "{flag} missing:\n{out}");
    }
}

#[test]
fn addons_path_before_the_command_is_taken_early() {
    let td = TestDir::new();
    let addons = td.dummy_addons();
    let conf = td.join("early.conf");
    for form in [
        vec![format!("--addons-path={}", addons.display())],
        vec!["--addons-path".to_owned(), addons.display().to_string()],
    ] {
        let _ = std::fs::remove_file(&conf);
        let mut args = form.clone();
        args.extend(["server", "--stop-after-init", "-s", "-c"].map(String::from));
        args.push(conf.display().to_string());
        let out = td.cmd(&args).run();
        assert_eq!(out.code, Some(0), "{out}");
        let text = std::fs::read_to_string(&conf).unwrap();
        assert_eq!(
            saved(&text, "addons_path"),
            Some(format!("[\"{}\"]", addons.display()).as_str()),
            "{text}"
        );
        let mut help = form.clone();
        help.push("help".into());
        assert_eq!(td.cmd(&help).run().code, Some(0));
    }
    let out = td.cmd(["--addons-path=/no/such/folder", "help"]).run();
    assert_bad(
        &out,
        "inphms-host: option addons_path: invalid value \"/no/such/folder\" from flag --addons-path; expected an existing directory (no such directory)",
    );
}

// ---------------------------------------------------------------------------------------------
// Configuration: precedence and --save

#[test]
fn precedence_default_file_environment_flag() {
    let td = TestDir::new();
    let addons = td.dummy_addons();
    let input = td.config(
        "in.conf",
        &format!(
            "[options]\naddons_path = \"{}\"\nhttp_port = 9001\ndb_host = \"filehost\"\ndb_port = 5001\ndb_user = \"fileuser\"\ndb_maxconn = 11\n",
            addons.display()
        ),
    );
    let out_file = td.join("out.conf");
    let out = td
        .cmd(["server", "--stop-after-init", "-c"])
        .arg(&input)
        .env("PGHOST", "envhost")
        .env("PGPORT", "6001")
        .arg("--db_port=7001")
        .arg("--db_maxconn")
        .arg("12")
        .run();
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stderr
            .contains("inphms: database: fileuser@envhost:7001"),
        "{out}"
    );
    // Save to another file with -s: copy the input, then save over the copy.
    std::fs::copy(&input, &out_file).unwrap();
    let out = td
        .cmd(["server", "--stop-after-init", "-s", "-c"])
        .arg(&out_file)
        .env("PGHOST", "envhost")
        .env("PGPORT", "6001")
        .arg("--db_port=7001")
        .run();
    assert_eq!(out.code, Some(0), "{out}");
    let text = std::fs::read_to_string(&out_file).unwrap();
    // default
    assert_eq!(saved(&text, "limit_request"), Some("65536"), "{text}");
    assert_eq!(saved(&text, "db_template"), Some("\"template0\""), "{text}");
    // file over default
    assert_eq!(saved(&text, "http_port"), Some("9001"), "{text}");
    assert_eq!(saved(&text, "db_user"), Some("\"fileuser\""), "{text}");
    assert_eq!(saved(&text, "db_maxconn"), Some("11"), "{text}");
    // environment over file
    assert_eq!(saved(&text, "db_host"), Some("\"envhost\""), "{text}");
    // flag over environment
    assert_eq!(saved(&text, "db_port"), Some("7001"), "{text}");
    // flag over file, without environment
    let out = td
        .cmd(["server", "--stop-after-init", "-s", "-c"])
        .arg(&out_file)
        .arg("-p")
        .arg("9002")
        .arg("-r")
        .arg("flaguser")
        .run();
    assert_eq!(out.code, Some(0), "{out}");
    let text = std::fs::read_to_string(&out_file).unwrap();
    assert_eq!(saved(&text, "http_port"), Some("9002"), "{text}");
    assert_eq!(saved(&text, "db_user"), Some("\"flaguser\""), "{text}");
}

#[test]
fn defaults_are_odoos() {
    let td = TestDir::new();
    let conf = td.join("d.conf");
    let out = server(&td, &["--stop-after-init", "-s", "-c"])
        .arg(&conf)
        .env("XDG_DATA_HOME", td.join("xdg"))
        .run();
    assert_eq!(out.code, Some(0), "{out}");
    let text = std::fs::read_to_string(&conf).unwrap();
    let expect = [
        ("http_port", "8069".to_owned()),
        ("http_interface", "\"\"".into()),
        ("http_enable", "true".into()),
        ("list_db", "true".into()),
        ("proxy_mode", "false".into()),
        ("server_wide_modules", "[\"base\", \"web\"]".into()),
        ("db_maxconn", "64".into()),
        ("db_sslmode", "\"prefer\"".into()),
        ("max_cron_threads", "2".into()),
        ("limit_memory_soft", "2147483648".into()),
        ("limit_memory_hard", "2684354560".into()),
        ("limit_time_cpu", "60".into()),
        ("limit_time_real", "120".into()),
        ("limit_time_real_cron", "-1".into()),
        ("limit_request", "65536".into()),
        ("max_content_length", "134217728".into()),
        ("http_header_timeout", "10".into()),
        ("http_keepalive_timeout", "60".into()),
        ("cron_db", "\"postgres\"".into()),
        ("limit_swaps", "16".into()),
        ("limit_time_stuck", "4".into()),
        ("registry_lru_size", "0".into()),
        ("log_level", "\"info\"".into()),
        (
            "data_dir",
            format!("\"{}\"", td.join("xdg/Inphms").display()),
        ),
    ];
    for (key, value) in expect {
        assert_eq!(saved(&text, key), Some(value.as_str()), "{key} in\n{text}");
    }
    for unsaved in ["init", "update", "dev_mode", "stop_after_init", "db_host"] {
        assert_eq!(saved(&text, unsaved), None, "{unsaved} in\n{text}");
    }
    // Without XDG_DATA_HOME: ~/.local/share/Inphms.
    let conf = td.join("d2.conf");
    let out = server(&td, &["--stop-after-init", "-s", "-c"])
        .arg(&conf)
        .run();
    assert_eq!(out.code, Some(0), "{out}");
    let text = std::fs::read_to_string(&conf).unwrap();
    assert_eq!(
        saved(&text, "data_dir"),
        Some(format!("\"{}\"", td.home().join(".local/share/Inphms").display()).as_str())
    );
}

#[test]
fn save_is_sorted_keeps_other_sections_and_is_private() {
    let td = TestDir::new();
    let addons = td.dummy_addons();
    let conf = td.config(
        "deep/er/inphms.conf",
        "# a comment\n[zeta]\nz = 1\n\n[options]\nhttp_port = 9100\n\n[alpha]\nkey = \"v\"\n",
    );
    std::fs::remove_file(&conf).unwrap();
    std::fs::remove_dir_all(td.join("deep")).unwrap();
    // Missing parent folders are created.
    let out = td
        .cmd(["server", "--stop-after-init", "-s", "-c"])
        .arg(&conf)
        .arg(format!("--addons-path={}", addons.display()))
        .run();
    assert_eq!(out.code, Some(0), "{out}");
    assert!(conf.is_file());
    // Other sections are kept.
    std::fs::write(
        &conf,
        "# a comment\n[zeta]\nz = 1\n\n[options]\nhttp_port = 9100\n\n[alpha]\nkey = \"v\"\n",
    )
    .unwrap();
    let out = td
        .cmd(["server", "--stop-after-init", "-s", "-c"])
        .arg(&conf)
        .arg(format!("--addons-path={}", addons.display()))
        .run();
    assert_eq!(out.code, Some(0), "{out}");
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.starts_with("[options]\n"), "{text}");
    assert_eq!(saved(&text, "http_port"), Some("9100"), "{text}");
    let alpha = text.find("[alpha]\nkey = \"v\"").expect("[alpha] kept");
    let zeta = text.find("[zeta]\nz = 1").expect("[zeta] kept");
    assert!(alpha < zeta, "{text}");
    let keys: Vec<&str> = text
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split(" = ").next().unwrap())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&conf).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(conf.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["inphms.conf"]);
    // What was saved is read back as is.
    let again = td
        .cmd(["server", "--stop-after-init", "-c"])
        .arg(&conf)
        .run();
    assert_eq!(again.code, Some(0), "{again}");
}

#[test]
fn config_file_location() {
    let td = TestDir::new();
    let addons = td.dummy_addons();
    let options = format!("[options]\naddons_path = \"{}\"\n", addons.display());
    // No file at all: fine.
    let out = td.cmd(["server", "--stop-after-init"]).run();
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!out.stderr.contains("Using configuration file"), "{out}");
    // ~/.inphmsrc
    let rc = td.config("home/.inphmsrc", &options);
    let out = td.cmd(["server", "--stop-after-init"]).run();
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stderr
            .contains(&format!("Using configuration file at {}", rc.display())),
        "{out}"
    );
    // $INPHMS_RC over ~/.inphmsrc
    let env_rc = td.config("env.conf", &options);
    let out = td
        .cmd(["server", "--stop-after-init"])
        .env("INPHMS_RC", &env_rc)
        .run();
    assert!(
        out.stderr
            .contains(&format!("Using configuration file at {}", env_rc.display())),
        "{out}"
    );
    // -c over $INPHMS_RC
    let flag_rc = td.config("flag.conf", &options);
    let out = td
        .cmd(["server", "--stop-after-init", "-c"])
        .arg(&flag_rc)
        .env("INPHMS_RC", &env_rc)
        .run();
    assert!(
        out.stderr.contains(&format!(
            "Using configuration file at {}",
            flag_rc.display()
        )),
        "{out}"
    );
    // A missing -c file is an error, unless --save.
    let missing = td.join("missing.conf");
    let out = td
        .cmd(["server", "--stop-after-init", "-c"])
        .arg(&missing)
        .run();
    assert_bad(
        &out,
        &format!(
            "inphms-host: config file {} (from flag --config) doesn't exist or is not readable (No such file or directory); use -s/--save to generate it",
            missing.display()
        ),
    );
    let out = server(&td, &["--stop-after-init", "-s", "-c"])
        .arg(&missing)
        .run();
    assert_eq!(out.code, Some(0), "{out}");
    assert!(missing.is_file());
}

// ---------------------------------------------------------------------------------------------
// Bad input: exit 2, one line naming the option, the value, its origin and what was expected

#[test]
fn bad_file_values() {
    let td = TestDir::new();
    let addons = td.dummy_addons();
    let empty = td.join("empty");
    std::fs::create_dir_all(empty.join("not_an_addon")).unwrap();
    let cases: Vec<(String, String)> = vec![
        (
            "[options]\n\nhttp_port = \"abc\"\n".into(),
            "option http_port: invalid value \"abc\" from file {F} line 3; expected a port number from 1 to 65535".into(),
        ),
        (
            "[options]\ndb_maxconn = true\n".into(),
            "option db_maxconn: invalid value true from file {F} line 2; expected an integer from 1 to 4294967295".into(),
        ),
        (
            "[options]\nproxy_mode = \"yes\"\n".into(),
            "option proxy_mode: invalid value \"yes\" from file {F} line 2; expected a boolean (true or false)".into(),
        ),
        (
            "[options]\nhttp_port = 8069\naddons_path = [\"/no/such/dir\"]\n".into(),
            "option addons_path: invalid value \"/no/such/dir\" from file {F} line 3; expected an existing directory (no such directory)".into(),
        ),
        (
            format!("[options]\naddons_path = \"{}\"\n", empty.display()),
            format!("option addons_path: invalid value \"{}\" from file {{F}} line 2; expected an addons directory: a directory holding at least one addon (a folder with a __manifest__.toml)", empty.display()),
        ),
        // (An unquoted value is Odoo's INI form: tests/tests/odoo_conf.rs; an unknown key is
        // kept for addons.)
        (
            "[options]\nhttp_port = \"8069\n".into(),
            "config file {F} line 2: invalid basic string, expected `\"`".into(),
        ),
        (
            "http_port = 8069\n".into(),
            "config file {F} line 1: key 'http_port' is outside any section; expected it under [options] or another [section]".into(),
        ),
        (
            "[options]\nlog_level = \"loud\"\n".into(),
            "option log_level: invalid value \"loud\" from file {F} line 2; expected one of info, debug_rpc, warn, test, critical, runbot, debug_sql, error, debug, debug_rpc_answer, notset".into(),
        ),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let conf = td.config(format!("bad{i}.conf"), text);
        let out = td
            .cmd(["server", "--stop-after-init", "-c"])
            .arg(&conf)
            .arg(format!("--addons-path={}", addons.display()))
            .run();
        let expected = format!(
            "inphms-host: {}",
            expected.replace("{F}", &conf.display().to_string())
        );
        assert_bad(&out, &expected);
    }
}

#[test]
fn bad_environment_values() {
    let td = TestDir::new();
    let out = server(&td, &["--stop-after-init"])
        .env("PGPORT", "abc")
        .run();
    assert_bad(
        &out,
        "inphms-host: option db_port: invalid value \"abc\" from environment variable PGPORT; expected a port number from 1 to 65535",
    );
    let out = server(&td, &["--stop-after-init"])
        .env("PGPORT", "65536")
        .run();
    assert_bad(
        &out,
        "inphms-host: option db_port: invalid value \"65536\" from environment variable PGPORT; expected a port number from 1 to 65535",
    );
}

#[test]
fn bad_flags() {
    let td = TestDir::new();
    let empty = td.join("empty");
    std::fs::create_dir_all(empty.join("not_an_addon")).unwrap();
    let blocker = td.write("blocker", "a file, not a folder");
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec!["--http-port=70000".into()],
            "option http_port: invalid value \"70000\" from flag --http-port; expected a port number from 1 to 65535".into(),
        ),
        (
            vec!["-p".into(), "0".into()],
            "option http_port: invalid value \"0\" from flag --http-port; expected a port number from 1 to 65535".into(),
        ),
        (
            vec!["--db-filter=^(%d".into()],
            "option dbfilter: invalid value \"^(%d\" from flag --db-filter; expected a regular expression (unclosed group)".into(),
        ),
        (
            vec!["--log-level=loud".into()],
            "option log_level: invalid value \"loud\" from flag --log-level; expected one of info, debug_rpc, warn, test, critical, runbot, debug_sql, error, debug, debug_rpc_answer, notset".into(),
        ),
        (
            vec!["--log-handler=inphms:DEBUG".into(), "--log-handler=werkzeug".into()],
            "option log_handler: invalid value \"werkzeug\" from flag --log-handler; expected PREFIX:LEVEL with LEVEL one of DEBUG, INFO, RUNBOT, WARNING, WARN, ERROR, CRITICAL, NOTSET".into(),
        ),
        (
            vec!["--log-handler=inphms:LOUD".into()],
            "option log_handler: invalid value \"inphms:LOUD\" from flag --log-handler; expected PREFIX:LEVEL with LEVEL one of DEBUG, INFO, RUNBOT, WARNING, WARN, ERROR, CRITICAL, NOTSET".into(),
        ),
        (
            vec!["--addons-path=/no/such/dir".into()],
            "option addons_path: invalid value \"/no/such/dir\" from flag --addons-path; expected an existing directory (no such directory)".into(),
        ),
        (
            vec![format!("--addons-path={}", empty.display())],
            format!("option addons_path: invalid value \"{}\" from flag --addons-path; expected an addons directory: a directory holding at least one addon (a folder with a __manifest__.toml)", empty.display()),
        ),
        (
            vec![format!("--logfile={}/x.log", blocker.display())],
            format!("option logfile: invalid value \"{}/x.log\" from flag --logfile; expected a file that can be created or appended to (Not a directory)", blocker.display()),
        ),
        (
            vec!["--db_sslmode=sometimes".into()],
            "option db_sslmode: invalid value \"sometimes\" from flag --db_sslmode; expected one of disable, allow, prefer, require, verify-ca, verify-full".into(),
        ),
        (
            vec!["--proxy-trusted=10.0.0.0/33".into()],
            "option proxy_trusted: invalid value \"10.0.0.0/33\" from flag --proxy-trusted; expected a network such as 10.0.0.0/8, 192.168.1.7 or ::1/128".into(),
        ),
        (
            vec!["--limit-request=-1".into()],
            "option limit_request: invalid value \"-1\" from flag --limit-request; expected a non-negative integer".into(),
        ),
        (
            vec!["-d".into(), "a,b".into(), "-i".into(), "base".into()],
            "option db_name: invalid value \"a,b\" from flag --database; expected a single database when -i/--init or -u/--update is given".into(),
        ),
        (
            vec!["--frobnicate".into()],
            "unexpected argument '--frobnicate' found; see 'inphms-host server --help'".into(),
        ),
    ];
    for (args, expected) in cases {
        let out = server(&td, &["--stop-after-init"]).args(&args).run();
        assert_bad(&out, &format!("inphms-host: {expected}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Start-up checks

#[test]
fn root_warning_comes_first() {
    let td = TestDir::new();
    let out = server(&td, &["--stop-after-init"]).run();
    assert_eq!(out.code, Some(0), "{out}");
    if is_root() {
        assert_eq!(out.stderr_lines()[0], ROOT_WARNING, "{out}");
    } else {
        assert!(!out.stderr.contains(ROOT_WARNING), "{out}");
    }
}

#[test]
fn database_user_postgres_is_refused() {
    let td = TestDir::new();
    let refusal = "Using the database user 'postgres' is a security risk, aborting.";
    for out in [
        server(&td, &["--stop-after-init", "-r", "postgres"]).run(),
        server(&td, &["--stop-after-init"])
            .env("PGUSER", "postgres")
            .run(),
    ] {
        assert_eq!(out.code, Some(1), "{out}");
        assert_eq!(error_lines(&out), [refusal], "{out}");
    }
    let out = server(&td, &["--stop-after-init", "-r", "odoo"]).run();
    assert_eq!(out.code, Some(0), "{out}");
}

#[test]
fn configuration_is_reported() {
    let td = TestDir::new();
    let addons = td.dummy_addons();
    let out = server(&td, &["--stop-after-init"]).run();
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stderr.contains(" INFO ? inphms: Inphms version "),
        "{out}"
    );
    assert!(
        out.stderr
            .contains(&format!("addons paths: [\"{}\"", addons.display())),
        "{out}"
    );
    assert!(
        out.stderr
            .contains(" INFO ? inphms: database: default@default:default\n"),
        "{out}"
    );
    let out = server(
        &td,
        &[
            "--stop-after-init",
            "-r",
            "alice",
            "--db_host",
            "db.example",
            "--db_port",
            "6543",
        ],
    )
    .run();
    assert!(
        out.stderr
            .contains(" inphms: database: alice@db.example:6543\n"),
        "{out}"
    );
}

#[test]
fn pidfile_is_written_then_removed_with_stop_after_init() {
    let td = TestDir::new();
    let pidfile = td.join("run/inphms.pid");
    let out = server(&td, &["--stop-after-init", "--log-level=debug"])
        .arg(format!("--pidfile={}", pidfile.display()))
        .run();
    assert_eq!(out.code, Some(0), "{out}");
    let written = Regex::new(&format!(
        r" (\d+) DEBUG \? inphms: pid file {} written \(pid (\d+)\)",
        regex::escape(&pidfile.display().to_string())
    ))
    .unwrap();
    let caps = written
        .captures(&out.stderr)
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(&caps[1], &caps[2]);
    assert!(!pidfile.exists(), "the pid file is removed at exit");
}

#[test]
fn pidfile_of_a_running_server_is_removed_on_sigterm() {
    let td = TestDir::new();
    let addons = td.dummy_addons();
    let pidfile = td.join("run/inphms.pid");
    let mut srv = td
        .server([
            format!("--addons-path={}", addons.display()),
            format!("--pidfile={}", pidfile.display()),
        ])
        .start();
    // The port accepts connections as soon as it is bound; SIGTERM is handled once the
    // service runs.
    assert!(
        srv.wait_for_log("HTTP service", Duration::from_secs(60)),
        "{}",
        srv.stderr()
    );
    let content = std::fs::read_to_string(&pidfile).expect("the pid file exists while running");
    assert_eq!(content.trim(), srv.pid().to_string());
    let status = srv.stop(Duration::from_secs(30));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", srv.stderr());
    assert!(!pidfile.exists(), "the pid file is removed at exit");
}

// ---------------------------------------------------------------------------------------------
// Logging

/// Odoo's line: time with milliseconds, pid, level, database or `?`, target, message.
const LINE: &str = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} \d+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\?|[^ ]+) [A-Za-z0-9_.:-]+: .*$";

#[test]
fn log_lines_in_odoo_format_go_to_the_logfile() {
    let td = TestDir::new();
    let logfile = td.join("logs/inphms.log");
    let run = || {
        server(&td, &["--stop-after-init"])
            .arg(format!("--logfile={}", logfile.display()))
            .run()
    };
    let out = run();
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        error_lines(&out).is_empty(),
        "nothing logged on stderr: {out}"
    );
    let log = std::fs::read_to_string(&logfile).expect("the log file is created");
    let line = Regex::new(LINE).unwrap();
    assert!(!log.is_empty());
    for l in log.lines() {
        assert!(line.is_match(l), "not in Odoo's format: {l:?}");
    }
    let version = Regex::new(&format!(
        r"(?m)^\d{{4}}-\d{{2}}-\d{{2}} \d{{2}}:\d{{2}}:\d{{2}},\d{{3}} \d+ INFO \? inphms: Inphms version {}$",
        regex::escape("1.0")
    ))
    .unwrap();
    assert_eq!(version.find_iter(&log).count(), 1, "{log}");
    // Appended, not truncated.
    assert_eq!(run().code, Some(0));
    let log = std::fs::read_to_string(&logfile).unwrap();
    assert_eq!(version.find_iter(&log).count(), 2, "{log}");
}

#[test]
fn log_level_and_log_handler_filter() {
    let td = TestDir::new();
    let info = "inphms: Inphms version";
    let debug = "DEBUG ? inphms: pid file";
    let pid = format!("--pidfile={}", td.join("p.pid").display());
    let run = |args: &[&str]| {
        let out = server(&td, &["--stop-after-init", &pid]).args(args).run();
        assert_eq!(out.code, Some(0), "{out}");
        (out.stderr.contains(info), out.stderr.contains(debug))
    };
    assert_eq!(run(&[]), (true, false));
    assert_eq!(run(&["--log-level=debug"]), (true, true));
    assert_eq!(run(&["--log-level=warn"]), (false, false));
    assert_eq!(run(&["--log-handler=inphms:WARNING"]), (false, false));
    assert_eq!(run(&["--log-handler=inphms:DEBUG"]), (true, true));
    assert_eq!(run(&["--log-handler=:DEBUG"]), (true, true));
    assert_eq!(
        run(&["--log-level=debug", "--log-handler=inphms:INFO"]),
        (true, false)
    );
    // From the file too.
    let conf = td.config("log.conf", "[options]\nlog_handler = [\"inphms:ERROR\"]\n");
    let conf_arg = format!("--config={}", conf.display());
    assert_eq!(run(&[&conf_arg]), (false, false));
}

#[test]
fn config_file_values_are_checked_from_the_current_folder() {
    // Relative paths in the file are made absolute against the current folder.
    let td = TestDir::new();
    td.dummy_addons();
    let conf = td.config("rel.conf", "[options]\naddons_path = \"addons\"\n");
    let saved_to = td.join("saved.conf");
    std::fs::copy(&conf, &saved_to).unwrap();
    let out = td
        .cmd(["server", "--stop-after-init", "-s", "-c"])
        .arg(&saved_to)
        .run();
    assert_eq!(out.code, Some(0), "{out}");
    let text = std::fs::read_to_string(&saved_to).unwrap();
    assert_eq!(
        saved(&text, "addons_path"),
        Some(format!("[\"{}\"]", td.join("addons").display()).as_str())
    );
    assert!(Path::new(&td.join("addons")).is_dir());
}

#[test]
fn the_example_inphms_conf_is_accepted_as_is() {
    let td = TestDir::new();
    let conf = inphms_tests::repo_root().join("inphms.conf");
    let out = td
        .cmd(["server", "--stop-after-init", "-c"])
        .arg(&conf)
        .run();
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stderr
            .contains(&format!("Using configuration file at {}", conf.display())),
        "{out}"
    );
    assert!(
        out.stderr.contains("generation 1: addons base, web"),
        "{out}"
    );
}
