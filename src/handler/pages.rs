//! HTML pages of YouTube hosts (home, watch, embed, channel) and other InnerTube responses read
//! on their way to the client: `ytcfg` says which visitor data or account the session has and
//! whether the experiment that binds media tokens to the video id is on; a watch page's
//! `ytInitialPlayerResponse` carries media URLs like a player response does; InnerTube's
//! `responseContext` names the account (DataSync ID) behind a visitor. The client receives the
//! same bytes.

use http::Response;
use http::header::CONTENT_TYPE;
use hudsucker::Body;
use serde_json::Value;

use super::{PotHandler, read_response};
use crate::bindings::{Identity, regime_from_flags};
use crate::botguard::challenge::{extract_object_after, parse_page};
use crate::session::{playback_info, url_keys};

/// What a page's ytcfg says about the session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageFacts {
    pub identity: Identity,
    pub regime: Option<crate::bindings::Regime>,
    pub client: Option<String>,
}

/// Reads the session facts out of a page's ytcfg (pure).
pub fn page_facts(ytcfg: &serde_json::Map<String, Value>) -> PageFacts {
    let s = |k: &str| ytcfg.get(k).and_then(Value::as_str).map(str::to_string);
    let visitor_data = s("VISITOR_DATA").or_else(|| {
        ytcfg
            .get("INNERTUBE_CONTEXT")?
            .get("client")?
            .get("visitorData")?
            .as_str()
            .map(str::to_string)
    });
    let logged_in = ytcfg
        .get("LOGGED_IN")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let regime = ytcfg
        .get("WEB_PLAYER_CONTEXT_CONFIGS")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.values())
        .filter_map(|c| c.get("serializedExperimentFlags").and_then(Value::as_str))
        .find_map(regime_from_flags);
    PageFacts {
        identity: Identity {
            visitor_data,
            datasync_id: s("DATASYNC_ID"),
            logged_in,
        },
        regime,
        client: ytcfg
            .get("INNERTUBE_CONTEXT")
            .and_then(|c| c.get("client"))
            .and_then(|c| c.get("clientName"))
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

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
        let (parts, bytes, decoded) = match read_response(res).await {
            Ok(read) => read,
            Err(unread) => return unread,
        };
        if let Some(html) = decoded.as_deref().map(String::from_utf8_lossy) {
            self.learn_page(&html);
        }
        Response::from_parts(parts, Body::from(bytes))
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
        let (parts, bytes, decoded) = match read_response(res).await {
            Ok(read) => read,
            Err(unread) => return unread,
        };
        if let Some(v) = decoded.and_then(|d| serde_json::from_slice::<Value>(&d).ok()) {
            self.shared.identities.learn(&v);
        }
        Response::from_parts(parts, Body::from(bytes))
    }

    fn learn_page(&self, html: &str) {
        let Ok(page) = parse_page(html) else { return };
        let facts = page_facts(&page.ytcfg);
        if let (Some(session), Some(regime)) = (facts.identity.session_binding(), facts.regime) {
            tracing::debug!(session = %crate::redact::redact(session), ?regime, "page: experiment flag");
            self.shared.regimes.flag(session, regime);
        }
        if let Some(pr) = extract_object_after(html, "ytInitialPlayerResponse") {
            let keys = url_keys(&pr);
            if let Some(info) = playback_info(
                &pr,
                None,
                facts.client.as_deref(),
                facts.identity.visitor_data.as_deref(),
                facts.identity.logged_in,
            ) {
                self.shared.sessions.learn(&keys, info);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_page_yields_visitor_data_and_logged_out_state() {
        let Some(dir) = crate::testutil::fixtures_dir() else {
            return;
        };
        let html = std::fs::read_to_string(dir.join("botguard/youtube_channel_page_20260513.html"))
            .unwrap();
        let page = parse_page(&html).unwrap();
        let f = page_facts(&page.ytcfg);
        assert!(!f.identity.logged_in);
        assert!(
            f.identity
                .visitor_data
                .as_deref()
                .is_some_and(|v| v.starts_with("Cg"))
        );
        assert!(
            f.identity
                .datasync_id
                .as_deref()
                .is_some_and(|d| d.ends_with("||"))
        );
        // Logged out: the session binding is the visitor data, not the DataSync ID.
        assert_eq!(
            f.identity.session_binding(),
            f.identity.visitor_data.as_deref()
        );
        assert_eq!(f.client.as_deref(), Some("WEB"));
    }

    #[test]
    fn the_experiment_flag_is_found_in_any_player_context_config() {
        let ytcfg: serde_json::Map<String, Value> = serde_json::from_str(
            r#"{"VISITOR_DATA":"CgtV","LOGGED_IN":true,"DATASYNC_ID":"a||b","WEB_PLAYER_CONTEXT_CONFIGS":{"X":{"serializedExperimentFlags":"a=1"},"Y":{"serializedExperimentFlags":"html5_generate_content_po_token=true"}}}"#,
        )
        .unwrap();
        let f = page_facts(&ytcfg);
        assert_eq!(f.regime, Some(crate::bindings::Regime::Video));
        assert_eq!(f.identity.session_binding(), Some("a||b"));
    }
}
