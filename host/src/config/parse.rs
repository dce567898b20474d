//! Reading the TOML into the typed config, past the first mistake.
//!
//! serde stops at the first key it does not know or value it cannot read.
//! To find the others, the parser is run again on the text with the
//! offending `key = value` (or the table holding it) blanked out — spaces
//! in place of its characters, its newlines kept, so every later line and
//! column is where the operator wrote it. What was blanked is left at its
//! default, so the checks after parsing can go on.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, Deserializer, ValueDeserializer};

use super::{Config, ConfigError, SinkConfig, SourceConfig};

/// The most mistakes collected from one file.
const MAX_ERRORS: usize = 32;

/// The config `text` holds (with what could not be read left out), and
/// every mistake found on the way.
pub fn leniently(text: &str, file: &Path) -> (Option<Config>, Vec<ConfigError>) {
    // A syntax error leaves nothing reliable to go on from.
    if let Err(e) = toml::from_str::<toml::Table>(text) {
        return (None, vec![parse_error(&e, text, file)]);
    }
    let mut errors = Vec::new();
    let mut current = text.to_string();
    // Keys blanked so far: a required one then reads as missing, which is
    // not news to the operator.
    let mut blanked: Vec<String> = Vec::new();
    let config = loop {
        match read(&current) {
            Ok(config) => break Some(config),
            Err(e) => {
                let start = e.span().map_or(0, |span| span.start).min(current.len());
                let follows = blanked
                    .iter()
                    .any(|key| e.message().starts_with(&format!("missing field `{key}`")));
                if !follows {
                    errors.push(parse_error(&e, &current, file));
                }
                if let Some(key) = key_at(&current, start) {
                    blanked.push(key);
                }
                match blank_around(&current, start) {
                    Some(next) if errors.len() < MAX_ERRORS => current = next,
                    _ => break None,
                }
            }
        }
    };
    // serde meets tables in its own order; the operator reads top to bottom.
    errors.sort_by_key(|e| match e {
        ConfigError::Parse { line, column, .. } => (*line, *column),
        _ => (usize::MAX, 0),
    });
    (config, errors)
}

/// The key of the `key = value` on the line holding byte `at`, if it is one.
fn key_at(text: &str, at: usize) -> Option<String> {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty() && !key.starts_with('[')).then(|| key.to_string())
}

/// The config `text` holds, or the first thing wrong with it. The
/// `[[sources]]` tables are read by their vendors and the `[[sinks]]` by
/// their kinds, each the way its own file says; the rest by [`Config`]'s
/// own types. Spans point into `text`.
fn read(text: &str) -> Result<Config, toml::de::Error> {
    let document = DeTable::parse(text)?;
    let span = document.span();
    let mut table = document.into_inner();
    let sources = table.remove("sources");
    let sinks = table.remove("sinks");
    let mut config = Config::deserialize(Deserializer::from(Spanned::new(span, table)))?;
    if let Some(sources) = sources {
        for source in array_of_tables(sources)? {
            config.sources.push(SourceConfig::read(source)?);
        }
    }
    if let Some(sinks) = sinks {
        for sink in array_of_tables(sinks)? {
            config.sinks.push(SinkConfig::read(sink)?);
        }
    }
    Ok(config)
}

/// The tables of `[[name]]`, or serde's error saying what it was instead.
fn array_of_tables(value: Spanned<DeValue<'_>>) -> Result<Vec<Spanned<DeValue<'_>>>, toml::de::Error> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Array(items) => Ok(items.into_iter().collect()),
        other => {
            // Not an array: let serde say so, at the value.
            Vec::<toml::Table>::deserialize(ValueDeserializer::from(Spanned::new(span, other)))?;
            Ok(Vec::new())
        }
    }
}

fn parse_error(e: &toml::de::Error, text: &str, file: &Path) -> ConfigError {
    let mut e = e.clone();
    // Errors from parts read on their own carry spans but not the text.
    e.set_input(Some(text));
    let start = e.span().map_or(0, |span| span.start).min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    ConfigError::Parse {
        file: file.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
        line: text[..start].matches('\n').count() + 1,
        column: text[line_start..start].chars().count() + 1,
        reason: e.message().trim_end().to_string(),
        text: text[line_start..line_end].trim().to_string(),
    }
}

/// `text` with the item on the line holding byte `at` blanked: the
/// `key = value` there (over as many lines as its value takes), or, on a
/// table header, the table to the next header. `None` if no blanking
/// leaves valid TOML.
fn blank_around(text: &str, at: usize) -> Option<String> {
    let lines: Vec<(usize, &str)> = text
        .split_inclusive('\n')
        .scan(0, |offset, line| {
            let start = *offset;
            *offset += line.len();
            Some((start, line))
        })
        .collect();
    let first = lines.iter().rposition(|(start, _)| *start <= at)?;
    let is_header = |line: &str| line.trim_start().starts_with('[');
    let last = if is_header(lines[first].1) {
        // The whole table: to the line before the next header.
        (first + 1..lines.len())
            .find(|&i| is_header(lines[i].1))
            .map_or(lines.len() - 1, |next| next - 1)
    } else {
        first
    };
    // A value may go on over several lines: blank as few as keep it TOML.
    (last..lines.len().min(last + 200)).find_map(|end| {
        let blanked: String = lines
            .iter()
            .enumerate()
            .map(|(i, (_, line))| {
                if (first..=end).contains(&i) {
                    line.chars().map(|c| if c == '\n' { '\n' } else { ' ' }).collect()
                } else {
                    line.to_string()
                }
            })
            .collect();
        toml::from_str::<toml::Table>(&blanked).is_ok().then_some(blanked)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mistake_is_found_with_its_own_line() {
        let text = "[server]\nlisen = \"x\"\nqueue = 5\n\n[[plugins]]\nname = \"p\"\nworld = \"filter\"\npath = \"p.wasm\"\n\
                    deadline = \"fast\"\nentities = [\n  \"a\",\n  \"b\",\n]\n";
        let (config, errors) = leniently(text, Path::new("v.toml"));
        let lines: Vec<String> = errors.iter().map(ConfigError::one_line).collect();
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(
            lines[0].starts_with("v.toml: line 2, column 1 (`lisen = \"x\"`): unknown field `lisen`"),
            "{lines:#?}"
        );
        assert!(lines[1].starts_with("v.toml: line 9, column 12 (`deadline = \"fast\"`): expected a duration"));
        assert!(lines[2].starts_with("v.toml: line 10, column 1 (`entities = [`): unknown field `entities`"));
        let config = config.expect("the rest still reads");
        assert_eq!(config.server.queue, 5, "what was right is kept");
        assert_eq!(
            config.plugins[0].deadline.0.as_millis(),
            50,
            "what was wrong is left at its default"
        );
    }

    #[test]
    fn a_syntax_error_stops_at_once() {
        let (config, errors) = leniently("[server\nqueue = 5\n", Path::new("v.toml"));
        assert!(config.is_none());
        assert_eq!(errors.len(), 1);
    }
}
