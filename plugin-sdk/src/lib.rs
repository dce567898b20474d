//! Write [Vestibule](https://github.com/vestibule) plugins in Rust.
//!
//! A plugin is a WebAssembly component with one role — a *filter* decides
//! whether an event goes on, an *enricher* adds to it, an *action* asks the
//! host to deliver commands to named sinks. Write one `impl` of the role's
//! trait and one [`export!`] line:
//!
//! ```no_run
//! use vestibule_plugin_sdk::{export, Error, Event, Filter, Verdict};
//!
//! struct LobbyOnly;
//!
//! impl Filter for LobbyOnly {
//!     fn filter(event: Event) -> Result<Verdict, Error> {
//!         Ok(match event.door_name() {
//!             Some("Lobby") => Verdict::Keep,
//!             _ => Verdict::Drop("not the lobby".into()),
//!         })
//!     }
//! }
//!
//! export!(filter: LobbyOnly);
//! ```
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
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
mod units;

pub use bindings::action::Guest as Action;
pub use bindings::enricher::Guest as Enricher;
pub use bindings::filter::{Guest as Filter, Verdict};
pub use bindings::sinks::{Command, SendError};
pub use bindings::types::{Actor, Attribute, Credential, Device, Door, Error, Event, Timestamp};

pub use units::Duration;

#[doc(hidden)]
pub use bindings::__private;

/// Read this plugin's configuration (its `[plugins.config]` table in the
/// host config) into a typed value.
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
/// For JSON bodies and headers, see [`Command::json`].
pub fn send(sink: &str, body: impl Into<String>) -> Result<(), SendError> {
    send_command(&Command::text(sink, body))
}

/// [`send`] with full control: extra headers for HTTP sinks.
pub fn send_command(command: &Command) -> Result<(), SendError> {
    imports::send(command, 0)
}

/// Make this crate's component export `$ty` as a plugin of the given role:
/// `export!(filter: T)` for `T: Filter`, `export!(enricher: T)` for
/// `T: Enricher`, `export!(action: T)` for `T: Action`. One per crate.
///
/// ```no_run
/// use vestibule_plugin_sdk::{Action, Error, Event, export, send};
///
/// struct Announce;
///
/// impl Action for Announce {
///     fn act(event: Event) -> Result<(), Error> {
///         let body = format!("{{\"text\":\"{} at {:?}\"}}", event.kind, event.door_name());
///         send("chat", body).map_err(|e| Error::Failed(format!("{e:?}")))
///     }
/// }
///
/// export!(action: Announce);
/// ```
#[macro_export]
macro_rules! export {
    (filter: $ty:ident) => {
        $crate::__private::filter::__export_filter!($ty);
    };
    (enricher: $ty:ident) => {
        $crate::__private::enricher::__export_enricher!($ty);
    };
    (action: $ty:ident) => {
        $crate::__private::action::__export_action!($ty);
    };
}
