//! The streams and consumers the cluster store keeps: what it wants of
//! each, made or brought to that at every node's start, and checked by
//! `vestibule check`.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

use super::{Cluster, Layout};
use crate::store::StoreError;

/// How delayed commands may wait at once, cluster-wide.
const DELAYED_IN_FLIGHT: i64 = 100_000;

impl Cluster {
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
}
