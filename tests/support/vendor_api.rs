//! Fake vendor APIs for `vestibule connect`: UniFi Access (HTTPS with a
//! certificate made here), ProdataKey, Unloc and BAS-IP. Each takes the
//! request bodies its document shows and nothing else (unknown fields are
//! refused), requires its token, answers errors as documented, keeps the
//! subscriptions it was given, and can deliver an event to each of them
//! signed with the secret it holds — as the vendor would.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use vestibule::config::VendorKind;

/// The API token every fake requires (`Authorization: Bearer …`).
pub const TOKEN: &str = "vendor-api-token-4f1c";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Vendor {
    Unifi,
    Pdk,
    Unloc,
    BasIp,
}

/// What the fake holds and was asked.
#[derive(Default)]
pub struct State {
    /// Each subscription as the vendor answers it in a listing.
    pub subs: Vec<Value>,
    /// `METHOD path` of every authorized call, in order.
    pub calls: Vec<String>,
    /// Leave the next listing empty (a listing that lags a create).
    pub hide_next_list: bool,
    next_id: u64,
}

pub struct VendorApi {
    pub vendor: Vendor,
    /// `https://127.0.0.1:PORT` (UniFi) or `http://…`.
    pub url: String,
    /// The certificate UniFi's fake serves (PEM).
    pub cert_pem: Option<String>,
    pub state: Arc<Mutex<State>>,
}

fn answer(status: u16, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}

fn no_content() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = hyper::StatusCode::NO_CONTENT;
    response
}

impl VendorApi {
    pub async fn start(vendor: Vendor) -> VendorApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let (tls, cert_pem) = if vendor == Vendor::Unifi {
            let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
            let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
            let config =
                rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_no_client_auth()
                    .with_single_cert(vec![certified.cert.der().clone()], key)
                    .unwrap();
            (
                Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
                Some(certified.cert.pem()),
            )
        } else {
            (None, None)
        };
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let (tls, state) = (tls.clone(), shared.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let state = state.clone();
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let authorized = parts
                                .headers
                                .get("authorization")
                                .is_some_and(|v| v.as_bytes() == format!("Bearer {TOKEN}").as_bytes());
                            let response = if !authorized {
                                unauthorized(vendor)
                            } else {
                                let mut state = state.lock().unwrap();
                                state.calls.push(format!("{} {}", parts.method, parts.uri.path()));
                                handle(vendor, &mut state, parts.method.as_str(), parts.uri.path(), &body)
                            };
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(tls) => {
                            // A client that does not trust us just hangs up.
                            if let Ok(stream) = tls.accept(tcp).await {
                                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                        }
                    }
                });
            }
        });
        let scheme = if vendor == Vendor::Unifi { "https" } else { "http" };
        VendorApi {
            vendor,
            url: format!("{scheme}://127.0.0.1:{port}"),
            cert_pem,
            state,
        }
    }

    pub fn subs(&self) -> Vec<Value> {
        self.state.lock().unwrap().subs.clone()
    }

    /// Calls that changed something (not listings).
    pub fn changes(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state.calls.iter().filter(|c| !c.starts_with("GET ")).cloned().collect()
    }

    /// Change what the vendor holds behind our back.
    pub fn edit(&self, change: impl FnOnce(&mut Vec<Value>)) {
        change(&mut self.state.lock().unwrap().subs);
    }

    /// Deliver `body` to every active subscription, signed with the secret
    /// it holds; each one's status.
    pub async fn deliver(&self, body: &str) -> Vec<u16> {
        let subs = self.subs();
        let mut statuses = Vec::new();
        for sub in subs {
            let active = match self.vendor {
                Vendor::Pdk => sub["active"] == json!(true),
                Vendor::BasIp => sub["status"] == "active",
                _ => true,
            };
            if !active {
                continue;
            }
            statuses.push(deliver_one(self.vendor, &sub, body).await);
        }
        statuses
    }
}

/// The vendor's own answer to a missing or wrong token.
fn unauthorized(vendor: Vendor) -> Response<Full<Bytes>> {
    match vendor {
        Vendor::Unifi => answer(
            401,
            json!({ "code": "CODE_UNAUTHORIZED", "data": null, "msg": "unauthorized" }),
        ),
        Vendor::BasIp => answer(401, json!({ "error": "Log In" })),
        _ => answer(401, json!({ "message": "Unauthorized" })),
    }
}

