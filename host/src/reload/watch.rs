//! Watching the config file and every plugin file the running set loaded.
//!
//! The folders that hold them are watched, not the files: editors and
//! build tools often replace a file by renaming another over it, and
//! configuration mounted from Kubernetes changes through a symlink in the
//! folder. After a change in those folders to a watched file's name (or to
//! Kubernetes' `..data`), once they have been quiet
//! for `[reload] debounce`, each watched file's content is compared with
//! what the running set was built from; only a real difference reloads, so
//! an editor's several writes make one reload and a `touch` makes none.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{Reloader, Trigger};
use crate::live::Generation;

/// A burst of changes that never goes quiet still reloads after this many
/// debounce periods.
const MAX_DEBOUNCES: u32 = 4;

/// What to watch: set after every successful reload.
#[derive(Debug, Clone)]
pub struct WatchSet {
    /// `[reload] watch`.
    pub enabled: bool,
    /// `[reload] debounce`.
    pub debounce: Duration,
    /// Each file, and the SHA-256 of the content the running set was built
    /// from.
    pub files: Vec<(PathBuf, String)>,
}

impl WatchSet {
    /// The config file and plugin files of `generation`.
    pub fn of(generation: &Generation) -> WatchSet {
        let config = &generation.config;
        let mut files = vec![(config.file.clone(), config.sha256.clone())];
        for plugin in generation.pipeline.plugins() {
            files.push((plugin.path.clone(), plugin.compiled.sha256.clone()));
        }
        // Secret files too, so that a secret `vestibule connect` writes (or
        // a rotation's second line) is taken up without a restart.
        for (_, file, sha) in &generation.secret_files {
            files.push((file.clone(), sha.clone()));
        }
        WatchSet {
            enabled: config.reload.watch,
            debounce: config.reload.debounce.0,
            files,
        }
    }
}

