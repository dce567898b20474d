//! Vestibule receives events from building access-control systems, proves
//! they are genuine, normalizes them into one event record, and runs them
//! through sandboxed WebAssembly plugins that filter, enrich and act on them.
//!
//! # Layout
//!
//! The modules follow the path of an event:
//!
//! - [`config`]: the TOML configuration, checked strictly.
//! - [`ingest`]: the HTTP server vendors post to; answers once the event is
//!   journaled, before plugins run.
//! - [`vendors`]: each vendor's signature check and payload mapping.
//! - [`event`]: the normalized event and its kinds.
//! - [`store`]: the journal, outbox and dead letters (SQLite, group commit).
//! - [`dispatch`]: journaled events through the pipeline, in order per door.
//! - [`pipeline`]: filters, enrichers, actions, in order, each seeing the
//!   event as its [`secrecy`] level allows.
//! - [`plugins`]: the WebAssembly runtime, one fresh sandbox per call.
//! - [`wit`]: the plugin contract generated from `wit/`.
//! - [`outbox`]: delivery of stored commands with retries and dead letters.
//! - [`sinks`]: one delivery attempt over HTTP or MQTT.
//! - [`live`]: everything built from one version of the config and plugin
//!   files, swapped whole; [`reload`] builds the next one when files change.
//! - [`observe`]: what the host sees go through it — [`metrics`], each
//!   source's activity and silences, the live tail, delivery attempts.
//! - [`admin`]: `/admin/status`, `/admin/reload`, `/metrics`, and the
//!   [`console`] under `/console`.
//! - [`app`]: wiring it together.
//! - [`cli`]: the command line on top of it all (`serve`, `check`, `send`,
//!   `plugin`, `events`, `dead-letters`, `replay`).
//!
//! Underneath: [`files`] (reading what the config names, within limits)
//! and [`time`] (milliseconds and ISO-8601). Imports go one way only: the
//! vendors know the event but not the config file's whole, the transport
//! knows neither the admin endpoints nor the live set (`app` hands it a
//! router and the limits), and nothing below `app` knows it
//! (`cli::host_modules_import_each_other_without_a_cycle` checks).

pub mod admin;
pub mod app;
pub mod cli;
pub mod client_tls;
pub mod config;
pub mod connect;
pub mod console;
pub mod dispatch;
pub mod event;
pub mod files;
pub mod ingest;
pub mod lanes;
pub mod live;
pub mod metrics;
pub mod observe;
pub mod outbox;
pub mod pipeline;
pub mod plugins;
pub mod reload;
pub mod secrecy;
pub mod settings;
pub mod sinks;
pub mod store;
pub mod time;
pub mod vendors;
pub mod wit;

pub use app::App;
pub use config::Config;
pub use plugins::Runtime;

/// `error: cause: cause …`: most library errors say little without their
/// sources (hyper's client says only "client error (Connect)"). Many also
/// repeat their source in their own text; a cause already said is not
/// said again.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) && !text.contains(&format!("{cause_text}: ")) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[derive(Debug)]
    struct Error(&'static str, Option<Box<Error>>);

    impl std::fmt::Display for Error {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Error {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn a_cause_is_said_once() {
        let inner = || Some(Box::new(Error("Connection refused (os error 111)", None)));
        let repeating = Error("Connection refused (os error 111)", inner());
        assert_eq!(super::error_chain(&repeating), "Connection refused (os error 111)");
        let quoting = Error(
            "invalid peer certificate: UnknownIssuer",
            Some(Box::new(Error("UnknownIssuer", None))),
        );
        assert_eq!(super::error_chain(&quoting), "invalid peer certificate: UnknownIssuer");
        let plain = Error("client error (Connect)", inner());
        assert_eq!(
            super::error_chain(&plain),
            "client error (Connect): Connection refused (os error 111)"
        );
    }
}
