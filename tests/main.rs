//! Vestibule's end-to-end tests: the real host on real ports, real
//! components built from `plugins/` and `tests/plugins/`, real SQLite files,
//! a real MQTT broker. One module per area; `support` is what they share.
//! Run one area with `cargo test --test integration durability::`.

// `support::heavy` is a lock that orders whole tests, each on a thread and
// runtime of its own: holding it across awaits is the point.
#![allow(clippy::await_holding_lock)]
// The benchmark suite includes support's wasm.rs for its own binary too.
#![allow(clippy::duplicate_mod)]

mod support;

/// The benchmark suite, run small by `bench_smoke`.
#[path = "../host/benches/suite/mod.rs"]
mod suite;

mod adversarial;
mod bench_smoke;
mod cli;
mod cluster;
mod config_errors;
mod connect;
mod console;
mod durability;
mod end_to_end;
mod fuzz;
mod hostile_clients;
mod journal;
mod mqtt;
mod observability;
mod python;
mod reference_plugins;
mod reload;
mod scenario;
mod secrecy;
mod tutorial;
mod typescript;
mod unifi_ws;
mod vendors;
