//! Fills in who someone is — name, department, floor and any other column —
//! from a directory given in its config, as CSV or as TOML tables, keyed by
//! the vendor's user id or by the credential presented.
//!
//! ```toml
//! [plugins.config]
//! key = "user"        # the actor's vendor id (default), or "credential": the card
//!                     # number or PIN, which needs `secrecy = 0` for this plugin
//! csv = """
//! id,name,department,floor
//! daa10301-7744-4623-a90e-372718af1d41,Ada Lovelace,Engineering,7
//! """
//! # or, instead of csv:
//! # [[plugins.config.people]]
//! # id = "daa10301-…"
//! # name = "Ada Lovelace"
//! # floor = "7"
//! ```
//!
//! The `name` column fills the actor's name when the vendor sent none; every
//! other column becomes an attribute (`department`, `floor`, …). Someone not
//! in the directory passes unchanged, with a debug log line.

use std::collections::BTreeMap;

use serde::Deserialize;
use vestibule_plugin_sdk::{Actor, Enricher, Error, Event, export, log};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    key: Key,
    csv: Option<String>,
    #[serde(default)]
    people: Vec<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum Key {
    #[default]
    User,
    Credential,
}

/// A directory entry: its columns by name.
type Person = BTreeMap<String, String>;

fn people(config: &Config) -> Result<Vec<Person>, Error> {
    let mut people = config.people.clone();
    if let Some(csv) = &config.csv {
        people.extend(parse_csv(csv)?);
    }
    match people.iter().position(|p| !p.contains_key("id")) {
        Some(i) => Err(Error::Config(format!("[plugins.config]: entry {} has no `id`", i + 1))),
        None => Ok(people),
    }
}

/// CSV with a header row; fields may be "quoted" to hold commas.
fn parse_csv(text: &str) -> Result<Vec<Person>, Error> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let Some(header) = lines.next() else {
        return Ok(Vec::new());
    };
    let columns = fields(header);
    lines
        .enumerate()
        .map(|(i, line)| {
            let values = fields(line);
            if values.len() != columns.len() {
                return Err(Error::Config(format!(
                    "[plugins.config]: csv line {}: {} fields, the header has {}",
                    i + 2,
                    values.len(),
                    columns.len()
                )));
            }
            Ok(columns
                .iter()
                .cloned()
                .zip(values)
                .filter(|(_, v)| !v.is_empty())
                .collect())
        })
        .collect()
}

fn fields(line: &str) -> Vec<String> {
    let (mut fields, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field).trim().to_string()),
            c => field.push(c),
        }
    }
    fields.push(field.trim().to_string());
    fields
}

struct Directory;

impl Enricher for Directory {
    type Config = Config;

    /// The CSV must parse and every entry have an `id`: refused at load,
    /// not on the first badge.
    fn check(config: &Config) -> Result<(), String> {
        people(config).map(|_| ()).map_err(|e| match e {
            Error::Config(m) | Error::Failed(m) => m.trim_start_matches("[plugins.config]: ").to_string(),
        })
    }

    fn enrich(mut event: Event, config: &Config) -> Result<Event, Error> {
        let people = people(config)?;
        let key = match config.key {
            Key::User => event.actor.as_ref().and_then(|a| a.id.clone()),
            Key::Credential => event.credential.as_ref().and_then(|c| c.value.clone()),
        };
        let Some(person) = key.and_then(|key| people.into_iter().find(|p| p["id"] == key)) else {
            log::debug("Not in the directory.", &[("event", &event.id)]);
            return Ok(event);
        };
        for (column, value) in person {
            match column.as_str() {
                "id" => {}
                "name" => {
                    let actor = event.actor.get_or_insert(Actor {
                        id: None,
                        name: None,
                        email: None,
                        phone: None,
                        kind: None,
                    });
                    actor.name.get_or_insert(value);
                }
                _ => event.set_attribute(column, value),
            }
        }
        Ok(event)
    }
}

export!(enricher: Directory);

#[cfg(test)]
mod tests {
    use super::*;
    use vestibule_plugin_sdk::kind;
    use vestibule_plugin_sdk::testing::FakeHost;

    const CSV: &str = r#"csv = """
id,name,department,floor
u-7,Ada Lovelace,"Engineering, R&D",7
u-8,,Facilities,1
""""#;

    fn enrich(config: &str, event: Event) -> Result<Event, Error> {
        FakeHost::new().config(config).enrich::<Directory>(event).result
    }

    #[test]
    fn fills_in_the_person_by_user_id() {
        let event = Event::builder().kind(kind::ACCESS_GRANTED).actor_id("u-7").build();
        let enriched = enrich(CSV, event).unwrap();
        assert_eq!(enriched.actor_name(), Some("Ada Lovelace"));
        assert_eq!(enriched.attribute("department"), Some("Engineering, R&D"));
        assert_eq!(enriched.attribute("floor"), Some("7"));
    }

    #[test]
    fn keeps_the_vendors_name_and_skips_empty_columns() {
        let event = Event::builder().actor("u-8", "Grace Hopper").build();
        let enriched = enrich(CSV, event).unwrap();
        assert_eq!(enriched.actor_name(), Some("Grace Hopper"));
        assert_eq!(enriched.attribute("floor"), Some("1"));
    }

    #[test]
    fn by_credential_from_toml_tables() {
        let config = "key = \"credential\"\n[[people]]\nid = \"04A1B2C3\"\nfloor = \"3\"\n";
        let event = Event::builder().credential("nfc", "04A1B2C3").build();
        assert_eq!(enrich(config, event).unwrap().attribute("floor"), Some("3"));
    }

    #[test]
    fn strangers_pass_unchanged() {
        let event = Event::builder().actor("u-99", "Someone").build();
        assert_eq!(enrich(CSV, event.clone()).unwrap(), event);
    }

    #[test]
    fn a_broken_csv_says_which_line() {
        let config = "csv = \"\"\"\nid,floor\nu-1,2,3\n\"\"\"";
        let error = enrich(config, Event::builder().build()).unwrap_err();
        assert_eq!(
            error,
            Error::Config("[plugins.config]: csv line 2: 3 fields, the header has 2".into())
        );
    }
}
