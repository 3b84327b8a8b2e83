//! Password hashes in passlib's `pbkdf2_sha512` format, as Odoo stores them
//! (`res_users.py:Users._crypt_context`): `$pbkdf2-sha512$<rounds>$<salt>$<checksum>`, the
//! salt (16 bytes) and the checksum (PBKDF2-HMAC-SHA512, 64 bytes) in passlib's "adapted
//! base64" (the standard alphabet with `.` for `+`, no padding).
//!
//! A hash made here verifies in passlib and the reverse (vectors below, made with passlib
//! 1.7.4). [`verify`] compares in constant time and says when the stored value must be
//! replaced (passlib's `needs_update`): plaintext, another scheme, or other rounds.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;

/// Odoo's `MIN_ROUNDS`: the default and the least the `password.hashing.rounds`
/// parameter can set.
pub const DEFAULT_ROUNDS: u32 = 600_000;

/// The most rounds a stored hash may ask for (a bound on the work a bad row can cause).
pub const MAX_ROUNDS: u32 = 100_000_000;

const PREFIX: &str = "$pbkdf2-sha512$";
const SALT_LEN: usize = 16;
const CHECKSUM_LEN: usize = 64;

/// The hash of `password` with `rounds` and a fresh random salt.
///
/// ```
/// let h = base_identity::crypt::hash("admin", 1000);
/// assert!(h.starts_with("$pbkdf2-sha512$1000$"));
/// assert!(base_identity::crypt::verify("admin", &h, 1000).valid);
/// ```
pub fn hash(password: &str, rounds: u32) -> String {
    let salt: [u8; SALT_LEN] = rand::random();
    hash_with_salt(password, rounds, &salt)
}

/// The hash of `password` with `rounds` and `salt` (tests and vectors).
pub fn hash_with_salt(password: &str, rounds: u32, salt: &[u8]) -> String {
    let checksum = derive(password, rounds, salt);
    format!(
        "{PREFIX}{rounds}${}${}",
        ab64_encode(salt),
        ab64_encode(&checksum)
    )
}

fn derive(password: &str, rounds: u32, salt: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut out = [0u8; CHECKSUM_LEN];
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password.as_bytes(), salt, rounds.max(1), &mut out);
    out
}

/// What [`verify`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Whether the password matches.
    pub valid: bool,
    /// Whether the stored value should be replaced by a fresh hash (only meaningful when
    /// `valid`): plaintext, or a pbkdf2 hash with other rounds than `rounds`.
    pub needs_update: bool,
}

/// A parsed `$pbkdf2-sha512$` hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pbkdf2Hash {
    /// The iteration count.
    pub rounds: u32,
    /// The salt.
    pub salt: Vec<u8>,
    /// The derived key.
    pub checksum: Vec<u8>,
}

/// Parses a passlib `pbkdf2_sha512` hash; `None` when `stored` is not one (or asks for more
/// than [`MAX_ROUNDS`]).
pub fn parse(stored: &str) -> Option<Pbkdf2Hash> {
    let rest = stored.strip_prefix(PREFIX)?;
    let mut parts = rest.split('$');
    let rounds_text = parts.next()?;
    // passlib refuses zero-padded rounds.
    if rounds_text.starts_with('0') {
        return None;
    }
    let rounds: u32 = rounds_text.parse().ok()?;
    let salt = ab64_decode(parts.next()?)?;
    let checksum = ab64_decode(parts.next()?)?;
    if parts.next().is_some()
        || rounds == 0
        || rounds > MAX_ROUNDS
        || checksum.len() != CHECKSUM_LEN
    {
        return None;
    }
    Some(Pbkdf2Hash {
        rounds,
        salt,
        checksum,
    })
}

/// Whether `stored` looks like a hash of any scheme (Odoo's `^\$[^$]+\$[^$]+\$.`): what
/// is not is taken as a legacy plaintext password.
pub fn looks_hashed(stored: &str) -> bool {
    let Some(rest) = stored.strip_prefix('$') else {
        return false;
    };
    let mut parts = rest.splitn(3, '$');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(a), Some(b), Some(c)) if !a.is_empty() && !b.is_empty() && !c.is_empty()
    )
}