async fn deliver_one(vendor: Vendor, sub: &Value, body: &str) -> u16 {
    let text = |k: &str| sub[k].as_str().unwrap_or_default().to_string();
    let now = crate::support::now();
    let (url, headers): (String, Vec<(String, String)>) = match vendor {
        Vendor::Unifi => {
            let mut headers: Vec<(String, String)> =
                vestibule::vendors::get(VendorKind::UnifiAccess).sign(&text("secret"), now, body.as_bytes());
            if let Some(extra) = sub["headers"].as_object() {
                headers.extend(
                    extra
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())),
                );
            }
            (text("endpoint"), headers)
        }
        Vendor::Pdk => {
            let mut headers = Vec::new();
            if let Some(secret) = sub["secret"].as_str() {
                headers = vestibule::vendors::get(VendorKind::Pdk).sign(secret, now, body.as_bytes());
            }
            if sub["authentication"]["type"] == "Basic" {
                let pair = format!(
                    "{}:{}",
                    sub["authentication"]["user"].as_str().unwrap(),
                    sub["authentication"]["password"].as_str().unwrap()
                );
                headers.push((
                    "Authorization".into(),
                    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)),
                ));
            }
            (text("url"), headers)
        }
        Vendor::Unloc => {
            // https://user:password@host/path → Basic, to https://host/path.
            let url = text("url");
            let (scheme, rest) = url.split_once("://").unwrap();
            let (credentials, place) = rest.split_once('@').unwrap();
            let basic = base64::engine::general_purpose::STANDARD.encode(credentials);
            (
                format!("{scheme}://{place}"),
                vec![("Authorization".into(), format!("Basic {basic}"))],
            )
        }
        Vendor::BasIp => {
            let mut headers = vestibule::vendors::get(VendorKind::BasIp).sign(&text("secret"), now, body.as_bytes());
            let extra: BTreeMap<String, String> = serde_json::from_str(&text("headers")).unwrap_or_default();
            headers.extend(extra);
            (text("url"), headers)
        }
    };
    post_any(&url, &headers, body).await
}

/// POST over HTTP or HTTPS (any certificate: the vendors' `sslVerification
/// = false`); the status, or 0 when it could not be sent.
pub async fn post_any(url: &str, headers: &[(String, String)], body: &str) -> u16 {
    let uri: hyper::Uri = url.parse().unwrap();
    let host = uri.host().unwrap().to_string();
    let port = uri.port_u16().unwrap_or(443);
    let Ok(tcp) = tokio::net::TcpStream::connect((host.as_str(), port)).await else {
        return 0;
    };
    let mut request = Request::post(uri.path()).header("host", format!("{host}:{port}"));
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let status = if uri.scheme_str() == Some("https") {
        let tls = vestibule::client_tls::config(None, true).unwrap();
        let name = rustls::pki_types::ServerName::try_from(host.clone()).unwrap();
        let Ok(stream) = tokio_rustls::TlsConnector::from(Arc::new(tls)).connect(name, tcp).await else {
            return 0;
        };
        send(TokioIo::new(stream), request).await
    } else {
        send(TokioIo::new(tcp), request).await
    };
    status.unwrap_or(0)
}

async fn send<T>(io: T, request: Request<Full<Bytes>>) -> Option<u16>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.ok()?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    Some(status)
}

fn handle(vendor: Vendor, state: &mut State, method: &str, path: &str, body: &[u8]) -> Response<Full<Bytes>> {
    match vendor {
        Vendor::Unifi => unifi(state, method, path, body),
        Vendor::Pdk => pdk(state, method, path, body),
        Vendor::Unloc => unloc(state, method, path, body),
        Vendor::BasIp => bas_ip(state, method, path, body),
    }
}

fn listing(state: &mut State) -> Vec<Value> {
    if std::mem::take(&mut state.hide_next_list) {
        Vec::new()
    } else {
        state.subs.clone()
    }
}

/// Delete the subscription whose `key` is `id` (a string or a number): 204,
/// or `missing`.
fn delete(state: &mut State, key: &str, id: &str, missing: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    let before = state.subs.len();
    state.subs.retain(|s| match &s[key] {
        Value::Number(n) => n.to_string() != id,
        other => other != id,
    });
    if state.subs.len() == before {
        missing
    } else {
        no_content()
    }
}

