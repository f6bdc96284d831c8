//! Self-healing when googlevideo or the player refuses a token: what each refusal signal means
//! ([`Signal`]), whether a broken media response can be continued and how ([`Span`],
//! [`Continuation`]: `Range: bytes=` from the delivered offset, or `range=a-b` rewritten for
//! query-range URLs), and the body that keeps streaming into the client's response while the
//! remainder is fetched with a fresh token ([`resume::Resuming`]). The decisions here are pure;
//! `handler::media` does the I/O (re-minting through `tokens::TokenService::refused`, sending).

pub mod resume;

use http::StatusCode;

/// Most continuation requests one client response may cost before it is given up (aborted,
/// never padded).
pub const MAX_RESUME_ATTEMPTS: u32 = 3;

/// Something upstream said or did about a request that carried the proxy's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// HTTP 403 to a media request.
    Forbidden,
    /// The body ended before its Content-Length.
    CutShort { delivered: u64, expected: u64 },
    /// The connection broke mid-body (reset, protocol error).
    Broken { delivered: u64, error: String },
    /// UMP STREAM_PROTECTION_STATUS 2 (token required soon) or 3 (no more media).
    ProtectionStatus(u64),
    /// The player answered `LOGIN_REQUIRED` "confirm you're not a bot".
    BotCheck,
    /// A continuation could not be used (wrong range, an error status other than 403, a
    /// failed send): not the token's fault.
    Unusable(String),
}

impl Signal {
    /// Whether the signal says the token was refused (its source gets the blame).
    pub fn refuses_token(&self) -> bool {
        !matches!(self, Signal::Unusable(_) | Signal::ProtectionStatus(0..=1))
    }

    /// For logs and the set-aside reason.
    pub fn reason(&self) -> String {
        match self {
            Signal::Forbidden => "googlevideo answered 403".into(),
            Signal::CutShort {
                delivered,
                expected,
            } => format!("media response cut short at {delivered} of {expected} bytes"),
            Signal::Broken { delivered, error } => {
                format!("media response broke after {delivered} bytes: {error}")
            }
            Signal::ProtectionStatus(s) => format!("UMP stream protection status {s}"),
            Signal::BotCheck => "player asked to confirm this is not a bot".into(),
            Signal::Unusable(why) => why.clone(),
        }
    }
}

/// A STREAM_PROTECTION_STATUS as a signal: 2 and 3 refuse the token; 1 is fine.
pub fn protection_signal(status: u64) -> Option<Signal> {
    (status >= 2).then_some(Signal::ProtectionStatus(status))
}

/// What a refusal that could also be a wrong binding means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// Not a refusal (UMP status 1).
    Nothing,
    /// The token: report it refused and use a fresh one.
    Token,
    /// The binding: switch to the other regime (the token was never accepted here).
    Binding,
}

/// A 403, or a UMP STREAM_PROTECTION_STATUS, judged: with the regime already confirmed for
/// this session (googlevideo accepted it before) the token is to blame. Otherwise a wrong
/// binding is the likelier cause, except for status 2 (and a 3 after a 2 on the same
/// stream), which say a token was there but is not good enough.
pub fn blame(signal: &Signal, regime_confirmed: bool, pending_seen: bool) -> Blame {
    match signal {
        Signal::ProtectionStatus(0..=1) | Signal::Unusable(_) => Blame::Nothing,
        Signal::ProtectionStatus(2) => Blame::Token,
        Signal::ProtectionStatus(_) if pending_seen => Blame::Token,
        _ if regime_confirmed => Blame::Token,
        Signal::Forbidden | Signal::ProtectionStatus(_) => Blame::Binding,
        _ => Blame::Token,
    }
}

/// Whether a player response is the bot check (`playabilityStatus.status == LOGIN_REQUIRED`
/// with a reason or message about confirming you are not a bot).
pub fn is_bot_check(player: &serde_json::Value) -> bool {
    let ps = &player["playabilityStatus"];
    let messages = ps["messages"].as_array();
    bot_check_rule(
        ps["status"].as_str(),
        ps["reason"].as_str(),
        messages.into_iter().flatten().filter_map(|m| m.as_str()),
    )
}

/// [`is_bot_check`] on a response body, reading only `playabilityStatus` (a whole `Value` of a
/// multi-megabyte player response costs tens of MB).
pub fn is_bot_check_body(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Player {
        #[serde(rename = "playabilityStatus")]
        playability: Option<Playability>,
    }
    #[derive(serde::Deserialize)]
    struct Playability {
        status: Option<String>,
        reason: Option<String>,
        #[serde(default)]
        messages: Vec<serde_json::Value>,
    }
    let Ok(Player {
        playability: Some(p),
    }) = serde_json::from_slice::<Player>(body)
    else {
        return false;
    };
    bot_check_rule(
        p.status.as_deref(),
        p.reason.as_deref(),
        p.messages.iter().filter_map(|m| m.as_str()),
    )
}

