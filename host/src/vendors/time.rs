//! Vendor times: Unix seconds, Unix milliseconds and ISO-8601 texts, all to
//! UTC milliseconds.

use serde_json::Value;

pub use crate::time::{format_iso8601, parse_iso8601};

/// Numbers below this are seconds, above it milliseconds: 10^11 s is the
/// year 5138, 10^11 ms is 1973.
const MS_THRESHOLD: i64 = 100_000_000_000;

/// The last millisecond of the year 9999: later (or negative) vendor times
/// are nonsense, and treated as absent rather than carried into arithmetic.
const LATEST: i64 = 253_402_300_799_999;

/// A vendor time in JSON: a number of seconds or milliseconds, or an
/// ISO-8601 / RFC 3339 text (a numeric text counts as a number). `None` for
/// anything else, and for times before 1970 or after 9999.
pub fn from_json(value: &Value) -> Option<i64> {
    let ms = match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).map(seconds_or_ms),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .ok()
            .map(seconds_or_ms)
            .or_else(|| parse_iso8601(s)),
        _ => None,
    }?;
    (0..=LATEST).contains(&ms).then_some(ms)
}

fn seconds_or_ms(n: i64) -> i64 {
    // `unsigned_abs`: `abs` of i64::MIN (a float too large, saturated) overflows.
    if n.unsigned_abs() < MS_THRESHOLD as u64 {
        n * 1000
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_times_are_absent() {
        // Found by the fuzzer: a float far below i64::MIN.
        assert_eq!(from_json(&serde_json::json!(-5.042912211793282e184)), None);
        assert_eq!(from_json(&serde_json::json!(i64::MAX)), None);
        assert_eq!(from_json(&serde_json::json!(-1)), None);
        assert_eq!(from_json(&serde_json::json!("99999-01-01T00:00:00Z")), None);
    }

    #[test]
    fn numbers_are_seconds_or_milliseconds() {
        assert_eq!(from_json(&serde_json::json!(1692131000)), Some(1_692_131_000_000));
        assert_eq!(
            from_json(&serde_json::json!(1646921051104_i64)),
            Some(1_646_921_051_104)
        );
        assert_eq!(from_json(&serde_json::json!("1692131000")), Some(1_692_131_000_000));
        assert_eq!(
            from_json(&serde_json::json!("2022-01-01T10:35:24.083Z")),
            Some(1_641_033_324_083)
        );
        assert_eq!(from_json(&serde_json::json!(null)), None);
    }
}
