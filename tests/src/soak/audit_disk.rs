//! The audit file's disk: a 1 MiB tmpfs the soak mounts (as root) and
//! always unmounts, a filler that takes its free space, and a reader that
//! counts the audit records as the host appends them and then frees the
//! space they took (punching a hole behind the last whole record), the way
//! a log shipper would.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The size of the audit disk.
pub const DISK_BYTES: u64 = 1 << 20;

/// A mounted tmpfs, unmounted (and its directory removed) on drop.
#[derive(Debug)]
pub struct AuditDisk {
    dir: tempfile::TempDir,
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("a path without NUL")
}

impl AuditDisk {
    /// Mounts a [`DISK_BYTES`] tmpfs on a new temporary directory.
    pub fn mount() -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("cannot make a mount point: {e}"))?;
        let target = c_path(dir.path());
        let options = CString::new(format!("size={DISK_BYTES},mode=0700")).expect("no NUL");
        // SAFETY: every pointer is a NUL-terminated string that outlives
        // the call.
        let mounted = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                options.as_ptr().cast(),
            )
        };
        if mounted != 0 {
            let e = std::io::Error::last_os_error();
            return Err(format!(
                "cannot mount the 1 MiB tmpfs for the audit file on {}: {e} (the soak must run as root)",
                dir.path().display()
            ));
        }
        Ok(Self { dir })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for AuditDisk {
    fn drop(&mut self) {
        let target = c_path(self.dir.path());
        // SAFETY: a NUL-terminated path; MNT_DETACH unmounts even while a
        // file on it is still open (a host that did not exit).
        if unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } != 0 {
            eprintln!(
                "soak: cannot unmount {}: {}",
                self.dir.path().display(),
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Takes every free byte of the disk while it exists.
#[derive(Debug)]
pub struct Filler {
    path: PathBuf,
}

impl Filler {
    /// Writes a file on `disk` until the disk is full.
    pub fn fill(disk: &AuditDisk) -> std::io::Result<Self> {
        let path = disk.path().join("filler");
        let mut file = File::create(&path)?;
        let block = [0xA5u8; 4096];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(Self { path })
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What the audit file held, counted record by record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditTally {
    /// Whole records (JSON lines that parse).
    pub records: u64,
    /// `audit-suppressed` records among them.
    pub notes: u64,
    /// The records those notes stand for.
    pub suppressed: u64,
    /// Lines that are not a JSON record (a torn or mixed write), and
    /// times the file shrank under the reader.
    pub corrupt: u64,
}

/// Follows the audit file, counting what the host appends.
#[derive(Debug)]
pub struct AuditReader {
    path: PathBuf,
    offset: u64,
    /// Bytes read past the last newline.
    partial: Vec<u8>,
    tally: AuditTally,
}

impl AuditReader {
    /// Follows `path` (which may not exist yet).
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            offset: 0,
            partial: Vec::new(),
            tally: AuditTally::default(),
        }
    }

    /// Counts the records appended since the last call, then frees the
    /// space of every whole record read.
    pub fn drain(&mut self) -> std::io::Result<()> {
        let mut file = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if file.metadata()?.len() < self.offset {
            // The file shrank under the reader: what it read past the new
            // end was half a record.
            self.tally.corrupt += 1;
            self.offset = file.metadata()?.len();
            self.partial.clear();
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        self.offset += bytes.len() as u64;
        self.partial.extend_from_slice(&bytes);
        let Some(last) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Ok(());
        };
        let rest = self.partial.split_off(last + 1);
        let whole = std::mem::replace(&mut self.partial, rest);
        for line in whole.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            self.count(line);
        }
        let freed = self.offset - self.partial.len() as u64;
        // SAFETY: a valid fd; the range lies before the host's appends.
        let punched = unsafe {
            libc::fallocate(
                file.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                0,
                freed as libc::off_t,
            )
        };
        if punched != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    fn count(&mut self, line: &[u8]) {
        let Ok(record) = serde_json::from_slice::<serde_json::Value>(line) else {
            self.tally.corrupt += 1;
            return;
        };
        if !record.is_object() {
            self.tally.corrupt += 1;
            return;
        }
        self.tally.records += 1;
        if record["operation"] == "audit-suppressed" {
            self.tally.notes += 1;
            self.tally.suppressed += record["suppressed"].as_u64().unwrap_or(0);
        }
    }

    /// What was counted so far; bytes after the last newline count as
    /// one corrupt line once `finished` (the host has exited).
    pub fn tally(&self, finished: bool) -> AuditTally {
        let mut tally = self.tally;
        if finished && !self.partial.is_empty() {
            tally.corrupt += 1;
        }
        tally
    }
}
