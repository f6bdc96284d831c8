//! InnerTube player requests and responses: the token goes into the request body; the response
//! is read on its way back to learn which video, client and session its media URLs belong to
//! (and, when configured, to put tokens into those URLs). A response with the bot check to a
//! request carrying the proxy's token goes to the refusal policy ([`crate::heal::policy`]),
//! which has it re-sent with a fresh token within the request's budget.

use http::{Request, Response};
use hudsucker::{Body, RequestOrResponse};
use serde_json::Value;

use super::plan::{Pass, PlayerPlan, apply_player, plan_player, player_identity};
use super::stages::{fresh_token, not_sent, read_for_learning};
use super::{Note, PotHandler};
use crate::bindings::{Identity, TokenContext, binding_for};
use crate::body::Whole;
use crate::heal::{self, Decision, History, Outcome, Stop};
use crate::innertube;
use crate::learn::session::PlayerFacts;
use crate::observe::{Outcome as Marked, Rewrite};
use crate::rewrite::player::{PlayerAction, PlayerRequest};
use crate::rewrite::response::rewrite_player_response;
use crate::token::Binding;
use crate::tokens::{Issued, TokenRequest};

/// What the response handler needs from a player request.
#[derive(Debug, Clone)]
pub struct PlayerNote {
    video: Option<String>,
    client: String,
    visitor: Option<String>,
    logged_in: bool,
    client_version: Option<String>,
    /// The client gets gateway URLs for SABR-only formats ([`crate::sabr::formats::client_rule`]).
    gateway: bool,
    /// Set when the proxy put its token in: what re-sending the request with a fresh token
    /// needs if the player answers with the bot check.
    retry: Option<Box<PlayerRetry>>,
}

/// A player request as it was sent with the proxy's token.
#[derive(Debug, Clone)]
struct PlayerRetry {
    uri: http::Uri,
    headers: http::HeaderMap,
    player: PlayerRequest,
    fetched: Option<String>,
    binding: Binding,
    issued: Issued,
    /// What the request went through (its re-send budget).
    history: History,
}

impl PotHandler {
    /// read -> plan -> context (visitor data, account) -> token -> apply -> forward.
    pub(super) async fn on_player_request(
        &mut self,
        req: Request<Body>,
        host: &str,
    ) -> RequestOrResponse {
        let (mut whole, mut player) = match self.read_player(req, host).await {
            Ok(read) => read,
            Err(out) => return out,
        };
        let default_regime = self.shared.regimes.default_regime();
        let plan = match plan_player(
            &player,
            whole.headers(),
            &self.shared.settings,
            default_regime,
        ) {
            Ok(plan) => plan,
            Err(Pass(why)) => {
                let why = why.unwrap_or("player: passed");
                tracing::debug!(%host, client = ?player.client_name(), "{why}");
                return RequestOrResponse::Request(whole.unchanged());
            }
        };
        let client = plan.plan.client.as_str();
        let (fetched, who) = self.player_context(&plan, player.client_version()).await;
        if let Some(ex) = self.observed() {
            ex.video(plan.video.as_deref());
        }
        let gateway =
            crate::sabr::formats::client_rule(self.gateway_reachable(), client, whole.headers())
                == crate::sabr::formats::ClientRule::Give;
        self.note = Some(Note::Player(PlayerNote {
            video: plan.video.clone(),
            client: client.to_string(),
            visitor: who.visitor_data.clone(),
            logged_in: who.logged_in,
            client_version: player.client_version().map(str::to_string),
            gateway,
            retry: None,
        }));
        let mut binding_used = None;
        let token = match plan.action {
            PlayerAction::Leave(why) => {
                if let Some(ex) = self.observed() {
                    ex.outcome(Marked::Kept);
                }
                tracing::debug!(%host, %client, why, "player: token left as is");
                None
            }
            PlayerAction::SetToken => {
                let regime = self.regime_for(&who, client).await;
                let binding = plan.plan.binding(&who, plan.video.as_deref(), regime);
                match self.issued_for(binding.clone()).await {
                    Ok(t) => {
                        if let Some(ex) = self.observed() {
                            ex.token_from(&binding, Some(&t));
                        }
                        binding_used = Some((binding, t.clone()));
                        Some(t.token)
                    }
                    // Fetched visitor data is worth sending even without a token.
                    Err(e) if fetched.is_some() => {
                        tracing::warn!(%host, reason = %e, "player: no token; forwarding with visitor data only");
                        None
                    }
                    Err(e) => {
                        return self.give_up(
                            whole.unchanged(),
                            host,
                            &crate::errtext::error_chain(&e),
                        );
                    }
                }
            }
        };
        let edit = apply_player(
            &mut player,
            whole.headers_mut(),
            fetched.as_deref(),
            token.as_ref(),
        );
        let Some(body) = edit else {
            return RequestOrResponse::Request(whole.unchanged());
        };
        if let (Some((binding, issued)), Some(Note::Player(note))) =
            (binding_used, self.note.as_mut())
        {
            note.retry = Some(Box::new(PlayerRetry {
                uri: whole.parts.uri.clone(),
                headers: whole.headers().clone(),
                // The body is already serialised: the parsed request moves to the retry note.
                player,
                fetched: fetched.clone(),
                binding,
                issued,
                history: History::new(true, true),
            }));
        }
        if let Some(token) = &token {
            tracing::info!(
                %host,
                %client,
                video = plan.video.as_deref().unwrap_or("-"),
                token = %token.redacted(),
                "player: set serviceIntegrityDimensions.poToken"
            );
        }
        if let Some(ex) = self.observed() {
            ex.rewrote(Rewrite::Player);
        }
        RequestOrResponse::Request(whole.replaced(body))
    }

