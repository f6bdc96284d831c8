//! InnerTube player requests and responses: the token goes into the request body; the response
//! is read on its way back to learn which video, client and session its media URLs belong to
//! (and, when configured, to put tokens into those URLs).

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hudsucker::{Body, RequestOrResponse};
use serde_json::{Value, json};

use super::{Note, PotHandler, give_up, logged_in, read_response, text_response};
use crate::bindings::{Identity, Regime, TokenContext, binding_for};
use crate::body::{Buffered, buffer_to_cap, decode};
use crate::classify::is_webpo_client;
use crate::learn::session::{playback_info, url_keys};
use crate::rewrite::player::{PlayerAction, PlayerRequest};
use crate::rewrite::response::rewrite_player_response;

/// What the response handler needs from a player request.
#[derive(Debug, Clone)]
pub struct PlayerNote {
    video: Option<String>,
    client: String,
    visitor: Option<String>,
    logged_in: bool,
}

impl PotHandler {
    pub(super) async fn rewrite_player(
        &mut self,
        req: Request<Body>,
        host: &str,
    ) -> RequestOrResponse {
        let settings = &self.shared.settings;
        let strict = settings.strict;
        let cap = settings.max_body_bytes;
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > cap as u64) {
            return give_up(
                strict,
                req,
                host,
                &format!("player body over the {cap}-byte cap"),
            );
        }
        let (mut parts, body) = req.into_parts();
        let bytes = match buffer_to_cap(body, cap).await {
            Ok(Buffered::Complete(b)) => b,
            Ok(Buffered::TooLarge(body)) => {
                let req = Request::from_parts(parts, body);
                return give_up(
                    strict,
                    req,
                    host,
                    &format!("player body over the {cap}-byte cap"),
                );
            }
            Err(e) => {
                tracing::warn!(%host, error = %e, "player request body could not be read");
                return RequestOrResponse::Response(text_response(
                    StatusCode::BAD_REQUEST,
                    format!("potproxy: {e}\n"),
                ));
            }
        };
        let original = |parts| Request::from_parts(parts, Body::from(bytes.clone()));
        let decoded: Bytes = match parts
            .headers
            .get(CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
        {
            None => bytes.clone(),
            Some(enc) => match decode(enc, &bytes, cap) {
                Ok(d) => d.into(),
                Err(e) => return give_up(strict, original(parts), host, &e.to_string()),
            },
        };
        let mut player = match PlayerRequest::parse(&decoded) {
            Ok(p) => p,
            Err(e) => return give_up(strict, original(parts), host, &e.to_string()),
        };
        let Some(client) = player
            .client_name()
            .filter(|c| is_webpo_client(c))
            .map(str::to_string)
        else {
            tracing::debug!(%host, client = ?player.client_name(), "player: not a web PO client");
            return RequestOrResponse::Request(original(parts));
        };
        let header_visitor = parts
            .headers
            .get("x-goog-visitor-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut visitor = player.visitor_data().map(str::to_string).or(header_visitor);
        let mut body_changed = false;
        // Session-bound tokens need visitor data; a request without any gets one YouTube issued,
        // sent the same way in body and header so later media tokens match.
        if visitor.is_none() && self.shared.regimes.default_regime() == Regime::Session {
            if let Some(v) = self
                .fetch_visitor_data(&client, player.client_version())
                .await
            {
                player.set_visitor_data(&v);
                if let Ok(h) = HeaderValue::from_str(&v) {
                    parts.headers.insert("x-goog-visitor-id", h);
                }
                visitor = Some(v);
                body_changed = true;
            }
        }
        // The account behind this visitor, as earlier InnerTube responses named it.
        let known = visitor
            .as_deref()
            .and_then(|v| self.shared.identities.lookup(v));
        let who = Identity {
            visitor_data: visitor.clone(),
            datasync_id: known.as_ref().and_then(|(d, _)| d.clone()),
            logged_in: logged_in(&parts.headers) || known.is_some_and(|(_, l)| l),
        };
        self.note = Some(Note::Player(PlayerNote {
            video: player.video_id().map(str::to_string),
            client: client.clone(),
            visitor: visitor.clone(),
            logged_in: who.logged_in,
        }));
        let finish = |mut parts: http::request::Parts, body: Vec<u8>| {
            parts.headers.remove(CONTENT_ENCODING);
            parts.headers.remove(TRANSFER_ENCODING);
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
            RequestOrResponse::Request(Request::from_parts(parts, Body::from(body)))
        };
        if let PlayerAction::Leave(why) =
            player.decide(&settings.sentinels, settings.always_replace)
        {
            tracing::debug!(%host, %client, why, "player: token left as is");
            return if body_changed {
                finish(parts, player.to_bytes())
            } else {
                RequestOrResponse::Request(original(parts))
            };
        }
        let regime = self.shared.regimes.get(who.session_binding(), &client);
        let binding = binding_for(
            TokenContext::Player,
            &client,
            player.video_id(),
            &who,
            regime,
        );
        let token = match self.token_for(binding, &client).await {
            Ok(t) => t,
            Err(reason) => {
                return if body_changed {
                    tracing::warn!(%host, %reason, "player: no token; forwarding with visitor data only");
                    finish(parts, player.to_bytes())
                } else {
                    give_up(strict, original(parts), host, &reason)
                };
            }
        };
        player.set_token(&token);
        tracing::info!(
            %host,
            %client,
            video = player.video_id().unwrap_or("-"),
            token = %token.redacted(),
            "player: set serviceIntegrityDimensions.poToken"
        );
        finish(parts, player.to_bytes())
    }

    /// Visitor data from `POST /youtubei/v1/visitor_id`, as YouTube issues it.
    async fn fetch_visitor_data(&self, client: &str, version: Option<&str>) -> Option<String> {
        let body = json!({"context": {"client": {"clientName": client, "clientVersion": version.unwrap_or("2.20260512.00.00"), "hl": "en"}}});
        let res = self
            .shared
            .http
            .send(
                Method::POST,
                "https://www.youtube.com/youtubei/v1/visitor_id?prettyPrint=false",
                &[("content-type", "application/json")],
                Some(serde_json::to_vec(&body).expect("json")),
            )
            .await;
        let v: Value = match res {
            Ok(r) if r.status.is_success() => serde_json::from_slice(&r.body).ok()?,
            Ok(r) => {
                tracing::warn!(status = %r.status, "visitor_id: no visitor data");
                return None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "visitor_id: request failed");
                return None;
            }
        };
        let data = v["responseContext"]["visitorData"].as_str()?.to_string();
        tracing::info!(visitor = %crate::redact::redact(&data), "obtained visitor data for a player request without any");
        Some(data)
    }

