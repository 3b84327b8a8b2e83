//! The sessions folder watched through inotify, so that [`FilesystemSessionStore`]'s cache
//! serves a session it read without a `stat` of its file: the events queued since the last
//! look are read (one non-blocking `read`, which finds nothing most of the time) before
//! each cached session is served, and each event that names a session, or a folder going
//! away, drops what the cache holds of it.
//!
//! inotify reports the changes made through this machine's kernel, by any process (other
//! hosts sharing the folder on this machine included), and queues each event before the
//! system call that made the change returns: a change that happened before a request came
//! is always read before that request's session is served. It reports nothing of changes
//! made by another machine on a network filesystem, so the folder is watched only on
//! filesystems known to be local ([`LOCAL_FILESYSTEMS`]); elsewhere, and where inotify is
//! unavailable (its limits reached), each cached read checks the file with a `stat`, as
//! before. The descriptor is close-on-exec (a re-exec'd host makes its own).
//!
//! [`FilesystemSessionStore`]: super::FilesystemSessionStore

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use nix::sys::statfs;
use std::path::Path;

use super::is_valid_sid;
use super::LOG_TARGET;

/// Filesystems whose changes all go through this kernel (so through inotify): ext2/3/4
/// (one magic number), XFS, Btrfs, tmpfs, overlayfs, F2FS, and ZFS (`0x2fc12fc1`).
const LOCAL_FILESYSTEMS: [statfs::FsType; 7] = [
    statfs::EXT4_SUPER_MAGIC,
    statfs::XFS_SUPER_MAGIC,
    statfs::BTRFS_SUPER_MAGIC,
    statfs::TMPFS_MAGIC,
    statfs::OVERLAYFS_SUPER_MAGIC,
    statfs::F2FS_SUPER_MAGIC,
    statfs::FsType(0x2fc1_2fc1),
];

/// What an event says may have changed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Change {
    /// The file of this session.
    Session(String),
    /// Every session of the folder with this two-character prefix (the folder went away).
    Folder([u8; 2]),
    /// Anything (events were lost: the queue overflowed).
    All,
}

/// The inotify instance watching the session folders (`<dir>/<prefix>`).
pub(super) struct Watch {
    inotify: Inotify,
    /// Each watched folder's prefix, by watch (its raw descriptor, as events carry it).
    folders: foldhash::HashMap<i32, ([u8; 2], WatchDescriptor)>,
    /// The watch of each watched folder.
    watches: foldhash::HashMap<[u8; 2], WatchDescriptor>,
    /// How many changes that may concern a cached session were read so far: a session
    /// read while this moved may have missed a change, and is checked once with a `stat`.
    epoch: u64,
    /// Where events are read, kept between reads: `Inotify::read_events` would zero 4 KiB
    /// and allocate per event on every read, and this read happens once per request.
    buf: Box<[u8; EVENTS_BUF]>,
}

/// The size of the buffer events are read into: room for 16 events with a session id's
/// name each (`struct inotify_event` is 16 bytes, a name at most 255 and its NUL).
const EVENTS_BUF: usize = 4096;

/// One event as the kernel lays it out (`struct inotify_event`): its watch, its mask, and
/// its name's bytes (NUL-padded; empty for an event of the folder itself).
struct Event<'b> {
    wd: i32,
    mask: AddWatchFlags,
    name: &'b [u8],
}

/// The events of `bytes`, a whole number of them as `read(2)` gives them.
fn events(bytes: &[u8]) -> impl Iterator<Item = Event<'_>> {
    const HEADER: usize = 16;
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.len() < HEADER {
            return None;
        }
        let field =
            |at: usize| u32::from_ne_bytes(rest[at..at + 4].try_into().expect("four bytes"));
        let (wd, mask, len) = (field(0) as i32, field(4), field(12) as usize);
        let end = (HEADER + len).min(rest.len());
        let name = &rest[HEADER..end];
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        let event = Event {
            wd,
            mask: AddWatchFlags::from_bits_truncate(mask),
            name,
        };
        rest = &rest[end..];
        Some(event)
    })
}

