//! What became of an event at each plugin, and why a command was given up
//! on: typed here, stored as the words `vestibule events show` and
//! `dead-letters list` have always printed, so a data folder written by an
//! earlier release reads the same.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What one plugin did with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepResult {
    /// A filter let it through.
    Kept,
    /// A filter stopped it, with its reason.
    Dropped(String),
    /// An enricher changed it.
    Enriched,
    /// An action asked for this many commands.
    Commands(usize),
    /// The plugin failed. `reason` is the failure's name (`timeout`, `trap`,
    /// …); `event_dropped` when its `on_error` dropped the event.
    Failed {
        reason: String,
        error: String,
        event_dropped: bool,
    },
    /// The pipeline worker panicked while running the event.
    Panicked,
    /// The journaled event could not be read back, so it was not run.
    Unreadable(String),
    /// Words this release does not know (written by another one), kept as
    /// they are so that the rest of the event's story still reads.
    Other(String),
}

impl fmt::Display for StepResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepResult::Kept => f.write_str("kept"),
            StepResult::Dropped(reason) => write!(f, "dropped: {reason}"),
            StepResult::Enriched => f.write_str("enriched"),
            StepResult::Commands(1) => f.write_str("1 command"),
            StepResult::Commands(n) => write!(f, "{n} commands"),
            StepResult::Failed {
                reason,
                error,
                event_dropped: true,
            } => write!(f, "failed ({reason}), event dropped: {error}"),
            StepResult::Failed { reason, error, .. } => write!(f, "failed ({reason}): {error}"),
            StepResult::Panicked => f.write_str("failed: the pipeline worker panicked"),
            StepResult::Unreadable(error) => write!(f, "not processed: stored event unreadable: {error}"),
            StepResult::Other(words) => f.write_str(words),
        }
    }
}

impl FromStr for StepResult {
    type Err = String;

    /// The words [`Display`](fmt::Display) writes, back.
    fn from_str(text: &str) -> Result<StepResult, String> {
        let unknown = || format!("not a step result: {text:?}");
        Ok(match text {
            "kept" => StepResult::Kept,
            "enriched" => StepResult::Enriched,
            "1 command" => StepResult::Commands(1),
            "failed: the pipeline worker panicked" => StepResult::Panicked,
            _ => {
                if let Some(reason) = text.strip_prefix("dropped: ") {
                    StepResult::Dropped(reason.to_string())
                } else if let Some(error) = text.strip_prefix("not processed: stored event unreadable: ") {
                    StepResult::Unreadable(error.to_string())
                } else if let Some(n) = text.strip_suffix(" commands") {
                    StepResult::Commands(n.parse().map_err(|_| unknown())?)
                } else if let Some(rest) = text.strip_prefix("failed (") {
                    let (reason, rest) = rest.split_once(')').ok_or_else(unknown)?;
                    let (event_dropped, error) = match rest.strip_prefix(", event dropped: ") {
                        Some(error) => (true, error),
                        None => (false, rest.strip_prefix(": ").ok_or_else(unknown)?),
                    };
                    StepResult::Failed {
                        reason: reason.to_string(),
                        error: error.to_string(),
                        event_dropped,
                    }
                } else {
                    return Err(unknown());
                }
            }
        })
    }
}

/// Why a command was given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadReason {
    /// Out of attempts or past `give_up_after`.
    Exhausted,
    /// Past the sink's `max_age`.
    Expired,
    /// The sink said the command itself is wrong (a 4xx other than 408, 425,
    /// 429; a body it cannot take).
    Rejected,
    /// No sink by that name runs.
    UnknownSink,
    /// A later delayed command replaced it before it was due; not a dead
    /// letter anyone need act on.
    Superseded,
}

impl DeadReason {
    pub const ALL: [DeadReason; 5] = [
        DeadReason::Exhausted,
        DeadReason::Expired,
        DeadReason::Rejected,
        DeadReason::UnknownSink,
        DeadReason::Superseded,
    ];

    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::Exhausted => "exhausted",
            DeadReason::Expired => "expired",
            DeadReason::Rejected => "rejected",
            DeadReason::UnknownSink => "unknown_sink",
            DeadReason::Superseded => "superseded",
        }
    }
}

impl fmt::Display for DeadReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeadReason {
    type Err = String;

    fn from_str(text: &str) -> Result<DeadReason, String> {
        DeadReason::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| format!("not a dead-letter reason: {text:?}"))
    }
}

impl Serialize for DeadReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DeadReason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<DeadReason, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for StepResult {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StepResult {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<StepResult, D::Error> {
        let words = String::deserialize(deserializer)?;
        Ok(words.parse().unwrap_or(StepResult::Other(words)))
    }
}

impl rusqlite::types::FromSql for DeadReason {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<DeadReason> {
        value
            .as_str()?
            .parse()
            .map_err(|e: String| rusqlite::types::FromSqlError::Other(e.into()))
    }
}

impl rusqlite::types::ToSql for DeadReason {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every result reads back as itself from the words it is stored as,
    /// and those words are the ones earlier releases stored.
    #[test]
    fn step_results_are_stored_as_the_words_shown() {
        let cases = [
            (StepResult::Kept, "kept"),
            (
                StepResult::Dropped("not a door we watch".into()),
                "dropped: not a door we watch",
            ),
            (StepResult::Enriched, "enriched"),
            (StepResult::Commands(1), "1 command"),
            (StepResult::Commands(3), "3 commands"),
            (
                StepResult::Failed {
                    reason: "timeout".into(),
                    error: "timeout: still running at its 50ms deadline".into(),
                    event_dropped: true,
                },
                "failed (timeout), event dropped: timeout: still running at its 50ms deadline",
            ),
            (
                StepResult::Failed {
                    reason: "error".into(),
                    error: "plugin error: unknown field `dors` (config)".into(),
                    event_dropped: false,
                },
                "failed (error): plugin error: unknown field `dors` (config)",
            ),
            (StepResult::Panicked, "failed: the pipeline worker panicked"),
            (
                StepResult::Unreadable("EOF at line 1".into()),
                "not processed: stored event unreadable: EOF at line 1",
            ),
        ];
        for (result, words) in cases {
            assert_eq!(result.to_string(), words);
            assert_eq!(words.parse::<StepResult>(), Ok(result.clone()), "{words}");
            let json = serde_json::to_string(&result).unwrap();
            assert_eq!(json, serde_json::to_string(words).unwrap());
            assert_eq!(serde_json::from_str::<StepResult>(&json).unwrap(), result);
        }
        assert_eq!(
            "maybe".parse::<StepResult>(),
            Err(r#"not a step result: "maybe""#.to_string())
        );
        assert!("x commands".parse::<StepResult>().is_err());
        // Words another release wrote still read, as they are.
        let other: StepResult = serde_json::from_str(r#""skipped: breaker open""#).unwrap();
        assert_eq!(other, StepResult::Other("skipped: breaker open".into()));
        assert_eq!(other.to_string(), "skipped: breaker open");
    }

    #[test]
    fn dead_reasons_read_back() {
        for reason in DeadReason::ALL {
            assert_eq!(reason.to_string().parse::<DeadReason>(), Ok(reason));
        }
        assert_eq!("unknown_sink".parse::<DeadReason>(), Ok(DeadReason::UnknownSink));
        assert_eq!(
            "gone".parse::<DeadReason>(),
            Err(r#"not a dead-letter reason: "gone""#.to_string())
        );
    }
}
