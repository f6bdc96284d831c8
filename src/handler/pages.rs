//! HTML pages of YouTube hosts (home, watch, embed, channel) and other InnerTube responses read
//! on their way to the client, and what they teach stored: `ytcfg` says which visitor data or
//! account the session has and whether the experiment that binds media tokens to the video id is
//! on; a watch page's `ytInitialPlayerResponse` carries media URLs like a player response does;
//! InnerTube's `responseContext` names the account (DataSync ID) behind a visitor. Reading the
//! page is [`crate::learn::page`]'s; the client receives the same bytes as they arrive
//! (learning happens as the last one passes, never holding the answer back).

use http::Response;
use http::header::CONTENT_TYPE;
use hudsucker::Body;
use serde_json::Value;

use super::stages::learn_as_it_streams;
use super::{PotHandler, Shared};
use crate::learn::page::{Page, initial_player_response};
use crate::learn::session::{playback_info, url_keys};

impl PotHandler {
    pub(super) async fn on_page_response(&self, res: Response<Body>) -> Response<Body> {
        let is_html = res
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/html"));
        if !is_html {
            return res;
        }
        let shared = self.shared.clone();
        learn_as_it_streams(res, move |html| {
            learn_page(&shared, &String::from_utf8_lossy(html));
        })
    }

    /// Any InnerTube JSON response: remember the account behind its visitor data.
    pub(super) async fn on_innertube_response(&self, res: Response<Body>) -> Response<Body> {
        let is_json = res
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/json"));
        if !is_json {
            return res;
        }
        let shared = self.shared.clone();
        learn_as_it_streams(res, move |body| {
            if let Ok(v) = serde_json::from_slice::<Value>(body) {
                shared.identities.learn(&v);
            }
        })
    }
}

/// Learns what the page says; a malformed inline challenge (the minter's business) does
/// not stop the rest from being learned.
fn learn_page(shared: &Shared, html: &str) {
    let facts = Page::parse(html).facts();
    if let (Some(session), Some(regime)) = (facts.identity.session_binding(), facts.regime) {
        tracing::debug!(session = %crate::redact::redact(session), ?regime, "page: experiment flag");
        shared.regimes.flag(session, regime);
    }
    if let Some(pr) = initial_player_response(html) {
        let keys = url_keys(&pr);
        if let Some(info) = playback_info(
            &pr,
            None,
            facts.client.as_deref(),
            facts.identity.visitor_data.as_deref(),
            facts.identity.logged_in,
        ) {
            shared.sessions.learn(&keys, info);
        }
    }
}
