//! The data folder's event-id key (`event-id.key`): 32 random bytes, hex,
//! made the first time the host starts on the folder and read at every
//! start after. Losing it changes the ids derived from then on, so a
//! vendor's retry of an event from before would not be known as a
//! duplicate; nothing else depends on it.

use std::io::Write;
use std::path::Path;

use super::StoreError;
use crate::event::IdKey;

/// The file in the data folder.
pub const FILE: &str = "event-id.key";

/// The key in `dir`, made now if there is none.
pub fn load_or_create(dir: &Path) -> Result<IdKey, StoreError> {
    let path = dir.join(FILE);
    let error = |message: String| StoreError::Open {
        path: path.clone(),
        message,
    };
    match crate::files::read_text(&path, 256) {
        Ok(text) => parse(text.trim()).ok_or_else(|| {
            error(
                "is not an event-id key (64 hex digits); restore it from a backup, or delete it to start new ids"
                    .into(),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = IdKey::random();
            write(dir, &key).map_err(|e| error(format!("cannot write: {e}")))?;
            Ok(key)
        }
        Err(e) => Err(error(e.to_string())),
    }
}

fn parse(text: &str) -> Option<IdKey> {
    let bytes: [u8; 32] = hex::decode(text).ok()?.try_into().ok()?;
    Some(IdKey::new(bytes))
}

/// Write `key` whole or not at all: a temporary file, synced, renamed.
fn write(dir: &Path, key: &IdKey) -> std::io::Result<()> {
    let temporary = dir.join(format!("{FILE}.new"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary)?;
    writeln!(file, "{}", hex::encode(key.bytes()))?;
    file.sync_all()?;
    std::fs::rename(&temporary, dir.join(FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        let second = load_or_create(dir.path()).unwrap();
        assert_eq!(first.bytes(), second.bytes());
        assert_eq!(first.derive(&[b"body"]), second.derive(&[b"body"]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_ne!(IdKey::random().bytes(), first.bytes());
    }

    #[test]
    fn a_damaged_key_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), "not a key\n").unwrap();
        let err = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("event-id.key: is not an event-id key"), "{err}");
        assert_eq!(std::fs::read_to_string(dir.path().join(FILE)).unwrap(), "not a key\n");
    }
}
