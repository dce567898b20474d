//! The live set: everything built from one version of the config file and
//! the plugin files — ingest routes, plugins, sinks, dial-out sources, the
//! admin token. A reload builds the next one beside it and swaps the two;
//! whoever holds the old one (a request being answered, an event halfway
//! through the pipeline, a delivery attempt) finishes with it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::config::{Config, ConfigError, Errors, Secret};
use crate::ingest::Routes;
use crate::ingest::listener::Limits;
use crate::ingest::unifi_ws::UnifiWs;
use crate::pipeline::Pipeline;
use crate::plugins::{Components, Runtime};
use crate::sinks::Sinks;
use crate::time::now_ms;
use crate::vendors::Settings;

/// One version of everything the config and plugin files describe.
pub struct Generation {
    /// The config it was built from.
    pub config: Config,
    /// Where each source is served, and the request limits.
    pub routes: Arc<Routes>,
    /// How connections are taken (limits, TLS).
    pub connections: Arc<Limits>,
    /// The plugins, in the order they run.
    pub pipeline: Arc<Pipeline>,
    /// Where commands go.
    pub sinks: Arc<Sinks>,
    /// Sources we dial; the reloader keeps unchanged ones connected.
    pub dialers: Vec<UnifiWs>,
    /// The bearer token of the `/admin/` endpoints; `None` turns them off.
    pub admin_token: Option<Secret>,
    /// Each source's secret files as read for it: (source, file, SHA-256
    /// of the content), so that a reload can say a secret changed and the
    /// file watch can see it change again.
    pub secret_files: Vec<(String, PathBuf, String)>,
    /// When it was built (ms).
    pub loaded_at: i64,
}

impl Generation {
    /// Build every part of `config`: read every secret, load every plugin
    /// — its compiled code reused from `previous` when its file did not
    /// change, else from the disk cache in `compiled`, else compiled now —
    /// and set up the sinks. Blocking: compiling takes a while.
    pub fn build(
        config: Config,
        runtime: &Runtime,
        compiled: Option<&Path>,
        previous: Option<&Generation>,
    ) -> Result<Generation, ConfigError> {
        // Every part is built even after one fails, so that every problem
        // is reported at once.
        let mut errors = Errors::default();
        // Before the routes read them: a change in between reloads once more.
        let secret_files = secret_files(&config);
        let routes = errors.keep(Routes::from_config(&config));
        let tls = errors.keep(crate::ingest::tls::acceptor(&config));
        let mut dialers = Vec::new();
        for (i, source) in config.sources.iter().enumerate() {
            if let Settings::UnifiAccessWs(settings) = &source.settings {
                dialers.extend(errors.keep(UnifiWs::from_config(&config, i, settings)));
            }
        }
        let running = previous.into_iter().flat_map(|p| p.pipeline.plugins());
        let components = Components::new(runtime.engine(), compiled.map(Path::to_path_buf), running);
        let pipeline = errors.keep(Pipeline::load(
            &config,
            runtime,
            &components,
            previous.map(|p| &*p.pipeline),
        ));
        if let Some(pipeline) = &pipeline {
            components.prune(pipeline.plugins());
        }
        let sinks = errors.keep(Sinks::build(&config.context(), &config.sinks));
        let admin_token = match &config.admin {
            Some(admin) => {
                let key = if admin.token_env.is_some() {
                    "admin.token_env"
                } else {
                    "admin.token_file"
                };
                errors
                    .keep(config.secret(key, admin.token_env.as_ref(), admin.token_file.as_ref()))
                    .map(Some)
            }
            None => Some(None),
        };
        let (Some(routes), Some(tls), Some(pipeline), Some(sinks), Some(admin_token)) =
            (routes, tls, pipeline, sinks, admin_token)
        else {
            return Err(errors.into_error());
        };
        errors.into_result()?;
        Ok(Generation {
            routes: Arc::new(routes),
            connections: Arc::new(Limits::from_config(&config, tls)),
            pipeline: Arc::new(pipeline),
            sinks: Arc::new(sinks),
            dialers,
            admin_token,
            secret_files,
            loaded_at: now_ms(),
            config,
        })
    }
}

/// Every source's secret files that can be read now, with their content's
/// SHA-256.
fn secret_files(config: &Config) -> Vec<(String, PathBuf, String)> {
    use sha2::Digest;
    let mut files = Vec::new();
    for source in &config.sources {
        for file in source.secret_files() {
            let file = config.resolve(file);
            if let Ok(bytes) = crate::files::read(&file, crate::files::SECRET_LIMIT) {
                let sha = hex::encode(sha2::Sha256::digest(&bytes));
                files.push((source.name.clone(), file, sha));
            }
        }
    }
    files
}

/// The running generation. Readers take a cheap snapshot ([`Live::current`])
/// and keep it for as long as one request, event or delivery lasts.
pub struct Live {
    current: RwLock<Arc<Generation>>,
}

impl Live {
    pub fn new(generation: Generation) -> Live {
        Live {
            current: RwLock::new(Arc::new(generation)),
        }
    }

    /// The generation running now.
    pub fn current(&self) -> Arc<Generation> {
        // Only `swap` writes, and it cannot panic while holding the lock.
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Make `next` the running generation; returns the one it replaced.
    pub fn swap(&self, next: Generation) -> Arc<Generation> {
        let next = Arc::new(next);
        std::mem::replace(&mut *self.current.write().unwrap_or_else(|e| e.into_inner()), next)
    }
}
