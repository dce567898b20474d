//! Keeps or drops events by a weekly schedule in a time zone: pass only what
//! happens after hours (to alert on it), or only what happens during them.
//! Holidays count as after hours all day. Times are the event's own
//! (`occurred_at`), read in `time_zone`, daylight saving included.
//!
//! ```toml
//! [plugins.config]
//! time_zone = "Europe/Copenhagen"
//! keep = "after-hours"          # or "business-hours"
//! kinds = ["access.*"]          # the kinds the schedule applies to; others always pass (default: all)
//! holidays = ["2026-12-24", "2026-12-25"]
//! [plugins.config.hours]        # business hours, per weekday; a day left out is closed
//! mon = ["08:00-17:00"]
//! fri = ["08:00-12:00", "13:00-16:00"]
//! ```

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;
use vestibule_plugin_sdk::{Error, Event, Filter, Verdict, export};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    time_zone: String,
    keep: Keep,
    #[serde(default)]
    kinds: Vec<String>,
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    hours: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "kebab-case")]
enum Keep {
    AfterHours,
    BusinessHours,
}

/// The config, checked: a mistake in it is the operator's to fix, said
/// clearly — when the host loads the plugin, before any event.
#[derive(Deserialize)]
#[serde(try_from = "Config")]
struct Schedule {
    zone: Tz,
    keep: Keep,
    kinds: Vec<String>,
    holidays: Vec<NaiveDate>,
    /// Business hours by weekday, Monday first.
    hours: [Vec<(NaiveTime, NaiveTime)>; 7],
}

impl TryFrom<Config> for Schedule {
    type Error = String;

    fn try_from(config: Config) -> Result<Schedule, String> {
        let bad = |what: String| what;
        let zone: Tz = config.time_zone.parse().map_err(|_| {
            bad(format!(
                "time_zone: `{}` is not a time zone such as \"Europe/Copenhagen\"",
                config.time_zone
            ))
        })?;
        let holidays = config
            .holidays
            .iter()
            .map(|day| {
                NaiveDate::parse_from_str(day, "%Y-%m-%d")
                    .map_err(|_| bad(format!("holidays: `{day}` is not YYYY-MM-DD")))
            })
            .collect::<Result<_, _>>()?;
        let mut hours: [Vec<(NaiveTime, NaiveTime)>; 7] = Default::default();
        for (day, spans) in config.hours {
            let weekday: Weekday = day
                .parse()
                .map_err(|_| bad(format!("hours: `{day}` is not a weekday (mon, tue, …)")))?;
            let spans = spans
                .iter()
                .map(|span| span_of(span).ok_or_else(|| bad(format!("hours.{day}: `{span}` is not HH:MM-HH:MM"))))
                .collect::<Result<Vec<_>, _>>()?;
            hours[weekday.num_days_from_monday() as usize] = spans;
        }
        Ok(Schedule {
            zone,
            keep: config.keep,
            kinds: config.kinds,
            holidays,
            hours,
        })
    }
}

impl Schedule {
    /// Whether `at` (ms since the epoch) falls in business hours.
    fn open_at(&self, at: i64) -> bool {
        let Some(local) = self.zone.timestamp_millis_opt(at).single() else {
            return false;
        };
        if self.holidays.contains(&local.date_naive()) {
            return false;
        }
        let time = local.time();
        self.hours[local.weekday().num_days_from_monday() as usize]
            .iter()
            .any(|(from, to)| *from <= time && time < *to)
    }
}

fn span_of(text: &str) -> Option<(NaiveTime, NaiveTime)> {
    let (from, to) = text.split_once('-')?;
    let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").ok();
    Some((time(from)?, time(to)?))
}

struct AfterHours;

impl Filter for AfterHours {
    type Config = Schedule;

    fn filter(event: Event, schedule: &Schedule) -> Result<Verdict, Error> {
        if !schedule.kinds.is_empty() && !schedule.kinds.iter().any(|k| event.is(k)) {
            return Ok(Verdict::Keep);
        }
        let open = schedule.open_at(event.occurred_at);
        Ok(match (schedule.keep, open) {
            (Keep::AfterHours, false) | (Keep::BusinessHours, true) => Verdict::Keep,
            (Keep::AfterHours, true) => Verdict::Drop("during business hours".into()),
            (Keep::BusinessHours, false) => Verdict::Drop("after hours".into()),
        })
    }
}

