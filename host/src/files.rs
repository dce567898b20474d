//! Reading the files the config names — the config itself, plugins,
//! secrets, certificates, keys — and the data folder's own: only regular
//! files (a symlink to one is fine), and never more than a stated size. A
//! plugin path pointing at `/dev/zero`, or a secret file that is a FIFO,
//! is an error naming the file, not a host that eats its memory or hangs
//! on a reload. The limits are in docs/configuration.md.

use std::io::{self, Read};
use std::path::Path;

/// The config file.
pub const CONFIG_LIMIT: u64 = 1 << 20;
/// A plugin component (`.wasm`).
pub const PLUGIN_LIMIT: u64 = 64 << 20;
/// A compiled component in the data folder's cache.
pub const COMPILED_LIMIT: u64 = 256 << 20;
/// A secret, token or password file.
pub const SECRET_LIMIT: u64 = 64 << 10;
/// A certificate, CA or private key (PEM).
pub const PEM_LIMIT: u64 = 1 << 20;
/// A file the command line reads: an event, a plugin's config.
pub const INPUT_LIMIT: u64 = 16 << 20;

/// The bytes of `path`, if it is a regular file of at most `limit` bytes.
pub fn read(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    // Before opening: opening a FIFO waits for a writer.
    regular(&std::fs::metadata(path)?)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Should it have been swapped for a FIFO since, do not wait on it.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path)?;
    regular(&file.metadata()?)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("is larger than {} (the most such a file may hold)", shown(limit)),
        ));
    }
    Ok(bytes)
}

/// The text of `path`, as [`read`] reads it, which must be UTF-8.
pub fn read_text(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read(path, limit)?).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "is not UTF-8 text"))
}

/// The text of a file holding a secret, as [`read_text`] reads it, with a
/// warning when others can read it.
pub fn read_secret(path: &Path) -> io::Result<String> {
    let text = read_text(path, SECRET_LIMIT)?;
    warn_if_exposed(path);
    Ok(text)
}

/// Warn, once per file, when a file holding a secret can be read by other
/// users than its owner — as ssh does for a private key. Not refused:
/// the operator may have reasons (a group the service runs in).
pub fn warn_if_exposed(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        static WARNED: std::sync::Mutex<std::collections::BTreeSet<std::path::PathBuf>> =
            std::sync::Mutex::new(std::collections::BTreeSet::new());
        let Ok(metadata) = std::fs::metadata(path) else { return };
        let mode = metadata.permissions().mode();
        if mode & 0o077 == 0 {
            return;
        }
        let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
        if warned.insert(path.to_path_buf()) {
            let who = if mode & 0o007 != 0 { "every user" } else { "its group" };
            tracing::warn!(file = %path.display(), mode = %format!("{:o}", mode & 0o777), "A secret file is readable by {who}; make it private (chmod 600).");
        }
    }
}

fn regular(metadata: &std::fs::Metadata) -> io::Result<()> {
    if metadata.is_file() {
        return Ok(());
    }
    let what = if metadata.is_dir() {
        "a folder"
    } else {
        "not a regular file (a device, FIFO or socket)"
    };
    Err(io::Error::new(io::ErrorKind::InvalidInput, format!("is {what}")))
}

/// `limit` as people write sizes.
fn shown(limit: u64) -> String {
    match limit {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_files_and_oversized_ones_are_refused() {
        let err = read(Path::new("/dev/zero"), 1024).unwrap_err();
        assert_eq!(err.to_string(), "is not a regular file (a device, FIFO or socket)");
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path(), 1024).unwrap_err().to_string(), "is a folder");
        let link = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/urandom", &link).unwrap();
        assert!(read(&link, 1024).is_err());
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 2049]).unwrap();
        assert_eq!(
            read(&big, 2048).unwrap_err().to_string(),
            "is larger than 2 KiB (the most such a file may hold)"
        );
        assert_eq!(read(&big, 4096).unwrap().len(), 2049);
        assert_eq!(
            read(&dir.path().join("missing"), 10).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(status.success());
        assert!(
            read(&fifo, 1024)
                .unwrap_err()
                .to_string()
                .contains("not a regular file")
        );
    }
}
