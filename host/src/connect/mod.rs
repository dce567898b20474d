//! `vestibule connect`: make each vendor's webhook subscription match the
//! source's `[sources.connect]`, keep its secret in the source's secret
//! file, find drift (`--check`), remove ours (`--remove`) and rotate the
//! secret with an overlap (`--rotate`).
//!
//! Every run lists what the vendor holds first, so a wrong token, an
//! unreachable API or an untrusted certificate stops it before anything
//! changes, here or there. Ours is told from others by name (and by URL
//! where the vendor has no names). What the vendors' documents leave out is
//! assumed in one place, [`assumed`].

mod api;
pub mod assumed;
mod bas_ip;
mod pdk;
pub mod secrets;
pub mod status;
mod unifi;
mod unloc;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Config, SourceConfig, VendorKind};
use crate::settings::Secret;
use crate::vendors::connect::ConnectSettings;
use api::Api;

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Make the vendor's side match; with `dry_run`, only say how.
    Apply { dry_run: bool },
    /// Report drift; change nothing.
    Check,
    /// Delete our subscriptions.
    Remove,
    /// A new secret, the old one still accepted for `grace`.
    Rotate { grace: Duration },
}

/// Why a vendor's API could not be used. Callers branch on `Duplicate`.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Config(String),
    #[error("cannot reach {api}: {reason}")]
    Unreachable { api: String, reason: String },
    #[error(
        "{api}: its TLS certificate is not trusted ({reason}); pin its CA with `ca_file`, or set `accept_invalid_certs = true`"
    )]
    Certificate { api: String, reason: String },
    #[error("{api} refused the API credentials ({status}): {message}")]
    Unauthorized { api: String, status: u16, message: String },
    #[error("{api} answered {status}: {message}")]
    Vendor { api: String, status: u16, message: String },
    #[error("{api} says the subscription exists already: {message}")]
    Duplicate { api: String, message: String },
    #[error("{api}: unexpected answer: {message}")]
    Answer { api: String, message: String },
}

/// One subscription as the vendor holds it.
#[derive(Debug, Clone, Default)]
pub struct Subscription {
    pub id: String,
    pub name: String,
    /// Where it posts (without credentials).
    pub url: String,
    pub events: Vec<String>,
    pub headers: BTreeMap<String, String>,
    pub enabled: bool,
    /// When the vendor turns it off, ms since the epoch.
    pub expires_at: Option<i64>,
    /// Its secret, where the vendor shows it.
    pub secret: Option<Secret>,
    /// The vendor's other settings, as text, for comparing.
    pub settings: BTreeMap<&'static str, String>,
}

/// The subscription the config asks for.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub headers: BTreeMap<String, String>,
    /// The secret we chose (not for vendors that generate theirs).
    pub secret: Option<Secret>,
    pub settings: BTreeMap<&'static str, String>,
}

/// One vendor's subscription API.
#[allow(async_fn_in_trait)]
pub(crate) trait Remote {
    /// Whether the vendor generates each subscription's secret (UniFi).
    fn generates_secret(&self) -> bool {
        false
    }
    /// Whether `have` is ours: by name, unless the vendor has none.
    fn is_ours(&self, have: &Subscription, want: &Wanted) -> bool {
        have.name == want.name
    }
    /// What the vendor cannot hold of `want` taken out of it (Unloc has
    /// no names, and one trigger for events).
    fn shape(&self, want: &mut Wanted) {
        let _ = want;
    }
    /// The vendor's own settings the subscription should have, as text.
    fn wanted_settings(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::new()
    }
    async fn list(&self) -> Result<Vec<Subscription>, ConnectError>;
    async fn create(&self, want: &Wanted) -> Result<Subscription, ConnectError>;
    /// Make subscription `id` what `want` says; it as it is now (its id may
    /// change where the vendor can only delete and re-create).
    async fn update(&self, id: &str, want: &Wanted) -> Result<Subscription, ConnectError>;
    async fn delete(&self, id: &str) -> Result<(), ConnectError>;
}

/// What a run found for one source: the lines it printed and, for
/// `--check`, the drift.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
    pub problems: Vec<String>,
}

