//! Unloc: `POST /v2/projects/{project}/webhooks` with `trigger:
//! accessEvent`, the lock and an HTTPS URL carrying the Basic credentials
//! Unloc then sends. The password is ours (letters and digits, none of RFC
//! 3986's reserved characters). Listing, deleting and authenticating are
//! [`assumed`]; there are no names, so ours is the webhook for our URL.

use hyper::Method;
use serde::Deserialize;
use serde_json::json;

use super::api::{Api, said};
use super::{ConnectError, Remote, Subscription, Wanted, assumed};
use crate::settings::Secret;
use crate::vendors::connect::ConnectSettings;

const TRIGGER: &str = "accessEvent";

pub struct Unloc {
    pub api: Api,
    webhooks: String,
    lock_id: Option<String>,
    user: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Webhook {
    id: String,
    #[serde(default)]
    trigger: String,
    url: String,
    #[serde(default)]
    lock_id: Option<String>,
}

impl Unloc {
    pub fn new(api: Api, connect: &ConnectSettings, user: String) -> Unloc {
        Unloc {
            api,
            webhooks: assumed::unloc_webhooks(connect.project.as_deref().unwrap_or_default()),
            lock_id: connect.lock_id.clone(),
            user,
        }
    }

    /// `https://user:password@host/path`.
    fn url_with_credentials(&self, url: &str, password: &Secret) -> String {
        match url.split_once("://") {
            Some((scheme, rest)) => format!("{scheme}://{}:{}@{rest}", self.user, password.expose()),
            None => url.to_string(),
        }
    }

    fn held(&self, hook: Webhook) -> Subscription {
        // Split the credentials off: the URL is compared without them, the
        // password as the subscription's secret.
        let (url, user, password) = match hook.url.split_once("://") {
            Some((scheme, rest)) => match rest.split_once('@').filter(|(creds, _)| !creds.contains('/')) {
                Some((creds, host)) => {
                    let (user, password) = creds.split_once(':').unwrap_or((creds, ""));
                    (
                        format!("{scheme}://{host}"),
                        user.to_string(),
                        Some(Secret::new(password)),
                    )
                }
                None => (hook.url.clone(), String::new(), None),
            },
            None => (hook.url.clone(), String::new(), None),
        };
        let mut settings = std::collections::BTreeMap::new();
        settings.insert("lockId", hook.lock_id.unwrap_or_else(|| "none".into()));
        settings.insert("user", user);
        Subscription {
            id: hook.id,
            name: String::new(),
            url,
            events: vec![hook.trigger],
            enabled: true,
            secret: password,
            settings,
            ..Subscription::default()
        }
    }
}

impl Remote for Unloc {
    /// No names: ours is the one for our URL.
    fn is_ours(&self, have: &Subscription, want: &Wanted) -> bool {
        have.url == want.url
    }

    fn shape(&self, want: &mut Wanted) {
        want.name = String::new();
        want.events = vec![TRIGGER.to_string()];
    }

    fn wanted_settings(&self) -> std::collections::BTreeMap<&'static str, String> {
        [
            ("lockId", self.lock_id.clone().unwrap_or_else(|| "none".into())),
            ("user", self.user.clone()),
        ]
        .into_iter()
        .collect()
    }

    async fn list(&self) -> Result<Vec<Subscription>, ConnectError> {
        let answer = self.api.call(Method::GET, &self.webhooks, None).await?;
        if !answer.status.is_success() {
            return Err(self.api.refused(&answer, said(&answer)));
        }
        let hooks: Vec<Webhook> =
            serde_json::from_slice(&answer.body).map_err(|e| self.api.answer(format!("the webhook list: {e}")))?;
        Ok(hooks.into_iter().map(|h| self.held(h)).collect())
    }

    async fn create(&self, want: &Wanted) -> Result<Subscription, ConnectError> {
        let password = want
            .secret
            .as_ref()
            .ok_or_else(|| ConnectError::Config("no Basic password to register".into()))?;
        let mut body = json!({ "trigger": TRIGGER, "url": self.url_with_credentials(&want.url, password) });
        if let Some(lock) = &self.lock_id {
            body["lockId"] = json!(lock);
        }
        let answer = self.api.call(Method::POST, &self.webhooks, Some(&body)).await?;
        if !answer.status.is_success() {
            return Err(self.api.refused(&answer, said(&answer)));
        }
        let hook: Webhook = serde_json::from_slice(&answer.body)
            .map_err(|e| self.api.answer(format!("the registered webhook: {e}")))?;
        Ok(self.held(hook))
    }

    /// No update: register the new one first, so no event is missed, then
    /// delete the old.
    async fn update(&self, id: &str, want: &Wanted) -> Result<Subscription, ConnectError> {
        let created = self.create(want).await?;
        self.delete(id).await?;
        Ok(created)
    }

    async fn delete(&self, id: &str) -> Result<(), ConnectError> {
        let answer = self
            .api
            .call(Method::DELETE, &format!("{}/{id}", self.webhooks), None)
            .await?;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(self.api.refused(&answer, said(&answer)))
        }
    }
}
