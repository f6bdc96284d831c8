//! The I/O stages every route shares, so a route is only its plan and apply functions (in
//! `plan`) and a short orchestration: reading a request body within the cap, giving up
//! (forward unchanged, or 502 under `strict`), asking for a token, and reading a response
//! for learning. Body replacement with true framing headers is [`crate::body::Whole::replaced`].

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hudsucker::{Body, RequestOrResponse};

use super::{PotHandler, RESPONSE_CAP, text_response};
use crate::bindings::{Identity, Regime};
use crate::body::{NotRead, Whole, read_whole};
use crate::heal::{Outcome, Stop};
use crate::token::{Binding, Token};
use crate::tokens::{Issued, TokenError, TokenRequest, TokenService};

impl PotHandler {
    /// A request that could not be rewritten: forwarded as it came, or refused under `strict`.
    pub(super) fn give_up(
        &self,
        req: Request<Body>,
        host: &str,
        reason: &str,
    ) -> RequestOrResponse {
        if let Some(ex) = self.observed() {
            ex.outcome(crate::observe::Outcome::GaveUp);
        }
        if self.shared.settings.strict {
            tracing::warn!(%host, path = %req.uri().path(), %reason, "strict: refusing request");
            return RequestOrResponse::Response(text_response(
                StatusCode::BAD_GATEWAY,
                format!("potproxy (strict): {reason}\n"),
            ));
        }
        tracing::warn!(%host, path = %req.uri().path(), %reason, "forwarding request unchanged");
        RequestOrResponse::Request(req)
    }

    /// The read stage for a request body (`what` names it in messages): the whole body, or
    /// what to hand the server at once. Over the cap is a give-up; a body that breaks while
    /// being read cannot be forwarded any more, so the client gets a 400.
    pub(super) async fn read_request(
        &self,
        req: Request<Body>,
        host: &str,
        what: &str,
    ) -> Result<Whole<Request<Body>>, RequestOrResponse> {
        let cap = self.shared.settings.max_body_bytes;
        match read_whole(req, cap).await {
            Ok(whole) => Ok(whole),
            Err(NotRead::TooLarge(req)) => {
                Err(self.give_up(req, host, &format!("{what} body over the {cap}-byte cap")))
            }
            Err(NotRead::Broken { error, .. }) => {
                tracing::warn!(%host, %error, "{what} request body could not be read");
                Err(RequestOrResponse::Response(text_response(
                    StatusCode::BAD_REQUEST,
                    format!("potproxy: {error}\n"),
                )))
            }
        }
    }

    /// The context stage's regime: what was observed or flagged for this session and client,
    /// else the configured default.
    pub(super) async fn regime_for(&self, who: &Identity, client: &str) -> Regime {
        self.shared
            .regimes
            .get_shared(who.session_binding(), client)
            .await
    }

    /// The token stage: a token for `binding`, from the cache or the sources.
    pub(super) async fn token_for(&self, binding: Binding) -> Result<Token, TokenError> {
        self.shared.tokens.get(&TokenRequest::new(binding)).await
    }

    /// The token stage with where the token came from (media requests, whose refusals are
    /// attributed to its source).
    pub(super) async fn issued_for(
        &self,
        binding: Binding,
    ) -> Result<crate::tokens::Issued, TokenError> {
        self.shared.tokens.issue(&TokenRequest::new(binding)).await
    }
}

/// The act of `heal::Decision::FreshToken`: `refused` is reported (its minter dropped, its
/// source set aside when it keeps being refused; without provenance it is only forgotten) and
/// a fresh token issued: from a fresh minter, or the next source. The same token back is
/// refused unless the policy said it may go again (`same_ok`).
pub(super) async fn fresh_token(
    tokens: &TokenService,
    req: &TokenRequest,
    refused: Option<&Issued>,
    why: &Outcome,
    same_ok: bool,
) -> Result<Issued, Stop> {
    match refused {
        Some(r) => {
            tokens.refused(req, r, &why.to_string());
        }
        None => tokens.forget(req),
    }
    let issued = tokens
        .issue(req)
        .await
        .map_err(|e| Stop::NoToken(crate::errtext::error_chain(&e)))?;
    if !same_ok && refused.is_some_and(|r| r.token == issued.token) {
        return Err(Stop::NoOtherToken);
    }
    Ok(issued)
}

/// A request the proxy made itself got no answer: why, without its URL (query strings carry
/// tokens and `ip=`).
pub(super) fn not_sent(e: &crate::upstream::FetchError) -> Stop {
    use crate::upstream::FetchError;
    Stop::NotSent(match e {
        FetchError::Failed { reason, .. } => reason.clone(),
        FetchError::Timeout { after, .. } => format!("no answer within {after:?}"),
        FetchError::TooLarge { limit, .. } => format!("body over {limit} bytes"),
    })
}

/// The read stage for a response read to learn from (up to [`RESPONSE_CAP`]): the response
/// whole and its body with `Content-Encoding` undone (`None` when it cannot be decoded). Over
/// the cap, or when the body breaks, the response is handed back ready to forward.
pub(super) async fn read_for_learning(
    res: Response<Body>,
) -> Result<(Whole<Response<Body>>, Option<Bytes>), Response<Body>> {
    match read_whole(res, RESPONSE_CAP).await {
        Ok(whole) => {
            let decoded = whole.decoded(RESPONSE_CAP).ok();
            Ok((whole, decoded))
        }
        Err(NotRead::TooLarge(res)) => Err(res),
        // Nothing reached the client yet: a 502 says the answer broke, where the original
        // headers with an empty body would pass for a complete (empty) answer.
        Err(NotRead::Broken { parts, error }) => {
            crate::metrics::UPSTREAM_ERRORS.with(&["body"]).inc();
            tracing::warn!(status = %parts.status, error = %crate::errtext::error_chain(&error), "upstream response broke off mid-body");
            Err(text_response(
                StatusCode::BAD_GATEWAY,
                "potproxy: upstream response broke off mid-body\n".into(),
            ))
        }
    }
}

/// The watch stage for answers the proxy only learns from (pages, other InnerTube calls): the
/// response goes on at once, frame by frame, and `learn` gets its decoded body (up to
/// [`RESPONSE_CAP`]) as the last frame passes. A body that cannot be decoded teaches nothing.
pub(super) fn learn_as_it_streams(
    res: Response<Body>,
    learn: impl FnOnce(&[u8]) + Send + Sync + 'static,
) -> Response<Body> {
    let encoding = res
        .headers()
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (parts, body) = res.into_parts();
    let on_whole = move |raw: Bytes| match &encoding {
        None => learn(&raw),
        Some(enc) => {
            if let Ok(decoded) = crate::body::decode(enc, &raw, RESPONSE_CAP) {
                learn(&decoded);
            }
        }
    };
    let tee = crate::body::Tee::new(body, RESPONSE_CAP, Box::new(on_whole));
    Response::from_parts(
        parts,
        Body::from(http_body_util::combinators::BoxBody::new(tee)),
    )
}
