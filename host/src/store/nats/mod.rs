//! The cluster store: NATS JetStream keeps what one SQLite file keeps on
//! one machine, replicated by JetStream's Raft groups, so that any node —
//! of Vestibule or of NATS — can die and nothing acknowledged is lost.
//!
//! Six streams, named `<prefix>_…` (see [`Layout`]):
//!
//! - `EVENTS`: every accepted event, on `<prefix>.events.<partition>`, the
//!   partition a hash of (source, door). Its `Nats-Msg-Id` is the (source,
//!   event id) key, so a vendor's retry to any node within `dedup_window` is
//!   a duplicate. Kept for `retention`.
//! - `RUNS`: what the pipeline did with each run of an event (the steps and
//!   the commands), on `<prefix>.runs.<event seq>`.
//! - `COMMANDS`: commands to deliver, a work queue: on
//!   `<prefix>.commands.<partition>` by (sink, door), or, when delayed
//!   (`send-later`), on `<prefix>.delayed.<slot>` by (plugin, sink, door).
//!   Its `Nats-Msg-Id` is the command's idempotency key: an event run again
//!   after its node died stores each command once.
//! - `STATE`: the attempts at each command (the last per command), so that
//!   another node continues its count, wait and `max_age`.
//! - `DEAD`: dead letters, commands and events; kept until retried or dropped.
//! - `META`: the key derived event ids are made with, shared by every node.
//!
//! Each partition has a durable pull consumer that lets one message out at
//! a time (`max_ack_pending = 1`): whichever node pulls it works on it, and
//! the next event of that door is handed out only once it is acknowledged.
//! That is what keeps one door's events, and one door's commands to one
//! sink, in order across the cluster. It uses nothing a 2.10 server lacks.

mod journal;
mod records;
mod wire;

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use sha2::{Digest, Sha256};

pub use journal::NatsJournal;
pub use records::NatsRecords;

use crate::config::Config;
use crate::event::IdKey;
use crate::store::StoreError;

/// Publishes that fail because no server answers (a leader election) are
/// tried again, with the same `Nats-Msg-Id`, for this long; then ingest
/// answers 503 and the vendor retries.
const PUBLISH_PATIENCE: Duration = Duration::from_secs(8);

/// How long a starting node waits for the cluster to be ready (streams
/// made, leaders elected) before it gives up.
const STARTUP_PATIENCE: Duration = Duration::from_secs(30);

/// How delayed commands may wait at once, cluster-wide.
const DELAYED_IN_FLIGHT: i64 = 100_000;

/// What the cluster store needs from `[store]`.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub layout: Layout,
    pub replicas: usize,
    pub ack_wait: Duration,
    pub dedup_window: Duration,
    pub retention: Duration,
    pub node: String,
}

impl ClusterSettings {
    pub fn from_config(config: &Config) -> ClusterSettings {
        let store = &config.store;
        ClusterSettings {
            layout: Layout {
                prefix: store.stream_prefix.clone(),
                partitions: store.partitions,
            },
            replicas: store.replicas,
            ack_wait: store.ack_wait.0,
            dedup_window: store.dedup_window.0,
            retention: store.retention.0,
            node: store.node.clone().unwrap_or_else(default_node),
        }
    }
}

/// This machine's name and this process: two nodes on one machine differ.
fn default_node() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "vestibule".into());
    format!("{host}-{}", std::process::id())
}

/// The names of the streams, subjects and consumers.
#[derive(Debug, Clone)]
pub struct Layout {
    pub prefix: String,
    pub partitions: u32,
}

impl Layout {
    pub fn stream(&self, which: &str) -> String {
        format!("{}_{which}", self.prefix)
    }

    fn partition(&self, parts: &[&str]) -> u32 {
        // A hash every node computes alike (std's is seeded per process).
        let digest = hash(parts);
        let n = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        (n % u64::from(self.partitions)) as u32
    }

    pub fn event_subject(&self, source: &str, lane: &str) -> String {
        format!("{}.events.{}", self.prefix, self.partition(&[source, lane]))
    }

    pub fn command_subject(&self, sink: &str, door: &str) -> String {
        format!("{}.commands.{}", self.prefix, self.partition(&[sink, door]))
    }

    /// One subject per (plugin, sink, door): the newest message on it is
    /// the delayed command that replaced the others.
    pub fn delayed_subject(&self, plugin: &str, sink: &str, door: &str) -> String {
        format!(
            "{}.delayed.{}",
            self.prefix,
            hex::encode(&hash(&[plugin, sink, door])[..12])
        )
    }