impl Watch {
    /// A watch for the sessions under `dir`, or `None` (with the reason logged) when its
    /// filesystem is not known to be local or inotify cannot be used.
    pub(super) fn new(dir: &Path) -> Option<Watch> {
        match statfs::statfs(dir) {
            Ok(fs) if LOCAL_FILESYSTEMS.contains(&fs.filesystem_type()) => {}
            Ok(fs) => {
                tracing::info!(target: LOG_TARGET, dir = %dir.display(), "the sessions folder is not on a filesystem known to be local ({:#x}): each cached session is checked with a stat", fs.filesystem_type().0);
                return None;
            }
            Err(e) => {
                tracing::info!(target: LOG_TARGET, dir = %dir.display(), error = %e, "cannot tell the sessions folder's filesystem: each cached session is checked with a stat");
                return None;
            }
        }
        match Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC) {
            Ok(inotify) => Some(Watch {
                inotify,
                folders: foldhash::HashMap::default(),
                watches: foldhash::HashMap::default(),
                epoch: 0,
                buf: Box::new([0; EVENTS_BUF]),
            }),
            Err(e) => {
                tracing::info!(target: LOG_TARGET, error = %e, "inotify is unavailable (fs.inotify.max_user_instances?): each cached session is checked with a stat");
                None
            }
        }
    }

    /// Whether the folder `prefix` is watched: a change to its files is then read by
    /// [`Watch::drain`].
    pub(super) fn watches(&self, prefix: [u8; 2]) -> bool {
        self.watches.contains_key(&prefix)
    }

    /// Watches the folder `folder` (of prefix `prefix`), once; `false` when it cannot be
    /// (missing, or the watch limit reached: its sessions are then checked with a `stat`).
    pub(super) fn watch(&mut self, folder: &Path, prefix: [u8; 2]) -> bool {
        if self.watches(prefix) {
            return true;
        }
        let mask = AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_ATTRIB
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_ONLYDIR;
        match self.inotify.add_watch(folder, mask) {
            Ok(wd) => {
                self.folders.insert(wd.as_raw(), (prefix, wd));
                self.watches.insert(prefix, wd);
                true
            }
            Err(nix::errno::Errno::ENOENT) => false,
            Err(e) => {
                tracing::debug!(target: LOG_TARGET, folder = %folder.display(), error = %e, "cannot watch a sessions folder: its sessions are checked with a stat");
                false
            }
        }
    }

    /// The count of changes read so far that may concern a cached session.
    pub(super) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Reads the events queued since the last call, without waiting, and gives `change`
    /// what each may have changed.
    pub(super) fn drain(&mut self, mut change: impl FnMut(Change)) {
        loop {
            let n = match nix::unistd::read(&self.inotify, &mut self.buf[..]) {
                Ok(n) => n,
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    // Not expected of an inotify descriptor; stay safe: forget everything.
                    tracing::warn!(target: LOG_TARGET, error = %e, "cannot read the sessions folder's changes: the session cache is emptied");
                    self.epoch += 1;
                    change(Change::All);
                    return;
                }
            };
            let gone = AddWatchFlags::IN_IGNORED
                | AddWatchFlags::IN_DELETE_SELF
                | AddWatchFlags::IN_MOVE_SELF
                | AddWatchFlags::IN_UNMOUNT;
            for event in events(&self.buf[..n]) {
                if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    self.epoch += 1;
                    change(Change::All);
                } else if event.mask.intersects(gone) {
                    // The folder itself: its watch is (or will be) removed by the kernel.
                    if let Some((prefix, wd)) = self.folders.remove(&event.wd) {
                        self.watches.remove(&prefix);
                        let _ = self.inotify.rm_watch(wd);
                        self.epoch += 1;
                        change(Change::Folder(prefix));
                    }
                } else if let Ok(name) = std::str::from_utf8(event.name) {
                    // A file of a watched folder: only session ids can be cached
                    // (temporary files of writes are not).
                    if is_valid_sid(name) {
                        self.epoch += 1;
                        change(Change::Session(name.to_owned()));
                    }
                }
            }
        }
    }
}
