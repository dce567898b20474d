//! What the command line reads and changes in a database a host may be
//! running on: events, their runs and commands, dead letters, replays.

use rusqlite::{TransactionBehavior, params};

use super::marks::lower;
use super::migrate::id_hash;
use super::sql::shown_event;
use super::{EVENT_STATE, Store};
use crate::store::{CommandRow, DeadEventRow, EventRow, EventRun, Records, StoreError};
use crate::time::now_ms;

impl Records for Store {
    fn events(&self, source: Option<&str>, limit: usize) -> Result<Vec<EventRow>, StoreError> {
        let mut statement = self.conn.prepare(&format!(
            "SELECT e.seq, e.source, e.event_id, e.run, e.kind, e.door, e.received_at, {EVENT_STATE}, o.steps
             FROM events e LEFT JOIN outcomes o ON o.seq = e.seq
             WHERE (?1 IS NULL OR e.source = ?1) ORDER BY e.seq DESC LIMIT ?2"
        ))?;
        let rows = statement.query_map(params![source, limit as i64], EventRow::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn event(&self, id: &str) -> Result<Vec<EventRun>, StoreError> {
        let seq: Option<i64> = id.parse().ok();
        let mut statement = self.conn.prepare(&format!(
            "SELECT e.seq, e.source, e.event_id, e.run, e.kind, e.door, e.received_at, {EVENT_STATE}, o.steps,
                    e.event, e.raw
             FROM events e LEFT JOIN outcomes o ON o.seq = e.seq
             WHERE (e.seq IN (SELECT seq FROM events INDEXED BY events_accepted WHERE id_hash = ?1)
                    AND e.event_id = ?2)
                OR e.seq = ?3
             ORDER BY e.seq"
        ))?;
        let runs = statement
            .query_map(params![id_hash(id), id, seq], |row| {
                Ok((EventRow::from_row(row)?, shown_event(row.get(9)?, row.get(10)?)))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        if runs.is_empty() {
            return Err(StoreError::NotFound(format!("no event {id} in the journal")));
        }
        runs.into_iter()
            .map(|(row, json)| {
                let commands = self.commands("WHERE o.seq = ?1 ORDER BY o.id", params![row.seq])?;
                Ok((row, json, commands))
            })
            .collect()
    }

    fn dead_letters(&self) -> Result<Vec<CommandRow>, StoreError> {
        self.commands(&format!("WHERE {DEAD_LETTER} ORDER BY o.id"), [])
    }

    fn dead_events(&self) -> Result<Vec<DeadEventRow>, StoreError> {
        let mut statement = self.conn.prepare(
            "SELECT d.seq, e.source, e.kind, e.door, d.plugin, d.reason, d.error, d.at
             FROM dead_events d JOIN events e ON e.seq = d.seq ORDER BY d.seq",
        )?;
        let rows = statement.query_map([], DeadEventRow::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn retry_dead_events(&mut self, seqs: &[i64]) -> Result<usize, StoreError> {
        self.in_one_transaction(seqs, "dead-lettered event", |tx, seq| {
            const CHOSEN: &str = "SELECT seq FROM dead_events WHERE ?1 IS NULL OR seq = ?1";
            // Without its outcome an event is pending again.
            if let Some(first) = tx.query_row(&format!("SELECT min(seq) FROM ({CHOSEN})"), params![seq], |row| {
                row.get::<_, Option<i64>>(0)
            })? {
                lower(tx, "events", first)?;
            }
            tx.execute(&format!("DELETE FROM outcomes WHERE seq IN ({CHOSEN})"), params![seq])?;
            tx.execute("DELETE FROM dead_events WHERE ?1 IS NULL OR seq = ?1", params![seq])
        })
    }

    fn drop_dead_events(&mut self, seqs: &[i64]) -> Result<usize, StoreError> {
        self.in_one_transaction(seqs, "dead-lettered event", |tx, seq| {
            tx.execute("DELETE FROM dead_events WHERE ?1 IS NULL OR seq = ?1", params![seq])
        })
    }

    fn retry_dead_letters(&mut self, ids: &[i64]) -> Result<usize, StoreError> {
        let now = now_ms();
        self.in_one_transaction(ids, "dead letter", |tx, id| {
            let chosen = format!("SELECT d.id FROM deliveries d WHERE {DEAD_LETTER} AND (?1 IS NULL OR d.id = ?1)");
            if let Some(first) = tx.query_row(&format!("SELECT min(id) FROM ({chosen})"), params![id], |row| {
                row.get::<_, Option<i64>>(0)
            })? {
                lower(tx, "commands", first)?;
            }
            // Pending again with a fresh set of attempts, sent now: a
            // delayed command that became a dead letter is delayed no more.
            tx.execute(
                &format!(
                    "UPDATE deliveries SET state = 'pending', attempts = 0, first_attempt_at = NULL, next_at = ?2,
                            dead_reason = NULL, done_at = NULL, retried = 1
                     WHERE id IN ({chosen})"
                ),
                params![id, now],
            )
        })
    }

    fn drop_dead_letters(&mut self, ids: &[i64]) -> Result<usize, StoreError> {
        self.in_one_transaction(ids, "dead letter", |tx, id| {
            let chosen = format!("SELECT d.id FROM deliveries d WHERE {DEAD_LETTER} AND (?1 IS NULL OR d.id = ?1)");
            let dropped = tx.execute(&format!("DELETE FROM outbox WHERE id IN ({chosen})"), params![id])?;
            tx.execute(&format!("DELETE FROM deliveries WHERE id IN ({chosen})"), params![id])?;
            Ok(dropped)
        })
    }

    fn replay(&mut self, since_ms: i64, source: Option<&str>) -> Result<usize, StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "INSERT INTO events (id_hash, source, event_id, run, kind, door, received_at, accepted_at, event, raw)
             SELECT id_hash, source, event_id,
                    (SELECT max(run) FROM events AS r
                     WHERE r.id_hash = events.id_hash AND r.source = events.source AND r.event_id = events.event_id) + 1,
                    kind, door, received_at, ?3, event, raw
             FROM events
             WHERE run = 0 AND accepted_at >= ?1 AND (?2 IS NULL OR source = ?2)
             ORDER BY seq",
            params![since_ms, source, now_ms()],
        )?;
        tx.commit()?;
        Ok(n)
    }
}

/// A command given up on, as `dead-letters` lists it (for `deliveries d`):
/// one replaced by a later delayed command is not.
const DEAD_LETTER: &str = "d.state = 'dead' AND d.dead_reason IS NOT 'superseded'";

impl Store {
    /// The commands `filter` picks (for `outbox o`, its delivery `d`).
    fn commands(&self, filter: &str, params: impl rusqlite::Params) -> Result<Vec<CommandRow>, StoreError> {
        let sql = format!(
            "SELECT o.id, o.seq, o.plugin, o.sink, o.door, o.idempotency_key, o.command,
                    coalesce(d.state, 'pending'), coalesce(d.attempts, 0), d.last_error, d.dead_reason,
                    o.created_at, d.done_at, o.received_at
             FROM outbox o LEFT JOIN deliveries d ON d.id = o.id {filter}"
        );
        let mut statement = self.conn.prepare(&sql)?;
        let rows = statement.query_map(params, CommandRow::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
    /// Apply `change` to each of `ids` (or, with `None`, to all) in one
    /// transaction; an id it changes nothing for undoes it all.
    fn in_one_transaction(
        &mut self,
        ids: &[i64],
        what: &str,
        change: impl Fn(&rusqlite::Transaction, Option<i64>) -> rusqlite::Result<usize>,
    ) -> Result<usize, StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut changed = 0;
        if ids.is_empty() {
            changed = change(&tx, None)?;
        }
        for &id in ids {
            match change(&tx, Some(id))? {
                0 => return Err(StoreError::NotFound(format!("no {what} {id}"))),
                n => changed += n,
            }
        }
        tx.commit()?;
        Ok(changed)
    }
}
