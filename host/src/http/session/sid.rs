//! Session ids: a new random one, and the check of an id's shape before any file access.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;

/// Length of a session id.
pub const SID_LEN: usize = 84;

/// A new session id: 63 random bytes (thread-local CSPRNG), URL-safe base64, 84 characters.
pub fn generate_sid() -> String {
    let mut bytes = [0u8; 63];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Odoo's `^[A-Za-z0-9_-]{84}$`, checked byte by byte.
pub fn is_valid_sid(sid: &str) -> bool {
    sid.len() == SID_LEN && sid.bytes().all(|b| SID_BYTES[usize::from(b)])
}

/// The bytes of URL-safe base64, as a table (checked per byte, twice per request).
pub(super) static SID_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        b += 1;
    }
    table
};
