//! HTML pages of YouTube hosts (home, watch, embed, channel) and other InnerTube responses read
//! on their way to the client, and what they teach stored: `ytcfg` says which visitor data or
//! account the session has and whether the experiment that binds media tokens to the video id is
//! on; a watch page's `ytInitialPlayerResponse` carries media URLs like a player response does;
//! InnerTube's `responseContext` names the account (DataSync ID) behind a visitor. Reading the
//! page is [`crate::learn::page`]'s; the client receives the same bytes as they arrive
//! (learning happens as the last one passes, never holding the answer back). The exception: a
//! watch page for a client that gets gateway URLs is read whole (within the cap) when its
//! `ytInitialPlayerResponse` has SABR-only formats, which get gateway URLs as in a player
//! response ([`crate::sabr::formats`]).

use http::header::CONTENT_TYPE;
use http::{Request, Response};
use hudsucker::Body;
use serde_json::Value;

use super::stages::{learn_as_it_streams, read_for_learning};
use super::{PotHandler, Shared};
use crate::learn::page::{Page, initial_player_response, object_span_after};
use crate::learn::session::{playback_info, url_keys};
use crate::observe::Rewrite;
use crate::sabr::formats::{Asker, ClientRule, add_gateway_urls, client_rule, may_be_sabr_only};

/// The client a watch page's own player response is for, by host.
fn page_client(host: &str) -> &'static str {
    match host {
        "m.youtube.com" => "MWEB",
        "music.youtube.com" => "WEB_REMIX",
        "www.youtube-nocookie.com" => "WEB_EMBEDDED_PLAYER",
        _ => "WEB",
    }
}

impl PotHandler {
    /// Whether a page request's answer may get gateway URLs: a watch page, for a client the
    /// rule gives them to.
    pub(super) fn page_gateway(
        &self,
        req: &Request<Body>,
        host: &str,
        pq: &str,
    ) -> Option<&'static str> {
        let client = page_client(host);
        let on = self.gateway_reachable() && pq.starts_with("/watch");
        (client_rule(on, client, req.headers()) == ClientRule::Give).then_some(client)
    }

    pub(super) async fn on_page_response(
        &self,
        res: Response<Body>,
        gateway: Option<&'static str>,
    ) -> Response<Body> {
        let is_html = res
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/html"));
        if !is_html {
            return res;
        }
        if let Some(client) = gateway {
            return self.page_with_gateway(res, client).await;
        }
        let shared = self.shared.clone();
        learn_as_it_streams(res, move |html| {
            learn_page(&shared, &String::from_utf8_lossy(html));
        })
    }

    /// A watch page read whole: its SABR-only formats get gateway URLs, then it is learned
    /// from as any page.
    async fn page_with_gateway(&self, res: Response<Body>, client: &str) -> Response<Body> {
        let (whole, decoded) = match read_for_learning(res).await {
            Ok(read) => read,
            Err(unread) => return unread,
        };
        let Some(decoded) = decoded else {
            return whole.unchanged();
        };
        let html = String::from_utf8_lossy(&decoded);
        let rewritten = gateway_page(&html, client);
        learn_page(&self.shared, rewritten.as_deref().unwrap_or(&html));
        match rewritten {
            Some(page) => {
                if let Some(ex) = self.observed() {
                    ex.rewrote(Rewrite::GatewayUrls);
                }
                whole.replaced(page.into_bytes())
            }
            None => whole.unchanged(),
        }
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

/// The page with gateway URLs in its `ytInitialPlayerResponse`; `None` when none was given.
fn gateway_page(html: &str, client: &str) -> Option<String> {
    let span = object_span_after(html, "ytInitialPlayerResponse")?;
    let text = &html[span.clone()];
    if !may_be_sabr_only(text.as_bytes()) {
        return None;
    }
    let mut pr: Value = serde_json::from_str(text).ok()?;
    let page = Page::parse(html);
    let asker = Asker {
        client: page.ytcfg_str("INNERTUBE_CLIENT_NAME").unwrap_or(client),
        client_version: page.ytcfg_str("INNERTUBE_CLIENT_VERSION"),
        video_id: None,
    };
    let given = add_gateway_urls(&mut pr, &asker);
    if given == 0 {
        return None;
    }
    tracing::info!(client = %asker.client, formats = given, "watch page: SABR-only formats got gateway URLs");
    // Inside a <script>: a `<` in a string could close it; JSON lets it be written `\u003c`.
    let json = serde_json::to_string(&pr)
        .expect("JSON value serialises")
        .replace('<', "\\u003c");
    Some(format!(
        "{}{json}{}",
        &html[..span.start],
        &html[span.end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_pages_sabr_only_formats_get_gateway_urls_and_the_rest_of_the_page_stays() {
        let pr = serde_json::json!({
            "videoDetails": {"videoId": "vid00000001", "title": "a </script> title"},
            "playerConfig": {"mediaCommonConfig": {"mediaUstreamerRequestConfig":
                {"videoPlaybackUstreamerConfig": "CgQIARAC"}}},
            "streamingData": {
                "serverAbrStreamingUrl": "https://rr1---sn-x.googlevideo.com/videoplayback?ei=E&id=o-1&sabr=1",
                "adaptiveFormats": [{"itag": 140, "mimeType": "audio/mp4", "lastModified": "7",
                    "contentLength": "100", "approxDurationMs": "1000"}]
            }
        });
        let html = format!(
            "<html><script>ytcfg.set({{\"INNERTUBE_CLIENT_NAME\":\"WEB\",\"INNERTUBE_CLIENT_VERSION\":\"2.2026\"}});</script><script>var ytInitialPlayerResponse = {};var meta = 1;</script></html>",
            serde_json::to_string(&pr).unwrap().replace('<', "\\u003c")
        );
        let page = gateway_page(&html, "WEB").expect("rewritten");
        assert!(page.starts_with("<html><script>ytcfg.set("));
        assert!(page.ends_with(";var meta = 1;</script></html>"));
        assert!(
            !page.contains("a </script>"),
            "a `<` inside the JSON stays escaped"
        );
        let back = initial_player_response(&page).unwrap();
        let url = back["streamingData"]["adaptiveFormats"][0]["url"]
            .as_str()
            .unwrap();
        let gw = crate::sabr::gateway::Gateway::parse(url.split_once('?').unwrap().1).unwrap();
        assert_eq!(gw.client_version.as_deref(), Some("2.2026"));
        assert_eq!(back["videoDetails"]["title"], "a </script> title");
        // A page without SABR-only formats is not rewritten.
        assert_eq!(
            gateway_page("<html>ytInitialPlayerResponse = {\"a\":1};</html>", "WEB"),
            None
        );
    }
}