    /// The read stage of a player request: the body within the cap, decoded and parsed.
    async fn read_player(
        &self,
        req: Request<Body>,
        host: &str,
    ) -> Result<(Whole<Request<Body>>, PlayerRequest), RequestOrResponse> {
        let whole = self.read_request(req, host, "player").await?;
        let parsed = whole
            .decoded(self.shared.settings.max_body_bytes)
            .map_err(|e| e.to_string())
            .and_then(|d| PlayerRequest::parse(&d).map_err(|e| e.to_string()));
        match parsed {
            Ok(player) => Ok((whole, player)),
            Err(reason) => Err(self.give_up(whole.unchanged(), host, &reason)),
        }
    }

    /// The context stage of a player request: visitor data fetched when the plan asks for it,
    /// and who the request is for (the account earlier InnerTube responses named behind its
    /// visitor).
    async fn player_context(
        &self,
        plan: &PlayerPlan,
        version: Option<&str>,
    ) -> (Option<String>, Identity) {
        let fetched = match plan.fetch_visitor {
            true => self.fetch_visitor_data(&plan.plan.client, version).await,
            false => None,
        };
        let visitor = fetched.clone().or_else(|| plan.visitor.clone());
        let known = match visitor.as_deref() {
            Some(v) => self.shared.identities.lookup_shared(v).await,
            None => None,
        };
        (fetched, player_identity(visitor, known, plan.logged_in))
    }

    /// Visitor data from `POST /youtubei/v1/visitor_id`, as YouTube issues it, claiming the
    /// request's own client version (else the table's).
    async fn fetch_visitor_data(&self, client: &str, version: Option<&str>) -> Option<String> {
        let version = version.unwrap_or_else(|| innertube::client_version(client));
        match innertube::visitor_id(&self.shared.http, client, version).await {
            Ok(data) => {
                tracing::info!(visitor = %crate::redact::redact(&data), "obtained visitor data for a player request without any");
                Some(data)
            }
            Err(e) => {
                tracing::warn!(error = %crate::errtext::error_chain(&e), "visitor_id: no visitor data");
                None
            }
        }
    }

