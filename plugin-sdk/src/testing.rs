//! Testing a plugin natively, without WebAssembly: a [`FakeHost`] gives the
//! plugin its config and records what it logs and sends, and
//! [`Event::builder`](crate::Event::builder) makes the events.
//!
//! ```
//! use vestibule_plugin_sdk::testing::FakeHost;
//! use vestibule_plugin_sdk::{Action, Command, Error, Event, kind};
//!
//! #[derive(serde::Deserialize)]
//! struct Config { sink: String }
//!
//! struct DoorToSink;
//!
//! impl Action for DoorToSink {
//!     type Config = Config;
//!
//!     fn act(event: Event, config: &Config) -> Result<(), Error> {
//!         Command::json(&config.sink, &serde_json::json!({"door": event.door_name()})).send()?;
//!         Ok(())
//!     }
//! }
//!
//! let host = FakeHost::new().config(r#"sink = "lights""#).sinks(&["lights"]);
//! let event = Event::builder().kind(kind::ACCESS_GRANTED).door("Lobby").build();
//! let run = host.act::<DoorToSink>(event);
//! assert!(run.result.is_ok());
//! assert_eq!(run.commands[0].sink, "lights");
//! assert_eq!(run.commands[0].body, r#"{"door":"Lobby"}"#);
//! // What the host is told when it asks whether a config fits.
//! assert!(FakeHost::new().config("snk = \"x\"").check_config(DoorToSink::check).is_err());
//! ```
//!
//! Only compiled natively: in the component the real host answers.

use crate::{Action, Command, Enricher, Error, Event, Filter, Verdict};

/// A stand-in for the host in native tests.
#[derive(Debug, Clone, Default)]
pub struct FakeHost {
    config_json: String,
    sinks: Option<Vec<String>>,
}

/// What the plugin did during [`FakeHost::run`].
#[derive(Debug)]
pub struct Run<R> {
    /// What the closure returned.
    pub result: R,
    /// What it logged.
    pub logs: Vec<Logged>,
    /// The commands it sent, in order.
    pub commands: Vec<Command>,
    /// How long after the event each command is due (ms; 0 for `send`).
    pub delays: Vec<u64>,
}

impl FakeHost {
    /// A host with an empty config (`{}`) that lets the plugin send to any sink.
    pub fn new() -> FakeHost {
        FakeHost {
            config_json: "{}".into(),
            sinks: None,
        }
    }

    /// The plugin's `[plugins.config]` table, written as TOML (without the
    /// table header), as in the host's config file.
    ///
    /// # Panics
    ///
    /// When `toml` is not valid TOML: a mistake in the test, not the plugin.
    pub fn config(mut self, toml: &str) -> FakeHost {
        let table: toml::Table = toml::from_str(toml).unwrap_or_else(|e| panic!("the test's config: {e}"));
        self.config_json = serde_json::to_string(&table).expect("TOML is valid JSON");
        self
    }

