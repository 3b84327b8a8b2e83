//! An Odoo operator's setup, through the real binary: a typical `odoo.conf` (Odoo's INI
//! form, with the options Odoo writes, some with no effect here, a custom key and a typo)
//! starts the server; the custom key reaches an addon (`Host::config`); the options with
//! no effect are listed once; the typo is named with its suggestion; `ODOO_RC` is read;
//! `--save` keeps the INI form; `--version` prints Odoo's way.

use inphms_tests::pg::{self, TestDb};
use inphms_tests::{http_get, request, test_addons_dir, wait_until, TestDir};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// What `odoo-bin -s` writes, trimmed to the options an operator sets, then a custom key,
/// a typo and a section of an addon.
fn odoo_conf(td: &TestDir, port: u16, db_user: &str, dbfilter: &str, logfile: &Path) -> String {
    format!(
        "; written by hand, as an operator would\n\
         [options]\n\
         addons_path = {addons}\n\
         admin_passwd = s3cr3t\n\
         data_dir = {data}\n\
         db_host = {host}\n\
         db_port = {pg_port}\n\
         db_user = {db_user}\n\
         db_password = False\n\
         db_name = False\n\
         dbfilter = {dbfilter}\n\
         http_interface = 127.0.0.1\n\
         http_port = {port}\n\
         workers = 0\n\
         max_cron_threads = 0\n\
         limit_memory_hard = 2684354560\n\
         limit_memory_soft = 2147483648\n\
         limit_request = 8192\n\
         limit_time_cpu = 30\n\
         limit_time_real = 120\n\
         proxy_mode = True\n\
         list_db = True\n\
         logfile = {logfile}\n\
         log_level = info\n\
         pidfile = None\n\
         smtp_server = localhost\n\
         smtp_port = 2525\n\
         smtp_password = False\n\
         server_wide_modules = base,web,test_http\n\
         my_custom_key = hello world\n\
         my_flag = True\n\
         http_portt = 1\n\
         \n\
         # an addon's own section\n\
         [my_addon]\n\
         api_key = abc:def\n",
        addons = test_addons_dir().display(),
        data = td.join("data").display(),
        host = pg::HOST,
        pg_port = pg::PORT,
        logfile = logfile.display(),
    )
}

