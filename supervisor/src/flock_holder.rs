//! Who holds an `flock` on a file: the kernel lists every lock in
//! `/proc/locks` with the holder's PID and the file's device and inode.
//! A PID file's lock is trusted only while no other user can hold it; this
//! tells the host whether a held lock belongs to this user or to someone
//! else.

use nix::sys::stat::FileStat;
use std::os::unix::fs::MetadataExt;

/// The holder of a lock, as far as `/proc/locks` and `/proc/PID` tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// A process of this user (the same effective uid).
    ThisUser(u32),
    /// A process of another user.
    OtherUser {
        /// The holder.
        pid: u32,
        /// Its owner.
        uid: u32,
    },
    /// No holder is visible (it ended, or runs in another PID namespace).
    Unknown,
}

/// The holder of the `FLOCK` lock on the file `st` describes.
pub fn flock_holder(st: &FileStat) -> Holder {
    let text = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    let Some(pid) = holder_pid(&text, st) else {
        return Holder::Unknown;
    };
    match std::fs::metadata(format!("/proc/{pid}")) {
        // SAFETY: geteuid has no preconditions and cannot fail.
        Ok(m) if m.uid() == unsafe { libc::geteuid() } => Holder::ThisUser(pid),
        Ok(m) => Holder::OtherUser { pid, uid: m.uid() },
        Err(_) => Holder::Unknown,
    }
}

/// The PID of the first granted `FLOCK` line of `locks` (the text of
/// `/proc/locks`) on the file `st` describes. A line reads
/// `1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF`; waiting requests
/// (`1: -> FLOCK …`) are skipped.
fn holder_pid(locks: &str, st: &FileStat) -> Option<u32> {
    let device = format!(
        "{:02x}:{:02x}:{}",
        libc::major(st.st_dev),
        libc::minor(st.st_dev),
        st.st_ino
    );
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [_, "FLOCK", _, _, pid, dev, ..] if *dev == device => {
                pid.parse().ok().filter(|p| *p > 0)
            }
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::{Flock, FlockArg};

    #[test]
    fn flock_holder_parse_good() {
        let file = tempfile::tempfile().expect("file");
        let st = nix::sys::stat::fstat(&file).expect("fstat");
        let me = format!(
            "{:02x}:{:02x}:{}",
            libc::major(st.st_dev),
            libc::minor(st.st_dev),
            st.st_ino
        );
        let text = format!(
            "1: POSIX  ADVISORY  WRITE 7 {me} 0 EOF\n\
             2: FLOCK  ADVISORY  WRITE 42 00:00:1 0 EOF\n\
             3: -> FLOCK  ADVISORY  WRITE 9 {me} 0 EOF\n\
             4: FLOCK  ADVISORY  WRITE 1234 {me} 0 EOF\n"
        );
        assert_eq!(holder_pid(&text, &st), Some(1234));
        assert_eq!(holder_pid("garbage\n\n1: FLOCK", &st), None);
    }

    #[test]
    fn flock_holder_self_good() {
        let file = tempfile::tempfile().expect("file");
        let st = nix::sys::stat::fstat(&file).expect("fstat");
        assert_eq!(flock_holder(&st), Holder::Unknown, "nobody holds it yet");
        let _lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).expect("lock");
        assert_eq!(flock_holder(&st), Holder::ThisUser(std::process::id()));
    }
}
