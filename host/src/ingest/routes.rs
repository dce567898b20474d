//! The configured sources by path, and the limits on requests: part of
//! the [live set](crate::live), replaced on reload.

use std::collections::HashMap;

use crate::config::{Config, ConfigError};
use crate::vendors::{self, Vendor};

/// One configured source: a path, a name and a vendor's rules.
pub(super) struct Route {
    pub(super) name: String,
    pub(super) vendor: &'static dyn Vendor,
    pub(super) auth: vendors::Auth,
}

/// The configured sources by path, and the limits on requests.
pub struct Routes {
    pub(super) by_path: HashMap<String, Route>,
    pub(super) max_body: u64,
    pub(super) body_timeout: std::time::Duration,
    /// Events waiting for the pipeline, at most; then 503.
    pub(super) capacity: usize,
}

impl Routes {
    /// Build a route for every `[[sources]]` entry, reading secrets now.
    pub fn from_config(config: &Config) -> Result<Routes, ConfigError> {
        let mut by_path = HashMap::new();
        let mut errors = crate::config::Errors::default();
        for (i, source) in config.sources.iter().enumerate() {
            if source.vendor.dials_out() {
                continue;
            }
            let Some((vendor, auth)) = errors.keep(vendors::build(&config.context(), i, source)) else {
                continue;
            };
            by_path.insert(
                source.path(),
                Route {
                    name: source.name.clone(),
                    vendor,
                    auth,
                },
            );
        }
        errors.or(|| Routes {
            by_path,
            max_body: config.server.max_body.0,
            body_timeout: config.server.body_timeout.0,
            capacity: config.server.queue,
        })
    }
}