    /// Reads a player response (up to a cap) to learn its media URLs, rewrites its URLs when
    /// configured, and hands the client the result.
    pub(super) async fn on_player_response(
        &self,
        res: Response<Body>,
        note: PlayerNote,
    ) -> Response<Body> {
        let (mut parts, bytes, decoded) = match read_response(res).await {
            Ok(read) => read,
            Err(unread) => return unread,
        };
        let Some(mut v) = decoded.and_then(|d| serde_json::from_slice::<Value>(&d).ok()) else {
            return Response::from_parts(parts, Body::from(bytes));
        };
        let keys = url_keys(&v);
        let Some(info) = playback_info(
            &v,
            note.video.as_deref(),
            Some(&note.client),
            note.visitor.as_deref(),
            note.logged_in,
        ) else {
            return Response::from_parts(parts, Body::from(bytes));
        };
        tracing::debug!(video = %info.video_id, client = %note.client, ei = keys.ei.len(), id = keys.id.len(), "learned player response");
        self.shared.sessions.learn(&keys, info.clone());
        if !self.shared.settings.player_response {
            return Response::from_parts(parts, Body::from(bytes));
        }
        let who = info.identity();
        let regime = self.shared.regimes.get(who.session_binding(), &note.client);
        let video = Some(info.video_id.as_str());
        let gvs = self
            .token_for(
                binding_for(TokenContext::Gvs, &note.client, video, &who, regime),
                &note.client,
            )
            .await
            .ok();
        let subs = self
            .token_for(
                binding_for(TokenContext::Subs, &note.client, video, &who, regime),
                &note.client,
            )
            .await
            .ok();
        let changed = rewrite_player_response(&mut v, gvs.as_ref(), subs.as_ref(), &note.client);
        if changed == 0 {
            return Response::from_parts(parts, Body::from(bytes));
        }
        let new = serde_json::to_vec(&v).expect("JSON value serialises");
        parts.headers.remove(CONTENT_ENCODING);
        parts.headers.remove(TRANSFER_ENCODING);
        parts
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from(new.len()));
        tracing::info!(client = %note.client, urls = changed, "player response: tokens added to URLs");
        Response::from_parts(parts, Body::from(new))
    }
}