/// Run `job` for every source with `[sources.connect]` (or only `only`).
/// Each source's lines are printed as it goes; the drift of all of them is
/// returned. An error stops the run at that source.
pub async fn run(config: &Config, only: Option<&str>, job: Job) -> anyhow::Result<Vec<(String, Report)>> {
    let chosen: Vec<(usize, &SourceConfig, &ConnectSettings)> = config
        .sources
        .iter()
        .enumerate()
        .filter(|(_, s)| only.is_none_or(|name| s.name == name))
        .filter_map(|(i, s)| s.connect.as_ref().map(|c| (i, s, c)))
        .collect();
    if chosen.is_empty() {
        return Err(match only {
            Some(name) if config.sources.iter().any(|s| s.name == name) => {
                anyhow::anyhow!("source `{name}` has no [sources.connect] table")
            }
            Some(name) => anyhow::anyhow!("no source named `{name}` in {}", config.file.display()),
            None => anyhow::anyhow!("no source in {} has a [sources.connect] table", config.file.display()),
        });
    }
    let host = Host::of(config);
    let mut reports = Vec::new();
    for (index, source, connect) in chosen {
        let mut job_run = SourceRun::new(config, index, source, connect, &host)?;
        let report = job_run.run(job).await?;
        if job == Job::Check || matches!(job, Job::Apply { dry_run: false }) {
            let id = job_run.subscription.clone();
            status::record(config, &source.name, &report.problems, id.as_deref())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        reports.push((source.name.clone(), report));
    }
    Ok(reports)
}

/// One source's run.
struct SourceRun<'a> {
    source: &'a SourceConfig,
    /// Where its secret is kept, and the key that names it.
    secret_file: PathBuf,
    secret_key: String,
    want: Wanted,
    remote: Option<Vendor>,
    host: &'a Host,
    /// The subscription's id once known.
    subscription: Option<String>,
}

/// The vendors `connect` has an API for.
enum Vendor {
    Unifi(unifi::Unifi),
    Pdk(pdk::Pdk),
    Unloc(unloc::Unloc),
    BasIp(bas_ip::BasIp),
}