/// `LOGIN_REQUIRED` whose reason or a message says "not a bot".
fn bot_check_rule<'a>(
    status: Option<&str>,
    reason: Option<&str>,
    mut messages: impl Iterator<Item = &'a str>,
) -> bool {
    let mentions_bot = |s: &str| s.to_ascii_lowercase().contains("not a bot");
    status == Some("LOGIN_REQUIRED")
        && (reason.is_some_and(mentions_bot) || messages.any(mentions_bot))
}

/// Where a media response's bytes sit in the file, as far as a continuation needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// From `start` (absolute), asked with a `Range` header or not at all.
    Header { start: u64 },
    /// From `start`, asked with the `range=a-b` query parameter.
    Query { start: u64 },
}

/// The span of a response, from the request's `range=` query value and the response's status
/// and `Content-Range`; `None` when a continuation cannot be expressed (multi-range, a path
/// `/range/` segment, an unreadable range).
pub fn response_span(
    query_range: Option<&str>,
    path_has_range: bool,
    status: StatusCode,
    content_range: Option<&str>,
) -> Option<Span> {
    if path_has_range {
        return None;
    }
    if let Some(r) = query_range {
        let (a, _) = parse_pair(r)?;
        return Some(Span::Query { start: a });
    }
    match status {
        StatusCode::OK => Some(Span::Header { start: 0 }),
        StatusCode::PARTIAL_CONTENT => {
            let (a, _, _) = parse_content_range(content_range?)?;
            Some(Span::Header { start: a })
        }
        _ => None,
    }
}

fn parse_pair(r: &str) -> Option<(u64, u64)> {
    let (a, b) = r.trim().split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}

/// `bytes a-b/total` (total may be `*`).
pub fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (pair, total) = rest.split_once('/')?;
    let (a, b) = parse_pair(pair)?;
    Some((a, b, total.trim().parse().ok()))
}

/// The request for the remainder of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuation {
    /// First and last absolute byte wanted.
    pub first: u64,
    pub last: u64,
    /// `Range` header value to send (`None`: send none).
    pub range_header: Option<String>,
    /// The `range=` query value to put in the URL (`None`: leave the URL's as it is).
    pub query_range: Option<String>,
}

