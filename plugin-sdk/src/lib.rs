//! Write [Vestibule](https://github.com/vestibule) plugins in Rust.
//!
//! A plugin is a WebAssembly component with one role — a *filter* decides
//! whether an event goes on, an *enricher* adds to it, an *action* asks the
//! host to deliver commands to named sinks. Write one `impl` of the role's
//! trait, with the type its `[plugins.config]` reads into, and one
//! [`export!`] line:
//!
//! ```no_run
//! use vestibule_plugin_sdk::{export, Error, Event, Filter, Verdict};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config {
//!     door: String,
//! }
//!
//! struct OneDoor;
//!
//! impl Filter for OneDoor {
//!     type Config = Config;
//!
//!     fn filter(event: Event, config: &Config) -> Result<Verdict, Error> {
//!         Ok(match event.door_name() {
//!             Some(door) if door == config.door => Verdict::Keep,
//!             _ => Verdict::Drop(format!("not {}", config.door)),
//!         })
//!     }
//! }
//!
//! export!(filter: OneDoor);
//! ```
//!
//! The host checks the config against `Config` before the plugin serves
//! (`vestibule check`, start, every reload): a typo in the operator's
//! `[plugins.config]` is refused with the plugin's name and serde's
//! message, never met event after event. A plugin without a config says
//! `type Config = NoConfig;`.
//!
//! Build it with `cargo build --target wasm32-wasip2 --release`; the `.wasm`
//! file in `target/wasm32-wasip2/release/` is the component the host loads.

extern crate self as vestibule_plugin_sdk;

mod bindings;
mod command;
mod event;
mod imports;
pub mod kind;
pub mod log;
mod roles;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
mod units;

pub use bindings::filter::Verdict;
pub use bindings::sinks::Command;
use bindings::sinks::SendError;
pub use bindings::types::{Actor, Attribute, Credential, Device, Door, Error, Event, Timestamp};
pub use roles::{Action, Enricher, Filter, NoConfig};

pub use units::{ByteSize, Duration};

#[doc(hidden)]
pub use bindings::__private;
#[doc(hidden)]
pub use roles::check_config as __check_config;

/// Read this plugin's configuration (its `[plugins.config]` table in the
/// host config) into a typed value. The role traits do this for their
/// `Config` on every call; this is for reading it otherwise.
///
/// A configuration that does not fit `T` gives [`Error::Config`] naming what is
/// wrong, which the host reports against this plugin.
///
/// ```no_run
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Config { doors: Vec<String> }
///
/// fn doors() -> Result<Vec<String>, vestibule_plugin_sdk::Error> {
///     let config: Config = vestibule_plugin_sdk::config()?;
///     Ok(config.doors)
/// }
/// ```
pub fn config<T: serde::de::DeserializeOwned>() -> Result<T, Error> {
    let text = imports::config();
    serde_json::from_str(&text).map_err(|e| {
        // The JSON is the host's rendering of the operator's TOML: its line
        // and column would point nowhere the operator can see.
        let message = e.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message);
        Error::Config(format!("[plugins.config]: {message}"))
    })
}

/// Ask the host to deliver `body` to the sink named `sink`.
///
/// Only action plugins may call this (the other roles do not import it, and a
/// component that tries is refused at load time). The command is delivered
/// after [`Action::act`] returns `Ok`; if the call fails, nothing is sent.
/// For JSON bodies and headers, see [`Command::json`]. Fails, with the same
/// [`Error`] as [`Command::send`], when the sink is not one this plugin may use
/// or the event already has as many commands as the host allows.
pub fn send(sink: &str, body: impl Into<String>) -> Result<(), Error> {
    Command::text(sink, body).send()
}

/// [`send`] with full control: extra headers for HTTP sinks. The same as
/// [`Command::send`].
pub fn send_command(command: &Command) -> Result<(), Error> {
    command.send()
}

/// Make this crate's component export `$ty` as a plugin of the given role:
/// `export!(filter: T)` for `T: Filter`, `export!(enricher: T)` for
/// `T: Enricher`, `export!(action: T)` for `T: Action`. One per crate.
///
/// ```no_run
/// use vestibule_plugin_sdk::{Action, Error, Event, NoConfig, export, send};
///
/// struct Announce;
///
/// impl Action for Announce {
///     type Config = NoConfig;
///
///     fn act(event: Event, _: &NoConfig) -> Result<(), Error> {
///         let body = format!("{{\"text\":\"{} at {:?}\"}}", event.kind, event.door_name());
///         send("chat", body)
///     }
/// }
///
/// export!(action: Announce);
/// ```
#[macro_export]
macro_rules! export {
    (filter: $ty:ident) => {
        #[doc(hidden)]
        pub struct __VestibuleExport;
        impl $crate::__private::filter::Guest for __VestibuleExport {
            fn filter(event: $crate::Event) -> ::core::result::Result<$crate::Verdict, $crate::Error> {
                let config = $crate::config::<<$ty as $crate::Filter>::Config>()?;
                <$ty as $crate::Filter>::filter(event, &config)
            }
            fn check_config() -> ::core::result::Result<(), ::std::string::String> {
                $crate::__check_config(<$ty as $crate::Filter>::check)
            }
        }
        $crate::__private::filter::__export_filter!(__VestibuleExport);
    };
    (enricher: $ty:ident) => {
        #[doc(hidden)]
        pub struct __VestibuleExport;
        impl $crate::__private::enricher::Guest for __VestibuleExport {
            fn enrich(event: $crate::Event) -> ::core::result::Result<$crate::Event, $crate::Error> {
                let config = $crate::config::<<$ty as $crate::Enricher>::Config>()?;
                <$ty as $crate::Enricher>::enrich(event, &config)
            }
            fn check_config() -> ::core::result::Result<(), ::std::string::String> {
                $crate::__check_config(<$ty as $crate::Enricher>::check)
            }
        }
        $crate::__private::enricher::__export_enricher!(__VestibuleExport);
    };
    (action: $ty:ident) => {
        #[doc(hidden)]
        pub struct __VestibuleExport;
        impl $crate::__private::action::Guest for __VestibuleExport {
            fn act(event: $crate::Event) -> ::core::result::Result<(), $crate::Error> {
                let config = $crate::config::<<$ty as $crate::Action>::Config>()?;
                <$ty as $crate::Action>::act(event, &config)
            }
            fn check_config() -> ::core::result::Result<(), ::std::string::String> {
                $crate::__check_config(<$ty as $crate::Action>::check)
            }
        }
        $crate::__private::action::__export_action!(__VestibuleExport);
    };
}
