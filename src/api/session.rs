//! `GET /session` (and the `session` command): a ready session, i.e. visitor data (and rollout
//! token) from the home page's ytcfg, and a token bound to that visitor data.

use http::StatusCode;
use serde_json::{Value, json};

use super::get_pot::fresh_visitor_data;
use super::responses::{ApiResponse, failure, json_response};
use super::{ApiError, ApiState, iso8601};
use crate::token::Binding;
use crate::tokens::TokenRequest;

pub(super) async fn session(state: &ApiState) -> ApiResponse {
    match session_json(state).await {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => failure(&e),
    }
}

/// A ready session: visitor data (and rollout token) from the home page's ytcfg, and a token
/// bound to that visitor data.
pub async fn session_json(state: &ApiState) -> Result<Value, ApiError> {
    let services = &state.services;
    let mut rollout = None;
    let mut visitor = None;
    if let Some(bg) = &services.botguard {
        let m = bg.minter().await?;
        if let Some(p) = &m.page {
            visitor = p.visitor_data().map(str::to_string);
            rollout = p
                .ytcfg
                .get("INNERTUBE_CONTEXT")
                .and_then(|c| c.get("client"))
                .and_then(|c| c.get("rolloutToken"))
                .and_then(Value::as_str)
                .map(str::to_string);
        }
    }
    let visitor = match visitor {
        Some(v) => v,
        None => fresh_visitor_data(services, None).await?,
    };
    let issued = services
        .tokens
        .issue(&TokenRequest::new(Binding::Session(visitor.clone())))
        .await?;
    Ok(json!({
        "visitorData": visitor,
        "poToken": issued.token.as_str(),
        "rolloutToken": rollout,
        "expiresAt": iso8601(issued.expires_at),
    }))
}
