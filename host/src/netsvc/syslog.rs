//! [`Syslog`]: the `--syslog` sink, sending each record to the local syslog as Odoo does
//! (Python's `SysLogHandler` on `/dev/log`): one datagram per record, facility `user`,
//! `<PRI>Inphms Server 1.0:DBNAME:LEVEL:TARGET:MESSAGE` and a NUL, the time, host and pid
//! left to the syslog daemon.
//!
//! The sink receives the lines the output formats (see `format`); each is turned back into
//! its fields. A record spanning several lines (a traceback) is one datagram. A datagram
//! that cannot be sent (the daemon restarting) is retried once on a new connection, then
//! dropped: nowhere is left to report it.

use super::level::parse_level;
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// The longest datagram sent; longer records are cut.
const MAX_DATAGRAM: usize = 64 * 1024;

/// Facility `user` (1), shifted as in a syslog priority.
const FACILITY_USER: u8 = 1 << 3;

/// The local syslog.
pub struct Syslog {
    path: PathBuf,
    sock: UnixDatagram,
    /// `Inphms Server X.Y`.
    prefix: String,
    /// The record being gathered (a first line, then its continuation lines).
    record: Vec<u8>,
}

fn connect(path: &Path) -> std::io::Result<UnixDatagram> {
    let sock = UnixDatagram::unbound()?;
    sock.connect(path)?;
    Ok(sock)
}

/// The syslog severity of an Odoo level name.
fn severity(level: &str) -> u8 {
    match parse_level(level) {
        Some(s) if s >= 50 => 2,
        Some(s) if s >= 40 => 3,
        Some(s) if s >= 30 => 4,
        Some(s) if s >= 20 => 6,
        _ => 7,
    }
}

/// The fields of an Odoo line: `(level, dbname, target, message)`, or `None` for a line
/// that continues the record above it.
fn fields(line: &str) -> Option<(&str, &str, &str, &str)> {
    let mut parts = line.splitn(6, ' ');
    let date = parts.next()?;
    let time = parts.next()?;
    let pid = parts.next()?;
    let level = parts.next()?;
    let db = parts.next()?;
    let rest = parts.next()?;
    let well_formed = date.len() == 10
        && date.as_bytes()[4] == b'-'
        && time.contains(',')
        && pid.bytes().all(|b| b.is_ascii_digit())
        && parse_level(level).is_some();
    if !well_formed {
        return None;
    }
    let (target, message) = rest.split_once(": ").unwrap_or((rest, ""));
    Some((level, db, target, message))
}

impl Syslog {
    /// Connects to the syslog socket `path` (`/dev/log`).
    pub fn connect(path: &Path, version: &str) -> std::io::Result<Syslog> {
        Ok(Syslog {
            path: path.to_owned(),
            sock: connect(path)?,
            prefix: format!("Inphms Server {version}"),
            record: Vec::new(),
        })
    }

    /// Sends the record gathered, if any.
    fn send(&mut self) {
        if self.record.is_empty() {
            return;
        }
        self.record.truncate(MAX_DATAGRAM - 1);
        self.record.push(0);
        if self.sock.send(&self.record).is_err() {
            if let Ok(sock) = connect(&self.path) {
                self.sock = sock;
                let _ = self.sock.send(&self.record);
            }
        }
        self.record.clear();
    }

    /// Adds one line of the output: a new record, or the continuation of the last one.
    fn line(&mut self, line: &str) {
        match fields(line) {
            Some((level, db, target, message)) => {
                self.send();
                let pri = FACILITY_USER | severity(level);
                let _ = write!(
                    self.record,
                    "<{pri}>{}:{db}:{level}:{target}:{message}",
                    self.prefix
                );
            }
            None if self.record.is_empty() => {
                let _ = write!(self.record, "<{}>{}", FACILITY_USER | 6, line);
            }
            None => {
                self.record.push(b'\n');
                self.record.extend_from_slice(line.as_bytes());
            }
        }
    }
}

impl Write for Syslog {
    /// Takes whole lines (the output writes whole batches); each batch's last record is
    /// sent at its end.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        for line in text.lines() {
            self.line(line);
        }
        self.send();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_in_odoos_syslog_format() {
        let dir = std::env::temp_dir().join(format!("inphms-syslog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.sock");
        let _ = std::fs::remove_file(&path);
        let daemon = UnixDatagram::bind(&path).unwrap();
        let mut s = Syslog::connect(&path, "1.0").unwrap();
        s.write_all(
            b"2026-12-06 08:00:00,123 42 WARNING db1 inphms.http: slow: 3 s\n\
              2026-12-06 08:00:00,124 42 ERROR ? inphms.addons: panic\nTraceback line\n",
        )
        .unwrap();
        let mut buf = [0u8; 1024];
        let n = daemon.recv(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            b"<12>Inphms Server 1.0:db1:WARNING:inphms.http:slow: 3 s\0"
        );
        let n = daemon.recv(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            b"<11>Inphms Server 1.0:?:ERROR:inphms.addons:panic\nTraceback line\0"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