impl<'a> SourceRun<'a> {
    fn new(
        config: &'a Config,
        index: usize,
        source: &'a SourceConfig,
        connect: &'a ConnectSettings,
        host: &'a Host,
    ) -> anyhow::Result<SourceRun<'a>> {
        let key = |k: &str| format!("sources[{index}].{k}");
        let config_error = |k: String, message: &str| anyhow::anyhow!("{}", config.error(k, message));
        let settings = source.settings.source();
        let auth = settings.auth().unwrap_or_default();
        // Where the secret goes: the source's first secret file (Unloc: the
        // Basic password's file).
        let (secret_file, secret_key) = if source.vendor == VendorKind::Unloc {
            let file = auth.basic_auth.and_then(|b| b.password_file.clone()).ok_or_else(|| {
                config_error(
                    key("basic_auth.password_file"),
                    "`vestibule connect` writes the Basic password to a file: set `password_file`",
                )
            })?;
            (file, key("basic_auth.password_file"))
        } else {
            let file = auth.secret_file.and_then(|f| f.iter().next().cloned()).ok_or_else(|| {
                config_error(
                    key("secret_file"),
                    "`vestibule connect` writes the secret to a file: set `secret_file` (not `secret_env`)",
                )
            })?;
            (file, key("secret_file"))
        };
        let mut headers = BTreeMap::new();
        for (name, value) in auth.headers.into_iter().flatten() {
            let value = match value {
                crate::settings::HeaderValue::Plain(v) => v.clone(),
                crate::settings::HeaderValue::Secret(s) => {
                    let secret = config
                        .secret(
                            &key(&format!("headers.{name}")),
                            s.secret_env.as_ref(),
                            s.secret_file.as_ref(),
                        )
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    format!("{}{}", s.prefix, secret.expose())
                }
            };
            headers.insert(name.clone(), value);
        }
        let want = Wanted {
            name: connect.name(&source.name),
            url: connect.public_url.clone(),
            events: connect.events(source.vendor),
            headers,
            secret: None,
            settings: BTreeMap::new(),
        };
        let remote = if source.vendor == VendorKind::Verkada {
            None
        } else {
            let token = config
                .secret(
                    &key("connect.token_env"),
                    connect.token_env.as_ref(),
                    connect.token_file.as_ref(),
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let tls = match &connect.ca_file {
                Some(file) => {
                    let file = config.resolve(file);
                    let pem = crate::files::read(&file, crate::files::PEM_LIMIT).map_err(|e| {
                        config_error(key("connect.ca_file"), &format!("cannot read {}: {e}", file.display()))
                    })?;
                    Some(pem)
                }
                None => None,
            };
            let tls = crate::client_tls::config(tls.as_deref(), connect.accept_invalid_certs)
                .map_err(|e| config_error(key("connect.ca_file"), &e))?;
            let timeout = connect.timeout.map_or(Duration::from_secs(10), |d| d.0);
            let api = |default: &str, authorization: String| {
                Api::new(
                    connect.api.as_deref().unwrap_or(default),
                    Some(Secret::new(authorization)),
                    Some(std::sync::Arc::new(tls.clone())),
                    timeout,
                )
            };
            let bearer = format!("Bearer {}", token.expose());
            Some(match source.vendor {
                VendorKind::UnifiAccess => Vendor::Unifi(unifi::Unifi::new(api("", bearer)?)),
                VendorKind::Pdk => {
                    let basic = match auth.basic_auth {
                        None => None,
                        Some(basic) => {
                            let password = config
                                .secret(
                                    &key("basic_auth.password_env"),
                                    basic.password_env.as_ref(),
                                    basic.password_file.as_ref(),
                                )
                                .map_err(|e| anyhow::anyhow!("{e}"))?;
                            Some((basic.username.clone(), password))
                        }
                    };
                    Vendor::Pdk(pdk::Pdk::new(api(pdk::API, bearer)?, connect, basic)?)
                }
                VendorKind::Unloc => {
                    let user = auth.basic_auth.map(|b| b.username.clone()).unwrap_or_default();
                    if user.is_empty()
                        || user
                            .chars()
                            .any(|c| crate::vendors::connect::RFC3986_RESERVED.contains(c))
                    {
                        return Err(config_error(
                            key("basic_auth.username"),
                            "Unloc puts it in the URL: it must not be empty or hold : / ? # [ ] @ ! $ & ' ( ) * + , ; =",
                        ));
                    }
                    Vendor::Unloc(unloc::Unloc::new(
                        api(assumed::UNLOC_API, assumed::unloc_authorization(&token))?,
                        connect,
                        user,
                    ))
                }
                VendorKind::BasIp => Vendor::BasIp(bas_ip::BasIp::new(
                    api("", assumed::bas_ip_authorization(&token))?,
                    connect,
                )),
                other => return Err(anyhow::anyhow!("`vestibule connect` cannot set up {other} sources")),
            })
        };
        Ok(SourceRun {
            source,
            secret_file: config.resolve(&secret_file),
            secret_key,
            want,
            remote,
            host,
            subscription: None,
        })
    }

    async fn run(&mut self, job: Job) -> anyhow::Result<Report> {
        let mut report = Report::default();
        let api = match &self.remote {
            Some(Vendor::Unifi(r)) => r.api.base().to_string(),
            Some(Vendor::Pdk(r)) => r.api.base().to_string(),
            Some(Vendor::Unloc(r)) => r.api.base().to_string(),
            Some(Vendor::BasIp(r)) => r.api.base().to_string(),
            None => "set up in Verkada Command".to_string(),
        };
        println!("{} ({}, {api}):", self.source.name, self.source.vendor);
        let result = match self.remote.take() {
            Some(Vendor::Unifi(r)) => self.with(&r, job, &mut report).await,
            Some(Vendor::Pdk(r)) => self.with(&r, job, &mut report).await,
            Some(Vendor::Unloc(r)) => self.with(&r, job, &mut report).await,
            Some(Vendor::BasIp(r)) => self.with(&r, job, &mut report).await,
            None => self.verkada(job, &mut report).await,
        };
        result.map_err(|e| anyhow::anyhow!("{}: {e}", self.source.name))?;
        Ok(report)
    }

    fn say(report: &mut Report, line: String) {
        println!("  {line}");
        report.lines.push(line);
    }

    /// The secrets in the file now, first the one in use.
    fn secrets(&self) -> anyhow::Result<Vec<Secret>> {
        secrets::read(&self.secret_file).map_err(|e| anyhow::anyhow!("{}: {e}", self.secret_key))
    }

