//! ProdataKey: `/api/ous/{organization}/hooks` on accounts.pdk.io (list,
//! create, update, delete), a bearer ID token. We choose the secret; the
//! subscription may also send HTTP Basic credentials (the source's
//! `[sources.basic_auth]`).

use hyper::Method;
use serde::Deserialize;
use serde_json::json;

use super::api::{Api, said};
use super::{ConnectError, Remote, Subscription, Wanted};
use crate::settings::Secret;
use crate::vendors::OneOrMany;
use crate::vendors::connect::ConnectSettings;

pub const API: &str = "https://accounts.pdk.io";

pub struct Pdk {
    pub api: Api,
    hooks: String,
    scope: serde_json::Value,
    secrecy_level: u8,
    ssl_verification: bool,
    expires_at: Option<String>,
    /// `[sources.basic_auth]`: user and password the hook must send.
    basic: Option<(String, Secret)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Hook {
    id: String,
    name: String,
    url: String,
    #[serde(default)]
    scope: serde_json::Value,
    #[serde(default)]
    authentication: Authentication,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default = "yes")]
    active: bool,
    #[serde(default = "yes")]
    ssl_verification: bool,
    #[serde(default)]
    secrecy_level: Option<u8>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    secret: Option<String>,
}

#[derive(Deserialize, Default)]
struct Authentication {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    user: Option<String>,
}

/// An expiry as text to compare: ISO-8601 to the second, whatever way the
/// vendor wrote it, or `none`.
fn expiry(at: Option<&str>) -> String {
    match at.map(|at| (at, crate::time::parse_iso8601(at))) {
        None => "none".into(),
        Some((_, Some(ms))) => crate::time::format_iso8601(ms / 1000),
        Some((at, None)) => at.to_string(),
    }
}

fn yes() -> bool {
    true
}

impl Pdk {
    pub fn new(api: Api, connect: &ConnectSettings, basic: Option<(String, Secret)>) -> Result<Pdk, ConnectError> {
        let organization = connect.organization.clone().unwrap_or_default();
        let scope = match &connect.scope {
            None => json!("ouRecursive"),
            Some(OneOrMany::One(one)) => json!(one),
            Some(OneOrMany::Many(many)) => json!(many),
        };
        Ok(Pdk {
            api,
            hooks: format!("/api/ous/{organization}/hooks"),
            scope,
            secrecy_level: connect.secrecy_level.unwrap_or(1),
            ssl_verification: connect.ssl_verification.unwrap_or(true),
            expires_at: connect.expires_at.clone(),
            basic,
        })
    }

    fn authentication(&self) -> serde_json::Value {
        match &self.basic {
            None => json!({ "type": "None" }),
            Some((user, password)) => json!({ "type": "Basic", "user": user, "password": password.expose() }),
        }
    }

    fn body(&self, want: &Wanted) -> serde_json::Value {
        let mut body = json!({
            "name": want.name,
            "url": want.url,
            "scope": self.scope,
            "authentication": self.authentication(),
            "events": want.events,
            "active": true,
            "sslVerification": self.ssl_verification,
            "secrecyLevel": self.secrecy_level,
        });
        if let Some(at) = &self.expires_at {
            body["expiresAt"] = json!(at);
        }
        if let Some(secret) = &want.secret {
            body["secret"] = json!(secret.expose());
        }
        body
    }

    fn settings(scope: &serde_json::Value, level: Option<u8>, ssl: bool, auth: &str) -> [(&'static str, String); 4] {
        [
            ("scope", scope.to_string()),
            ("secrecyLevel", level.map_or("unset".into(), |l| l.to_string())),
            ("sslVerification", ssl.to_string()),
            ("authentication", auth.to_string()),
        ]
    }

    fn wanted_auth(&self) -> String {
        match &self.basic {
            None => "None".into(),
            Some((user, _)) => format!("Basic {user}"),
        }
    }

    /// The body of a 2xx answer (200 listing, 201 created, 204 otherwise).
    async fn expect(
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

    /// `want` as ProdataKey now holds it under `id`, with our settings.
    fn as_held(&self, id: String, want: &Wanted) -> Subscription {
        Subscription {
            id,
            name: want.name.clone(),
            url: want.url.clone(),
            events: want.events.clone(),
            enabled: true,
            secret: want.secret.clone(),
            settings: Self::settings(
                &self.scope,
                Some(self.secrecy_level),
                self.ssl_verification,
                &self.wanted_auth(),
            )
            .into_iter()
            .chain([("expiresAt", expiry(self.expires_at.as_deref()))])
            .collect(),
            ..Subscription::default()
        }
    }
}

impl Remote for Pdk {
    fn wanted_settings(&self) -> std::collections::BTreeMap<&'static str, String> {
        let mut settings: std::collections::BTreeMap<_, _> = Self::settings(
            &self.scope,
            Some(self.secrecy_level),
            self.ssl_verification,
            &self.wanted_auth(),
        )
        .into_iter()
        .collect();
        // Compared only when configured: without it, the hook's own expiry
        // is reported once it has passed.
        if let Some(at) = &self.expires_at {
            settings.insert("expiresAt", expiry(Some(at)));
        }
        settings
    }

    async fn list(&self) -> Result<Vec<Subscription>, ConnectError> {
        let body = self.expect(Method::GET, &self.hooks, None).await?;
        let hooks: Vec<Hook> =
            serde_json::from_slice(&body).map_err(|e| self.api.answer(format!("the hook list: {e}")))?;
        Ok(hooks
            .into_iter()
            .map(|h| {
                let auth = match (h.authentication.kind.as_str(), &h.authentication.user) {
                    ("Basic", Some(user)) => format!("Basic {user}"),
                    (kind, _) => kind.to_string(),
                };
                Subscription {
                    settings: Self::settings(&h.scope, h.secrecy_level, h.ssl_verification, &auth)
                        .into_iter()
                        .chain([("expiresAt", expiry(h.expires_at.as_deref()))])
                        .collect(),
                    id: h.id,
                    name: h.name,
                    url: h.url,
                    events: h.events,
                    enabled: h.active,
                    expires_at: h.expires_at.as_deref().and_then(crate::time::parse_iso8601),
                    secret: h.secret.map(Secret::new),
                    headers: Default::default(),
                }
            })
            .collect())
    }

    async fn create(&self, want: &Wanted) -> Result<Subscription, ConnectError> {
        let body = self.expect(Method::POST, &self.hooks, Some(self.body(want))).await?;
        #[derive(Deserialize)]
        struct Created {
            id: String,
        }
        let created: Created =
            serde_json::from_slice(&body).map_err(|e| self.api.answer(format!("the created hook: {e}")))?;
        Ok(self.as_held(created.id, want))
    }

    async fn update(&self, id: &str, want: &Wanted) -> Result<Subscription, ConnectError> {
        self.expect(Method::PUT, &format!("{}/{id}", self.hooks), Some(self.body(want)))
            .await?;
        Ok(self.as_held(id.to_string(), want))
    }

    async fn delete(&self, id: &str) -> Result<(), ConnectError> {
        self.expect(Method::DELETE, &format!("{}/{id}", self.hooks), None)
            .await
            .map(drop)
    }
}