    /// Reads a player response (up to a cap) to learn its media URLs, rewrites its URLs when
    /// configured, and hands the client the result.
    pub(super) async fn on_player_response(
        &self,
        res: Response<Body>,
        mut note: PlayerNote,
    ) -> Response<Body> {
        let (whole, decoded) = match read_for_learning(res).await {
            Ok(read) => read,
            Err(unread) => return unread,
        };
        let Some(decoded) = decoded else {
            return whole.unchanged();
        };
        if note.retry.is_some() && heal::is_bot_check_body(&decoded) {
            if let Some(ex) = self.observed() {
                ex.refused_token();
            }
            if let Some(mut retry) = note.retry.take() {
                let outcome = Outcome::BotCheck;
                let resent = match retry.history.decide(&outcome) {
                    Decision::FreshToken { same_ok, .. } => {
                        self.retry_player(&mut retry, &outcome, same_ok).await
                    }
                    Decision::GiveUp(stop) => Err(stop),
                    _ => Err(Stop::CannotResend),
                };
                match resent {
                    Ok(res) => {
                        note.retry = Some(retry);
                        return Box::pin(self.on_player_response(res, note)).await;
                    }
                    Err(stop) => {
                        tracing::warn!(client = %note.client, reason = %stop, "player bot check: the client gets it");
                    }
                }
            }
        }
        if let Some(ip) = crate::sabr::formats::bound_ip_of(&decoded) {
            *self.shared.own_ip.lock().unwrap_or_else(|e| e.into_inner()) = Some(ip);
        }
        let gateway = note.gateway && crate::sabr::formats::may_be_sabr_only(&decoded);
        // Only learning: read the few fields it needs (a whole `Value` of a 5 MB response
        // costs tens of MB). Rewriting needs the whole document.
        let (facts, mut v) = if self.shared.settings.player_response || gateway {
            match serde_json::from_slice::<Value>(&decoded) {
                Ok(v) => (PlayerFacts::of_value(&v), Some(v)),
                Err(_) => return whole.unchanged(),
            }
        } else {
            match PlayerFacts::parse(&decoded) {
                Some(facts) => (facts, None),
                None => return whole.unchanged(),
            }
        };
        drop(decoded);
        let keys = facts.url_keys();
        let Some(info) = facts.playback_info(
            note.video.as_deref(),
            Some(&note.client),
            note.visitor.as_deref(),
            note.logged_in,
        ) else {
            return whole.unchanged();
        };
        tracing::debug!(video = %info.video_id, client = %note.client, ei = keys.ei.len(), id = keys.id.len(), "learned player response");
        self.shared.sessions.learn(&keys, info.clone());
        let Some(v) = v.as_mut() else {
            return whole.unchanged();
        };
        let given = if gateway {
            crate::sabr::formats::add_gateway_urls(
                v,
                &crate::sabr::formats::Asker {
                    client: &note.client,
                    client_version: note.client_version.as_deref(),
                    video_id: note.video.as_deref(),
                },
            )
        } else {
            0
        };
        if given > 0 {
            tracing::info!(client = %note.client, video = %info.video_id, formats = given, "player response: SABR-only formats got gateway URLs");
            if let Some(ex) = self.observed() {
                ex.rewrote(Rewrite::GatewayUrls);
            }
        }
        let changed = if self.shared.settings.player_response {
            let who = info.identity();
            let regime = self.regime_for(&who, &note.client).await;
            let video = Some(info.video_id.as_str());
            let binding = |ctx| binding_for(ctx, &note.client, video, &who, regime);
            let gvs = self.token_for(binding(TokenContext::Gvs)).await.ok();
            let subs = self.token_for(binding(TokenContext::Subs)).await.ok();
            rewrite_player_response(v, gvs.as_ref(), subs.as_ref(), &note.client)
        } else {
            0
        };
        if changed + given == 0 {
            return whole.unchanged();
        }
        if changed > 0 {
            tracing::info!(client = %note.client, urls = changed, "player response: tokens added to URLs");
            if let Some(ex) = self.observed() {
                ex.rewrote(Rewrite::PlayerResponse);
            }
        }
        whole.replaced(serde_json::to_vec(v).expect("JSON value serialises"))
    }

    /// [`Decision::FreshToken`] for a player request answered with the bot check: the token
    /// reported refused and the request re-sent with a fresh one (which `r` then carries).
    async fn retry_player(
        &self,
        r: &mut PlayerRetry,
        why: &Outcome,
        same_ok: bool,
    ) -> Result<Response<Body>, Stop> {
        let req = TokenRequest::new(r.binding.clone());
        let issued = fresh_token(&self.shared.tokens, &req, Some(&r.issued), why, same_ok).await?;
        if let Some(ex) = self.observed() {
            ex.token_from(&r.binding, Some(&issued));
        }
        let body = apply_player(
            &mut r.player,
            &mut r.headers,
            r.fetched.as_deref(),
            Some(&issued.token),
        )
        .ok_or(Stop::Unbuildable)?;
        // The same framing and hop-by-hop rules as the request the client sent: the body goes
        // out whole and uncompressed; the client sets Host from the URL.
        let mut headers = r.headers.clone();
        crate::body::fix_framing(&mut headers, body.len());
        crate::access::strip_hop_by_hop(&mut headers, false);
        headers.remove(http::header::HOST);
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
            .collect();
        let url = r.uri.to_string();
        let fetched = self
            .shared
            .http
            .send(http::Method::POST, &url, &pairs, Some(body))
            .await
            .map_err(|e| not_sent(&e))?;
        tracing::info!(source = ?issued.provenance.as_ref().map(|p| p.source), status = %fetched.status, left = r.history.left(), "player bot check: re-sent the player request with a fresh token");
        r.issued = issued;
        let mut res = Response::new(Body::from(http_body_util::Full::new(fetched.body)));
        *res.status_mut() = fetched.status;
        *res.headers_mut() = fetched.headers;
        Ok(res)
    }
}
