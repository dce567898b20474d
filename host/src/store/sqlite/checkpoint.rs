//! WAL checkpoints from a second connection, beside the writer, which
//! never checkpoints itself.

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use rusqlite::Connection;

use crate::store::{Store, StoreError};

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// The WAL frames (4 KiB pages) past which it is started over: 32 MiB.
const RESTART_AT_FRAMES: i64 = 8192;

/// Frames a restart may leave to copy: it holds the writer back while it
/// copies them (about a millisecond's work).
const RESTART_LEFT: i64 = 256;

/// Passive checkpoints, back to back, to catch up before a restart.
const CATCH_UP: usize = 8;

/// Copies the WAL back into the database file from a second connection, so
/// that the writer never stalls on a checkpoint: with SQLite's automatic
/// checkpoints the commit that crosses 1,000 pages does it, and every
/// request in that batch waits (milliseconds at the 99th percentile).
///
/// A passive checkpoint alone never lets the WAL start over while the writer
/// keeps committing: SQLite rewinds the WAL only when a write begins after a
/// checkpoint that caught up completely, and under steady load new frames
/// arrive during every checkpoint. The WAL then grows without end (845 MB in
/// 5 s of ingest at about 9,000 events a second), each commit extends the
/// file, and every page lookup searches a longer WAL index. So once the WAL
/// is past [`RESTART_AT_FRAMES`], this thread catches up with passive
/// checkpoints (each copies what the writer added during the last) until
/// at most [`RESTART_LEFT`] frames are left, then restarts the WAL: that
/// takes the write lock only while it copies those few frames and syncs
/// the database file, and the writer's next commit writes from the WAL's
/// start.
pub(super) struct Checkpointer {
    stop: Option<std_mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    pub(super) fn start(path: &std::path::Path, writer: &Store) -> Result<Checkpointer, StoreError> {
        writer.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let mut conn = Connection::open(path)?;
        impatient(&mut conn)?;
        let (stop, stopped) = std_mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || {
                while let Err(std_mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                    if let Err(e) = checkpoint(&conn, RESTART_AT_FRAMES) {
                        tracing::warn!(error = %e, "WAL checkpoint failed.");
                    }
                }
            })
            .map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                message: format!("cannot start the checkpoint thread: {e}"),
            })?;
        Ok(Checkpointer {
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

/// Copy what the WAL holds back into the database file; once it holds more
/// than `restart_at` frames, catch up and start it over.
fn checkpoint(conn: &Connection, restart_at: i64) -> rusqlite::Result<()> {
    let (mut frames, mut copied) = passive(conn)?;
    if frames <= restart_at {
        return Ok(());
    }
    for _ in 0..CATCH_UP {
        if frames - copied <= RESTART_LEFT {
            break;
        }
        (frames, copied) = passive(conn)?;
    }
    if frames - copied > RESTART_LEFT {
        // The writer adds frames faster than they are copied: try again at
        // the next round rather than hold it back for long.
        return Ok(());
    }
    let started = std::time::Instant::now();
    // (busy, frames in the WAL, frames copied back); busy when a reader
    // (the command line) still reads from the WAL: it starts over later.
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| row.get(0))?;
    let took_us = started.elapsed().as_micros() as u64;
    match busy {
        0 => tracing::debug!(took_us, frames, "The WAL starts over."),
        _ => tracing::debug!(took_us, "The WAL could not start over: a reader is using it."),
    }
    Ok(())
}

/// A passive checkpoint: copies what no reader needs, never waits for the
/// writer. (Frames in the WAL, frames copied back so far.)
fn passive(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get(1)?, row.get(2)?))
    })
}

/// Wait for another connection's lock in steps of 100 µs, up to the store's
/// busy timeout (for the writer): SQLite's own waits grow to 100 ms a step,
/// and a writer held back by a restart's millisecond would sleep far longer.
pub(super) fn wait_briefly(conn: &mut Connection) -> rusqlite::Result<()> {
    fn retry(attempt: i32) -> bool {
        short_steps(attempt, super::BUSY_TIMEOUT)
    }
    conn.busy_handler(Some(retry))
}

/// For the checkpoint thread: the same steps, but only for [`PATIENCE`]. A
/// restart waits for readers while it holds the writer back; a reader in
/// the way (the command line) makes it give up and try at the next round.
fn impatient(conn: &mut Connection) -> rusqlite::Result<()> {
    fn retry(attempt: i32) -> bool {
        short_steps(attempt, PATIENCE)
    }
    conn.busy_handler(Some(retry))
}

/// How long a restart waits for a lock.
const PATIENCE: Duration = Duration::from_millis(20);

/// Whether to try again after `attempt` waits, up to `patience`; waits 100 µs.
fn short_steps(attempt: i32, patience: Duration) -> bool {
    const STEP: Duration = Duration::from_micros(100);
    if STEP * attempt.max(0) as u32 >= patience {
        return false;
    }
    std::thread::sleep(STEP);
    true
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;

    /// While a writer keeps committing, the checkpoint thread's connection
    /// starts the WAL over — not while a reader is in its way — and the
    /// writer's next commit writes from the WAL's start.
    #[test]
    fn the_wal_starts_over_under_a_writer_that_never_stops() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        store.conn.execute_batch("CREATE TABLE filler (blob BLOB)").unwrap();
        wait_briefly(&mut store.conn).unwrap();
        // The frames in the WAL after each commit, as SQLite reports them.
        let after_commits = Arc::new(Mutex::new(Vec::new()));
        let seen = after_commits.clone();
        store
            .conn
            .wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, frames: std::ffi::c_int| {
                seen.lock().unwrap().push(frames);
                Ok(())
            }))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let writing = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    store
                        .conn
                        .execute("INSERT INTO filler VALUES (zeroblob(8000))", [])
                        .unwrap();
                }
            })
        };
        let restarts = || {
            let frames = after_commits.lock().unwrap();
            frames.windows(2).filter(|w| w[1] < w[0]).count()
        };
        let path = dir.path().join(crate::store::DB_FILE);
        let mut checkpointer = Connection::open(&path).unwrap();
        impatient(&mut checkpointer).unwrap();
        let reader = Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN; SELECT count(*) FROM filler;").unwrap();
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(20));
            checkpoint(&checkpointer, 100).unwrap();
        }
        assert_eq!(restarts(), 0, "a reader is in the way");
        reader.execute_batch("COMMIT").unwrap();
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(20));
            checkpoint(&checkpointer, 100).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        writing.join().unwrap();
        let most = after_commits.lock().unwrap().iter().copied().max().unwrap_or(0);
        assert!(most > 100, "the WAL grew to {most} frames");
        assert!(restarts() > 0, "the WAL started over while the writer wrote");
    }
}
