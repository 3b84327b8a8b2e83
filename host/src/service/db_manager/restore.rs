//! Restoring a backup (Odoo's `exp_restore` and `restore_db`): Odoo's zip (its `dump.sql`
//! run by `psql` with `ON_ERROR_STOP`, its `filestore/` moved into place) or a `pg_dump`
//! custom-format file (`pg_restore`). The zip is unpacked into a temporary folder, only
//! `dump.sql` and `filestore/...`, no entry leaving the folder, and no more than
//! [`max_unpacked`] bytes in all. Any failure drops the half-restored database.

use super::{exception, ops, user_error, Manager, Result};
use base64::Engine;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const TARGET: &str = "inphms.service.db";

/// The most a zip of `zip_len` bytes may unpack to: 200 times its size (deflate's ratio
/// on SQL text stays far below), at least 256 MiB, at most 64 GiB.
pub fn max_unpacked(zip_len: u64) -> u64 {
    zip_len.saturating_mul(200).clamp(256 << 20, 64 << 30)
}

/// What a backup file holds, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Zip,
    PgCustom,
}

fn kind_of(path: &Path) -> Result<Kind> {
    let mut head = [0u8; 5];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| exception(format!("cannot read the backup: {e}")))?;
    match &head[..n] {
        [b'P', b'K', 3, 4, ..] => Ok(Kind::Zip),
        b"PGDMP" => Ok(Kind::PgCustom),
        _ => Err(user_error(
            "the file is not a backup: expected a zip (Odoo's format, with dump.sql) or a pg_dump custom-format file",
        )),
    }
}

/// Decodes the base64 `data` into a new temporary file (Odoo's `exp_restore`), in chunks.
pub fn decode_to_file(data: &str) -> Result<tempfile::NamedTempFile> {
    let mut out = tempfile::Builder::new()
        .prefix("inphms-restore-")
        .tempfile()
        .map_err(|e| exception(format!("cannot make a temporary file: {e}")))?;
    let clean: Vec<u8> = data.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    for (i, chunk) in clean.chunks(64 * 1024).enumerate() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(chunk)
            .map_err(|e| base64_error(i * 64 * 1024, e))?;
        out.write_all(&bytes)
            .map_err(|e| exception(format!("cannot write the backup to a temporary file: {e}")))?;
    }
    out.flush()
        .map_err(|e| exception(format!("cannot write the backup to a temporary file: {e}")))?;
    Ok(out)
}

/// Odoo's `binascii.Error` for a backup that is not base64.
fn base64_error(offset: usize, e: base64::DecodeError) -> super::RpcFault {
    super::RpcFault::Application {
        name: "binascii.Error".into(),
        message: format!("Invalid base64-encoded backup (near character {offset}): {e}"),
    }
}

/// Unpacks `dump.sql` and `filestore/...` of the zip `path` into `dir`: entries escaping
/// `dir` are refused, the total is capped by `limit` (else [`max_unpacked`]).
pub(super) fn unzip(
    path: &Path,
    dir: &Path,
    limit: Option<u64>,
) -> std::result::Result<bool, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read the backup: {e}"))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let total = limit.unwrap_or_else(|| max_unpacked(len));
    let mut cap = total;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| format!("the backup is not a valid zip: {e}"))?;
    let mut has_sql = false;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| format!("the backup zip is damaged: {e}"))?;
        let raw = entry.name().to_owned();
        if raw != "dump.sql" && !raw.starts_with("filestore/") {
            continue;
        }
        let Some(rel) = entry.enclosed_name() else {
            return Err(format!(
                "the backup zip has an entry outside its folder: {raw:?}"
            ));
        };
        let dest = dir.join(rel);
        if entry.is_dir() {
            std::fs::create_dir_all(&dest).map_err(|e| e.to_string())?;
            continue;
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        let mut out = std::fs::File::create(&dest).map_err(|e| e.to_string())?;
        let written = std::io::copy(&mut (&mut entry).take(cap + 1), &mut out)
            .map_err(|e| format!("cannot unpack {raw:?}: {e}"))?;
        if written > cap {
            return Err(format!(
                "the backup unpacks to more than {total} bytes (from a zip of {len}): refused"
            ));
        }
        cap -= written;
        has_sql |= raw == "dump.sql";
    }
    Ok(has_sql)
}

