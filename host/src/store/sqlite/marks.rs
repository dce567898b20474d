//! Low-water marks: where the writer starts looking for pending work, so
//! that finding it reads only the journal's end, not every event kept.
//!
//! A mark says "nothing before this number is pending" (`marks` table:
//! `events` for journal numbers, `commands` for command ids). The writer
//! raises it as work is done; the command line lowers it when it puts work
//! back (`dead-letters retry`). Raising is conditional on the value last
//! read, so a lowering that lands in between is never overwritten: the
//! writer notices, and looks again.

use rusqlite::{Connection, OptionalExtension, params};

pub(super) struct Mark {
    name: &'static str,
    /// The stored value, as last read or written.
    stored: i64,
    /// One past the highest number this writer has seen.
    next: i64,
}

impl Mark {
    pub(super) fn new(name: &'static str) -> Mark {
        Mark {
            name,
            stored: 0,
            next: 0,
        }
    }

    /// Where to look from: the stored value, read again.
    pub(super) fn read(&mut self, conn: &Connection) -> rusqlite::Result<i64> {
        self.stored = conn
            .prepare_cached("SELECT below FROM marks WHERE name = ?1")?
            .query_row([self.name], |row| row.get(0))
            .optional()?
            .unwrap_or(0);
        self.next = self.next.max(self.stored);
        Ok(self.stored)
    }

    /// Number `n` exists.
    pub(super) fn saw(&mut self, n: i64) {
        self.next = self.next.max(n + 1);
    }

    /// Nothing before `first_pending` (or, with `None`, before the next
    /// number) is pending any more: store that. False when another process
    /// changed the mark since it was read: look for pending work again.
    pub(super) fn raise(&mut self, conn: &Connection, first_pending: Option<i64>) -> rusqlite::Result<bool> {
        let below = first_pending.unwrap_or(self.next);
        if below <= self.stored {
            return Ok(true);
        }
        let changed = conn
            .prepare_cached("UPDATE marks SET below = ?1 WHERE name = ?2 AND below = ?3")?
            .execute(params![below, self.name, self.stored])?;
        if changed == 1 {
            self.stored = below;
        }
        Ok(changed == 1)
    }
}

/// Lower mark `name` to `n` (the command line, putting work back): the
/// running host looks from there at its next poll.
pub(super) fn lower(conn: &Connection, name: &str, n: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE marks SET below = min(below, ?1) WHERE name = ?2",
        params![n, name],
    )?;
    Ok(())
}
