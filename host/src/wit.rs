//! The plugin contract, generated from `wit/`. Everything else in the host
//! uses these types: the normalized [`Event`](types::Event) *is* the WIT
//! record, so there is no second definition to keep in step.

pub mod filter {
    wasmtime::component::bindgen!({
        world: "filter",
        path: "../wit",
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
    });
}

pub mod enricher {
    wasmtime::component::bindgen!({
        world: "enricher",
        path: "../wit",
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
        with: {
            "vestibule:plugin/types": super::types,
            "vestibule:plugin/host": super::host,
        },
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
    });
}

pub use action::vestibule::plugin::sinks;
pub use filter::vestibule::plugin::{host, types};