    /// Refuse sends to any sink but these, as the host does with `sinks`.
    pub fn sinks(mut self, sinks: &[&str]) -> FakeHost {
        self.sinks = Some(sinks.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Call filter `P` on `event` as the host does: its config read into
    /// `P::Config` first (an error if it does not fit).
    pub fn filter<P: Filter>(&self, event: Event) -> Run<Result<Verdict, Error>> {
        self.run(|| crate::config::<P::Config>().and_then(|config| P::filter(event, &config)))
    }

    /// Call enricher `P` on `event` as the host does.
    pub fn enrich<P: Enricher>(&self, event: Event) -> Run<Result<Event, Error>> {
        self.run(|| crate::config::<P::Config>().and_then(|config| P::enrich(event, &config)))
    }

    /// Call action `P` on `event` as the host does.
    pub fn act<P: Action>(&self, event: Event) -> Run<Result<(), Error>> {
        self.run(|| crate::config::<P::Config>().and_then(|config| P::act(event, &config)))
    }

    /// What the plugin answers when the host asks whether this config fits,
    /// given its role's `check` (`MyFilter::check`): the message the host
    /// would refuse the config with.
    pub fn check_config<C: serde::de::DeserializeOwned>(
        &self,
        check: fn(&C) -> Result<(), String>,
    ) -> Result<(), String> {
        self.run(|| crate::roles::check_config(check)).result
    }

    /// Call `plugin` (any closure calling the plugin's code) with this
    /// host, and return what it returned, logged and sent.
    pub fn run<R>(&self, plugin: impl FnOnce() -> R) -> Run<R> {
        fake::CURRENT.with(|current| {
            *current.borrow_mut() = Some(fake::State {
                host: self.clone(),
                ..Default::default()
            })
        });
        let result = plugin();
        let state = fake::CURRENT
            .with(|current| current.borrow_mut().take())
            .unwrap_or_default();
        Run {
            result,
            logs: state.logs,
            commands: state.commands.iter().map(|(c, _)| c.clone()).collect(),
            delays: state.commands.iter().map(|(_, d)| *d).collect(),
        }
    }
}

/// A line a plugin logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// `"trace"`, `"debug"`, `"info"`, `"warn"` or `"error"`.
    pub level: String,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

/// An event for tests; see [`Event::builder`].
#[derive(Debug, Clone)]
pub struct EventBuilder(Event);

impl Event {
    /// An event to test with: kind `other`, no door, actor or credential,
    /// received at 2026-01-05 09:00 UTC (a Monday); set what the test needs.
    pub fn builder() -> EventBuilder {
        EventBuilder(Event {
            id: "test-event".into(),
            source: "test".into(),
            vendor: "test".into(),
            vendor_event_type: "test".into(),
            kind: crate::kind::OTHER.into(),
            occurred_at: 1_767_603_600_000,
            received_at: 1_767_603_600_000,
            door: None,
            actor: None,
            credential: None,
            device: None,
            attributes: Vec::new(),
            raw: "{}".into(),
        })
    }
}

impl EventBuilder {
    pub fn id(mut self, id: &str) -> Self {
        self.0.id = id.into();
        self
    }

    pub fn source(mut self, source: &str) -> Self {
        self.0.source = source.into();
        self
    }

    pub fn vendor(mut self, vendor: &str, event_type: &str) -> Self {
        self.0.vendor = vendor.into();
        self.0.vendor_event_type = event_type.into();
        self
    }

    /// The normalized kind, e.g. [`kind::ACCESS_GRANTED`](crate::kind::ACCESS_GRANTED).
    pub fn kind(mut self, kind: &str) -> Self {
        self.0.kind = kind.into();
        self
    }

    /// When it happened (and was received), ms since the epoch.
    pub fn at(mut self, ms: i64) -> Self {
        self.0.occurred_at = ms;
        self.0.received_at = ms;
        self
    }

    /// The door's name.
    pub fn door(mut self, name: &str) -> Self {
        self.0.door.get_or_insert_with(empty_door).name = Some(name.into());
        self
    }

    /// The door's vendor id.
    pub fn door_id(mut self, id: &str) -> Self {
        self.0.door.get_or_insert_with(empty_door).id = Some(id.into());
        self
    }

    /// The person: their vendor id and name.
    pub fn actor(mut self, id: &str, name: &str) -> Self {
        self.0.actor = Some(crate::Actor {
            id: Some(id.into()),
            name: Some(name.into()),
            email: None,
            phone: None,
            kind: Some("user".into()),
        });
        self
    }

    /// The person, known only by their vendor id.
    pub fn actor_id(mut self, id: &str) -> Self {
        self = self.actor(id, "");
        if let Some(actor) = &mut self.0.actor {
            actor.name = None;
        }
        self
    }

    /// What was presented: how (`"nfc"`, `"pin"`, …) and the value.
    pub fn credential(mut self, method: &str, value: &str) -> Self {
        self.0.credential = Some(crate::Credential {
            method: method.into(),
            value: Some(value.into()),
        });
        self
    }

    /// The reporting device's name.
    pub fn device(mut self, name: &str) -> Self {
        self.0.device = Some(crate::Device {
            id: None,
            name: Some(name.into()),
            model: None,
        });
        self
    }

    pub fn attribute(mut self, key: &str, value: &str) -> Self {
        self.0.set_attribute(key, value);
        self
    }

    /// The vendor's JSON.
    pub fn raw(mut self, json: &str) -> Self {
        self.0.raw = json.into();
        self
    }

    pub fn build(self) -> Event {
        self.0
    }
}

fn empty_door() -> crate::Door {
    crate::Door {
        id: None,
        name: None,
        location: None,
    }
}

/// The host functions, natively: answered by the running test's [`FakeHost`].
pub(crate) mod fake {
    use std::cell::RefCell;

    use super::FakeHost;
    use crate::Command;
    use crate::bindings::host::Level;
    use crate::bindings::sinks::SendError;

    #[derive(Default)]
    pub struct State {
        pub host: FakeHost,
        pub logs: Vec<super::Logged>,
        pub commands: Vec<(Command, u64)>,
    }

    thread_local! {
        pub static CURRENT: RefCell<Option<State>> = const { RefCell::new(None) };
    }

    fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
        CURRENT.with(|current| {
            let mut current = current.borrow_mut();
            let state = current
                .as_mut()
                .expect("outside a component, call plugins inside `FakeHost::run` (see the `testing` module)");
            f(state)
        })
    }

    pub fn config() -> String {
        with(|state| state.host.config_json.clone())
    }

    pub fn log(level: Level, message: &str, fields: &[(String, String)]) {
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
        .to_string();
        with(|state| {
            state.logs.push(super::Logged {
                level,
                message: message.to_string(),
                fields: fields.to_vec(),
            })
        })
    }

    pub fn send(command: &Command, delay_ms: u64) -> Result<(), SendError> {
        with(|state| {
            if let Some(allowed) = &state.host.sinks
                && !allowed.contains(&command.sink)
            {
                return Err(SendError::UnknownSink(command.sink.clone()));
            }
            state.commands.push((command.clone(), delay_ms));
            Ok(())
        })
    }
}
