//! The plan and apply stages: pure decisions about one request, from what it carries (and, for
//! media and captions, the playback earlier traffic taught). A plan is plain data: which client
//! the token is for, in which context it is minted, and where it goes; or a [`Pass`] when the
//! request is none of the proxy's business. Apply functions put a token where a plan said.
//! Nothing here touches a socket or shared state; `stages` and the route modules do the I/O.

use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::RewriteSettings;
use crate::bindings::{Identity, Regime, TokenContext, binding_for};
use crate::classify::{ManifestKind, Route, UrlForm, is_webpo_client, split_path_query, url_param};
use crate::learn::session::PlaybackInfo;
use crate::rewrite::media::{rewrite_manifest, rewrite_media, set_caption_query};
use crate::rewrite::player::{PlayerAction, PlayerRequest};
use crate::rewrite::sabr;
use crate::token::{Binding, Token, TokenChoice, keep_client_token};

/// Where a request's token goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// `serviceIntegrityDimensions.poToken` of a player JSON body.
    PlayerBody,
    /// `pot` of a `/videoplayback` URL, query or path form.
    MediaUrl(UrlForm),
    /// `/pot/<token>` of a manifest path.
    ManifestPath(ManifestKind),
    /// `streamer_context.po_token` of a SABR protobuf body.
    SabrBody,
    /// `pot`, `potc=1` and `c` of a caption query.
    CaptionQuery,
}

/// A request the proxy forwards as it came: why, when it is worth a debug line (`None` for
/// traffic that is simply not for the proxy, such as other clients' media).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass(pub Option<&'static str>);

/// What a request needs: a token of `context` for `client`, placed at `place`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub client: String,
    pub context: TokenContext,
    pub place: Placement,
}

impl Plan {
    /// The binding for this plan, given who the request is for and the session's regime.
    pub fn binding(&self, who: &Identity, video: Option<&str>, regime: Regime) -> Binding {
        binding_for(self.context, &self.client, video, who, regime)
    }
}

/// A player request's plan: beside the token, whether visitor data must be fetched first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayerPlan {
    pub plan: Plan,
    pub video: Option<String>,
    /// The visitor data the client sent (body first, then `X-Goog-Visitor-Id`).
    pub visitor: Option<String>,
    /// Session-bound tokens need visitor data; a request without any gets one YouTube issued.
    pub fetch_visitor: bool,
    /// Whether the proxy's token goes in (here: where a player request's token is decided).
    pub action: PlayerAction,
    /// The request carries a signed-in account's credentials.
    pub logged_in: bool,
}