fn next_id(state: &mut State) -> u64 {
    state.next_id += 1;
    state.next_id
}

/// A secret as the UniFi controller makes them: 16 hex digits.
fn controller_secret() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    hex::encode(bytes)
}

// UniFi Access: `{code, data, msg}`, as its document shows.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct UnifiEndpoint {
    endpoint: String,
    name: String,
    events: Vec<String>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
}

fn unifi(state: &mut State, method: &str, path: &str, body: &[u8]) -> Response<Full<Bytes>> {
    const BASE: &str = "/api/v1/developer/webhooks/endpoints";
    let ok = |data: Value| answer(200, json!({ "code": "SUCCESS", "data": data, "msg": "success" }));
    let invalid = |msg: String| answer(400, json!({ "code": "CODE_PARAMS_INVALID", "data": null, "msg": msg }));
    let id = path.strip_prefix(BASE).and_then(|rest| rest.strip_prefix('/'));
    let parse = || -> Result<UnifiEndpoint, String> {
        let endpoint: UnifiEndpoint = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        if let Some(bad) = endpoint
            .events
            .iter()
            .find(|e| !vestibule::vendors::unifi_access::EVENTS.contains(&e.as_str()))
        {
            return Err(format!("unknown event {bad}"));
        }
        Ok(endpoint)
    };
    match (method, path == BASE, id) {
        ("GET", true, _) => ok(Value::Array(listing(state))),
        ("POST", true, _) => match parse() {
            Err(e) => invalid(e),
            Ok(e) if state.subs.iter().any(|s| s["name"] == e.name.as_str()) => answer(
                409,
                json!({ "code": "CODE_WEBHOOK_DUPLICATED", "data": null, "msg": "webhook endpoint name exists" }),
            ),
            Ok(e) => {
                let sub = json!({
                    "id": format!("a22ee283-c91f-432b-9d0f-{:012}", next_id(state)),
                    "endpoint": e.endpoint, "name": e.name, "events": e.events,
                    "secret": controller_secret(), "headers": e.headers.unwrap_or_default(),
                });
                state.subs.push(sub.clone());
                ok(sub)
            }
        },
        ("PUT", false, Some(id)) => match parse() {
            Err(e) => invalid(e),
            Ok(e) => match state.subs.iter_mut().find(|s| s["id"] == id) {
                None => answer(
                    404,
                    json!({ "code": "CODE_NOT_EXISTS", "data": null, "msg": "endpoint not found" }),
                ),
                Some(sub) => {
                    sub["endpoint"] = json!(e.endpoint);
                    sub["name"] = json!(e.name);
                    sub["events"] = json!(e.events);
                    sub["headers"] = json!(e.headers.unwrap_or_default());
                    ok(sub.clone())
                }
            },
        },
        ("DELETE", false, Some(id)) => {
            let missing = answer(
                404,
                json!({ "code": "CODE_NOT_EXISTS", "data": null, "msg": "endpoint not found" }),
            );
            match delete(state, "id", id, missing) {
                deleted if deleted.status() == hyper::StatusCode::NO_CONTENT => ok(Value::Null),
                missing => missing,
            }
        }
        _ => answer(
            404,
            json!({ "code": "CODE_NOT_FOUND", "data": null, "msg": "not found" }),
        ),
    }
}

// ProdataKey: the subscription object, POST answering 201 `{id}`, PUT and
// DELETE 204.