export!(filter: AfterHours);

#[cfg(test)]
mod tests {
    use super::*;
    use vestibule_plugin_sdk::kind;
    use vestibule_plugin_sdk::testing::FakeHost;

    const CONFIG: &str = r#"
        time_zone = "Europe/Copenhagen"
        keep = "after-hours"
        kinds = ["access.*"]
        holidays = ["2026-12-24"]
        [hours]
        mon = ["08:00-17:00"]
        thu = ["08:00-17:00"]
    "#;

    /// The verdict on an `access.granted` at `utc` (RFC 3339).
    fn verdict(config: &str, utc: &str) -> Result<Verdict, Error> {
        let at = chrono::DateTime::parse_from_rfc3339(utc).unwrap().timestamp_millis();
        let event = Event::builder().kind(kind::ACCESS_GRANTED).at(at).build();
        FakeHost::new().config(config).filter::<AfterHours>(event).result
    }

    #[test]
    fn business_hours_are_local_time_with_daylight_saving() {
        // Monday 2026-01-05 08:30 in Copenhagen is 07:30 UTC (winter, +1).
        assert_eq!(
            verdict(CONFIG, "2026-01-05T07:30:00Z"),
            Ok(Verdict::Drop("during business hours".into()))
        );
        assert_eq!(
            verdict(CONFIG, "2026-01-05T06:30:00Z"),
            Ok(Verdict::Keep),
            "07:30 local: before opening"
        );
        // Monday 2026-07-06 16:30 local is 14:30 UTC (summer, +2); 17:30 local is after closing.
        assert_eq!(
            verdict(CONFIG, "2026-07-06T14:30:00Z"),
            Ok(Verdict::Drop("during business hours".into()))
        );
        assert_eq!(verdict(CONFIG, "2026-07-06T15:30:00Z"), Ok(Verdict::Keep));
    }

    #[test]
    fn closed_days_and_holidays_are_after_hours() {
        assert_eq!(
            verdict(CONFIG, "2026-01-06T10:00:00Z"),
            Ok(Verdict::Keep),
            "a Tuesday: closed"
        );
        assert_eq!(
            verdict(CONFIG, "2026-12-24T10:00:00Z"),
            Ok(Verdict::Keep),
            "a Thursday, but a holiday"
        );
        assert_eq!(
            verdict(CONFIG, "2026-12-31T10:00:00Z"),
            Ok(Verdict::Drop("during business hours".into()))
        );
    }

    #[test]
    fn business_hours_mode_and_other_kinds() {
        let business = CONFIG.replace("after-hours", "business-hours");
        assert_eq!(
            verdict(&business, "2026-01-06T10:00:00Z"),
            Ok(Verdict::Drop("after hours".into()))
        );
        let ring = Event::builder().kind(kind::DOORBELL_RING).at(0).build();
        let run = FakeHost::new().config(&business).filter::<AfterHours>(ring);
        assert_eq!(run.result, Ok(Verdict::Keep), "the schedule is for access events only");
    }

    #[test]
    fn mistakes_in_the_config_say_where() {
        let wrong_zone = CONFIG.replace("Europe/Copenhagen", "Europe/Atlantis");
        assert!(
            matches!(verdict(&wrong_zone, "2026-01-05T07:30:00Z"), Err(Error::Config(m)) if m.contains("time_zone"))
        );
        let wrong_span = CONFIG.replace("08:00-17:00\"]\n        thu", "8-5\"]\n        thu");
        assert!(
            matches!(verdict(&wrong_span, "2026-01-05T07:30:00Z"), Err(Error::Config(m)) if m.contains("hours.mon: `8-5`"))
        );
        // What the host hears when it loads the plugin, before any event.
        let refused = FakeHost::new().config(&wrong_zone).check_config(AfterHours::check);
        assert!(
            refused
                .unwrap_err()
                .starts_with("time_zone: `Europe/Atlantis` is not a time zone")
        );
        assert_eq!(FakeHost::new().config(CONFIG).check_config(AfterHours::check), Ok(()));
    }
}
