//! The `mqtt` sink: publishes each command's body to the sink's topic with
//! QoS 1 over MQTT 5, and counts it delivered when the broker's PUBACK
//! arrives. The idempotency key and the plugin's headers travel as MQTT 5
//! user properties.
//!
//! One task per sink owns the connection and publishes one command at a
//! time, so every PUBACK is matched to its command. After any failure the
//! connection is dropped and the next command opens a clean session: the
//! client library never resends behind the outbox's back.

use std::sync::OnceLock;

use bytes::Bytes;
use rumqttc::Outgoing;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use tokio::sync::{mpsc, oneshot};

use super::DeliveryError;
use super::settings::{Retries, check_url};
use crate::settings::{ConfigError, Context, Duration, SecretValue};
use crate::wit::sinks::Command;

/// `[[sinks]]` with `kind = "mqtt"`: QoS 1 publishes over MQTT 5.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `name`: what action plugins address commands to.
    pub name: String,
    /// `url`: `mqtt://host:port`.
    pub url: String,
    /// `topic`: where it publishes.
    pub topic: Option<String>,
    /// `username`, `password`: credentials at the broker.
    pub username: Option<String>,
    pub password: Option<SecretValue>,
    /// `client_id`: default `vestibule-<sink name>`.
    pub client_id: Option<String>,
    /// `timeout`: how long one delivery attempt may take (5 s).
    #[serde(default = "super::settings::default_timeout")]
    pub timeout: Duration,
    /// `attempts`, `give_up_after`, `backoff`, `backoff_max`, `max_age`:
    /// how the outbox retries (see [`super::settings::Retries`]).
    #[serde(default = "super::settings::default_attempts")]
    pub attempts: u32,
    #[serde(default = "super::settings::default_give_up_after")]
    pub give_up_after: Duration,
    #[serde(default = "super::settings::default_backoff")]
    pub backoff: Duration,
    #[serde(default = "super::settings::default_backoff_max")]
    pub backoff_max: Duration,
    pub max_age: Option<Duration>,
}

impl Settings {
    pub(super) fn retries(&self) -> Retries {
        Retries {
            timeout: self.timeout,
            attempts: self.attempts,
            give_up_after: self.give_up_after,
            backoff: self.backoff,
            backoff_max: self.backoff_max,
            max_age: self.max_age,
        }
    }

    pub(super) fn check(&self, ctx: &Context<'_>, key: &str) -> Result<(), ConfigError> {
        check_url(ctx, key, &self.url, "mqtt", "mqtt://HOST:1883")?;
        match self.topic.as_deref() {
            Some(topic) if !topic.is_empty() && !topic.contains(['+', '#']) => {}
            _ => {
                return Err(ctx.error(
                    format!("{key}.topic"),
                    "expected the topic to publish to, such as \"building/alarms\" (no wildcards)",
                ));
            }
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(ctx.error(format!("{key}.username"), "a password needs a username"));
        }
        Ok(())
    }
}

pub struct MqttSink {
    options: MqttOptions,
    topic: String,
    timeout: std::time::Duration,
    /// The connection task, started by the first delivery.
    worker: OnceLock<mpsc::Sender<Publish>>,
}

struct Publish {
    payload: Bytes,
    properties: PublishProperties,
    reply: oneshot::Sender<Result<(), DeliveryError>>,
}

impl MqttSink {
    pub fn from_settings(ctx: &Context<'_>, index: usize, sink: &Settings) -> Result<MqttSink, ConfigError> {
        let config = ctx;
        let key = |k: &str| format!("sinks[{index}].{k}");
        // Checked when the config was parsed.
        let uri: hyper::Uri = sink.url.parse().map_err(|_| config.error(key("url"), "not a URL"))?;
        let host = uri.host().unwrap_or_default().trim_matches(['[', ']']).to_string();
        let client_id = sink
            .client_id
            .clone()
            .unwrap_or_else(|| format!("vestibule-{}", sink.name));
        let mut options = MqttOptions::new(client_id, host, uri.port_u16().unwrap_or(1883));
        options.set_keep_alive(std::time::Duration::from_secs(30));
        options.set_clean_start(true);
        options.set_connection_timeout(sink.timeout.0.as_secs().max(1));
        if let Some(username) = &sink.username {
            let password = match &sink.password {
                Some(p) => config
                    .secret(&key("password"), p.secret_env.as_ref(), p.secret_file.as_ref())?
                    .expose()
                    .to_string(),
                None => String::new(),
            };
            options.set_credentials(username.clone(), password);
        }
        Ok(MqttSink {
            options,
            topic: sink.topic.clone().unwrap_or_default(),
            timeout: sink.timeout.0,
            worker: OnceLock::new(),
        })
    }

