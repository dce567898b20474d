//! UniFi Access: `/api/v1/developer/webhooks/endpoints` (list, add, update,
//! delete), a bearer token, every answer wrapped in `{code, data, msg}`.
//! The controller generates each endpoint's secret and returns it.

use std::collections::BTreeMap;

use hyper::Method;
use serde::Deserialize;
use serde_json::json;

use super::api::{Answer, Api, said};
use super::{ConnectError, Remote, Subscription, Wanted, assumed};
use crate::settings::Secret;

const ENDPOINTS: &str = "/api/v1/developer/webhooks/endpoints";

pub struct Unifi {
    pub api: Api,
}

#[derive(Deserialize)]
struct Envelope {
    code: String,
    #[serde(default)]
    data: serde_json::Value,
    #[serde(default)]
    msg: String,
}

#[derive(Deserialize)]
struct Endpoint {
    id: String,
    endpoint: String,
    name: String,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
}

impl From<Endpoint> for Subscription {
    fn from(e: Endpoint) -> Subscription {
        Subscription {
            id: e.id,
            name: e.name,
            url: e.endpoint,
            events: e.events,
            headers: e.headers.unwrap_or_default(),
            enabled: true,
            secret: e.secret.map(Secret::new),
            ..Subscription::default()
        }
    }
}

impl Unifi {
    pub fn new(api: Api) -> Unifi {
        Unifi { api }
    }

    /// `data` of a `SUCCESS` answer.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, ConnectError> {
        let answer: Answer = self.api.call(method, path, body.as_ref()).await?;
        let envelope: Option<Envelope> = serde_json::from_slice(&answer.body).ok();
        match envelope {
            Some(e) if answer.status.is_success() && e.code == "SUCCESS" => Ok(e.data),
            Some(e) if assumed::unifi_is_duplicate(answer.status.as_u16(), &e.code) => Err(ConnectError::Duplicate {
                api: self.api.base().to_string(),
                message: format!("{} {}", e.code, e.msg),
            }),
            Some(e) if !answer.status.is_success() => Err(self.api.refused(&answer, format!("{} {}", e.code, e.msg))),
            Some(e) => Err(self.api.answer(format!("code {} ({})", e.code, e.msg))),
            None if answer.status.is_success() => Err(self.api.answer("not a {code, data, msg} envelope".into())),
            None => Err(self.api.refused(&answer, said(&answer))),
        }
    }

    fn body(want: &Wanted) -> serde_json::Value {
        json!({ "name": want.name, "endpoint": want.url, "events": want.events, "headers": want.headers })
    }

    fn endpoint(&self, data: serde_json::Value) -> Result<Subscription, ConnectError> {
        serde_json::from_value::<Endpoint>(data)
            .map(Subscription::from)
            .map_err(|e| self.api.answer(format!("an endpoint: {e}")))
    }
}

impl Remote for Unifi {
    fn generates_secret(&self) -> bool {
        true
    }

    async fn list(&self) -> Result<Vec<Subscription>, ConnectError> {
        let data = self.call(Method::GET, ENDPOINTS, None).await?;
        let endpoints: Vec<Endpoint> = match data {
            serde_json::Value::Null => Vec::new(),
            data => serde_json::from_value(data).map_err(|e| self.api.answer(format!("the endpoint list: {e}")))?,
        };
        Ok(endpoints.into_iter().map(Subscription::from).collect())
    }

    async fn create(&self, want: &Wanted) -> Result<Subscription, ConnectError> {
        let data = self.call(Method::POST, ENDPOINTS, Some(Self::body(want))).await?;
        self.endpoint(data)
    }

    async fn update(&self, id: &str, want: &Wanted) -> Result<Subscription, ConnectError> {
        let data = self
            .call(Method::PUT, &format!("{ENDPOINTS}/{id}"), Some(Self::body(want)))
            .await?;
        self.endpoint(data)
    }

    async fn delete(&self, id: &str) -> Result<(), ConnectError> {
        self.call(Method::DELETE, &format!("{ENDPOINTS}/{id}"), None)
            .await
            .map(drop)
    }
}
