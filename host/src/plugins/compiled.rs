//! Compiled components, kept so that the same bytes are compiled once.
//!
//! Compiling a component with Cranelift takes a good part of a second;
//! instantiating a compiled one takes microseconds. A reload reuses the
//! running set's components whose file did not change, and a restart reads
//! what an earlier run compiled from the disk cache: `compiled/` in the
//! data folder, one file per component, named by the SHA-256 of the
//! component's bytes and a hash of the engine's settings and version (a
//! host built differently compiles again rather than load foreign code).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::Plugin;
use crate::time::now_ms;

/// Cache files unused by the running set are deleted once this old.
const KEEP_UNUSED: Duration = Duration::from_secs(7 * 86_400);

/// Where a plugin's compiled code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// Compiled now.
    Compiled,
    /// Read from the disk cache.
    DiskCache,
    /// The running set's: the file did not change.
    Reused,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::Compiled => "compiled",
            Origin::DiskCache => "from the disk cache",
            Origin::Reused => "reused",
        })
    }
}

/// A component and what it was compiled from.
#[derive(Clone)]
pub struct Compiled {
    pub component: Component,
    /// SHA-256 of the component file's bytes, hex.
    pub sha256: String,
    pub origin: Origin,
    /// When this version was first loaded by this process (ms).
    pub loaded_at: i64,
}

/// Finds or makes the compiled form of component bytes.
pub struct Components {
    engine: Engine,
    /// The disk cache folder; `None` keeps nothing on disk.
    dir: Option<PathBuf>,
    engine_key: String,
    /// The running set's components, by SHA-256.
    running: HashMap<String, Compiled>,
}

impl Components {
    /// Compile everything, keep nothing: for one-off loads.
    pub fn uncached(engine: &Engine) -> Components {
        Components::new(engine, None, std::iter::empty())
    }

    /// Reuse `running`'s components, and the disk cache in `dir`.
    pub fn new<'a>(engine: &Engine, dir: Option<PathBuf>, running: impl Iterator<Item = &'a Plugin>) -> Components {
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let running = running
            .map(|plugin| {
                let mut compiled = plugin.compiled.clone();
                compiled.origin = Origin::Reused;
                (compiled.sha256.clone(), compiled)
            })
            .collect();
        Components {
            engine: engine.clone(),
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
            running,
        }
    }

    /// The compiled form of `bytes`: the running one, the cached one, or
    /// compiled now (and cached). The error is wasmtime's first line.
    pub fn get(&self, bytes: &[u8]) -> Result<Compiled, String> {
        let sha256 = hex::encode(Sha256::digest(bytes));
        if let Some(running) = self.running.get(&sha256) {
            return Ok(running.clone());
        }
        let file = self.file(&sha256);
        let compiled = |component, origin| Compiled {
            component,
            sha256: sha256.clone(),
            origin,
            loaded_at: now_ms(),
        };
        // Only a regular file: the cache is the host's, but a device or
        // FIFO planted in it must not hang or flood the load.
        if let Some(file) = &file
            && std::fs::metadata(file).is_ok_and(|m| m.is_file() && m.len() <= crate::files::COMPILED_LIMIT)
        {
            // SAFETY: deserializing runs the machine code in the file. The
            // cache is inside the host's own data folder and written only
            // by this host (from bytes it compiled), so whoever could plant
            // a file there could already rewrite the journal and the
            // config. wasmtime still refuses files from another version or
            // engine configuration, and a refused file is compiled again.
            match unsafe { Component::deserialize_file(&self.engine, file) } {
                Ok(component) => return Ok(compiled(component, Origin::DiskCache)),
                Err(e) => {
                    tracing::debug!(file = %file.display(), error = %e, "Cached component not usable; compiling.")
                }
            }
        }
        let component = Component::new(&self.engine, bytes).map_err(|e| super::first_line(&e))?;
        if let Some(file) = &file {
            store(&component, file);
        }
        Ok(compiled(component, Origin::Compiled))
    }

    /// Delete cache files that no plugin in `keep` uses and that were
    /// written more than [`KEEP_UNUSED`] ago.
    pub fn prune<'a>(&self, keep: impl Iterator<Item = &'a Plugin>) {
        let Some(dir) = &self.dir else { return };
        let keep: Vec<PathBuf> = keep.filter_map(|p| self.file(&p.compiled.sha256)).collect();
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| SystemTime::now().duration_since(modified).ok())
                .is_some_and(|age| age > KEEP_UNUSED);
            if old && path.extension().is_some_and(|e| e == "cwasm") && !keep.contains(&path) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    fn file(&self, sha256: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{sha256}-{}.cwasm", self.engine_key)))
    }
}

/// Write `component` to `file` through a temporary file and a rename, so a
/// reader never sees half a file. A cache that cannot be written only costs
/// a compile next time: logged, not fatal.
fn store(component: &Component, file: &Path) {
    let result = (|| -> Result<(), String> {
        let bytes = component.serialize().map_err(|e| e.to_string())?;
        let dir = file.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let temporary = file.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&temporary, bytes).map_err(|e| e.to_string())?;
        std::fs::rename(&temporary, file).map_err(|e| e.to_string())
    })();
    if let Err(error) = result {
        tracing::warn!(file = %file.display(), %error, "Could not cache a compiled component.");
    }
}