    fn write_secrets(&self, secrets: &[&Secret]) -> anyhow::Result<()> {
        secrets::write(&self.secret_file, secrets).map_err(|e| anyhow::anyhow!("{e}"))
    }

    async fn with<R: Remote>(&mut self, remote: &R, job: Job, report: &mut Report) -> anyhow::Result<()> {
        let generates = remote.generates_secret();
        let held = self.secrets()?;
        let have = remote.list().await?;
        let mut want = self.want.clone();
        want.settings = remote.wanted_settings();
        remote.shape(&mut want);
        let mut new_secret = None;
        if !generates {
            want.secret = match held.first() {
                Some(secret) => Some(secret.clone()),
                None if job == Job::Check => None,
                None => {
                    let secret = secrets::generate(secrets::LENGTH).map_err(|e| anyhow::anyhow!(e))?;
                    new_secret = Some(secret.clone());
                    Some(secret)
                }
            };
        }
        let plan = plan(remote, &have, &want);
        self.subscription = plan.kept().map(str::to_string);
        match job {
            Job::Check => {
                for line in plan.describe(&want) {
                    Self::say(report, line);
                }
                report.problems = plan.problems();
                if held.is_empty() {
                    report.problems.push(format!(
                        "the secret file {} is missing or empty",
                        self.secret_file.display()
                    ));
                } else if let Some(current) = plan.current()
                    && let Some(theirs) = &current.secret
                    && Some(theirs) != held.first()
                {
                    report.problems.push(format!(
                        "the vendor's secret is not the one in use in {}",
                        self.secret_file.display()
                    ));
                }
                if report.problems.is_empty() {
                    Self::say(report, "in sync".into());
                } else {
                    for problem in report.problems.clone() {
                        Self::say(report, format!("DRIFT: {problem}"));
                    }
                }
                Ok(())
            }
            Job::Apply { dry_run } => {
                for line in plan.describe(&want) {
                    Self::say(report, line);
                }
                if dry_run {
                    if new_secret.is_some() {
                        Self::say(
                            report,
                            format!("would write a new secret to {}", self.secret_file.display()),
                        );
                    } else if generates {
                        Self::say(
                            report,
                            format!("would keep the controller's secret in {}", self.secret_file.display()),
                        );
                    }
                    return Ok(());
                }
                if let Some(secret) = &new_secret {
                    // Before the vendor has it: the host must accept what it sends.
                    self.write_secrets(&[secret])?;
                    Self::say(report, format!("wrote a new secret to {}", self.secret_file.display()));
                    self.host.reload(report).await?;
                }
                let current = self.apply(remote, &plan, &want, report).await?;
                self.subscription = Some(current.id.clone());
                if generates {
                    self.keep_vendor_secret(&current, &held, report).await?;
                }
                if plan.changes() == 0 && new_secret.is_none() {
                    Self::say(report, "nothing to change".into());
                }
                Ok(())
            }
            Job::Remove => {
                let ours: Vec<&Subscription> = have.iter().filter(|s| remote.is_ours(s, &want)).collect();
                if ours.is_empty() {
                    Self::say(report, "nothing to remove".into());
                }
                for sub in ours {
                    remote.delete(&sub.id).await?;
                    Self::say(report, format!("deleted {} {:?} → {}", sub.id, sub.name, sub.url));
                }
                self.subscription = None;
                Ok(())
            }
            Job::Rotate { grace } => {
                let Some(current) = plan.current().cloned() else {
                    anyhow::bail!("no subscription to rotate: run `vestibule connect` first");
                };
                if generates {
                    self.rotate_generated(remote, &current, &held, grace, report).await
                } else {
                    self.rotate_chosen(remote, &current, &held, want, grace, report).await
                }
            }
        }
    }

