//! The plugin contract, generated from `wit/`. Everything else in the host
//! uses these types: the normalized [`Event`](types::Event) *is* the WIT
//! record, so there is no second definition to keep in step.
//!
//! Exports are called asynchronously: a call's deadline then cuts it off
//! wherever it is, in the plugin's code or waiting in a host function (a
//! WASI sleep), see [`crate::plugins`].

pub mod filter {
    wasmtime::component::bindgen!({
        world: "filter",
        path: "../wit",
        exports: { default: async },
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
    });
}

pub mod enricher {
    wasmtime::component::bindgen!({
        world: "enricher",
        path: "../wit",
        exports: { default: async },
        with: {
            "vestibule:plugin/types": super::types,
            "vestibule:plugin/host": super::host,
        },
    });
}

pub mod action {
    wasmtime::component::bindgen!({
        world: "action",
        path: "../wit",
        exports: { default: async },
        with: {
            "vestibule:plugin/types": super::types,
            "vestibule:plugin/host": super::host,
        },
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
    });
}

pub use action::vestibule::plugin::sinks;
pub use filter::vestibule::plugin::{host, types};
