//! The generated bindings, one module per world. The `types` and `host`
//! interfaces are generated once (in `filter`) and shared by the other
//! worlds, so an `Event` is the same Rust type whatever the role.

pub mod filter {
    wit_bindgen::generate!({
        world: "filter",
        path: "wit",
        runtime_path: "vestibule_plugin_sdk::__private::wit_bindgen::rt",
        pub_export_macro: true,
        export_macro_name: "__export_filter",
        default_bindings_module: "vestibule_plugin_sdk::__private::filter",
        generate_all,
        // Events as JSON: fixtures for native tests, and plugins that forward them.
        additional_derives: [Clone, PartialEq, serde::Serialize, serde::Deserialize],
    });
}

pub mod enricher {
    wit_bindgen::generate!({
        world: "enricher",
        path: "wit",
        runtime_path: "vestibule_plugin_sdk::__private::wit_bindgen::rt",
        pub_export_macro: true,
        export_macro_name: "__export_enricher",
        default_bindings_module: "vestibule_plugin_sdk::__private::enricher",
        with: {
            "vestibule:plugin/types@0.1.0": super::types,
            "vestibule:plugin/host@0.1.0": super::host,
        },
    });
}

pub mod action {
    wit_bindgen::generate!({
        world: "action",
        path: "wit",
        runtime_path: "vestibule_plugin_sdk::__private::wit_bindgen::rt",
        pub_export_macro: true,
        export_macro_name: "__export_action",
        default_bindings_module: "vestibule_plugin_sdk::__private::action",
        with: {
            "vestibule:plugin/types@0.1.0": super::types,
            "vestibule:plugin/host@0.1.0": super::host,
        },
        generate_all,
        additional_derives: [Clone, PartialEq],
    });
}

pub use action::vestibule::plugin::sinks;
pub use filter::vestibule::plugin::{host, types};

/// What the `export!` macro expands to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use super::{action, enricher, filter};
    pub use wit_bindgen;
}