    /// Carry out `plan`; the subscription as it is afterwards.
    async fn apply<R: Remote>(
        &self,
        remote: &R,
        plan: &Plan,
        want: &Wanted,
        report: &mut Report,
    ) -> anyhow::Result<Subscription> {
        let current = match &plan.main {
            Step::Keep(sub) => sub.clone(),
            Step::Update(sub, _) => remote.update(&sub.id, want).await?,
            Step::Create => match remote.create(want).await {
                Ok(sub) => sub,
                // Made since we listed (another run, a person): take it over.
                Err(ConnectError::Duplicate { .. }) => {
                    let have = remote.list().await?;
                    let found = have
                        .iter()
                        .find(|s| remote.is_ours(s, want) || s.url == want.url)
                        .ok_or_else(|| anyhow::anyhow!("the vendor says it exists but does not list it"))?;
                    Self::say(
                        report,
                        format!("the vendor has it already ({}): updated that one instead", found.id),
                    );
                    remote.update(&found.id, want).await?
                }
                Err(e) => return Err(e.into()),
            },
        };
        for (sub, _) in &plan.delete {
            if sub.id != current.id {
                remote.delete(&sub.id).await?;
            }
        }
        Ok(current)
    }

    /// UniFi: the secret is the controller's; keep the file holding it.
    async fn keep_vendor_secret(
        &self,
        current: &Subscription,
        held: &[Secret],
        report: &mut Report,
    ) -> anyhow::Result<()> {
        let secret = current
            .secret
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the controller did not return the endpoint's secret"))?;
        if held.first() != Some(secret) {
            self.write_secrets(&[secret])?;
            Self::say(
                report,
                format!("wrote the controller's secret to {}", self.secret_file.display()),
            );
            self.host.reload(report).await?;
        }
        Ok(())
    }

    /// Our secret: accept both, move the vendor to the new one, wait, drop
    /// the old.
    async fn rotate_chosen<R: Remote>(
        &self,
        remote: &R,
        current: &Subscription,
        held: &[Secret],
        mut want: Wanted,
        grace: Duration,
        report: &mut Report,
    ) -> anyhow::Result<()> {
        let new = secrets::generate(secrets::LENGTH).map_err(|e| anyhow::anyhow!(e))?;
        let old = held.first();
        self.write_secrets(&[&new].into_iter().chain(old).collect::<Vec<_>>())?;
        Self::say(
            report,
            format!(
                "added a new secret to {}; the old one is still accepted",
                self.secret_file.display()
            ),
        );
        self.host.reload(report).await?;
        want.secret = Some(new.clone());
        let updated = remote.update(&current.id, &want).await?;
        Self::say(
            report,
            format!("updated {}: the vendor now uses the new secret", updated.id),
        );
        self.grace(grace, report).await;
        self.write_secrets(&[&new])?;
        Self::say(
            report,
            format!("dropped the old secret from {}", self.secret_file.display()),
        );
        self.host.reload(report).await?;
        Ok(())
    }

    /// UniFi's secret is generated: a second endpoint, then the first goes.
    async fn rotate_generated<R: Remote>(
        &self,
        remote: &R,
        current: &Subscription,
        held: &[Secret],
        grace: Duration,
        report: &mut Report,
    ) -> anyhow::Result<()> {
        let mut retiring = self.want.clone();
        retiring.name = format!("{} (retiring)", self.want.name);
        remote.update(&current.id, &retiring).await?;
        Self::say(report, format!("renamed {} to {:?}", current.id, retiring.name));
        let created = remote.create(&self.want).await?;
        let new = created
            .secret
            .clone()
            .ok_or_else(|| anyhow::anyhow!("the controller did not return the new endpoint's secret"))?;
        let old = current.secret.as_ref().or(held.first());
        self.write_secrets(&[&new].into_iter().chain(old).collect::<Vec<_>>())?;
        Self::say(report, format!("created {}; both secrets are accepted", created.id));
        self.host.reload(report).await?;
        self.grace(grace, report).await;
        remote.delete(&current.id).await?;
        self.write_secrets(&[&new])?;
        Self::say(report, format!("deleted {} and dropped its secret", current.id));
        self.host.reload(report).await?;
        Ok(())
    }

    async fn grace(&self, grace: Duration, report: &mut Report) {
        Self::say(
            report,
            format!("waiting {grace:?} (the grace period) before dropping the old secret"),
        );
        tokio::time::sleep(grace).await;
    }

