//! The secrets `connect` chooses and the files it keeps them in.
//!
//! A secret file holds one secret per line: the first is the one in use,
//! the others are still accepted (during a rotation's grace period). It is
//! written whole and atomically — a temporary file in the same folder,
//! mode 0600 from its creation, synced, then renamed over the old one — so
//! the host never reads half a file and nobody else can read it at all.

use std::io::Write;
use std::path::Path;

use crate::settings::Secret;

/// Letters and digits: within every vendor's allowed alphabet, and free of
/// the characters RFC 3986 reserves (Unloc puts the password in a URL).
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The length of the secrets we choose: 32 characters of 62 are 190 bits,
/// within BAS-IP's 16–128 and ProdataKey's 255.
pub const LENGTH: usize = 32;

/// A new secret from the operating system's CSPRNG, `length` characters of
/// [`ALPHABET`], each equally likely (bytes past the last whole multiple of
/// the alphabet's size are drawn again).
pub fn generate(length: usize) -> Result<Secret, String> {
    let limit = 256 - 256 % ALPHABET.len();
    let mut out = String::with_capacity(length);
    let mut buf = [0u8; 64];
    while out.len() < length {
        getrandom::fill(&mut buf).map_err(|e| format!("the system's random source failed: {e}"))?;
        for &b in &buf {
            if (b as usize) < limit && out.len() < length {
                out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
            }
        }
    }
    Ok(Secret::new(out))
}

/// The secrets in `path`, first the one in use; empty if there is no file.
pub fn read(path: &Path) -> Result<Vec<Secret>, String> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    crate::settings::SecretRef::File(path.to_path_buf()).read_all()
}

/// Write `secrets` to `path`, one per line, atomically and readable by its
/// owner alone.
pub fn write(path: &Path, secrets: &[&Secret]) -> Result<(), String> {
    let shown = || path.display().to_string();
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder).map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    let name = path
        .file_name()
        .ok_or_else(|| format!("{} is not a file name", shown()))?;
    let temporary = folder.join(format!(".{}.tmp", name.to_string_lossy()));
    let mut text = String::new();
    for secret in secrets {
        text.push_str(secret.expose());
        text.push('\n');
    }
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary)?;
        // An old temporary file keeps its mode: set it again.
        #[cfg(unix)]
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        std::fs::File::open(folder)?.sync_all()
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        format!("cannot write secret file {}: {e}", shown())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_use_the_alphabet_and_differ() {
        let a = generate(LENGTH).unwrap();
        let b = generate(LENGTH).unwrap();
        assert_eq!(a.expose().len(), LENGTH);
        assert!(a.expose().bytes().all(|c| ALPHABET.contains(&c)));
        assert_ne!(a, b);
    }

    #[test]
    fn written_files_are_private_and_whole() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets/office");
        let (new, old) = (Secret::new("new"), Secret::new("old"));
        write(&path, &[&new, &old]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\nold\n");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(read(&path).unwrap(), vec![new.clone(), old]);
        write(&path, &[&new]).unwrap();
        assert_eq!(read(&path).unwrap(), vec![new]);
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1,
            "no temporary file is left"
        );
    }
}