/// Follow the watch set in `set`, reloading through `reloader` when a file
/// in it changes, until `stop` turns true.
pub async fn run(reloader: Arc<Reloader>, mut set: watch::Receiver<WatchSet>, mut stop: watch::Receiver<bool>) {
    let (sender, mut events) = mpsc::unbounded_channel();
    let mut watcher = match notify::recommended_watcher(move |event| {
        let _ = sender.send(event);
    }) {
        Ok(watcher) => Some(watcher),
        Err(e) => {
            tracing::warn!(error = %e, "Cannot watch files; reload with SIGHUP or POST /admin/reload.");
            None
        }
    };
    let mut folders = BTreeSet::new();
    let mut current = set.borrow_and_update().clone();
    let mut known: HashMap<PathBuf, Option<String>> = HashMap::new();
    follow(watcher.as_mut(), &mut folders, &current, &mut known);
    // (first change seen, reload due) while changes wait for quiet. A file
    // may have changed between its loading and its folder's watch (a change
    // the watch cannot report): look once the watch is in place.
    let mut waiting = look_soon(&current);
    loop {
        let due = waiting.map(|(first, last)| last.min(first + current.debounce * MAX_DEBOUNCES));
        tokio::select! {
            event = events.recv() => match event {
                Some(Ok(event)) if !matches!(event.kind, EventKind::Access(_)) && concerns(&event, &current) => {
                    let now = Instant::now();
                    let first = waiting.map_or(now, |(first, _)| first);
                    waiting = Some((first, now + current.debounce));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => tracing::debug!(error = %e, "File watch error."),
                None => return,
            },
            () = sleep_until(due) => {
                waiting = None;
                let changed = changed_files(&current, &mut known);
                if !changed.is_empty() {
                    reloader.reload(Trigger::Files(changed)).await;
                }
            }
            changed = set.changed() => {
                if changed.is_err() {
                    return;
                }
                current = set.borrow_and_update().clone();
                follow(watcher.as_mut(), &mut folders, &current, &mut known);
                waiting = look_soon(&current);
            }
            () = stopped(&mut stop) => return,
        }
    }
}

/// Whether `event` may have changed a watched file: it names one of them,
/// or a `..`-prefixed entry (Kubernetes swaps `..data` to update a mounted
/// config), or no path at all (the watcher lost track). Anything else in the
/// folder — a log file written beside the config, an editor's swap file —
/// is not a reason to hash every plugin file again.
fn concerns(event: &notify::Event, set: &WatchSet) -> bool {
    event.paths.is_empty()
        || event.paths.iter().any(|path| {
            let name = path.file_name();
            name.is_some_and(|n| n.as_encoded_bytes().starts_with(b".."))
                || set.files.iter().any(|(watched, _)| watched.file_name() == name)
        })
}

/// A check of the files one debounce from now, if watching at all.
fn look_soon(set: &WatchSet) -> Option<(Instant, Instant)> {
    let now = Instant::now();
    set.enabled.then_some((now, now + set.debounce))
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns must not live in the select's output.
    let _ = stop.wait_for(|stop| *stop).await;
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// Watch the folders of `set`'s files (none if watching is off), and take
/// its hashes as what is known to be running.
fn follow(
    watcher: Option<&mut notify::RecommendedWatcher>,
    folders: &mut BTreeSet<PathBuf>,
    set: &WatchSet,
    known: &mut HashMap<PathBuf, Option<String>>,
) {
    *known = set
        .files
        .iter()
        .map(|(path, sha)| (path.clone(), Some(sha.clone())))
        .collect();
    let Some(watcher) = watcher else { return };
    let wanted: BTreeSet<PathBuf> = if set.enabled {
        set.files.iter().map(|(path, _)| folder(path)).collect()
    } else {
        BTreeSet::new()
    };
    for gone in folders.difference(&wanted) {
        let _ = watcher.unwatch(gone);
    }
    for new in wanted.difference(folders) {
        if let Err(e) = watcher.watch(new, RecursiveMode::NonRecursive) {
            tracing::warn!(folder = %new.display(), error = %e, "Cannot watch a folder; its files reload only with SIGHUP or POST /admin/reload.");
        }
    }
    *folders = wanted;
}

/// The folder holding `file`, as the watcher needs it: absolute, with
/// symlinks and `..` resolved when the folder exists.
fn folder(file: &Path) -> PathBuf {
    let parent = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    parent
        .canonicalize()
        .or_else(|_| std::path::absolute(parent))
        .unwrap_or_else(|_| parent.to_path_buf())
}

/// The files in `set` whose content differs from what is `known`; `known`
/// then holds their content as read now (`None`: unreadable), so that the
/// same change does not count twice.
fn changed_files(set: &WatchSet, known: &mut HashMap<PathBuf, Option<String>>) -> Vec<PathBuf> {
    let mut changed = Vec::new();
    for (path, _) in &set.files {
        let now = crate::files::read(path, crate::files::PLUGIN_LIMIT)
            .ok()
            .map(|bytes| hex::encode(Sha256::digest(&bytes)));
        if known.get(path) != Some(&now) {
            known.insert(path.clone(), now);
            changed.push(path.clone());
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(path: &str) -> notify::Event {
        notify::Event::new(EventKind::Modify(notify::event::ModifyKind::Any)).add_path(PathBuf::from(path))
    }

    /// A log written beside the config does not wake the reloader; the
    /// config, a plugin, a rename over either and Kubernetes' `..data` do.
    #[test]
    fn only_changes_to_watched_names_count() {
        let set = WatchSet {
            enabled: true,
            debounce: Duration::from_millis(500),
            files: vec![
                (PathBuf::from("/etc/vestibule/vestibule.toml"), String::new()),
                (PathBuf::from("/opt/plugins/door_filter.wasm"), String::new()),
            ],
        };
        for unrelated in [
            "/etc/vestibule/vestibule.log",
            "/etc/vestibule/.vestibule.toml.swp",
            "/opt/plugins/other.wasm",
        ] {
            assert!(!concerns(&event(unrelated), &set), "{unrelated}");
        }
        for related in [
            "/etc/vestibule/vestibule.toml",
            "/opt/plugins/door_filter.wasm",
            "/etc/vestibule/..data",
            "/etc/vestibule/..2026_12_02_10_00_00.123",
        ] {
            assert!(concerns(&event(related), &set), "{related}");
        }
        let renamed =
            event("/etc/vestibule/vestibule.toml.tmp").add_path(PathBuf::from("/etc/vestibule/vestibule.toml"));
        assert!(concerns(&renamed, &set), "a rename over the config");
        let lost = notify::Event::new(EventKind::Other);
        assert!(concerns(&lost, &set), "no paths: the watcher lost track");
    }
}