    /// Verkada: webhooks are set up by hand in Verkada Command.
    async fn verkada(&mut self, job: Job, report: &mut Report) -> anyhow::Result<()> {
        let held = self.secrets()?;
        let file = self.secret_file.display().to_string();
        let instructions = |report: &mut Report, what: &str| {
            Self::say(report, format!("In Verkada Command, Admin → Webhooks ({what}):"));
            Self::say(report, format!("  URL:    {}", self.want.url));
            Self::say(
                report,
                format!("  secret: the first line of {file} (never printed here)"),
            );
        };
        match job {
            Job::Check => {
                if held.is_empty() {
                    report
                        .problems
                        .push(format!("the secret file {file} is missing or empty"));
                    Self::say(report, format!("DRIFT: the secret file {file} is missing or empty"));
                } else {
                    Self::say(report, "cannot be checked: Verkada has no API for its webhooks".into());
                }
            }
            Job::Apply { dry_run } => {
                if held.is_empty() && dry_run {
                    Self::say(report, format!("would write a new secret to {file}"));
                } else if held.is_empty() {
                    let secret = secrets::generate(secrets::LENGTH).map_err(|e| anyhow::anyhow!(e))?;
                    self.write_secrets(&[&secret])?;
                    Self::say(report, format!("wrote a new secret to {file}"));
                    self.host.reload(report).await?;
                }
                instructions(report, "add a webhook, or check the one there");
            }
            Job::Remove => Self::say(
                report,
                "delete the webhook in Verkada Command; nothing here to remove".into(),
            ),
            Job::Rotate { grace } => {
                let new = secrets::generate(secrets::LENGTH).map_err(|e| anyhow::anyhow!(e))?;
                self.write_secrets(&[&new].into_iter().chain(held.first()).collect::<Vec<_>>())?;
                Self::say(
                    report,
                    format!("added a new secret to {file}; the old one is still accepted"),
                );
                self.host.reload(report).await?;
                instructions(report, "edit the webhook and paste the new secret now");
                self.grace(grace, report).await;
                self.write_secrets(&[&new])?;
                Self::say(report, format!("dropped the old secret from {file}"));
                self.host.reload(report).await?;
            }
        }
        Ok(())
    }
}

/// What to do with the subscription we keep.
#[derive(Debug)]
enum Step {
    Create,
    Keep(Subscription),
    /// It, and why.
    Update(Subscription, Vec<String>),
}

#[derive(Debug)]
struct Plan {
    main: Step,
    /// Other subscriptions of ours, and why they go.
    delete: Vec<(Subscription, String)>,
}

impl Plan {
    fn current(&self) -> Option<&Subscription> {
        match &self.main {
            Step::Create => None,
            Step::Keep(sub) | Step::Update(sub, _) => Some(sub),
        }
    }

    fn kept(&self) -> Option<&str> {
        self.current().map(|s| s.id.as_str())
    }

    fn changes(&self) -> usize {
        usize::from(!matches!(self.main, Step::Keep(_))) + self.delete.len()
    }

    fn describe(&self, want: &Wanted) -> Vec<String> {
        let mut lines = Vec::new();
        match &self.main {
            Step::Create => lines.push(format!(
                "create {}→ {} ({})",
                named(&want.name),
                want.url,
                events(want.events.len())
            )),
            Step::Keep(sub) => lines.push(format!(
                "keep   {} {}→ {} ({})",
                sub.id,
                named(&sub.name),
                sub.url,
                events(sub.events.len())
            )),
            Step::Update(sub, why) => lines.push(format!(
                "update {} {}: {}",
                sub.id,
                named(&sub.name).trim_end(),
                why.join("; ")
            )),
        }
        for (sub, why) in &self.delete {
            lines.push(format!("delete {} {}→ {}: {why}", sub.id, named(&sub.name), sub.url));
        }
        lines
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match &self.main {
            Step::Create => problems.push("the subscription is missing".to_string()),
            Step::Keep(_) => {}
            Step::Update(_, why) => problems.extend(why.iter().cloned()),
        }
        for (sub, why) in &self.delete {
            problems.push(format!("{} {:?} should not exist: {why}", sub.id, sub.name));
        }
        problems
    }
}

/// `"name" `, or nothing for a vendor without names (Unloc).
fn named(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!("{name:?} ")
    }
}

fn events(n: usize) -> String {
    if n == 1 {
        "1 event".into()
    } else {
        format!("{n} events")
    }
}

