//! The three roles a plugin can have. Each is one trait: the plugin's
//! `Config` type, and the one function of its role, which gets the
//! plugin's `[plugins.config]` already read into that type.
//!
//! The host asks every plugin whether its config fits before the plugin
//! serves — at `vestibule check`, at start and at every reload — and
//! refuses a set with a plugin whose config does not, naming the plugin
//! and giving its message. The SDK answers from `Config` alone (and from
//! [`Filter::check`] and its kin, when a plugin wants more than the type
//! says), so a plugin author writes nothing for it.

use serde::de::DeserializeOwned;

use crate::{Error, Event, Verdict};

/// Decides whether an event goes on through the pipeline.
pub trait Filter {
    /// Its `[plugins.config]` (see [`NoConfig`] for a plugin without one).
    type Config: DeserializeOwned;

    /// Keep the event, or drop it with a reason.
    fn filter(event: Event, config: &Self::Config) -> Result<Verdict, Error>;

    /// What else a config must be, beyond reading as `Config` (a list that
    /// must not be empty, say). Run when the host loads the plugin.
    fn check(config: &Self::Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }
}

/// Returns the event with fields filled in or attributes added.
pub trait Enricher {
    /// Its `[plugins.config]` (see [`NoConfig`] for a plugin without one).
    type Config: DeserializeOwned;

    /// The event, enriched.
    fn enrich(event: Event, config: &Self::Config) -> Result<Event, Error>;

    /// What else a config must be, beyond reading as `Config`. Run when the
    /// host loads the plugin.
    fn check(config: &Self::Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }
}

/// Acts on an event by asking the host to deliver commands to named sinks.
pub trait Action {
    /// Its `[plugins.config]` (see [`NoConfig`] for a plugin without one).
    type Config: DeserializeOwned;

    /// Send the commands the event calls for (see [`crate::Command`]).
    fn act(event: Event, config: &Self::Config) -> Result<(), Error>;

    /// What else a config must be, beyond reading as `Config`. Run when the
    /// host loads the plugin.
    fn check(config: &Self::Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }
}

/// The `Config` of a plugin that takes none: any key in its
/// `[plugins.config]` is refused, so a setting meant for another plugin is
/// not silently ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

/// The answer to the host's question whether this plugin's config fits.
#[doc(hidden)]
pub fn check_config<C: DeserializeOwned>(check: fn(&C) -> Result<(), String>) -> Result<(), String> {
    let config = crate::config::<C>().map_err(|e| match e {
        Error::Config(message) | Error::Failed(message) => message
            .strip_prefix("[plugins.config]: ")
            .unwrap_or(&message)
            .to_string(),
    })?;
    check(&config)
}