pub const PDK_ORG: &str = "57e50e4840ce4f00017df412";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PdkAuthentication {
    #[serde(rename = "type")]
    kind: String,
    user: Option<String>,
    password: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PdkHook {
    name: String,
    url: String,
    scope: Value,
    authentication: PdkAuthentication,
    events: Vec<String>,
    active: Option<bool>,
    ssl_verification: Option<bool>,
    secrecy_level: Option<u8>,
    expires_at: Option<String>,
    secret: Option<String>,
}

fn pdk_check(hook: &PdkHook, update: bool) -> Result<(), String> {
    use vestibule::vendors::pdk::{ORGANIZATION_EVENTS, PANEL_EVENTS};
    if hook.name.chars().count() > 70 {
        return Err("name is longer than 70 characters".into());
    }
    if !hook.url.starts_with("https://") {
        return Err("url must use HTTPS".into());
    }
    if !(hook.scope == "ou" || hook.scope == "ouRecursive" || hook.scope.is_array()) {
        return Err("invalid scope".into());
    }
    match hook.authentication.kind.as_str() {
        "None" => {}
        "Basic" if hook.authentication.user.is_some() && hook.authentication.password.is_some() => {}
        _ => return Err("invalid authentication".into()),
    }
    let panel = hook.events.iter().all(|e| PANEL_EVENTS.contains(&e.as_str()));
    let organization = hook.events.iter().all(|e| ORGANIZATION_EVENTS.contains(&e.as_str()));
    if hook.events.is_empty() || !(panel || organization) {
        return Err("events must be known and of one type".into());
    }
    if hook.secrecy_level.is_some_and(|l| l > 2) {
        return Err("invalid secrecyLevel".into());
    }
    if hook.secret.as_ref().is_some_and(|s| s.len() > 255) {
        return Err("secret is longer than 255 characters".into());
    }
    if update && (hook.active.is_none() || hook.ssl_verification.is_none() || hook.secrecy_level.is_none()) {
        return Err("active, sslVerification and secrecyLevel are required".into());
    }
    Ok(())
}

fn pdk(state: &mut State, method: &str, path: &str, body: &[u8]) -> Response<Full<Bytes>> {
    let base = format!("/api/ous/{PDK_ORG}/hooks");
    if !path.starts_with(&base) {
        return answer(404, json!({ "message": "Organization not found" }));
    }
    let id = path[base.len()..].strip_prefix('/');
    let parse = |update: bool| -> Result<PdkHook, String> {
        let hook: PdkHook = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        pdk_check(&hook, update)?;
        Ok(hook)
    };
    let object = |id: String, hook: PdkHook| {
        json!({
            "id": id, "name": hook.name, "url": hook.url, "scope": hook.scope,
            "authentication": match hook.authentication.kind.as_str() {
                "Basic" => json!({ "type": "Basic", "user": hook.authentication.user, "password": hook.authentication.password }),
                _ => json!({ "type": "None" }),
            },
            "events": hook.events, "active": hook.active.unwrap_or(true),
            "sslVerification": hook.ssl_verification.unwrap_or(true),
            "secrecyLevel": hook.secrecy_level.unwrap_or(1), "expiresAt": hook.expires_at,
            "userId": "644a19ba6e22d40001eec732", "odometer": 0, "secret": hook.secret,
        })
    };
    match (method, id) {
        ("GET", None) => answer(200, Value::Array(listing(state))),
        ("POST", None) => match parse(false) {
            Err(e) => answer(400, json!({ "message": e })),
            Ok(hook) => {
                let id = format!("644ff46419a29200017{:05}", next_id(state));
                state.subs.push(object(id.clone(), hook));
                answer(201, json!({ "id": id }))
            }
        },
        ("PUT", Some(id)) => match parse(true) {
            Err(e) => answer(400, json!({ "message": e })),
            Ok(hook) => match state.subs.iter_mut().find(|s| s["id"] == id) {
                None => answer(404, json!({ "message": "Webhook not found" })),
                Some(sub) => {
                    let odometer = sub["odometer"].clone();
                    *sub = object(id.to_string(), hook);
                    sub["odometer"] = odometer;
                    no_content()
                }
            },
        },
        ("DELETE", Some(id)) => delete(state, "id", id, answer(404, json!({ "message": "Webhook not found" }))),
        _ => answer(405, json!({ "message": "Method not allowed" })),
    }
}

// Unloc: register `{trigger, url, lockId}`; listing and deleting as assumed.

pub const UNLOC_PROJECT: &str = "d45031c2-be07-4d20-adbe-4e51e6ad0fed";

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UnlocWebhook {
    trigger: String,
    url: String,
    lock_id: Option<String>,
}

fn unloc(state: &mut State, method: &str, path: &str, body: &[u8]) -> Response<Full<Bytes>> {
    let base = format!("/v2/projects/{UNLOC_PROJECT}/webhooks");
    if !path.starts_with(&base) {
        return answer(404, json!({ "message": "Project not found" }));
    }
    let id = path[base.len()..].strip_prefix('/');
    match (method, id) {
        ("GET", None) => answer(200, Value::Array(listing(state))),
        ("POST", None) => {
            let hook: UnlocWebhook = match serde_json::from_slice(body) {
                Ok(hook) => hook,
                Err(e) => return answer(400, json!({ "message": e.to_string() })),
            };
            let credentials = hook
                .url
                .strip_prefix("https://")
                .and_then(|rest| rest.split_once('@'))
                .map(|(credentials, _)| credentials.to_string());
            let reserved = |c: char| ":/?#[]@!$&'()*+,;=".contains(c);
            let valid = hook.trigger == "accessEvent"
                && credentials.as_ref().is_some_and(|c| {
                    c.split_once(':').is_some_and(|(u, p)| {
                        !u.is_empty() && !p.is_empty() && !u.chars().any(reserved) && !p.chars().any(reserved)
                    })
                });
            if !valid {
                return answer(
                    400,
                    json!({ "message": "trigger must be accessEvent and url https with valid credentials" }),
                );
            }
            let sub = json!({ "id": format!("wh-{}", next_id(state)), "trigger": hook.trigger, "url": hook.url, "lockId": hook.lock_id });
            state.subs.push(sub.clone());
            answer(201, sub)
        }
        ("DELETE", Some(id)) => delete(state, "id", id, answer(404, json!({ "message": "Webhook not found" }))),
        _ => answer(405, json!({ "message": "Method not allowed" })),
    }
}

// BAS-IP: the webhook entity; `{error}` answers as documented.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BasIpEntity {
    url: String,
    secret: String,
    status: String,
    timeout: u32,
    headers: String,
    description: Option<String>,
    event_types: Vec<String>,
    max_retries: u8,
}