/// Plans a parsed player request.
pub fn plan_player(
    player: &PlayerRequest,
    headers: &HeaderMap,
    settings: &RewriteSettings,
    default_regime: Regime,
) -> Result<PlayerPlan, Pass> {
    let Some(client) = player.client_name().filter(|c| is_webpo_client(c)) else {
        return Err(Pass(Some("player: not a web PO client")));
    };
    let header_visitor = headers
        .get("x-goog-visitor-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let visitor = player.visitor_data().map(str::to_string).or(header_visitor);
    Ok(PlayerPlan {
        plan: Plan {
            client: client.to_string(),
            context: TokenContext::Player,
            place: Placement::PlayerBody,
        },
        video: player.video_id().map(str::to_string),
        fetch_visitor: visitor.is_none() && default_regime == Regime::Session,
        visitor,
        action: player.decide(&settings.sentinels, settings.always_replace),
        logged_in: logged_in(headers),
    })
}

/// Who a player request is for: its visitor data, and the account earlier InnerTube responses
/// named behind that visitor (`known`: DataSync ID, signed in).
pub fn player_identity(
    visitor: Option<String>,
    known: Option<(Option<String>, bool)>,
    credentials: bool,
) -> Identity {
    Identity {
        datasync_id: known.as_ref().and_then(|(d, _)| d.clone()),
        logged_in: credentials || known.is_some_and(|(_, l)| l),
        visitor_data: visitor,
    }
}

/// Applies a player plan: the new body, or `None` when nothing changed (the request goes on
/// as it came). Fetched visitor data is sent in the body and in `X-Goog-Visitor-Id`, the same
/// way, so later media tokens bound to it match.
pub fn apply_player(
    player: &mut PlayerRequest,
    headers: &mut HeaderMap,
    fetched_visitor: Option<&str>,
    token: Option<&Token>,
) -> Option<Vec<u8>> {
    if fetched_visitor.is_none() && token.is_none() {
        return None;
    }
    if let Some(v) = fetched_visitor {
        player.set_visitor_data(v);
        if let Ok(h) = HeaderValue::from_str(v) {
            headers.insert("x-goog-visitor-id", h);
        }
    }
    if let Some(t) = token {
        player.set_token(t);
    }
    Some(player.to_bytes())
}

/// Plans a googlevideo media or manifest request. A SABR request's own token is in its body,
/// so [`sabr_choice`] judges it once the body is read.
pub fn plan_media(
    route: &Route,
    method: &Method,
    pq: &str,
    settings: &RewriteSettings,
) -> Result<Plan, Pass> {
    let Some(client) = route.url_client().filter(|c| is_webpo_client(c)) else {
        return Err(Pass(None));
    };
    let (path, query) = split_path_query(pq);
    let own = url_param(path, query, "pot");
    if keep_client_token(own.as_deref(), &settings.sentinels, settings.always_replace)
        == TokenChoice::KeepClients
    {
        return Err(Pass(Some("media: client sent its own token")));
    }
    let place = match route {
        Route::Media { sabr: true, .. } if *method == Method::POST => Placement::SabrBody,
        Route::Media { sabr: true, .. } => return Err(Pass(None)),
        Route::Media { form, .. } => Placement::MediaUrl(*form),
        Route::Manifest { kind, .. } => Placement::ManifestPath(*kind),
        _ => return Err(Pass(None)),
    };
    Ok(Plan {
        client: client.to_string(),
        context: TokenContext::Gvs,
        place,
    })
}

/// Whether a SABR body keeps the `po_token` its client put in.
pub fn sabr_choice(body: &[u8], settings: &RewriteSettings) -> TokenChoice {
    let existing = sabr::po_token(body)
        .filter(|t| !t.is_empty())
        .map(|t| Token::from_bytes(&t));
    keep_client_token(
        existing.as_ref().map(Token::as_str),
        &settings.sentinels,
        settings.always_replace,
    )
}

/// Plans a caption request: the client from its `c` or its playback; the video from its `v`
/// or its playback. Returns the plan, who it is for and the video.
pub fn plan_captions(
    route: &Route,
    playback: Option<&PlaybackInfo>,
) -> Result<(Plan, Identity, Option<String>), Pass> {
    let Route::Subtitles { client, video } = route else {
        return Err(Pass(None));
    };
    let client = client
        .clone()
        .or_else(|| playback.and_then(|p| p.client.clone()));
    let Some(client) = client.filter(|c| is_webpo_client(c)) else {
        return Err(Pass(None));
    };
    let who = playback.map(PlaybackInfo::identity).unwrap_or_default();
    let video = video
        .clone()
        .or_else(|| playback.map(|p| p.video_id.clone()));
    let plan = Plan {
        client,
        context: TokenContext::Subs,
        place: Placement::CaptionQuery,
    };
    Ok((plan, who, video))
}

/// Who a media request is for and its video, as its playback says (nothing known: unbound).
pub fn media_identity(playback: Option<&PlaybackInfo>) -> (Identity, Option<&str>) {
    (
        playback.map(PlaybackInfo::identity).unwrap_or_default(),
        playback.map(|p| p.video_id.as_str()),
    )
}

/// Applies a URL placement: the new path-and-query; `None` for body placements.
pub fn apply_url(pq: &str, place: Placement, token: &Token, client: &str) -> Option<String> {
    match place {
        Placement::MediaUrl(form) => Some(rewrite_media(pq, form, token)),
        Placement::ManifestPath(kind) => Some(rewrite_manifest(pq, kind, token)),
        Placement::CaptionQuery => {
            let (path, query) = split_path_query(pq);
            let q = set_caption_query(query.unwrap_or(""), token, client);
            Some(format!("{path}?{q}"))
        }
        Placement::PlayerBody | Placement::SabrBody => None,
    }
}

/// What a media response says about the proxy's token (the watch stage's first look; the
/// refusal policy, `crate::heal::policy`, decides what a refusal leads to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaVerdict {
    /// HTTP 403: the token (or its binding) was refused.
    Rejected,
    /// Anything else goes to the client; `accepted`: a success, so the regime held; `ump`: a
    /// UMP stream, which can still refuse the token in-band.
    Delivered { accepted: bool, ump: bool },
}