/// The JSON a `GET` of `path` answers (a 200 expected).
fn get_json(port: u16, path: &str) -> Value {
    let resp = http_get(port, path, &[]);
    assert_eq!(resp.status, 200, "GET {path}: {}", resp.text());
    serde_json::from_slice(&resp.body).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

#[test]
fn a_typical_odoo_conf_starts_the_server_and_lends_its_custom_keys() {
    let td = TestDir::new();
    let db = TestDb::create("odoo_conf");
    let db_user = pg::psql("postgres", "SELECT current_user");
    let logfile = td.join("log/odoo-server.log");
    let builder = td.server(Vec::<String>::new());
    let port = builder.port();
    let conf = td.config(
        "etc/odoo.conf",
        &odoo_conf(&td, port, &db_user, &format!("^{}$", db.name), &logfile),
    );
    let conf_arg = format!("--config={}", conf.display());
    let server = builder.raw_args(["server", &conf_arg]).start();
    let log = || std::fs::read_to_string(&logfile).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(30), || log()
            .contains("test_http: post_load")),
        "the addon of server_wide_modules is loaded, logging to the logfile:\n{}\n{}",
        log(),
        server.stderr()
    );

    // The custom keys of [options] and the addon's section reach the addon.
    assert_eq!(
        get_json(port, "/test_http/config/options/my_custom_key"),
        json!("hello world")
    );
    assert_eq!(
        get_json(port, "/test_http/config/options/my_flag"),
        json!(true)
    );
    assert_eq!(
        get_json(port, "/test_http/config/my_addon/api_key"),
        json!("abc:def")
    );
    // Options with no effect are kept for addons too; options of the host are not.
    assert_eq!(
        get_json(port, "/test_http/config/options/smtp_port"),
        json!("2525")
    );
    assert_eq!(
        get_json(port, "/test_http/config/options/workers"),
        Value::Null
    );
    assert_eq!(
        get_json(port, "/test_http/config/options/http_port"),
        Value::Null
    );
    assert_eq!(
        get_json(port, "/test_http/config/options/nope"),
        Value::Null
    );

    // The database options took effect: the test database is listed through dbfilter.
    let body = json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {}}).to_string();
    let raw = format!(
        "POST /web/database/list HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let resp = request(port, raw.as_bytes());
    let v: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    assert_eq!(v["result"], json!([db.name]), "{}", resp.text());

    // One warning lists the options with no effect set to another value than their
    // default (not smtp_server = localhost, Odoo's default), one names the typo with its
    // suggestion; the custom keys are not warned about.
    let text = log();
    let no_effect: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WARNING ? inphms.tools.config: options with no effect here"))
        .collect();
    assert_eq!(no_effect.len(), 1, "{text}");
    assert!(
        no_effect[0].ends_with(&format!("({}): smtp_port", conf.display())),
        "{}",
        no_effect[0]
    );
    // The limits of workers mode are named once, workers being 0.
    let workers_only = "WARNING ? inphms.tools.config: options that apply only with --workers (workers = 0 here): limit_time_cpu, limit_request";
    assert_eq!(text.matches(workers_only).count(), 1, "{text}");
    let typo = format!(
        "WARNING ? inphms.tools.config: unknown option http_portt in file {} line 32, kept for addons: did you mean http_port?",
        conf.display()
    );
    assert_eq!(text.matches(&typo).count(), 1, "{text}");
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" inphms.tools.config: "))
        .collect();
    assert_eq!(warnings.len(), 3, "{text}");
    assert!(
        server.stderr().trim().is_empty() || !server.stderr().contains(" INFO "),
        "the log goes to the logfile: {}",
        server.stderr()
    );
}

/// `inphms-host server ARGS` (`HOME` is the test's `home/`) with the variables `vars`.
fn run(td: &TestDir, args: &[&str], vars: &[(&str, &Path)]) -> inphms_tests::Output {
    let mut cmd = td.cmd(["server"]).args(args);
    for (k, v) in vars {
        cmd = cmd.env(k, v);
    }
    cmd.run()
}