impl Manager {
    /// Odoo's `restore_db(name, file, copy)`: `name` must not exist; made and filled from
    /// the backup at `path`, dropped again if anything fails.
    pub async fn restore_file(&self, name: &str, path: &Path, copy: bool) -> Result<()> {
        ops::check_name(name)?;
        let kind = kind_of(path)?;
        let admin = ops::Admin::connect(self).await?;
        if admin.exists(name).await? {
            admin.close().await;
            tracing::warn!(target: TARGET, "RESTORE DB: {name} already exists");
            return Err(exception("Database already exists"));
        }
        // Unpacked before the database is made: a bad zip leaves nothing behind.
        let dir = tempfile::Builder::new()
            .prefix("inphms-restore-")
            .tempdir()
            .map_err(|e| exception(format!("cannot make a temporary folder: {e}")))?;
        if kind == Kind::Zip {
            let (zip_path, dir_path) = (path.to_owned(), dir.path().to_owned());
            let unpacked = tokio::task::spawn_blocking(move || unzip(&zip_path, &dir_path, None))
                .await
                .map_err(|e| exception(format!("the restore task failed: {e}")))?;
            let unpacked = match unpacked {
                Ok(true) => refuse_meta_commands(&dir.path().join("dump.sql"))
                    .await
                    .map(|()| true),
                other => other,
            };
            match unpacked {
                Ok(true) => {}
                Ok(false) => {
                    admin.close().await;
                    return Err(user_error("the backup zip has no dump.sql"));
                }
                Err(e) => {
                    admin.close().await;
                    return Err(user_error(e));
                }
            }
        }
        tracing::info!(target: TARGET, "RESTORING DB: {name}");
        if let Err(e) = self.create_empty(&admin, name).await {
            admin.close().await;
            return Err(e);
        }
        let result = self.fill(name, kind, path, dir.path(), copy).await;
        if result.is_err() {
            self.drop_half_made(&admin, name).await;
        } else {
            tracing::info!(target: TARGET, "RESTORE DB: {name}");
        }
        admin.close().await;
        result
    }

    async fn fill(
        &self,
        name: &str,
        kind: Kind,
        path: &Path,
        dir: &Path,
        copy: bool,
    ) -> Result<()> {
        let (program, args): (&str, Vec<String>) = match kind {
            Kind::Zip => (
                "psql",
                vec![
                    "-q".into(),
                    "-X".into(),
                    "-v".into(),
                    "ON_ERROR_STOP=1".into(),
                    format!("--dbname={name}"),
                    "-f".into(),
                    dir.join("dump.sql").to_string_lossy().into_owned(),
                ],
            ),
            Kind::PgCustom => (
                "pg_restore",
                vec![
                    "--no-owner".into(),
                    "--exit-on-error".into(),
                    format!("--dbname={name}"),
                    path.to_string_lossy().into_owned(),
                ],
            ),
        };
        super::pg_bin::run(&self.config, program, &args)
            .await
            .map_err(|e| exception(format!("Couldn't restore database: {e}")))?;
        if copy {
            self.after_copy(name, false).await?;
        } else {
            self.signal_changed(name).await;
            self.databases.pools().close_db(name);
        }
        let filestore: PathBuf = dir.join("filestore");
        if filestore.is_dir() {
            let dest = self.filestore(name);
            let moved = std::fs::create_dir_all(dest.parent().unwrap_or(Path::new("/")))
                .and_then(|()| std::fs::rename(&filestore, &dest))
                .or_else(|_| ops::copy_tree(&filestore, &dest));
            moved.map_err(|e| {
                exception(format!(
                    "cannot put the filestore in {}: {e}",
                    dest.display()
                ))
            })?;
        }
        self.databases.pools().close_db(name);
        Ok(())
    }

    /// Odoo's `exp_restore(name, data, copy)`: `data` is the backup in base64.
    pub async fn restore_base64(&self, name: &str, data: &str, copy: bool) -> Result<()> {
        ops::check_name(name)?;
        let file = decode_to_file(data)?;
        self.restore_file(name, file.path(), copy).await
    }
}

/// Refuses a `dump.sql` with psql meta-commands `pg_dump` does not write (see
/// [`super::meta_commands`]): psql would run them.
async fn refuse_meta_commands(sql: &Path) -> std::result::Result<(), String> {
    let sql = sql.to_owned();
    let found = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&sql)?;
        super::meta_commands::forbidden(std::io::BufReader::new(file))
    })
    .await
    .map_err(|e| format!("the restore task failed: {e}"))?
    .map_err(|e| format!("cannot read dump.sql: {e}"))?;
    match found {
        None => Ok(()),
        Some((line, cmd)) => Err(format!(
            "dump.sql line {line}: the psql command {cmd} is not allowed in a backup \
             (only \\connect, \\restrict and \\unrestrict, as pg_dump writes)"
        )),
    }
}
