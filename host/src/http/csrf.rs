//! Odoo's CSRF token (reference §9 "CSRF token"), and its secret when there is no database.
//!
//! A token is `hex(HMAC-SHA1(secret, "{sid}{max_ts}")) + "o" + max_ts`: 40 lowercase hex
//! characters, the letter `o`, then the Unix time after which it is refused. It is bound
//! to the session id, so rotating the session invalidates earlier tokens. [`validate`]
//! splits on the last `o`, refuses a non-integer or past `max_ts`, and compares the MAC in
//! constant time.
//!
//! With a database, Odoo's secret is the ICP `database.secret` (pass its bytes). Without
//! one, [`secret_from_data_dir`] keeps 32 random bytes in `<data_dir>/csrf_secret`,
//! created atomically (mode 0600) on first use and read afterwards.
//!
//! Times are Unix seconds, given by the caller.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore as _;
use sha1::Sha1;

/// Odoo's `CSRF_TOKEN_SALT`: the default token lifetime, one year in seconds.
pub const CSRF_TOKEN_LIFETIME: u64 = 60 * 60 * 24 * 365;
/// The secret's file name in the data directory.
pub const SECRET_FILE: &str = "csrf_secret";
/// Length of a generated secret.
pub const SECRET_LEN: usize = 32;

type HmacSha1 = Hmac<Sha1>;

fn mac(secret: &[u8], sid: &str, max_ts: &str) -> HmacSha1 {
    let mut mac = HmacSha1::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(sid.as_bytes());
    mac.update(max_ts.as_bytes());
    mac
}

/// A token for session `sid`, valid until `now + lifetime` (Odoo's `csrf_token(time_limit)`;
/// pass [`CSRF_TOKEN_LIFETIME`] for the default).
pub fn token(secret: &[u8], sid: &str, now: u64, lifetime: u64) -> String {
    let max_ts = now.saturating_add(lifetime).to_string();
    let digest = mac(secret, sid, &max_ts).finalize().into_bytes();
    let mut out = String::with_capacity(digest.len() * 2 + 1 + max_ts.len());
    for byte in digest {
        out.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
    }
    out.push('o');
    out.push_str(&max_ts);
    out
}

/// True when `token` was made by [`token`] with this secret and `sid` and has not expired
/// at `now`. As Odoo, the MAC covers `max_ts` as written in the token.
pub fn validate(secret: &[u8], sid: &str, token: &str, now: u64) -> bool {
    let Some((hm, max_ts)) = token.rsplit_once('o') else {
        return false;
    };
    if max_ts.is_empty() || !max_ts.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    match max_ts.parse::<u64>() {
        Ok(ts) if ts >= now => {}
        _ => return false,
    }
    let Some(expected) = decode_hex(hm) else {
        return false;
    };
    mac(secret, sid, max_ts).verify_slice(&expected).is_ok()
}

/// Lowercase hex only, as Odoo compares hex strings.
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    fn nibble(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        }
    }
    // An HMAC-SHA1 is 20 bytes.
    if hex.len() != 40 {
        return None;
    }
    hex.as_bytes()
        .chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// The secret for requests without a database: `<data_dir>/csrf_secret`, 32 random bytes.
/// The first call creates it (and `data_dir`, mode 0700, if missing): written to a
/// temporary file with mode 0600, then hard-linked into place, so that two processes
/// racing both end up with the file that won. A file of another length is an
/// `InvalidData` error (never silently replaced: tokens in flight depend on it).
pub fn secret_from_data_dir(data_dir: &Path) -> io::Result<Vec<u8>> {
    let path = data_dir.join(SECRET_FILE);
    match read_secret(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        other => return other,
    }

    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)?;
    let mut secret = vec![0u8; SECRET_LEN];
    rand::rng().fill_bytes(&mut secret);
    let mut suffix = [0u8; 8];
    rand::rng().fill_bytes(&mut suffix);
    let tmp = data_dir.join(format!(
        ".{SECRET_FILE}.{}.tmp",
        suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    let created = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(&secret)?;
            file.sync_all()
        })
        .and_then(|()| fs::hard_link(&tmp, &path));
    let _ = fs::remove_file(&tmp);
    match created {
        Ok(()) => Ok(secret),
        // Another process won the race: use its secret.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_secret(&path),
        Err(e) => Err(e),
    }
}

