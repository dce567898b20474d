//! BAS-IP: the panel's webhook entity (url, secret of 16–128 characters,
//! status, timeout in ms, headers as a JSON string, event types,
//! `max_retries` ≤ 5). We choose the secret. The collection's paths and
//! the authentication are [`assumed`]; ours is the one whose
//! `description` is our name.

use std::collections::BTreeMap;

use hyper::Method;
use serde::Deserialize;
use serde_json::json;

use super::api::{Api, said};
use super::{ConnectError, Remote, Subscription, Wanted, assumed};
use crate::settings::Secret;
use crate::vendors::connect::ConnectSettings;

pub struct BasIp {
    pub api: Api,
    /// Milliseconds, 1000–30000.
    timeout_ms: u64,
    max_retries: u8,
}

#[derive(Deserialize)]
struct Entity {
    uid: u64,
    url: String,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    status: String,
    #[serde(default)]
    timeout: Option<u64>,
    #[serde(default)]
    headers: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    event_types: Vec<String>,
    #[serde(default)]
    max_retries: Option<u8>,
}

impl BasIp {
    pub fn new(api: Api, connect: &ConnectSettings) -> BasIp {
        BasIp {
            api,
            timeout_ms: connect.delivery_timeout.map_or(10_000, |d| d.0.as_millis() as u64),
            max_retries: connect.max_retries.unwrap_or(3),
        }
    }

    fn body(&self, want: &Wanted) -> serde_json::Value {
        let headers = serde_json::to_string(&want.headers).unwrap_or_else(|_| "{}".into());
        json!({
            "url": want.url,
            "secret": want.secret.as_ref().map(Secret::expose),
            "status": "active",
            "timeout": self.timeout_ms,
            "headers": headers,
            (assumed::BAS_IP_NAME_FIELD): want.name,
            "event_types": want.events,
            "max_retries": self.max_retries,
        })
    }

    fn held(e: Entity) -> Subscription {
        let headers: BTreeMap<String, String> = e
            .headers
            .as_deref()
            .and_then(|h| serde_json::from_str(h).ok())
            .unwrap_or_default();
        let settings = [
            ("timeout", e.timeout.map_or("unset".into(), |t| format!("{t}ms"))),
            ("max_retries", e.max_retries.map_or("unset".into(), |n| n.to_string())),
        ];
        Subscription {
            id: e.uid.to_string(),
            name: e.description.unwrap_or_default(),
            url: e.url,
            events: e.event_types,
            headers,
            enabled: e.status == "active",
            expires_at: None,
            secret: e.secret.map(Secret::new),
            settings: settings.into_iter().collect(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<bytes::Bytes, ConnectError> {
        let answer = self.api.call(method, path, body.as_ref()).await?;
        if answer.status.is_success() {
            Ok(answer.body)
        } else {
            Err(self.api.refused(&answer, said(&answer)))
        }
    }

    fn entity(&self, body: &[u8]) -> Result<Subscription, ConnectError> {
        serde_json::from_slice::<Entity>(body)
            .map(Self::held)
            .map_err(|e| self.api.answer(format!("a webhook: {e}")))
    }
}

impl Remote for BasIp {
    fn wanted_settings(&self) -> BTreeMap<&'static str, String> {
        [
            ("timeout", format!("{}ms", self.timeout_ms)),
            ("max_retries", self.max_retries.to_string()),
        ]
        .into_iter()
        .collect()
    }

    async fn list(&self) -> Result<Vec<Subscription>, ConnectError> {
        let body = self.call(Method::GET, assumed::BAS_IP_WEBHOOKS, None).await?;
        let all: Vec<Entity> =
            serde_json::from_slice(&body).map_err(|e| self.api.answer(format!("the webhook list: {e}")))?;
        Ok(all.into_iter().map(Self::held).collect())
    }

    async fn create(&self, want: &Wanted) -> Result<Subscription, ConnectError> {
        let body = self
            .call(Method::POST, assumed::BAS_IP_WEBHOOKS, Some(self.body(want)))
            .await?;
        self.entity(&body)
    }

    async fn update(&self, id: &str, want: &Wanted) -> Result<Subscription, ConnectError> {
        let path = format!("{}/{id}", assumed::BAS_IP_WEBHOOKS);
        let body = self.call(Method::PUT, &path, Some(self.body(want))).await?;
        self.entity(&body)
    }

    async fn delete(&self, id: &str) -> Result<(), ConnectError> {
        self.call(Method::DELETE, &format!("{}/{id}", assumed::BAS_IP_WEBHOOKS), None)
            .await
            .map(drop)
    }
}