    /// Where the newest delayed command of a (plugin, sink, door) is
    /// named: the commands stream is a work queue, so a later command that
    /// was already sent is no longer there to be found.
    pub fn slot_subject(&self, plugin: &str, sink: &str, door: &str) -> String {
        format!(
            "{}.slot.{}",
            self.prefix,
            hex::encode(&hash(&[plugin, sink, door])[..12])
        )
    }

    pub fn run_subject(&self, event_seq: i64) -> String {
        format!("{}.runs.{event_seq}", self.prefix)
    }

    pub fn state_subject(&self, command_seq: u64) -> String {
        format!("{}.state.{command_seq}", self.prefix)
    }

    pub fn dead_command_subject(&self, command_seq: u64) -> String {
        format!("{}.dead.commands.{command_seq}", self.prefix)
    }

    pub fn dead_event_subject(&self, event_seq: i64) -> String {
        format!("{}.dead.events.{event_seq}", self.prefix)
    }

    fn id_key_subject(&self) -> String {
        format!("{}.meta.id-key", self.prefix)
    }

    /// The consumer of event partition `p`, of command partition `p`, and
    /// of the delayed commands.
    pub fn event_consumer(p: u32) -> String {
        format!("events-{p}")
    }
    pub fn command_consumer(p: u32) -> String {
        format!("commands-{p}")
    }
    pub const DELAYED_CONSUMER: &str = "delayed";

    /// The `Nats-Msg-Id` of an event: its (source, event id), hashed so that
    /// no vendor's id can break the header.
    pub fn event_msg_id(source: &str, event_id: &str) -> String {
        hex::encode(&hash(&[source, event_id])[..16])
    }
}

fn hash(parts: &[&str]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize().into()
}

/// A connection to the cluster and what the store keeps in it.
#[derive(Clone)]
pub struct Cluster {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub settings: ClusterSettings,
}

