//! Backups (Odoo's `dump_db` and `dump_db_manifest`): Odoo's zip, with `dump.sql` (plain
//! `pg_dump --no-owner`), `filestore/` and `manifest.json`, or `pg_dump`'s custom format
//! (`dump`). The dump is written to files in a temporary folder, never held in memory, and
//! the zip to a temporary file the caller reads, streams or moves.

use super::{exception, ops, Manager, Result};
use crate::modules::loading;
use crate::release;
use std::io::Write;
use std::path::Path;

const TARGET: &str = "inphms.service.db";

/// The formats `dump` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Odoo's zip.
    Zip,
    /// `pg_dump --format=c`.
    Dump,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format> {
        match s {
            "zip" | "" => Ok(Format::Zip),
            "dump" => Ok(Format::Dump),
            other => Err(super::user_error(format!(
                "Unknown backup format {other:?}: expected \"zip\" or \"dump\""
            ))),
        }
    }

    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::Dump => "dump",
        }
    }
}

/// `version_info` as Odoo's `release.version_info`: `[major, minor, micro, "final", 0, ""]`.
pub fn version_info() -> serde_json::Value {
    let mut parts = release::HOST_VERSION
        .split('.')
        .map(|p| p.parse::<u64>().unwrap_or(0));
    serde_json::json!([
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        "final",
        0,
        ""
    ])
}

impl Manager {
    /// Odoo's `dump_db_manifest`.
    async fn manifest(&self, name: &str) -> Result<serde_json::Value> {
        let modules = loading::installed_addons(&self.databases, name)
            .await
            .map_err(|e| exception(format!("cannot read the addons of {name}: {e}")))?;
        let mut cr = self.databases.cursor(name, true);
        let version = cr.execute("SHOW server_version_num", &[]).await;
        let _ = cr.rollback().await;
        drop(cr);
        let num: u64 = match version
            .map_err(|e| exception(e.to_string()))?
            .rows
            .first()
            .and_then(|r| r.first())
        {
            Some(inphms_sdk::abi::SqlValue::Text(t)) => t.parse().unwrap_or(0),
            _ => 0,
        };
        Ok(serde_json::json!({
            "odoo_dump": "1",
            "db_name": name,
            "version": release::VERSION,
            "version_info": version_info(),
            "major_version": release::SERIE,
            "pg_version": format!("{}.{}", num / 10000, (num / 100) % 100),
            "modules": modules,
        }))
    }

    /// Odoo's `dump_db(name, stream, format)`: the backup of `name` in a new temporary
    /// file (removed when dropped).
    pub async fn dump_to_file(
        &self,
        name: &str,
        format: Format,
    ) -> Result<tempfile::NamedTempFile> {
        ops::check_name(name)?;
        tracing::info!(target: TARGET, "DUMP DB: {name} format {}", format.extension());
        let admin = ops::Admin::connect(self).await?;
        let exists = admin.exists(name).await;
        admin.close().await;
        if !exists? {
            return Err(exception(format!("Database {name} does not exist")));
        }
        let tmp_err = |e: std::io::Error| exception(format!("cannot make a temporary file: {e}"));
        let out = tempfile::Builder::new()
            .prefix("inphms-backup-")
            .suffix(&format!(".{}", format.extension()))
            .tempfile()
            .map_err(tmp_err)?;
        let out_path = out.path().to_string_lossy().into_owned();
        if format == Format::Dump {
            super::pg_bin::run(
                &self.config,
                "pg_dump",
                &[
                    "--no-owner".into(),
                    "--format=c".into(),
                    format!("--file={out_path}"),
                    name.into(),
                ],
            )
            .await
            .map_err(|e| exception(format!("Database backup error: {e}")))?;
            return Ok(out);
        }
        let dir = tempfile::Builder::new()
            .prefix("inphms-dump-")
            .tempdir()
            .map_err(tmp_err)?;
        let sql = dir.path().join("dump.sql");
        let manifest = self.manifest(name).await?;
        super::pg_bin::run(
            &self.config,
            "pg_dump",
            &[
                "--no-owner".into(),
                format!("--file={}", sql.display()),
                name.into(),
            ],
        )
        .await
        .map_err(|e| exception(format!("Database backup error: {e}")))?;
        let filestore = self.filestore(name);
        let file = out.reopen().map_err(tmp_err)?;
        tokio::task::spawn_blocking(move || write_zip(file, &manifest, &filestore, &sql))
            .await
            .map_err(|e| exception(format!("the backup task failed: {e}")))?
            .map_err(|e| exception(format!("cannot write the backup zip: {e}")))?;
        drop(dir);
        Ok(out)
    }
}

/// Writes Odoo's zip: `manifest.json`, the filestore's files, then `dump.sql` (last, as
/// Odoo's `zip_dir` puts it), each deflated.
fn write_zip(
    file: std::fs::File,
    manifest: &serde_json::Value,
    filestore: &Path,
    sql: &Path,
) -> std::io::Result<()> {
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let now = chrono::Utc::now().naive_utc();
    let stamp = {
        use chrono::{Datelike, Timelike};
        zip::DateTime::from_date_and_time(
            u16::try_from(now.year()).unwrap_or(1980),
            now.month() as u8,
            now.day() as u8,
            now.hour() as u8,
            now.minute() as u8,
            now.second() as u8,
        )
        .unwrap_or_default()
    };
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(stamp)
        .large_file(true);
    let zerr = |e: zip::result::ZipError| std::io::Error::other(e.to_string());
    zip.start_file("manifest.json", options).map_err(zerr)?;
    let text = serde_json::to_string_pretty(manifest).map_err(std::io::Error::other)?;
    zip.write_all(text.as_bytes())?;
    if filestore.is_dir() {
        for entry in walkdir::WalkDir::new(filestore)
            .min_depth(1)
            .sort_by_file_name()
        {
            let entry = entry.map_err(std::io::Error::other)?;
            if !entry.file_type().is_file() {
                continue;
            }
            let rel = entry
                .path()
                .strip_prefix(filestore)
                .map_err(std::io::Error::other)?;
            let name = format!("filestore/{}", rel.to_string_lossy());
            zip.start_file(name, options).map_err(zerr)?;
            std::io::copy(&mut std::fs::File::open(entry.path())?, &mut zip)?;
        }
    }
    zip.start_file("dump.sql", options).map_err(zerr)?;
    std::io::copy(&mut std::fs::File::open(sql)?, &mut zip)?;
    let mut inner = zip.finish().map_err(zerr)?;
    inner.flush()?;
    inner.get_ref().sync_all()?;
    Ok(())
}