pub fn judge_media_response(status: StatusCode, content_type: Option<&str>) -> MediaVerdict {
    if status == StatusCode::FORBIDDEN {
        return MediaVerdict::Rejected;
    }
    MediaVerdict::Delivered {
        accepted: status.is_success(),
        ump: content_type.is_some_and(|t| t.starts_with("application/vnd.yt-ump")),
    }
}

/// Whether the proxy can send a media request again with another token: a GET or HEAD whose
/// token is in its URL (a body placement's body is gone once forwarded).
pub fn can_resend(method: &Method, place: Placement) -> bool {
    (*method == Method::GET || *method == Method::HEAD)
        && matches!(place, Placement::MediaUrl(_) | Placement::ManifestPath(_))
}

/// Whether the request carries credentials of a signed-in account (SAPISIDHASH
/// authorization, or the login cookies yt-dlp counts as authenticated).
pub fn logged_in(headers: &HeaderMap) -> bool {
    let auth = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth.contains("SAPISIDHASH")
        || auth.contains("SAPISID1PHASH")
        || auth.contains("SAPISID3PHASH")
    {
        return true;
    }
    let cookies: String = headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join("; ");
    cookies.contains("LOGIN_INFO=")
        && (cookies.contains("SAPISID=") || cookies.contains("__Secure-3PAPISID="))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::classify;

    fn settings(always_replace: bool) -> RewriteSettings {
        RewriteSettings {
            strict: false,
            max_body_bytes: 1 << 20,
            sentinels: vec!["POTPROXYSENTINEL".into()],
            always_replace,
            player_response: false,
            sabr_gateway: true,
        }
    }

    fn media(method: Method, pq: &str) -> Result<Plan, Pass> {
        let route = classify(&method, "rr1---sn-x.googlevideo.com", pq);
        plan_media(&route, &method, pq, &settings(false))
    }

    fn tok() -> Token {
        Token::from_bytes(&[0x32, 0x53, 0x10, 0x52, 0x3d])
    }

    fn playback(client: &str) -> PlaybackInfo {
        PlaybackInfo {
            video_id: "abcdefghijk".into(),
            client: Some(client.into()),
            visitor_data: Some("CgtVISITOR".into()),
            datasync_id: None,
            logged_in: false,
        }
    }

    #[test]
    fn web_media_gets_a_gvs_token_in_its_url() {
        let plan = media(Method::GET, "/videoplayback?expire=1&ei=x&c=MWEB").unwrap();
        assert_eq!(plan.client, "MWEB");
        assert_eq!(plan.context, TokenContext::Gvs);
        assert_eq!(plan.place, Placement::MediaUrl(UrlForm::Query));
        let m = "/api/manifest/hls_variant/expire/1/c/WEB/file/index.m3u8";
        let route = classify(&Method::GET, "manifest.googlevideo.com", m);
        let plan = plan_media(&route, &Method::GET, m, &settings(false)).unwrap();
        assert_eq!(plan.place, Placement::ManifestPath(ManifestKind::Hls));
    }

    #[test]
    fn other_clients_media_passes_silently() {
        assert_eq!(
            media(Method::GET, "/videoplayback?ei=x&c=ANDROID"),
            Err(Pass(None))
        );
        assert_eq!(media(Method::GET, "/videoplayback?ei=x"), Err(Pass(None)));
    }

    #[test]
    fn a_media_url_keeps_the_clients_own_pot_but_not_a_placeholder() {
        assert!(matches!(
            media(Method::GET, "/videoplayback?c=WEB&pot=MnQLhidw"),
            Err(Pass(Some(_)))
        ));
        assert!(media(Method::GET, "/videoplayback?c=WEB&pot=POTPROXYSENTINEL").is_ok());
        assert!(media(Method::GET, "/videoplayback?c=WEB&pot=").is_ok());
        let route = classify(
            &Method::GET,
            "rr1---sn-x.googlevideo.com",
            "/videoplayback?c=WEB&pot=MnQLhidw",
        );
        assert!(
            plan_media(
                &route,
                &Method::GET,
                "/videoplayback?c=WEB&pot=MnQLhidw",
                &settings(true)
            )
            .is_ok()
        );
    }

    #[test]
    fn a_sabr_token_goes_into_the_body_and_never_into_the_signed_url() {
        let pq = "/videoplayback?sabr=1&c=WEB&rn=1";
        let plan = media(Method::POST, pq).unwrap();
        assert_eq!(plan.place, Placement::SabrBody);
        assert_eq!(apply_url(pq, plan.place, &tok(), "WEB"), None);
        // Only POSTs carry a SABR body.
        assert_eq!(media(Method::GET, pq), Err(Pass(None)));
    }

    #[test]
    fn a_sabr_body_without_a_token_gets_ours() {
        assert_eq!(sabr_choice(b"", &settings(false)), TokenChoice::SetOurs);
    }

    #[test]
    fn url_placements_put_the_token_where_the_plan_says() {
        let t = tok();
        let q = apply_url(
            "/videoplayback?c=WEB",
            Placement::MediaUrl(UrlForm::Query),
            &t,
            "WEB",
        );
        assert_eq!(
            q.unwrap(),
            format!("/videoplayback?c=WEB&pot={}", t.query_value())
        );
        let c = apply_url("/api/timedtext?v=x", Placement::CaptionQuery, &t, "MWEB").unwrap();
        assert_eq!(
            c,
            format!("/api/timedtext?v=x&pot={}&potc=1&c=MWEB", t.query_value())
        );
        assert_eq!(apply_url("/", Placement::PlayerBody, &t, "WEB"), None);
    }

    #[test]
    fn captions_take_client_and_video_from_their_playback_when_the_url_lacks_them() {
        let route = Route::Subtitles {
            client: None,
            video: None,
        };
        let p = playback("WEB_REMIX");
        let (plan, who, video) = plan_captions(&route, Some(&p)).unwrap();
        assert_eq!(plan.client, "WEB_REMIX");
        assert_eq!(plan.context, TokenContext::Subs);
        assert_eq!(video.as_deref(), Some("abcdefghijk"));
        assert_eq!(who.session_binding(), Some("CgtVISITOR"));
        assert_eq!(plan_captions(&route, None), Err(Pass(None)));
        assert_eq!(
            plan_captions(&route, Some(&playback("ANDROID"))),
            Err(Pass(None))
        );
    }

    #[test]
    fn a_refused_url_request_can_be_resent_and_a_ump_stream_is_watched() {
        let ump = Some("application/vnd.yt-ump");
        assert_eq!(
            judge_media_response(StatusCode::FORBIDDEN, None),
            MediaVerdict::Rejected
        );
        let url = Placement::MediaUrl(UrlForm::Query);
        assert!(can_resend(&Method::GET, url));
        assert!(can_resend(&Method::HEAD, url));
        assert!(!can_resend(&Method::POST, url));
        assert!(!can_resend(&Method::POST, Placement::SabrBody));
        assert_eq!(
            judge_media_response(StatusCode::OK, ump),
            MediaVerdict::Delivered {
                accepted: true,
                ump: true
            }
        );
        assert_eq!(
            judge_media_response(StatusCode::NOT_FOUND, Some("video/mp4")),
            MediaVerdict::Delivered {
                accepted: false,
                ump: false
            }
        );
    }

    fn player(body: &str) -> PlayerRequest {
        PlayerRequest::parse(body.as_bytes()).unwrap()
    }

    #[test]
    fn a_player_plan_reads_visitor_data_from_body_then_header() {
        let p = player(r#"{"context":{"client":{"clientName":"MWEB"}},"videoId":"abcdefghijk"}"#);
        let mut h = HeaderMap::new();
        let plan = plan_player(&p, &h, &settings(false), Regime::Video).unwrap();
        assert_eq!(plan.visitor, None);
        assert_eq!(plan.action, PlayerAction::SetToken);
        assert_eq!(plan.video.as_deref(), Some("abcdefghijk"));
        h.insert("x-goog-visitor-id", "CgtHEADER".parse().unwrap());
        let plan = plan_player(&p, &h, &settings(false), Regime::Video).unwrap();
        assert_eq!(plan.visitor.as_deref(), Some("CgtHEADER"));
        let p = player(r#"{"context":{"client":{"clientName":"WEB","visitorData":"CgtBODY"}}}"#);
        let plan = plan_player(&p, &h, &settings(false), Regime::Video).unwrap();
        assert_eq!(plan.visitor.as_deref(), Some("CgtBODY"));
    }

    #[test]
    fn visitor_data_is_fetched_only_when_missing_under_the_session_regime() {
        let p = player(r#"{"context":{"client":{"clientName":"WEB"}}}"#);
        let none = HeaderMap::new();
        assert!(
            plan_player(&p, &none, &settings(false), Regime::Session)
                .unwrap()
                .fetch_visitor
        );
        assert!(
            !plan_player(&p, &none, &settings(false), Regime::Video)
                .unwrap()
                .fetch_visitor
        );
        let mut h = HeaderMap::new();
        h.insert("x-goog-visitor-id", "CgtHEADER".parse().unwrap());
        assert!(
            !plan_player(&p, &h, &settings(false), Regime::Session)
                .unwrap()
                .fetch_visitor
        );
    }

    #[test]
    fn a_player_plan_passes_other_clients_and_keeps_a_clients_own_token() {
        let p = player(r#"{"context":{"client":{"clientName":"ANDROID"}}}"#);
        assert!(plan_player(&p, &HeaderMap::new(), &settings(false), Regime::Video).is_err());
        let p = player(
            r#"{"context":{"client":{"clientName":"WEB"}},"serviceIntegrityDimensions":{"poToken":"MnQLhidw"}}"#,
        );
        let plan = plan_player(&p, &HeaderMap::new(), &settings(false), Regime::Video).unwrap();
        assert!(matches!(plan.action, PlayerAction::Leave(_)));
    }

    #[test]
    fn applying_nothing_leaves_the_body_as_it_came() {
        let mut p = player(r#"{"context":{"client":{"clientName":"WEB"}}}"#);
        let mut h = HeaderMap::new();
        assert_eq!(apply_player(&mut p, &mut h, None, None), None);
        assert!(h.is_empty());
        let body = apply_player(&mut p, &mut h, Some("CgtNEW"), None).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["context"]["client"]["visitorData"], "CgtNEW");
        assert_eq!(h["x-goog-visitor-id"], "CgtNEW");
        assert!(v.get("serviceIntegrityDimensions").is_none());
        let body = apply_player(&mut p, &mut HeaderMap::new(), None, Some(&tok())).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["serviceIntegrityDimensions"]["poToken"], tok().as_str());
    }

    #[test]
    fn an_account_named_earlier_makes_the_visitor_signed_in() {
        let who = player_identity(
            Some("CgtV".into()),
            Some((Some("a||b".into()), true)),
            false,
        );
        assert!(who.logged_in);
        assert_eq!(who.session_binding(), Some("a||b"));
        let who = player_identity(Some("CgtV".into()), None, false);
        assert_eq!(who.session_binding(), Some("CgtV"));
    }

    #[test]
    fn credentials_mark_a_request_logged_in() {
        let mut h = http::HeaderMap::new();
        assert!(!logged_in(&h));
        h.insert(
            http::header::COOKIE,
            "PREF=hl=en; SOCS=CAI".parse().unwrap(),
        );
        assert!(!logged_in(&h));
        h.insert(
            http::header::COOKIE,
            "LOGIN_INFO=x; SAPISID=y".parse().unwrap(),
        );
        assert!(logged_in(&h));
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            "SAPISIDHASH 1_abc SAPISID1PHASH 1_def".parse().unwrap(),
        );
        assert!(logged_in(&h));
    }
}