/// Which of `have` is ours, and what it takes to make it `want`.
fn plan<R: Remote>(remote: &R, have: &[Subscription], want: &Wanted) -> Plan {
    let ours: Vec<&Subscription> = have.iter().filter(|s| remote.is_ours(s, want)).collect();
    let chosen = ours
        .iter()
        .find(|s| s.url == want.url)
        .or(ours.first())
        .copied()
        // One made by hand for our URL under another name: take it over.
        .or_else(|| have.iter().find(|s| s.url == want.url));
    let main = match chosen {
        None => Step::Create,
        Some(sub) => {
            let why = differences(sub, want, remote.generates_secret());
            if why.is_empty() {
                Step::Keep(sub.clone())
            } else {
                Step::Update(sub.clone(), why)
            }
        }
    };
    let delete = ours
        .into_iter()
        .filter(|s| chosen.is_none_or(|c| c.id != s.id))
        .map(|s| {
            let why = if s.url == want.url {
                "a second subscription for the same URL".to_string()
            } else {
                format!("ours, for an old URL ({})", s.url)
            };
            (s.clone(), why)
        })
        .collect();
    Plan { main, delete }
}

/// How `have` differs from `want`, as a person would say it. Secrets and
/// header values are compared, never shown.
fn differences(have: &Subscription, want: &Wanted, generates_secret: bool) -> Vec<String> {
    let mut why = Vec::new();
    if have.name != want.name {
        why.push(format!("name is {:?}, not {:?}", have.name, want.name));
    }
    if have.url != want.url {
        why.push(format!("URL is {}, not {}", have.url, want.url));
    }
    let (theirs, ours): (BTreeSet<&String>, BTreeSet<&String>) =
        (have.events.iter().collect(), want.events.iter().collect());
    let missing: Vec<&str> = ours.difference(&theirs).map(|e| e.as_str()).collect();
    let extra: Vec<&str> = theirs.difference(&ours).map(|e| e.as_str()).collect();
    if !missing.is_empty() {
        why.push(format!("events lack {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        why.push(format!("events also hold {}", extra.join(", ")));
    }
    if have.headers != want.headers {
        let names: BTreeSet<&String> = have.headers.keys().chain(want.headers.keys()).collect();
        let differ: Vec<&str> = names
            .into_iter()
            .filter(|n| have.headers.get(*n) != want.headers.get(*n))
            .map(|n| n.as_str())
            .collect();
        why.push(format!("headers differ: {}", differ.join(", ")));
    }
    if !have.enabled {
        why.push("it is disabled".into());
    }
    if let Some(at) = have.expires_at
        && at <= crate::time::now_ms()
    {
        why.push(format!("it expired at {}", crate::time::format_iso8601(at / 1000)));
    }
    if !generates_secret
        && let (Some(theirs), Some(ours)) = (&have.secret, &want.secret)
        && theirs != ours
    {
        why.push("its secret is not the one in the secret file".into());
    }
    for (key, value) in &want.settings {
        match have.settings.get(key) {
            Some(theirs) if theirs == value => {}
            Some(theirs) => why.push(format!("{key} is {theirs}, not {value}")),
            None => why.push(format!("{key} is not set, not {value}")),
        }
    }
    why
}

/// The running host, for a reload after a secret file changed.
struct Host {
    /// `None` without `[admin]`: the host picks the file up by watching it.
    api: Option<Api>,
    watch: Option<Duration>,
}

impl Host {
    fn of(config: &Config) -> Host {
        let watch = config.reload.watch.then_some(config.reload.debounce.0);
        let Some(admin) = &config.admin else {
            return Host { api: None, watch };
        };
        let Ok(token) = config.secret("admin.token_env", admin.token_env.as_ref(), admin.token_file.as_ref()) else {
            return Host { api: None, watch };
        };
        let listen = config.server.listen;
        let ip = if listen.ip().is_unspecified() {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        } else {
            listen.ip()
        };
        let scheme = if config.server.tls.is_some() { "https" } else { "http" };
        let base = format!("{scheme}://{}", std::net::SocketAddr::new(ip, listen.port()));
        // Our own host over loopback: its certificate may be for its public name.
        let tls = crate::client_tls::config(None, true).ok().map(std::sync::Arc::new);
        let api = Api::new(
            &base,
            Some(Secret::new(format!("Bearer {}", token.expose()))),
            tls,
            Duration::from_secs(30),
        )
        .ok();
        Host { api, watch }
    }

    /// Ask the running host to reload; say how it went. An error when a
    /// host answered and refused: it would not accept the new secret, so
    /// the vendor must not be moved to it. No host answering is no error
    /// (none may run yet); its file watch is then given time.
    async fn reload(&self, report: &mut Report) -> anyhow::Result<()> {
        let answered = match &self.api {
            Some(api) => api.call(hyper::Method::POST, "/admin/reload", None).await.ok(),
            None => None,
        };
        match answered {
            Some(answer) if answer.status.is_success() => {
                SourceRun::say(report, "the host reloaded: it accepts the new secret file".into());
            }
            Some(answer) => anyhow::bail!(
                "the running host refused the reload ({}): {}",
                answer.status,
                api::said(&answer)
            ),
            None => {
                SourceRun::say(report, self.unreachable());
                if let Some(debounce) = self.watch {
                    tokio::time::sleep(debounce * 4 + Duration::from_secs(1)).await;
                }
            }
        }
        Ok(())
    }

    fn unreachable(&self) -> String {
        match self.watch {
            Some(_) => "no host answered /admin/reload; a running host reads the file when it sees it change".into(),
            None => "no host answered /admin/reload; a running host reads the file on SIGHUP or at start".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only what `plan` asks of a vendor.
    struct Named;

    impl Remote for Named {
        async fn list(&self) -> Result<Vec<Subscription>, ConnectError> {
            unreachable!()
        }
        async fn create(&self, _: &Wanted) -> Result<Subscription, ConnectError> {
            unreachable!()
        }
        async fn update(&self, _: &str, _: &Wanted) -> Result<Subscription, ConnectError> {
            unreachable!()
        }
        async fn delete(&self, _: &str) -> Result<(), ConnectError> {
            unreachable!()
        }
    }

    fn sub(id: &str, name: &str, url: &str) -> Subscription {
        Subscription {
            id: id.into(),
            name: name.into(),
            url: url.into(),
            events: vec!["a".into()],
            enabled: true,
            secret: Some(Secret::new("theirs")),
            ..Subscription::default()
        }
    }

    fn want() -> Wanted {
        Wanted {
            name: "vestibule-x".into(),
            url: "https://new/ingest/x".into(),
            events: vec!["a".into()],
            headers: BTreeMap::new(),
            secret: Some(Secret::new("ours")),
            settings: BTreeMap::new(),
        }
    }

    #[test]
    fn ours_for_our_url_is_kept_and_the_others_of_ours_go() {
        let have = [
            sub("1", "vestibule-x", "https://old/ingest/x"),
            sub("2", "someone", "https://elsewhere"),
            sub("3", "vestibule-x", "https://new/ingest/x"),
            sub("4", "vestibule-x", "https://new/ingest/x"),
        ];
        let plan = plan(&Named, &have, &want());
        let Step::Update(kept, why) = &plan.main else {
            panic!("{plan:?}")
        };
        assert_eq!(kept.id, "3");
        assert_eq!(
            why,
            &["its secret is not the one in the secret file"],
            "the value is never shown"
        );
        let deleted: Vec<(&str, &str)> = plan
            .delete
            .iter()
            .map(|(s, why)| (s.id.as_str(), why.as_str()))
            .collect();
        assert_eq!(
            deleted,
            [
                ("1", "ours, for an old URL (https://old/ingest/x)"),
                ("4", "a second subscription for the same URL")
            ]
        );
    }

    #[test]
    fn one_made_by_hand_for_our_url_is_taken_over() {
        let have = [sub("7", "Vestibule (by hand)", "https://new/ingest/x")];
        let mut wanted = want();
        wanted.secret = Some(Secret::new("theirs"));
        let plan = plan(&Named, &have, &wanted);
        let Step::Update(kept, why) = &plan.main else {
            panic!("{plan:?}")
        };
        assert_eq!(
            (kept.id.as_str(), why.as_slice()),
            (
                "7",
                &["name is \"Vestibule (by hand)\", not \"vestibule-x\"".to_string()][..]
            )
        );
        assert!(plan.delete.is_empty());
        assert!(matches!(super::plan(&Named, &[], &wanted).main, Step::Create));
    }
}