/// Checks `password` against `stored` (Odoo's `verify_and_update` with the context
/// `['pbkdf2_sha512', 'plaintext']`, `deprecated=['auto']`), in constant time for a
/// pbkdf2 hash. An empty `stored` never verifies. `rounds` is the configured count: a
/// valid hash with other rounds needs an update, as with passlib 1.7.4.
pub fn verify(password: &str, stored: &str, rounds: u32) -> Verified {
    const NO: Verified = Verified {
        valid: false,
        needs_update: false,
    };
    if stored.is_empty() {
        return NO;
    }
    if let Some(h) = parse(stored) {
        let derived = derive(password, h.rounds, &h.salt);
        return Verified {
            valid: constant_time_eq(&derived, &h.checksum),
            needs_update: h.rounds != rounds,
        };
    }
    if looks_hashed(stored) {
        // Another scheme, unknown here: refused (passlib would raise for an unknown one).
        return NO;
    }
    // A legacy plaintext password: valid when equal, and replaced by a hash then.
    let valid = constant_time_eq(password.as_bytes(), stored.as_bytes());
    Verified {
        valid,
        needs_update: valid,
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// passlib's adapted base64: standard alphabet, `.` for `+`, no padding.
pub fn ab64_encode(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes).replace('+', ".")
}

/// Decodes passlib's adapted base64 (trailing `=` tolerated, as passlib does).
pub fn ab64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=').replace('.', "+");
    STANDARD_NO_PAD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made once with passlib 1.7.4 (`pip install passlib`):
    // python3 -c "from passlib.hash import pbkdf2_sha512 as h;
    //   print(h.using(rounds=1000, salt=b'0123456789abcdef').hash('admin'))"
    const PASSLIB_1000: &str = "$pbkdf2-sha512$1000$MDEyMzQ1Njc4OWFiY2RlZg$VYpayuGgwzZdp432P4BiDOsz2R32OckUD4cZP0OnU/dRJDzvbA9NzD4JRchh6MOV7dGmpArYbuwTJVUOgj66DA";
    // h.using(rounds=6000, salt=bytes(range(16))).hash('pässwörd ✓')
    const PASSLIB_UNICODE: &str = "$pbkdf2-sha512$6000$AAECAwQFBgcICQoLDA0ODw$h3FizhiIGSKZ42GQhvLzFFpi1uyOZZNj7kcrxr2bqe0Sf5ysPnDpYdSkc3kBw/Kz7sjFDZpCXoEJXVgSk3i2UQ";
    // h.using(rounds=29000, salt=b'\xff'*16).hash('')
    const PASSLIB_EMPTY: &str = "$pbkdf2-sha512$29000$/////////////////////w$IEJmCHY3zIVHbnjE70nbW6FQma0YCciDZhz6COVwhn4gSxW1YwvcrcCMnyRPs0rU3znPLK9UzL45eFL253Qg/w";

    #[test]
    fn passlib_hashes_verify_here() {
        assert!(verify("admin", PASSLIB_1000, 1000).valid);
        assert!(!verify("Admin", PASSLIB_1000, 1000).valid);
        assert!(verify("pässwörd ✓", PASSLIB_UNICODE, 6000).valid);
        assert!(verify("", PASSLIB_EMPTY, 29000).valid);
    }

    #[test]
    fn hashes_made_here_are_passlibs() {
        assert_eq!(
            hash_with_salt("admin", 1000, b"0123456789abcdef"),
            PASSLIB_1000
        );
        assert_eq!(
            hash_with_salt("pässwörd ✓", 6000, &(0u8..16).collect::<Vec<_>>()),
            PASSLIB_UNICODE
        );
        assert_eq!(hash_with_salt("", 29000, &[0xff; 16]), PASSLIB_EMPTY);
        let h = hash("x", 1000);
        assert_eq!(h.len(), "$pbkdf2-sha512$1000$".len() + 22 + 1 + 86);
    }

    #[test]
    fn needs_update_as_passlib() {
        // Other rounds, lower or higher: re-hashed at the next login.
        assert!(verify("admin", PASSLIB_1000, 2000).needs_update);
        assert!(verify("admin", PASSLIB_1000, 500).needs_update);
        assert!(!verify("admin", PASSLIB_1000, 1000).needs_update);
        // Plaintext: valid when equal, then replaced.
        assert_eq!(
            verify("admin", "admin", 1000),
            Verified {
                valid: true,
                needs_update: true
            }
        );
        assert!(!verify("admin", "admim", 1000).valid);
        assert!(!verify("", "", 1000).valid);
        // Another scheme is not taken for plaintext.
        assert!(!verify("$2b$12$abc", "$2b$12$abc", 1000).valid);
    }

    #[test]
    fn malformed_hashes_never_verify() {
        for bad in [
            "$pbkdf2-sha512$0$MDEy$VYpa",
            "$pbkdf2-sha512$01000$MDEyMzQ1Njc4OWFiY2RlZg$VYpa",
            "$pbkdf2-sha512$999999999999$MDEy$VYpa",
            "$pbkdf2-sha512$1000$!!$VYpa",
            "$pbkdf2-sha512$1000$MDEy$short",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
            assert!(!verify("admin", bad, 1000).valid, "{bad}");
        }
    }

    /// Not a check: the hashing rate at the default rounds, which bounds logins per second
    /// per core (`cargo test -p base_identity --release -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn hashes_per_second_at_the_default_rounds() {
        let stored = hash("admin", DEFAULT_ROUNDS);
        let start = std::time::Instant::now();
        let n = 5;
        for _ in 0..n {
            assert!(verify("admin", &stored, DEFAULT_ROUNDS).valid);
        }
        let per = start.elapsed().as_secs_f64() / n as f64;
        println!(
            "pbkdf2_sha512 at {DEFAULT_ROUNDS} rounds: {:.1} ms per verification, {:.2} logins/s per core",
            per * 1000.0,
            1.0 / per
        );
    }
}
