//! Config for the tests, built instead of pasted: a `[[plugins]]` table is
//! `PluginTable::new("gate", "filter", "misbehave").set("on_error", "skip")
//! .config("misbehave", "trap")`, rendered as TOML with every value quoted
//! and escaped by the `toml` crate.

use toml::{Table, Value};

/// One `[[plugins]]` table; its component is the named package, built.
pub struct PluginTable {
    table: Table,
    config: Table,
}

impl PluginTable {
    pub fn new(name: &str, world: &str, package: &str) -> PluginTable {
        let mut table = Table::new();
        table.insert("name".into(), name.into());
        table.insert("world".into(), world.into());
        table.insert("path".into(), super::plugin(package).display().to_string().into());
        PluginTable {
            table,
            config: Table::new(),
        }
    }

    /// Set a plugin setting (`on_error`, `deadline`, `suspend_after`, …).
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> PluginTable {
        self.table.insert(key.into(), value.into());
        self
    }

    /// Set a key of its `[plugins.config]`.
    pub fn config(mut self, key: &str, value: impl Into<Value>) -> PluginTable {
        self.config.insert(key.into(), value.into());
        self
    }

    /// As TOML, a `[[plugins]]` table to put in a config.
    pub fn render(&self) -> String {
        let mut table = self.table.clone();
        if !self.config.is_empty() {
            table.insert("config".into(), Value::Table(self.config.clone()));
        }
        let mut document = Table::new();
        document.insert("plugins".into(), Value::Array(vec![Value::Table(table)]));
        toml::to_string(&document).expect("a table renders")
    }
}

/// Several plugin tables, in order.
pub fn plugins(tables: &[PluginTable]) -> String {
    tables.iter().map(PluginTable::render).collect::<Vec<_>>().join("\n")
}