impl Continuation {
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The continuation of a response of `len` body bytes at `span` after `delivered` of them
/// reached the client; `None` when nothing is left.
pub fn continuation(span: Span, len: u64, delivered: u64) -> Option<Continuation> {
    if delivered >= len {
        return None;
    }
    let (start, query) = match span {
        Span::Header { start } => (start, false),
        Span::Query { start } => (start, true),
    };
    let first = start + delivered;
    let last = start + len - 1;
    let pair = format!("{first}-{last}");
    Some(Continuation {
        first,
        last,
        range_header: (!query).then(|| format!("bytes={pair}")),
        query_range: query.then_some(pair),
    })
}

/// Whether a continuation's response holds exactly the bytes asked for; why not otherwise.
pub fn check_continuation(
    c: &Continuation,
    status: StatusCode,
    content_range: Option<&str>,
    content_length: Option<u64>,
) -> Result<(), Signal> {
    if status == StatusCode::FORBIDDEN {
        return Err(Signal::Forbidden);
    }
    if c.query_range.is_some() {
        if !status.is_success() {
            return Err(Signal::Unusable(format!("continuation answered {status}")));
        }
        if let Some((a, b, _)) = content_range.and_then(parse_content_range) {
            if (a, b) != (c.first, c.last) {
                return Err(Signal::Unusable(format!(
                    "continuation covers {a}-{b}, wanted {}-{}",
                    c.first, c.last
                )));
            }
        }
    } else {
        if status != StatusCode::PARTIAL_CONTENT {
            return Err(Signal::Unusable(format!(
                "continuation answered {status}, wanted 206"
            )));
        }
        match content_range.and_then(parse_content_range) {
            Some((a, b, _)) if (a, b) == (c.first, c.last) => {}
            other => {
                return Err(Signal::Unusable(format!(
                    "continuation covers {other:?}, wanted {}-{}",
                    c.first, c.last
                )));
            }
        }
    }
    match content_length {
        Some(n) if n != c.len() => Err(Signal::Unusable(format!(
            "continuation has {n} bytes, wanted {}",
            c.len()
        ))),
        _ => Ok(()),
    }
}

/// `range=` of a query replaced by `value` (the other parameters kept as they were).
pub fn with_query_range(pq: &str, value: &str) -> String {
    let Some((path, query)) = pq.split_once('?') else {
        return format!("{pq}?range={value}");
    };
    let mut found = false;
    let parts: Vec<String> = query
        .split('&')
        .map(|p| {
            if p.split_once('=').map_or(p, |(k, _)| k) == "range" {
                found = true;
                format!("range={value}")
            } else {
                p.to_string()
            }
        })
        .collect();
    let mut q = parts.join("&");
    if !found {
        q.push_str(&format!("&range={value}"));
    }
    format!("{path}?{q}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_signals_blame_the_token_and_others_do_not() {
        assert!(Signal::Forbidden.refuses_token());
        assert!(
            Signal::CutShort {
                delivered: 1,
                expected: 2
            }
            .refuses_token()
        );
        assert!(protection_signal(3).unwrap().refuses_token());
        assert!(protection_signal(2).unwrap().refuses_token());
        assert_eq!(protection_signal(1), None);
        assert!(!Signal::Unusable("416".into()).refuses_token());
    }

    #[test]
    fn a_refusal_blames_the_binding_until_the_regime_is_confirmed() {
        let sps = Signal::ProtectionStatus;
        assert_eq!(blame(&Signal::Forbidden, false, false), Blame::Binding);
        assert_eq!(blame(&Signal::Forbidden, true, false), Blame::Token);
        assert_eq!(blame(&sps(3), false, false), Blame::Binding);
        assert_eq!(blame(&sps(3), true, false), Blame::Token);
        // 2 means a token was there but is not trusted; a 3 after it is the same story.
        assert_eq!(blame(&sps(2), false, false), Blame::Token);
        assert_eq!(blame(&sps(3), false, true), Blame::Token);
        assert_eq!(blame(&sps(1), true, true), Blame::Nothing);
        // A body cut short is never a binding problem: the binding was accepted at first.
        let cut = Signal::CutShort {
            delivered: 1,
            expected: 2,
        };
        assert_eq!(blame(&cut, false, false), Blame::Token);
    }

    #[test]
    fn the_bot_check_is_recognised_by_status_and_reason() {
        let bot = serde_json::json!({"playabilityStatus": {"status": "LOGIN_REQUIRED", "reason": "Sign in to confirm you\u{2019}re not a bot"}});
        assert!(is_bot_check(&bot));
        let msgs = serde_json::json!({"playabilityStatus": {"status": "LOGIN_REQUIRED", "messages": ["Sign in to confirm you\u{2019}re not a bot. This helps protect our community."]}});
        assert!(is_bot_check(&msgs));
        let age = serde_json::json!({"playabilityStatus": {"status": "LOGIN_REQUIRED", "reason": "Sign in to confirm your age"}});
        assert!(!is_bot_check(&age));
        assert!(!is_bot_check(
            &serde_json::json!({"playabilityStatus": {"status": "OK"}})
        ));
        // The body reader the response path uses agrees.
        for (v, expected) in [(&bot, true), (&msgs, true), (&age, false)] {
            assert_eq!(is_bot_check_body(&serde_json::to_vec(v).unwrap()), expected);
        }
        assert!(!is_bot_check_body(b"not json"));
    }

    #[test]
    fn a_whole_response_continues_with_a_range_header_from_the_delivered_offset() {
        let span = response_span(None, false, StatusCode::OK, None).unwrap();
        let c = continuation(span, 1000, 300).unwrap();
        assert_eq!(c.range_header.as_deref(), Some("bytes=300-999"));
        assert_eq!(c.query_range, None);
        assert_eq!(c.len(), 700);
        assert_eq!(continuation(span, 1000, 1000), None);
    }

    #[test]
    fn a_ranged_response_continues_inside_its_own_range() {
        let span = response_span(
            None,
            false,
            StatusCode::PARTIAL_CONTENT,
            Some("bytes 5000-9999/20000"),
        )
        .unwrap();
        let c = continuation(span, 5000, 1).unwrap();
        assert_eq!(c.range_header.as_deref(), Some("bytes=5001-9999"));
    }

    #[test]
    fn a_query_range_is_rewritten_not_turned_into_a_header() {
        let span = response_span(Some("100-199"), false, StatusCode::OK, None).unwrap();
        let c = continuation(span, 100, 40).unwrap();
        assert_eq!(c.range_header, None);
        assert_eq!(c.query_range.as_deref(), Some("140-199"));
        assert_eq!(
            with_query_range("/videoplayback?a=1&range=100-199&b=2", "140-199"),
            "/videoplayback?a=1&range=140-199&b=2"
        );
        assert!(response_span(None, true, StatusCode::OK, None).is_none());
        assert!(response_span(Some("9-1"), false, StatusCode::OK, None).is_none());
    }

    #[test]
    fn a_continuation_must_hold_exactly_the_bytes_asked_for() {
        let c = continuation(Span::Header { start: 0 }, 1000, 300).unwrap();
        let ok = check_continuation(
            &c,
            StatusCode::PARTIAL_CONTENT,
            Some("bytes 300-999/1000"),
            Some(700),
        );
        assert_eq!(ok, Ok(()));
        assert_eq!(
            check_continuation(&c, StatusCode::FORBIDDEN, None, None),
            Err(Signal::Forbidden)
        );
        assert!(matches!(
            check_continuation(&c, StatusCode::OK, None, Some(1000)),
            Err(Signal::Unusable(_))
        ));
        assert!(matches!(
            check_continuation(
                &c,
                StatusCode::PARTIAL_CONTENT,
                Some("bytes 0-999/1000"),
                Some(1000)
            ),
            Err(Signal::Unusable(_))
        ));
    }
}