fn read_secret(path: &Path) -> io::Result<Vec<u8>> {
    let secret = fs::read(path)?;
    if secret.len() != SECRET_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} holds {} bytes, expected {SECRET_LEN}",
                path.display(),
                secret.len()
            ),
        ));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const NOW: u64 = 1_700_000_000;
    const SID: &str =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_abcdefghijklmnopqrst";

    #[test]
    fn token_shape_matches_odoo() {
        let t = token(b"secret", SID, NOW, CSRF_TOKEN_LIFETIME);
        let (hm, ts) = t.rsplit_once('o').unwrap();
        assert_eq!(hm.len(), 40);
        assert!(hm
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(ts, (NOW + 31_536_000).to_string());
    }

    #[test]
    fn known_vector() {
        // python3 -c "import hmac,hashlib;
        //   print(hmac.new(b'secret', b'sid1700000100', hashlib.sha1).hexdigest())"
        assert_eq!(
            token(b"secret", "sid", NOW, 100),
            "a8194f517e38290218b1734ca61366dd6a82469eo1700000100"
        );
        assert!(validate(
            b"secret",
            "sid",
            "a8194f517e38290218b1734ca61366dd6a82469eo1700000100",
            NOW
        ));
    }

    #[test]
    fn validates_and_refuses() {
        let secret = b"database.secret value";
        let t = token(secret, SID, NOW, 3600);
        assert!(validate(secret, SID, &t, NOW));
        assert!(
            validate(secret, SID, &t, NOW + 3600),
            "valid up to max_ts included"
        );
        assert!(!validate(secret, SID, &t, NOW + 3601), "expired");
        assert!(!validate(b"other secret", SID, &t, NOW), "other secret");
        assert!(
            !validate(secret, &SID.replace('a', "b"), &t, NOW),
            "other session"
        );

        let (hm, ts) = t.rsplit_once('o').unwrap();
        let later = (ts.parse::<u64>().unwrap() + 1).to_string();
        assert!(
            !validate(secret, SID, &format!("{hm}o{later}"), NOW),
            "forged expiry"
        );
        assert!(!validate(
            secret,
            SID,
            &t.to_uppercase().replace('O', "o"),
            NOW
        ));
        for bad in [
            "",
            "o",
            "nothing",
            &format!("{hm}o"),
            &format!("{hm}o12x"),
            &format!("{hm}o-1"),
            &format!("{hm}o+{ts}"),
            hm,
            &format!("{}o{ts}", &hm[..38]),
            &format!("{hm}0o{ts}"),
            &format!("zz{}o{ts}", &hm[2..]),
            &format!("o{ts}"),
        ] {
            assert!(!validate(secret, SID, bad, NOW), "{bad:?}");
        }
    }

    #[test]
    fn secret_is_created_once_with_mode_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let first = secret_from_data_dir(&dir).unwrap();
        assert_eq!(first.len(), SECRET_LEN);
        let path = dir.join(SECRET_FILE);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read(&path).unwrap(), first);
        assert_eq!(secret_from_data_dir(&dir).unwrap(), first);
        // No temporary file left.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from(SECRET_FILE)]);
        // Tokens made with it validate.
        let t = token(&first, SID, NOW, CSRF_TOKEN_LIFETIME);
        assert!(validate(&secret_from_data_dir(&dir).unwrap(), SID, &t, NOW));
    }

    #[test]
    fn concurrent_creation_agrees() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let secrets: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| secret_from_data_dir(&dir).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(secrets.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn wrong_length_secret_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(SECRET_FILE), b"short").unwrap();
        let e = secret_from_data_dir(tmp.path()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("expected 32"));
        assert_eq!(fs::read(tmp.path().join(SECRET_FILE)).unwrap(), b"short");
    }
}
