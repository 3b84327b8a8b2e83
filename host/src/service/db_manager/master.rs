//! The master password of the database manager (Odoo's `admin_passwd`,
//! `config.verify_admin_password` and `set_admin_password`): kept as the config file has it
//! (a passlib `pbkdf2_sha512` hash, or legacy plain text, which is accepted as Odoo does),
//! checked in constant time, and replaced by a fresh hash written back into the file.
//! Another process (a prefork worker, another host on the file) may change it: the file is
//! read again when its modification time moves.

use crate::config::Config;
use base_identity::crypt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

const TARGET: &str = "inphms.service.db";

/// The master password as stored (hash or plain text); changed by `change_admin_password`.
/// Whether it is still `admin` is found once (checking a hash costs a PBKDF2), not at every
/// page.
#[derive(Debug)]
pub struct MasterPassword {
    /// The stored form, and whether it is `admin`.
    stored: Mutex<(String, bool)>,
    /// The configuration, to read its file again.
    config: Arc<Config>,
    /// The config file's modification time when `stored` was read from it or written.
    seen: Mutex<Option<SystemTime>>,
}

impl MasterPassword {
    /// From the configuration's `admin_passwd`.
    pub fn new(config: &Arc<Config>) -> MasterPassword {
        let stored = config.admin_passwd.clone();
        let is_default = crypt::verify("admin", &stored, crypt::DEFAULT_ROUNDS).valid;
        MasterPassword {
            stored: Mutex::new((stored, is_default)),
            config: Arc::clone(config),
            seen: Mutex::new(modified(config.rc_path().map(PathBuf::from))),
        }
    }

    /// Reads `admin_passwd` from the config file again when the file changed since it was
    /// last read or written (one `stat` otherwise).
    fn refresh(&self) {
        let Some(path) = self.config.rc_path() else {
            return;
        };
        let now = modified(Some(path.to_owned()));
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if now.is_none() || now == *seen {
            return;
        }
        match self.config.reread_admin_passwd() {
            Ok(Some((stored, at))) => {
                let is_default = crypt::verify("admin", &stored, crypt::DEFAULT_ROUNDS).valid;
                *self.stored.lock().unwrap_or_else(|e| e.into_inner()) = (stored, is_default);
                *seen = Some(at);
                tracing::info!(target: TARGET, "master password read again from {}", path.display());
            }
            Ok(None) => {}
            Err(e) => {
                *seen = now;
                tracing::warn!(target: TARGET, "master password not read again: {e}");
            }
        }
    }

    fn stored(&self) -> String {
        self.refresh();
        self.stored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// Whether `password` is the master password (Odoo's `verify_admin_password`); an empty
    /// one never is.
    pub fn verify(&self, password: &str) -> bool {
        !password.is_empty() && crypt::verify(password, &self.stored(), crypt::DEFAULT_ROUNDS).valid
    }

    /// Whether the master password is still Odoo's default, `admin` (the manager then
    /// warns and takes the first master password given as the new one, as Odoo's does).
    pub fn is_default(&self) -> bool {
        self.refresh();
        self.stored.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    /// Sets the master password to `new` (hashed), in memory and in the config file
    /// (`admin_passwd`, the file keeping its form); the error names the file and why.
    pub fn set(&self, config: &Config, new: &str) -> Result<(), String> {
        let hash = crypt::hash(new, crypt::DEFAULT_ROUNDS);
        let path = config
            .save_option("admin_passwd", &hash)
            .map_err(|e| e.to_string())?;
        *self.stored.lock().unwrap_or_else(|e| e.into_inner()) = (hash, new == "admin");
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = modified(Some(path.clone()));
        tracing::info!(target: TARGET, "master password changed (saved in {})", path.display());
        Ok(())
    }
}

/// The modification time of the file at `path`, when there is one.
fn modified(path: Option<PathBuf>) -> Option<SystemTime> {
    std::fs::metadata(path?).and_then(|m| m.modified()).ok()
}