fn bas_ip(state: &mut State, method: &str, path: &str, body: &[u8]) -> Response<Full<Bytes>> {
    const BASE: &str = "/api/v1/webhooks";
    let wrong_body = || answer(400, json!({ "error": "Wrong JSON body" }));
    let parse = || -> Option<BasIpEntity> {
        let e: BasIpEntity = serde_json::from_slice(body).ok()?;
        let valid = (4..=2000).contains(&e.url.len())
            && (16..=128).contains(&e.secret.len())
            && (e.status == "active" || e.status == "disabled")
            && (1000..=30000).contains(&e.timeout)
            && serde_json::from_str::<BTreeMap<String, String>>(&e.headers).is_ok()
            && e.description.as_ref().is_none_or(|d| d.len() <= 1000)
            && e.event_types
                .iter()
                .all(|t| vestibule::vendors::bas_ip::EVENTS.contains(&t.as_str()))
            && e.max_retries <= 5;
        valid.then_some(e)
    };
    let object = |uid: u64, e: BasIpEntity, created: i64| {
        json!({
            "uid": uid, "url": e.url, "secret": e.secret, "status": e.status, "timeout": e.timeout,
            "headers": e.headers, "description": e.description, "event_types": e.event_types,
            "max_retries": e.max_retries, "created_at": created, "updated_at": crate::support::now(),
        })
    };
    let uid = path.strip_prefix(BASE).and_then(|r| r.strip_prefix('/'));
    match (method, path == BASE, uid) {
        ("GET", true, _) => answer(200, Value::Array(listing(state))),
        ("POST", true, _) => match parse() {
            None => wrong_body(),
            Some(e) => {
                let uid = next_id(state);
                let sub = object(uid, e, crate::support::now());
                state.subs.push(sub.clone());
                answer(200, sub)
            }
        },
        ("PUT", false, Some(uid)) => {
            let Some(e) = parse() else { return wrong_body() };
            match state
                .subs
                .iter_mut()
                .find(|s| s["uid"].as_u64().map(|n| n.to_string()).as_deref() == Some(uid))
            {
                None => answer(400, json!({ "error": "Wrong webhook uid" })),
                Some(sub) => {
                    let created = sub["created_at"].as_i64().unwrap_or_default();
                    *sub = object(uid.parse().unwrap(), e, created);
                    answer(200, sub.clone())
                }
            }
        }
        ("DELETE", false, Some(uid)) => delete(state, "uid", uid, answer(400, json!({ "error": "Wrong webhook uid" }))),
        _ => answer(400, json!({ "error": "Wrong webhook uid" })),
    }
}
