//! One data folder, one host: `vestibule serve` holds an exclusive lock on
//! `<data>/lock` for as long as it runs, so a second host on the same
//! folder — whose dispatcher would run the same journal a second time and
//! send every command twice — refuses to start and names the one holding
//! it. The lock is the operating system's (`flock`): it goes when the
//! process does, even after `kill -9`, so there is nothing stale to clean
//! up. The command line's reading commands do not take it.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;

use super::StoreError;

/// The lock file in the data folder.
pub const FILE: &str = "lock";

/// The lock, held until dropped.
#[derive(Debug)]
pub struct DataLock {
    _file: File,
}

impl DataLock {
    /// Take the lock on the data folder `dir`, or say who holds it.
    pub fn take(dir: &Path) -> Result<DataLock, StoreError> {
        let path = dir.join(FILE);
        let error = |message: String| StoreError::Open {
            path: dir.to_path_buf(),
            message,
        };
        super::check_data_folder(dir)?;
        std::fs::create_dir_all(dir).map_err(|e| error(format!("cannot create the data folder: {e}")))?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| error(format!("cannot open {}: {e}", path.display())))?;
        if !try_lock(&file) {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let holder = if holder.is_empty() { "another vestibule" } else { holder };
            return Err(error(format!(
                "is in use by {holder}; one data folder serves one host (stop that one, or give this one another [store] path)"
            )));
        }
        // Who holds it, for the next one to be told.
        let host = hostname();
        let since = crate::time::format_iso8601(crate::time::now_ms() / 1000);
        let _ = file.set_len(0).and_then(|()| file.rewind());
        let _ = writeln!(file, "vestibule pid {} on {host} since {since}", std::process::id());
        let _ = file.sync_all();
        Ok(DataLock { _file: file })
    }
}

#[cfg(unix)]
fn try_lock(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor this function borrows; it only
    // changes the lock state of the open file.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> bool {
    true
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this machine".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_and_names_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataLock::take(dir.path()).unwrap();
        let err = DataLock::take(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("is in use by vestibule pid {} on ", std::process::id())),
            "{err}"
        );
        drop(first);
        DataLock::take(dir.path()).expect("free again once the first is gone");
    }
}