    /// One attempt to publish `command` and have the broker acknowledge it.
    pub async fn deliver(&self, command: &Command, idempotency_key: &str) -> Result<(), DeliveryError> {
        let worker = self.worker.get_or_init(|| {
            let (sender, requests) = mpsc::channel(64);
            tokio::spawn(run(self.options.clone(), self.topic.clone(), self.timeout, requests));
            sender
        });
        let mut user_properties = vec![("idempotency-key".to_string(), idempotency_key.to_string())];
        user_properties.extend(command.headers.iter().cloned());
        let (reply, answer) = oneshot::channel();
        let publish = Publish {
            payload: Bytes::from(command.body.clone()),
            properties: PublishProperties {
                content_type: Some("application/json".into()),
                user_properties,
                ..Default::default()
            },
            reply,
        };
        worker
            .send(publish)
            .await
            .map_err(|_| DeliveryError::Connect("the MQTT connection task stopped".into()))?;
        answer
            .await
            .unwrap_or_else(|_| Err(DeliveryError::Connect("the MQTT connection task stopped".into())))
    }
}

/// Own the connection: publish requests one at a time; between them keep
/// an open connection alive.
async fn run(options: MqttOptions, topic: String, timeout: std::time::Duration, mut requests: mpsc::Receiver<Publish>) {
    let mut link: Option<(AsyncClient, EventLoop)> = None;
    loop {
        let request = match &mut link {
            Some((_, eventloop)) => tokio::select! {
                request = requests.recv() => request,
                event = eventloop.poll() => {
                    if let Err(e) = event {
                        tracing::debug!(error = %e, "MQTT connection closed.");
                        link = None;
                    }
                    continue;
                }
            },
            None => requests.recv().await,
        };
        let Some(request) = request else { return };
        let attempt = publish(&mut link, &options, &topic, request.payload, request.properties);
        let result = tokio::time::timeout(timeout, attempt)
            .await
            .unwrap_or(Err(DeliveryError::Timeout(timeout)));
        if result.is_err() {
            link = None;
        }
        let _ = request.reply.send(result);
    }
}

async fn publish(
    link: &mut Option<(AsyncClient, EventLoop)>,
    options: &MqttOptions,
    topic: &str,
    payload: Bytes,
    properties: PublishProperties,
) -> Result<(), DeliveryError> {
    let connection_error = |e: &dyn std::fmt::Display| DeliveryError::Connect(e.to_string());
    let (client, eventloop) = match link {
        Some(link) => link,
        None => {
            let (client, mut eventloop) = AsyncClient::new(options.clone(), 16);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => break,
                    Ok(_) => {}
                    Err(e) => return Err(connection_error(&e)),
                }
            }
            link.insert((client, eventloop))
        }
    };
    client
        .publish_with_properties(topic, QoS::AtLeastOnce, false, payload, properties)
        .await
        .map_err(|e| connection_error(&e))?;
    let mut packet_id = None;
    loop {
        match eventloop.poll().await.map_err(|e| connection_error(&e))? {
            Event::Outgoing(Outgoing::Publish(id)) if packet_id.is_none() => packet_id = Some(id),
            Event::Incoming(Packet::PubAck(ack)) if Some(ack.pkid) == packet_id => {
                return match ack.reason {
                    PubAckReason::Success | PubAckReason::NoMatchingSubscribers => Ok(()),
                    reason => Err(DeliveryError::Refused(format!("the broker answered {reason:?}"))),
                };
            }
            _ => {}
        }
    }
}