#[test]
fn odoo_rc_and_odoorc_are_read_after_inphms_rc_and_save_keeps_the_ini_form() {
    let td = TestDir::new();
    let addons = td.dummy_addons();
    let ini = |port: u16| {
        format!(
            "[options]\naddons_path = {}\nhttp_port = {port}\ndb_host = False\nmy_key = kept\n\n[web]\ngreeting = hi there\n",
            addons.display()
        )
    };
    let save = ["--stop-after-init", "--save", "--log-level=warn"];

    // ~/.odoorc, when no ~/.inphmsrc exists: read, and saved in its own form.
    let odoorc = td.config("home/.odoorc", &ini(9001));
    let out = run(&td, &save, &[]);
    assert_eq!(out.code, Some(0), "{out}");
    let text = std::fs::read_to_string(&odoorc).unwrap();
    assert!(text.starts_with("[options]\n"), "{text}");
    assert!(text.contains("\nhttp_port = 9001\n"), "{text}");
    assert!(text.contains("\nmy_key = kept\n"), "{text}");
    assert!(text.contains("\nproxy_mode = False\n"), "{text}");
    assert!(
        text.contains(&format!("\naddons_path = {}\n", addons.display())),
        "{text}"
    );
    assert!(text.contains("\n[web]\ngreeting = hi there\n"), "{text}");
    assert!(
        !text.contains('"'),
        "no TOML quoting in the INI form: {text}"
    );

    // $ODOO_RC comes before ~/.odoorc.
    let odoo_rc = td.config("odoo_rc.conf", &ini(9002));
    let out = run(&td, &save, &[("ODOO_RC", &odoo_rc)]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(std::fs::read_to_string(&odoo_rc)
        .unwrap()
        .contains("\nhttp_port = 9002\n"));

    // ~/.inphmsrc comes before both: it is the one saved.
    let inphmsrc = td.config(
        "home/.inphmsrc",
        &format!(
            "[options]\naddons_path = [\"{}\"]\nhttp_port = 9003\n",
            addons.display()
        ),
    );
    let before = std::fs::read_to_string(&odoo_rc).unwrap();
    let out = run(&td, &save, &[("ODOO_RC", &odoo_rc)]);
    assert_eq!(out.code, Some(0), "{out}");
    let text = std::fs::read_to_string(&inphmsrc).unwrap();
    assert!(text.contains("http_port = 9003\n"), "TOML kept: {text}");
    assert!(text.contains("addons_path = [\""), "TOML kept: {text}");
    assert_eq!(std::fs::read_to_string(&odoo_rc).unwrap(), before);
}

#[test]
fn ini_errors_name_the_file_and_line() {
    let td = TestDir::new();
    let addons = td.dummy_addons();
    let cases = [
        (
            "[options]\naddons_path = ADDONS\nhttp_port = eighty\n",
            "option http_port: invalid value \"eighty\" from file {F} line 3; expected a port number from 1 to 65535",
        ),
        (
            "[options]\ndb_host = False\nhttp_port = 8069\nhttp_port = 8070\n",
            "config file {F} line 4: key 'http_port' is given twice in [options] (first on line 3)",
        ),
        (
            "[options]\ndb_host = False\nnot a key line\n",
            "config file {F} line 3: \"not a key line\" is not a 'key = value' line",
        ),
        (
            "db_host = False\n[options]\n",
            "config file {F} line 1: key 'db_host' is outside any section; expected it under [options] or another [section]",
        ),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let conf = td.config(
            format!("bad{i}.conf"),
            &text.replace("ADDONS", &addons.display().to_string()),
        );
        let out = td
            .cmd(["server", "--stop-after-init", "-c"])
            .arg(&conf)
            .arg(format!("--addons-path={}", addons.display()))
            .run();
        assert_eq!(out.code, Some(2), "{out}");
        let expected = format!(
            "inphms-host: {}\n",
            expected.replace("{F}", &conf.display().to_string())
        );
        assert!(out.stderr.ends_with(&expected), "{out}");
    }
}

#[test]
fn version_is_printed_as_odoo_does() {
    let td = TestDir::new();
    for args in [&["--version"][..], &["server", "--version"][..]] {
        let out = td.cmd(args.iter().copied()).run();
        assert_eq!(out.code, Some(0), "{out}");
        assert_eq!(out.stdout, "Inphms Server 1.0\n", "{out}");
        let root_warning = "Running as user 'root' is a security risk.";
        assert_eq!(
            out.stderr.trim().trim_start_matches(root_warning),
            "",
            "{out}"
        );
    }
    // A command-line error is one line, ended.
    let out = td.cmd(["server", "--no-such-flag"]).run();
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr.ends_with("see 'inphms-host server --help'\n"),
        "{out:?}",
        out = out.stderr
    );
    // The help groups the options as Odoo's does.
    let out = td.cmd(["server", "--help"]).run();
    assert_eq!(out.code, Some(0), "{out}");
    let headings = [
        "Common options:",
        "HTTP Service Configuration:",
        "Web interface Configuration:",
        "Database related options:",
        "Logging Configuration:",
        "Multiprocessing options:",
    ];
    let mut at = 0;
    for h in headings {
        let found = out.stdout[at..].find(h);
        assert!(found.is_some(), "{h} after byte {at}:\n{}", out.stdout);
        at += found.unwrap_or(0);
    }
    let section = |h: &str| {
        let start = out.stdout.find(h).unwrap_or(0);
        let rest = &out.stdout[start..];
        rest[..rest.find("\n\n").unwrap_or(rest.len())].to_owned()
    };
    assert!(section("HTTP Service Configuration:").contains("--http-port"));
    assert!(section("Database related options:").contains("--db_host"));
    assert!(section("Logging Configuration:").contains("--logfile"));
    assert!(section("Multiprocessing options:").contains("--limit-memory-soft"));
}
