//! What the command line reads and changes in a database a host may be
//! running on: events, their runs and commands, dead letters, replays.

use rusqlite::params;

use super::{EVENT_STATE, Store};
use crate::store::{CommandRow, DeadEventRow, EventRow, EventRun, Records, StoreError};
use crate::time::now_ms;

impl Records for Store {
    fn events(&self, source: Option<&str>, limit: usize) -> Result<Vec<EventRow>, StoreError> {
        let mut statement = self.conn.prepare(&format!(
            "SELECT seq, source, event_id, run, kind, door, received_at, {EVENT_STATE}, outcome
                 FROM events WHERE (?1 IS NULL OR source = ?1) ORDER BY seq DESC LIMIT ?2"
        ))?;
        let rows = statement.query_map(params![source, limit as i64], EventRow::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn event(&self, id: &str) -> Result<Vec<EventRun>, StoreError> {
        let seq: Option<i64> = id.parse().ok();
        let mut statement = self.conn.prepare(&format!(
            "SELECT seq, source, event_id, run, kind, door, received_at, {EVENT_STATE}, outcome, event
                 FROM events WHERE event_id = ?1 OR seq = ?2 ORDER BY seq"
        ))?;
        let runs = statement
            .query_map(params![id, seq], |row| {
                Ok((EventRow::from_row(row)?, row.get::<_, String>(9)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        if runs.is_empty() {
            return Err(StoreError::NotFound(format!("no event {id} in the journal")));
        }
        runs.into_iter()
            .map(|(row, json)| {
                let commands = self.commands("WHERE seq = ?1 ORDER BY id", params![row.seq])?;
                Ok((row, json, commands))
            })
            .collect()
    }

    fn dead_letters(&self) -> Result<Vec<CommandRow>, StoreError> {
        self.commands(
            "WHERE state = 'dead' AND dead_reason IS NOT 'superseded' ORDER BY id",
            [],
        )
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
            tx.execute(
                "UPDATE events SET state = 'pending', outcome = NULL, processed_at = NULL
                 WHERE seq IN (SELECT seq FROM dead_events WHERE ?1 IS NULL OR seq = ?1)",
                params![seq],
            )?;
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
            tx.execute(
                "UPDATE outbox SET state = 'pending', attempts = 0, first_attempt_at = NULL, next_at = ?2,
                        dead_reason = NULL, done_at = NULL, delay_ms = 0
                 WHERE state = 'dead' AND dead_reason IS NOT 'superseded' AND (?1 IS NULL OR id = ?1)",
                params![id, now],
            )
        })
    }

    fn drop_dead_letters(&mut self, ids: &[i64]) -> Result<usize, StoreError> {
        self.in_one_transaction(ids, "dead letter", |tx, id| {
            tx.execute(
                "DELETE FROM outbox WHERE state = 'dead' AND dead_reason IS NOT 'superseded' AND (?1 IS NULL OR id = ?1)",
                params![id],
            )
        })
    }

    fn replay(&mut self, since_ms: i64, source: Option<&str>) -> Result<usize, StoreError> {
        let tx = self.conn.transaction()?;
        let n = tx.execute(
            "INSERT INTO events (source, event_id, run, kind, door, received_at, event, state)
             SELECT source, event_id,
                    (SELECT MAX(run) FROM events AS e WHERE e.source = events.source AND e.event_id = events.event_id) + 1,
                    kind, door, received_at, event, 'pending'
             FROM events
             WHERE run = 0 AND received_at >= ?1 AND (?2 IS NULL OR source = ?2)
             ORDER BY seq",
            params![since_ms, source],
        )?;
        tx.commit()?;
        Ok(n)
    }
}

impl Store {
    fn commands(&self, filter: &str, params: impl rusqlite::Params) -> Result<Vec<CommandRow>, StoreError> {
        let sql = format!(
            "SELECT id, seq, plugin, sink, door, idempotency_key, command, state, attempts, last_error,
                    dead_reason, created_at, done_at, received_at + delay_ms
             FROM outbox {filter}"
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
        let tx = self.conn.transaction()?;
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
