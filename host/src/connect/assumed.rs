//! **[assumed]**: what `vestibule connect` takes for granted where the
//! vendors' documents are silent — all in this one file, so that when a
//! vendor says otherwise there is one place to change. docs/connect.md
//! lists the same.

use crate::settings::Secret;

/// UniFi Access: the answer to adding an endpoint that exists already. Not
/// documented; taken to be HTTP 409, or a `code` naming a duplicate.
pub fn unifi_is_duplicate(status: u16, code: &str) -> bool {
    let code = code.to_ascii_uppercase();
    status == 409 || code.contains("DUPLICATE") || code.contains("EXIST")
}

/// Unloc: the API's address is documented; how a call authenticates is
/// not. Taken to be a bearer token, as its other v2 endpoints.
pub const UNLOC_API: &str = "https://api.unloc.app";
pub fn unloc_authorization(token: &Secret) -> String {
    format!("Bearer {}", token.expose())
}

/// Unloc: registering is documented (`POST /v2/projects/{project}/webhooks`
/// with `trigger`, `url`, `lockId`); listing and deleting are not. Taken to
/// be `GET` on the same path, answering an array of `{id, trigger, url,
/// lockId}` with the URL as registered, and `DELETE …/webhooks/{id}`.
/// There is no update: a changed webhook is deleted and registered again.
pub fn unloc_webhooks(project: &str) -> String {
    format!("/v2/projects/{project}/webhooks")
}

/// BAS-IP: the webhook entity is documented (and `GET …/{webhook-uid}`),
/// not its collection or how a call authenticates. Taken to be the panel's
/// API v1: `GET /api/v1/webhooks` answering an array of entities each with
/// its integer `uid`, `POST` to add one (answering it), `PUT` and
/// `DELETE /api/v1/webhooks/{uid}`, with a bearer token.
pub const BAS_IP_WEBHOOKS: &str = "/api/v1/webhooks";
pub fn bas_ip_authorization(token: &Secret) -> String {
    format!("Bearer {}", token.expose())
}

/// BAS-IP has no name for a webhook: ours is the one whose `description`
/// is our subscription name.
pub const BAS_IP_NAME_FIELD: &str = "description";

// ProdataKey and UniFi: the shape of an error answer is not documented
// (BAS-IP's is, `{error}`); `api::said` reads `error`, `msg` or `message`,
// or shows the text.
