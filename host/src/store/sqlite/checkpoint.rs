//! WAL checkpoints from a second connection, beside the writer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use crate::store::{Store, StoreError};

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// The WAL frames (4 KiB pages) past which the writer is asked to restart
/// the WAL: 32 MiB.
const RESTART_AT_FRAMES: i64 = 8192;

/// Copies the WAL back into the database file from a second connection,
/// so the writer never stalls on a checkpoint: with SQLite's automatic
/// checkpoints the commit that crosses 1,000 pages does it, and every
/// request in that batch waits (milliseconds at the 99th percentile).
///
/// A passive checkpoint alone never lets the WAL start over while the writer
/// keeps committing: SQLite rewinds the WAL only when a write begins after
/// a checkpoint that caught up completely, and under steady load new frames
/// arrive during every checkpoint. The WAL then grows without end (845 MB
/// in 5 s of ingest at about 9,000 events a second), each commit
/// extends the file, and every page lookup searches a longer WAL index. So
/// once the WAL is past [`RESTART_AT_FRAMES`] the checkpointer raises
/// `restart_due`, and the writer, between two batches, finishes the
/// checkpoint itself (see [`restart_wal`]).
pub(super) struct Checkpointer {
    pub(super) restart_due: Arc<AtomicBool>,
    stop: Option<std_mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    pub(super) fn start(path: &std::path::Path, writer: &Store) -> Result<Checkpointer, StoreError> {
        writer.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(super::BUSY_TIMEOUT)?;
        let (stop, stopped) = std_mpsc::channel::<()>();
        let restart_due = Arc::new(AtomicBool::new(false));
        let due = restart_due.clone();
        let thread = std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || {
                while let Err(std_mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                    // PASSIVE: copies what no reader needs, never waits for the writer.
                    // (busy, frames in the WAL, frames copied back)
                    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get::<_, i64>(1)) {
                        Ok(frames) if frames > RESTART_AT_FRAMES => due.store(true, Ordering::Relaxed),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed."),
                    }
                }
            })
            .map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                message: format!("cannot start the checkpoint thread: {e}"),
            })?;
        Ok(Checkpointer {
            restart_due,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Finish the checkpoint from the writer's own connection, between batches,
/// so that its next commit starts the WAL over from the beginning. Only the
/// frames written since the last passive checkpoint are left to copy. A
/// reader in the way (or the checkpointer mid-checkpoint) makes it give up at once (and try again after the next
/// checkpoint) rather than hold up ingest.
pub(super) fn restart_wal(conn: &rusqlite::Connection) {
    const PATIENCE: Duration = Duration::from_millis(20);
    let started = std::time::Instant::now();
    let restarted = conn
        .busy_timeout(PATIENCE)
        .and_then(|()| conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| row.get::<_, i64>(0)));
    let _ = conn.busy_timeout(super::BUSY_TIMEOUT);
    match restarted {
        Ok(0) => tracing::debug!(took_ms = started.elapsed().as_millis() as u64, "The WAL starts over."),
        Ok(_) => tracing::debug!("The WAL could not start over: another connection is using it."),
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(conn: &rusqlite::Connection) -> i64 {
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
            .unwrap()
    }

    /// After `restart_wal`, the next commit writes from the WAL's start
    /// instead of after everything written before.
    #[test]
    fn a_restart_lets_the_wal_start_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let conn = &store.conn;
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute_batch("CREATE TABLE filler (blob BLOB)").unwrap();
        let write = |n: usize| {
            for _ in 0..n {
                conn.execute("INSERT INTO filler VALUES (zeroblob(8000))", []).unwrap();
            }
        };
        // A reader holds the WAL: no checkpoint can finish, as under load.
        let reader = rusqlite::Connection::open(dir.path().join(crate::store::DB_FILE)).unwrap();
        reader.execute_batch("BEGIN; SELECT count(*) FROM filler;").unwrap();
        write(200);
        let before = frames(conn);
        assert!(before >= 400, "{before} frames");
        restart_wal(conn);
        write(1);
        assert!(frames(conn) > before, "a reader in the way: the WAL cannot start over");

        reader.execute_batch("COMMIT").unwrap();
        restart_wal(conn);
        write(1);
        let after = frames(conn);
        assert!(after < 10, "the WAL started over: {after} frames, {before} before");
    }
}
