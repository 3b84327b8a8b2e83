//! The manager's guards and parsers, against the real PostgreSQL of the tests
//! (`127.0.0.1:5432`, or `$PGHOST`/`$PGPORT`).

use super::restore::{max_unpacked, unzip};
use super::*;
use crate::config::Config;
use std::io::Write;

fn host(list_db: bool) -> Host {
    let mut config = Config::defaults();
    config.db_host = Some(std::env::var("PGHOST").unwrap_or_else(|_| "127.0.0.1".into()));
    config.db_port = std::env::var("PGPORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .or(Some(5432));
    config.admin_passwd = "s3cr3t".into();
    config.list_db = list_db;
    Host::new(Arc::new(config), Some(tokio::runtime::Handle::current()))
}

fn unique(tag: &str) -> String {
    format!("inphms_test_{}_{tag}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_the_master_password_and_the_guards() {
    let h = host(true);
    assert_eq!(
        dispatch(&h, "server_version", &[]).await,
        Ok(json!(crate::release::VERSION))
    );
    assert_eq!(
        dispatch(&h, "list_lang", &[]).await,
        Ok(json!([["en_US", "English (US)"]]))
    );
    assert_eq!(
        dispatch(&h, "db_exist", &[json!("postgres")]).await,
        Ok(json!(true))
    );
    assert_eq!(
        dispatch(&h, "exist", &[json!(unique("nope"))]).await,
        Ok(json!(false))
    );
    assert!(dispatch(&h, "list", &[]).await.is_ok());
    let denied = Err(RpcFault::AccessDenied("Access Denied".into()));
    assert_eq!(
        dispatch(&h, "drop", &[json!("wrong"), json!("x")]).await,
        denied
    );
    assert_eq!(dispatch(&h, "drop", &[]).await, denied);
    assert_eq!(dispatch(&h, "list_countries", &[json!("")]).await, denied);
    let countries = dispatch(&h, "list_countries", &[json!("s3cr3t")])
        .await
        .unwrap();
    assert_eq!(countries[0], json!(["be", "Belgium"]));
    assert_eq!(
        dispatch(&h, "frobnicate", &[]).await,
        Err(RpcFault::Application {
            name: "builtins.KeyError".into(),
            message: "Method not found: frobnicate".into()
        })
    );
    // Not a database: false, as Odoo's exp_drop.
    assert_eq!(
        dispatch(&h, "drop", &[json!("s3cr3t"), json!(unique("nope"))]).await,
        Ok(json!(false))
    );
    // Names that could leave the filestore are refused.
    for bad in ["../x", "a/b", ".hidden", "x", "a b", ""] {
        let r = dispatch(
            &h,
            "rename",
            &[json!("s3cr3t"), json!("postgres"), json!(bad)],
        )
        .await;
        assert!(matches!(r, Err(RpcFault::UserError(_))), "{bad}: {r:?}");
    }

    let h = host(false);
    assert_eq!(dispatch(&h, "list", &[]).await, denied);
    assert_eq!(
        dispatch(&h, "drop", &[json!("s3cr3t"), json!("x")]).await,
        denied
    );
    assert_eq!(
        dispatch(&h, "server_version", &[]).await,
        Ok(json!(crate::release::VERSION))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_of_no_backup_is_a_clear_error_and_leaves_no_database() {
    let h = host(true);
    let name = unique("bad_restore");
    let r = dispatch(
        &h,
        "restore",
        &[json!("s3cr3t"), json!(name), json!("%%% not base64 %%%")],
    )
    .await;
    match r {
        Err(RpcFault::Application { name, message }) => {
            assert_eq!(name, "binascii.Error");
            assert!(message.contains("Invalid base64"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let text = base64::engine::general_purpose::STANDARD.encode(b"hello, not a zip");
    let r = dispatch(&h, "restore", &[json!("s3cr3t"), json!(name), json!(text)]).await;
    assert!(
        matches!(&r, Err(RpcFault::UserError(m)) if m.contains("not a backup")),
        "{r:?}"
    );
    // A zip without dump.sql.
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut buf);
    z.start_file("manifest.json", zip::write::SimpleFileOptions::default())
        .unwrap();
    z.write_all(b"{}").unwrap();
    z.finish().unwrap();
    let text = base64::engine::general_purpose::STANDARD.encode(buf.into_inner());
    let r = dispatch(&h, "restore", &[json!("s3cr3t"), json!(name), json!(text)]).await;
    assert!(
        matches!(&r, Err(RpcFault::UserError(m)) if m.contains("no dump.sql")),
        "{r:?}"
    );
    assert_eq!(
        dispatch(&h, "db_exist", &[json!(name)]).await,
        Ok(json!(false))
    );
}

fn zip_of(entries: &[(&str, &[u8])]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        z.start_file(*name, opts).unwrap();
        z.write_all(data).unwrap();
    }
    f.write_all(&z.finish().unwrap().into_inner()).unwrap();
    f
}

#[test]
fn unzip_keeps_to_its_folder_and_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let ok = zip_of(&[
        ("dump.sql", b"SELECT 1;"),
        ("filestore/ab/cdef", b"x"),
        ("other.txt", b"skipped"),
    ]);
    assert_eq!(unzip(ok.path(), dir.path(), None), Ok(true));
    assert!(dir.path().join("filestore/ab/cdef").is_file());
    assert!(!dir.path().join("other.txt").exists());
    let escaping = zip_of(&[("dump.sql", b"SELECT 1;"), ("filestore/../../evil", b"x")]);
    let e = unzip(escaping.path(), tempfile::tempdir().unwrap().path(), None).unwrap_err();
    assert!(e.contains("outside its folder"), "{e}");
    let big = vec![b'a'; 100_000];
    let bomb = zip_of(&[("dump.sql", &big)]);
    let e = unzip(
        bomb.path(),
        tempfile::tempdir().unwrap().path(),
        Some(10_000),
    )
    .unwrap_err();
    assert!(e.contains("more than 10000 bytes"), "{e}");
    assert_eq!(max_unpacked(1), 256 << 20);
    assert_eq!(max_unpacked(10 << 20), 2000 << 20);
    assert_eq!(max_unpacked(u64::MAX), 64 << 30);
}

#[test]
fn formats_and_version_info() {
    assert_eq!(dump::Format::parse("zip"), Ok(dump::Format::Zip));
    assert_eq!(dump::Format::parse("dump"), Ok(dump::Format::Dump));
    assert!(dump::Format::parse("tar").is_err());
    let v = dump::version_info();
    assert_eq!(v[3], json!("final"));
    assert_eq!(v.as_array().map(Vec::len), Some(6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_with_a_shell_command_is_refused() {
    let h = host(true);
    let name = unique("rv_meta");
    let marker = tempfile::tempdir().unwrap();
    let touched = marker.path().join("ran");
    let sql = format!("SELECT 1;\n\\! touch {}\n", touched.display());
    let zip = zip_of(&[("dump.sql", sql.as_bytes())]);
    let text = base64::engine::general_purpose::STANDARD.encode(std::fs::read(zip.path()).unwrap());
    let r = dispatch(&h, "restore", &[json!("s3cr3t"), json!(name), json!(text)]).await;
    assert!(
        matches!(&r, Err(RpcFault::UserError(m)) if m.contains("line 2: the psql command \\! is not allowed")),
        "{r:?}"
    );
    assert!(!touched.exists(), "the shell command ran");
    assert_eq!(
        dispatch(&h, "db_exist", &[json!(name)]).await,
        Ok(json!(false))
    );
}