impl Cluster {
    /// Connect to the servers `config` names with the credentials it names.
    pub async fn connect(config: &Config) -> Result<Cluster, StoreError> {
        let settings = ClusterSettings::from_config(config);
        let store = &config.store;
        let open = |message: String| StoreError::Open {
            path: config.file.clone(),
            message,
        };
        let mut options = async_nats::ConnectOptions::new()
            .name(format!("vestibule {}", settings.node))
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(Duration::from_secs(5)))
            .retry_on_initial_connect()
            .max_reconnects(None);
        let secret = |key: &str, env: Option<&String>, file: Option<&std::path::PathBuf>| {
            config
                .secret(key, env, file)
                .map(|s| s.expose().to_string())
                .map_err(|e| open(e.to_string()))
        };
        if store.token_env.is_some() || store.token_file.is_some() {
            options = options.token(secret(
                "store.token_env",
                store.token_env.as_ref(),
                store.token_file.as_ref(),
            )?);
        }
        if let Some(user) = &store.user {
            let password = secret(
                "store.password_env",
                store.password_env.as_ref(),
                store.password_file.as_ref(),
            )?;
            options = options.user_and_password(user.clone(), password);
        }
        if store.nkey_env.is_some() || store.nkey_file.is_some() {
            options = options.nkey(secret(
                "store.nkey_env",
                store.nkey_env.as_ref(),
                store.nkey_file.as_ref(),
            )?);
        }
        if let Some(creds) = &store.creds_file {
            let path = config.resolve(creds);
            options = options
                .credentials_file(&path)
                .await
                .map_err(|e| open(format!("store.creds_file: {}: {e}", path.display())))?;
        }
        let servers: Vec<async_nats::ServerAddr> = store
            .servers
            .iter()
            .map(|s| s.parse().map_err(|e| open(format!("store.servers: `{s}`: {e}"))))
            .collect::<Result<_, _>>()?;
        // `retry_on_initial_connect` returns at once; the first request
        // below waits for the connection, bounded by its own timeout.
        let client = options
            .connect(servers)
            .await
            .map_err(|e| open(format!("store.servers: cannot connect: {e}")))?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(Duration::from_secs(5));
        Ok(Cluster { client, js, settings })
    }

    /// Wait until a server answers, for up to `within`: the command line
    /// says at once that none does, rather than after a request times out.
    pub async fn connected(&self, within: Duration) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + within;
        while self.client.connection_state() != async_nats::connection::State::Connected {
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::Cluster(format!(
                    "no server of store.servers answered within {within:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    pub fn layout(&self) -> &Layout {
        &self.settings.layout
    }

    /// The streams the store keeps, with the settings it wants.
    pub fn wanted_streams(&self) -> Vec<stream::Config> {
        let s = &self.settings;
        let layout = &s.layout;
        let prefix = &layout.prefix;
        let base = |name: &str, subjects: Vec<String>| stream::Config {
            name: layout.stream(name),
            subjects,
            num_replicas: s.replicas,
            storage: stream::StorageType::File,
            // Replicated, and the leader answers reads; no direct gets from
            // followers, so what the CLI reads is never behind.
            ..Default::default()
        };
        let two_minutes = Duration::from_secs(120);
        vec![
            stream::Config {
                max_age: s.retention,
                duplicate_window: s.dedup_window,
                description: Some("Vestibule: accepted events".into()),
                ..base("EVENTS", vec![format!("{prefix}.events.*")])
            },
            stream::Config {
                max_age: s.retention,
                duplicate_window: two_minutes.min(s.retention),
                description: Some("Vestibule: what each run of an event did".into()),
                ..base("RUNS", vec![format!("{prefix}.runs.*")])
            },
            stream::Config {
                retention: stream::RetentionPolicy::WorkQueue,
                duplicate_window: s.dedup_window,
                description: Some("Vestibule: commands to deliver".into()),
                ..base(
                    "COMMANDS",
                    vec![format!("{prefix}.commands.*"), format!("{prefix}.delayed.*")],
                )
            },
            stream::Config {
                max_age: s.retention,
                max_messages_per_subject: 1,
                duplicate_window: two_minutes.min(s.retention),
                description: Some(
                    "Vestibule: the attempts at each command, the newest delayed one of each slot".into(),
                ),
                ..base("STATE", vec![format!("{prefix}.state.*"), format!("{prefix}.slot.*")])
            },
            stream::Config {
                duplicate_window: two_minutes,
                description: Some("Vestibule: dead letters".into()),
                ..base(
                    "DEAD",
                    vec![format!("{prefix}.dead.commands.*"), format!("{prefix}.dead.events.*")],
                )
            },
            stream::Config {
                max_messages_per_subject: 1,
                duplicate_window: two_minutes,
                description: Some("Vestibule: keys the nodes share".into()),
                ..base("META", vec![format!("{prefix}.meta.>")])
            },
        ]
    }

    /// The consumers the nodes pull from, by stream.
    pub fn wanted_consumers(&self) -> Vec<(String, consumer::pull::Config)> {
        let s = &self.settings;
        let layout = &s.layout;
        let one_at_a_time = |name: String, filter: String| consumer::pull::Config {
            durable_name: Some(name),
            filter_subject: filter,
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: s.ack_wait,
            max_deliver: -1,
            max_ack_pending: 1,
            num_replicas: s.replicas,
            ..Default::default()
        };
        let mut wanted = Vec::new();
        for p in 0..layout.partitions {
            wanted.push((
                layout.stream("EVENTS"),
                one_at_a_time(Layout::event_consumer(p), format!("{}.events.{p}", layout.prefix)),
            ));
        }
        for p in 0..layout.partitions {
            wanted.push((
                layout.stream("COMMANDS"),
                one_at_a_time(Layout::command_consumer(p), format!("{}.commands.{p}", layout.prefix)),
            ));
        }
        wanted.push((
            layout.stream("COMMANDS"),
            consumer::pull::Config {
                max_ack_pending: DELAYED_IN_FLIGHT,
                ..one_at_a_time(Layout::DELAYED_CONSUMER.into(), format!("{}.delayed.*", layout.prefix))
            },
        ));
        wanted
    }

    /// Create the streams and consumers, or bring their settings to what
    /// the config asks for. Every node does this at start; JetStream makes
    /// it idempotent.
    pub async fn ensure(&self) -> Result<(), StoreError> {
        for config in self.wanted_streams() {
            let name = config.name.clone();
            self.js
                .create_or_update_stream(config)
                .await
                .map_err(|e| StoreError::Cluster(format!("stream {name}: {e}")))?;
        }
        for (stream, config) in self.wanted_consumers() {
            let name = config.durable_name.clone().unwrap_or_default();
            let handle = self
                .js
                .get_stream_no_info(&stream)
                .await
                .map_err(|e| StoreError::Cluster(format!("stream {stream}: {e}")))?;
            handle
                .create_consumer(config)
                .await
                .map_err(|e| StoreError::Cluster(format!("consumer {name} on {stream}: {e}")))?;
        }
        Ok(())
    }

    /// What `vestibule check` says about the cluster: one line per stream,
    /// an error for each whose settings differ from the wanted ones in a
    /// way a start could not change.
    pub async fn check(&self) -> Result<Vec<String>, StoreError> {
        let account = self
            .js
            .query_account()
            .await
            .map_err(|e| StoreError::Cluster(format!("JetStream is not available: {e}")))?;
        let mut lines = vec![format!(
            "JetStream reachable: {} stream(s), {} consumer(s) in this account",
            account.streams, account.consumers
        )];
        let mut problems = Vec::new();
        for wanted in self.wanted_streams() {
            match self.js.get_stream(&wanted.name).await {
                Ok(mut stream) => {
                    let info = stream
                        .info()
                        .await
                        .map_err(|e| StoreError::Cluster(format!("stream {}: {e}", wanted.name)))?;
                    let have = &info.config;
                    if have.retention != wanted.retention {
                        problems.push(format!(
                            "stream {} has retention {:?}, expected {:?}: a stream's retention cannot change; \
                             delete it or choose another store.stream_prefix",
                            wanted.name, have.retention, wanted.retention
                        ));
                    }
                    let mut changes = Vec::new();
                    if have.num_replicas != wanted.num_replicas {
                        changes.push(format!("replicas {} → {}", have.num_replicas, wanted.num_replicas));
                    }
                    if have.duplicate_window != wanted.duplicate_window {
                        changes.push(format!(
                            "duplicate window {:?} → {:?}",
                            have.duplicate_window, wanted.duplicate_window
                        ));
                    }
                    if have.max_age != wanted.max_age {
                        changes.push(format!("max age {:?} → {:?}", have.max_age, wanted.max_age));
                    }
                    let mut line = format!(
                        "stream {}: exists, {} message(s), {} replica(s)",
                        wanted.name, info.state.messages, have.num_replicas
                    );
                    if !changes.is_empty() {
                        line.push_str(&format!("; the next start updates {}", changes.join(", ")));
                    }
                    lines.push(line);
                }
                Err(e) if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(j) if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
                {
                    lines.push(format!(
                        "stream {}: missing; the first start creates it with {} replica(s)",
                        wanted.name, wanted.num_replicas
                    ));
                }
                Err(e) => return Err(StoreError::Cluster(format!("stream {}: {e}", wanted.name))),
            }
        }
        let needed = self.wanted_streams().len() as i64;
        if let Some(max) = account.limits.max_streams.filter(|max| *max >= 0 && *max < needed) {
            problems.push(format!(
                "the account may have {max} stream(s); the store needs {needed}"
            ));
        }
        if problems.is_empty() {
            Ok(lines)
        } else {
            Err(StoreError::Cluster(problems.join("; ")))
        }
    }

    /// The key derived event ids are made with: made by the first node to
    /// start, read by every other, so all derive the same ids.
    pub async fn id_key(&self) -> Result<IdKey, StoreError> {
        let subject = self.layout().id_key_subject();
        let stream = self.stream("META").await?;
        for _ in 0..3 {
            match stream.get_last_raw_message_by_subject(&subject).await {
                Ok(message) => return parse_id_key(&message.payload),
                Err(e) if missing(&e) => {}
                Err(e) => return Err(StoreError::Cluster(format!("reading the id key: {e}"))),
            }
            let key = IdKey::random();
            // Only if no node wrote one meanwhile; then read theirs.
            let publish = jetstream::message::PublishMessage::build()
                .payload(hex::encode(key.bytes()).into())
                .expected_last_subject_sequence(0);
            let written = match self.js.send_publish(subject.clone(), publish).await {
                Ok(ack) => ack.await.is_ok(),
                Err(_) => false,
            };
            if written {
                return Ok(key);
            }
        }
        Err(StoreError::Cluster("cannot read or write the id key".into()))
    }

    pub async fn stream(&self, which: &str) -> Result<stream::Stream<()>, StoreError> {
        let name = self.layout().stream(which);
        self.js
            .get_stream_no_info(&name)
            .await
            .map_err(|e| StoreError::Cluster(format!("stream {name}: {e}")))
    }
}

fn parse_id_key(payload: &[u8]) -> Result<IdKey, StoreError> {
    let bytes = hex::decode(payload).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
    bytes.map(IdKey::new).ok_or_else(|| {
        StoreError::Cluster("the stored id key is damaged; it is not replaced (ids would change)".into())
    })
}

/// Whether a stream read failed because there is no such message.
pub(crate) fn missing(error: &stream::LastRawMessageError) -> bool {
    match error.kind() {
        stream::LastRawMessageErrorKind::NoMessageFound => true,
        stream::LastRawMessageErrorKind::JetStream(e) => e.error_code() == jetstream::ErrorCode::NO_MESSAGE_FOUND,
        _ => false,
    }
}
