//! The cluster store: NATS JetStream keeps what one SQLite file keeps on
//! one machine, replicated by JetStream's Raft groups, so that any node —
//! of Vestibule or of NATS — can die and nothing acknowledged is lost.
//!
//! Six streams, named `<prefix>_…` (see [`Layout`]):
//!
//! - `EVENTS`: every accepted event, on `<prefix>.events.<partition>.<id>`,
//!   the partition a hash of (source, door), the id a hash of the event id.
//!   Its `Nats-Msg-Id` is the (source, event id) key, so a vendor's retry to
//!   any node within `dedup_window` is a duplicate. Kept for `retention`.
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
//! - `META`: the key derived event ids are made with, shared by every node,
//!   and each partition's floor: how far its events are written.
//!
//! And a key-value bucket, `<prefix>_OWNERS`: each partition is owned by
//! one node at a time, by a lease there (see `owner`), and only its owner
//! reads the partition's events (from its floor, see `floor`) and pulls its
//! commands, many at a time; the dispatcher and the outbox keep each door's
//! in order. A node that dies has its partitions taken by the others when
//! its leases run out.

mod events;
mod floor;
mod held;
mod journal;
mod layout;
mod leases;
mod owner;
mod publish;
mod pull;
mod read;
mod records;
mod settle;
mod shares;
mod status;
mod streams;
mod wire;

use std::time::Duration;

use async_nats::jetstream::{self, stream};

pub use journal::NatsJournal;
pub use layout::Layout;
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

/// What the cluster store needs from `[store]`.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub layout: Layout,
    pub replicas: usize,
    pub ack_wait: Duration,
    pub lease: Duration,
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
            lease: store.lease.0,
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
