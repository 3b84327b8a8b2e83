//! The requests a worker is serving, in memory its master shares (workers mode): the master
//! creates a small `memfd` per worker and hands it over at fd [`FD`]; the worker maps it and
//! mirrors its in-flight table into it ([`SharedRequests`], an
//! [`http::inflight::Mirror`](crate::http::inflight::Mirror)); when the worker dies, the
//! master reads what it was serving ([`read`]) and logs it.
//!
//! Layout: [`SLOTS`] slots of [`SLOT_LEN`] bytes; a slot is a little-endian `u16` length
//! then `METHOD target` (cut to fit). The slot of an in-flight table key; keys past the
//! last slot are not mirrored. Written with plain stores by the threads owning each key
//! (a key is one request's while it is in flight), read only once the writer is dead.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The descriptor the master places the shared memory at in a worker.
pub const FD: RawFd = 5;
/// The variable telling a worker that [`FD`] is its shared memory.
pub const FD_VAR: &str = "INPHMS_WORKER_REQUESTS_FD";
/// Slots: requests in flight mirrored at once.
pub const SLOTS: usize = 256;
/// Bytes per slot.
pub const SLOT_LEN: usize = 256;
const SIZE: usize = SLOTS * SLOT_LEN;

/// Creates the shared memory of one worker (master side).
pub fn create() -> std::io::Result<OwnedFd> {
    // SAFETY: memfd_create with a NUL-terminated name; the descriptor is then owned here.
    let fd = unsafe { libc::memfd_create(c"inphms-worker-requests".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: just created.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sizing a memfd this process owns.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), SIZE as libc::off_t) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

/// The requests recorded in `fd` (master side, once the worker is dead).
pub fn read(fd: &OwnedFd) -> Vec<String> {
    let mut buf = vec![0u8; SIZE];
    // SAFETY: reading into a buffer of SIZE bytes from a descriptor this process owns.
    let n = unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), SIZE, 0) };
    let n = usize::try_from(n).unwrap_or(0);
    buf[..n]
        .chunks_exact(SLOT_LEN)
        .filter_map(|slot| {
            let len = usize::from(u16::from_le_bytes([slot[0], slot[1]]));
            (len > 0 && len <= SLOT_LEN - 2)
                .then(|| String::from_utf8_lossy(&slot[2..2 + len]).into_owned())
        })
        .collect()
}

/// The worker's mapping of its shared memory.
#[derive(Debug)]
pub struct SharedRequests {
    base: *mut u8,
}

// SAFETY: the mapping lives as long as the process (never unmapped), and each slot is
// written only by the request owning its key.
unsafe impl Send for SharedRequests {}
// SAFETY: as above.
unsafe impl Sync for SharedRequests {}

impl SharedRequests {
    /// Maps the shared memory at [`FD`] (worker side); `None` if there is none.
    pub fn map() -> Option<SharedRequests> {
        if std::env::var(FD_VAR).ok()? != FD.to_string() {
            return None;
        }
        // SAFETY: mapping SIZE bytes of the descriptor the master placed at FD; a failure
        // (no such descriptor, another kind of file) returns MAP_FAILED.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                FD,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        // SAFETY: the mapping holds its own reference to the memory.
        unsafe { libc::close(FD) };
        Some(SharedRequests { base: base.cast() })
    }

    /// Writes `bytes` at the start of the slot of `key` (none past the last slot).
    fn write(&self, key: usize, bytes: &[u8]) {
        if key >= SLOTS || bytes.len() > SLOT_LEN {
            return;
        }
        // SAFETY: within the mapping (checked above); the slot of `key` is touched only by
        // its request.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.base.add(key * SLOT_LEN),
                bytes.len(),
            )
        };
    }
}

impl crate::http::inflight::Mirror for SharedRequests {
    fn enter(&self, key: usize, method: &str, target: &str) {
        if key >= SLOTS {
            return;
        }
        let mut slot = [0u8; SLOT_LEN];
        let mut len = 0;
        for part in [method.as_bytes(), b" ", target.as_bytes()] {
            let n = part.len().min(SLOT_LEN - 2 - len);
            slot[2 + len..2 + len + n].copy_from_slice(&part[..n]);
            len += n;
        }
        slot[..2].copy_from_slice(&u16::try_from(len).unwrap_or(0).to_le_bytes());
        self.write(key, &slot[..2 + len]);
    }

    fn leave(&self, key: usize) {
        self.write(key, &[0, 0]);
    }
}
