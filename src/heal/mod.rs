//! Self-healing when googlevideo or the player refuses a token, or a media body breaks: the one
//! refusal policy ([`policy`]: what came back -> what to do, one budget per client request),
//! whether a broken media response can be continued and how ([`Span`], [`Continuation`]:
//! `Range: bytes=` from the delivered offset with `If-Range`, or `range=a-b` rewritten for
//! query-range URLs), the proof that a continuation is the rest of the same object
//! ([`Object`], [`check_continuation`]), and the body that keeps streaming into the client's
//! response while the remainder is fetched ([`resume::Resuming`]). The decisions here are pure;
//! `handler::media` and `handler::player` do the I/O (reporting refusals to
//! `tokens::TokenService::refused`, issuing, sending).

pub mod policy;
pub mod resume;

use http::{HeaderMap, StatusCode};

pub use policy::{Blame, Decision, History, MAX_RESENDS, Mismatch, Outcome, Stop};

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

/// What a response said about the object it is part of, to prove a continuation is the rest
/// of the same one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Object {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// The whole file's length: the Content-Range total, else (a 200 to a request without a
    /// range) the Content-Length.
    pub total: Option<u64>,
    /// The URL's `clen` (the format's length googlevideo signed into the URL).
    pub clen: Option<u64>,
}

impl Object {
    /// The object of a first response at `span`, its URL saying `clen`.
    pub fn of(first: &Answer, span: Span, clen: Option<u64>) -> Object {
        let from_range = first
            .content_range
            .as_deref()
            .and_then(parse_content_range)
            .and_then(|(_, _, t)| t);
        let whole = match span {
            Span::Header { start: 0 } if first.status == StatusCode::OK => first.content_length,
            _ => None,
        };
        Object {
            etag: first.etag.clone(),
            last_modified: first.last_modified.clone(),
            total: from_range.or(whole),
            clen,
        }
    }

    /// The `If-Range` validator: a strong ETag, else Last-Modified.
    pub fn if_range(&self) -> Option<&str> {
        self.etag
            .as_deref()
            .filter(|e| !e.starts_with("W/"))
            .or(self.last_modified.as_deref())
    }
}

/// The headers of a response that matter to a continuation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: StatusCode,
    pub content_range: Option<String>,
    pub content_length: Option<u64>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Answer {
    pub fn of(status: StatusCode, headers: &HeaderMap) -> Answer {
        let text = |name: http::header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_string())
        };
        Answer {
            status,
            content_range: text(http::header::CONTENT_RANGE),
            content_length: text(http::header::CONTENT_LENGTH).and_then(|v| v.parse().ok()),
            etag: text(http::header::ETAG),
            last_modified: text(http::header::LAST_MODIFIED),
        }
    }
}

/// The request for the remainder of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuation {
    /// First and last absolute byte wanted.
    pub first: u64,
    pub last: u64,
    /// `Range` header value to send (`None`: send none).
    pub range_header: Option<String>,
    /// `If-Range` to send with the `Range` header: the first response's validator, so a
    /// server whose object changed answers with the whole new one (which is then refused)
    /// instead of a slice of it.
    pub if_range: Option<String>,
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
pub fn continuation(span: Span, len: u64, delivered: u64, object: &Object) -> Option<Continuation> {
    if delivered >= len {
        return None;
    }
    let (start, query) = match span {
        Span::Header { start } => (start, false),
        Span::Query { start } => (start, true),
    };
    // `start` comes from the URL's `range=` or the answer's Content-Range: never trusted to fit.
    let first = start.checked_add(delivered)?;
    let last = start.checked_add(len - 1)?;
    let pair = format!("{first}-{last}");
    Some(Continuation {
        first,
        last,
        range_header: (!query).then(|| format!("bytes={pair}")),
        if_range: (!query)
            .then(|| object.if_range().map(str::to_string))
            .flatten(),
        query_range: query.then_some(pair),
    })
}

/// Whether a continuation's answer is exactly the bytes asked for, of the same object as the
/// first response; otherwise what the refusal policy is to judge (a 403, or a mismatch).
/// Header path: only a 206 whose Content-Range is the range asked for. `range=` path: a 2xx
/// of exactly the length asked for (googlevideo answers 200), its Content-Range, when present,
/// the range asked for. Either way a total must match the first response's and the URL's
/// `clen`, and the first response's ETag and Last-Modified must come back unchanged.
pub fn check_continuation(c: &Continuation, object: &Object, a: &Answer) -> Result<(), Outcome> {
    let mismatch = |m| Err(Outcome::Mismatch(m));
    if a.status == StatusCode::FORBIDDEN {
        return Err(Outcome::Forbidden);
    }
    let query = c.query_range.is_some();
    let status_ok = match query {
        true => a.status.is_success(),
        false => a.status == StatusCode::PARTIAL_CONTENT,
    };
    if !status_ok {
        return mismatch(Mismatch::Status { got: a.status });
    }
    let range = a.content_range.as_deref().map(parse_content_range);
    let wanted = (c.first, c.last);
    match range {
        Some(Some((x, y, total))) if (x, y) == wanted => {
            for expected in [object.total, object.clen].into_iter().flatten() {
                if total != Some(expected) {
                    return mismatch(Mismatch::Total {
                        got: total,
                        wanted: expected,
                    });
                }
            }
        }
        None if query => {}
        other => {
            return mismatch(Mismatch::Range {
                got: other.flatten().map(|(x, y, _)| (x, y)),
                wanted,
            });
        }
    }
    match a.content_length {
        Some(n) if n == c.len() => {}
        None if !query => {}
        got => {
            return mismatch(Mismatch::Length {
                got,
                wanted: c.len(),
            });
        }
    }
    if object.etag.is_some() && a.etag != object.etag {
        return mismatch(Mismatch::Validator { which: "ETag" });
    }
    if object.last_modified.is_some() && a.last_modified != object.last_modified {
        return mismatch(Mismatch::Validator {
            which: "Last-Modified",
        });
    }
    Ok(())
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

    fn answer(status: u16, range: Option<&str>, len: Option<u64>) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            content_range: range.map(str::to_string),
            content_length: len,
            etag: Some("\"a\"".into()),
            last_modified: Some("Mon, 01 Jun 2026 00:00:00 GMT".into()),
        }
    }

    /// The object of a whole-file 200 of 1000 bytes whose URL says `clen=1000`.
    fn object() -> Object {
        Object::of(
            &answer(200, None, Some(1000)),
            Span::Header { start: 0 },
            Some(1000),
        )
    }

    #[test]
    fn a_whole_response_continues_with_a_range_header_and_its_validator() {
        let span = response_span(None, false, StatusCode::OK, None).unwrap();
        let c = continuation(span, 1000, 300, &object()).unwrap();
        assert_eq!(c.range_header.as_deref(), Some("bytes=300-999"));
        assert_eq!(c.if_range.as_deref(), Some("\"a\""));
        assert_eq!(c.query_range, None);
        assert_eq!(c.len(), 700);
        assert_eq!(continuation(span, 1000, 1000, &object()), None);
        // No strong ETag: Last-Modified.
        let weak = Object {
            etag: Some("W/\"a\"".into()),
            ..object()
        };
        assert_eq!(weak.if_range(), Some("Mon, 01 Jun 2026 00:00:00 GMT"));
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
        let first = answer(206, Some("bytes 5000-9999/20000"), Some(5000));
        let object = Object::of(&first, span, None);
        assert_eq!(object.total, Some(20000));
        let c = continuation(span, 5000, 1, &object).unwrap();
        assert_eq!(c.range_header.as_deref(), Some("bytes=5001-9999"));
    }

    #[test]
    fn a_query_range_is_rewritten_not_turned_into_a_header() {
        let span = response_span(Some("100-199"), false, StatusCode::OK, None).unwrap();
        let c = continuation(span, 100, 40, &object()).unwrap();
        assert_eq!(c.range_header, None);
        assert_eq!(c.if_range, None);
        assert_eq!(c.query_range.as_deref(), Some("140-199"));
        assert_eq!(
            with_query_range("/videoplayback?a=1&range=100-199&b=2", "140-199"),
            "/videoplayback?a=1&range=140-199&b=2"
        );
        assert!(response_span(None, true, StatusCode::OK, None).is_none());
        assert!(response_span(Some("9-1"), false, StatusCode::OK, None).is_none());
    }

    #[test]
    fn a_continuation_must_be_the_rest_of_the_same_object() {
        let obj = object();
        let c = continuation(Span::Header { start: 0 }, 1000, 300, &obj).unwrap();
        let ok = answer(206, Some("bytes 300-999/1000"), Some(700));
        assert_eq!(check_continuation(&c, &obj, &ok), Ok(()));
        let check = |a: &Answer| check_continuation(&c, &obj, a);
        assert_eq!(
            check(&answer(403, None, None)),
            Err(Outcome::Forbidden),
            "a refusal, for the policy to judge"
        );
        let rejected = |a: Answer| match check(&a) {
            Err(Outcome::Mismatch(m)) => m,
            other => panic!("{a:?}: {other:?}"),
        };
        // A 200: what a server whose object changed answers an If-Range.
        assert!(matches!(
            rejected(answer(200, None, Some(1000))),
            Mismatch::Status { .. }
        ));
        assert!(matches!(
            rejected(answer(206, Some("bytes 0-999/1000"), Some(1000))),
            Mismatch::Range { .. }
        ));
        assert!(matches!(
            rejected(answer(206, None, Some(700))),
            Mismatch::Range { .. }
        ));
        // The same range of a file of another length.
        assert_eq!(
            rejected(answer(206, Some("bytes 300-999/5000"), Some(700))),
            Mismatch::Total {
                got: Some(5000),
                wanted: 1000
            }
        );
        assert!(matches!(
            rejected(answer(206, Some("bytes 300-999/*"), Some(700))),
            Mismatch::Total { got: None, .. }
        ));
        // Another ETag, or another Last-Modified, or none where the first had one.
        let mut other = ok.clone();
        other.etag = Some("\"b\"".into());
        assert_eq!(rejected(other), Mismatch::Validator { which: "ETag" });
        let mut other = ok.clone();
        other.last_modified = Some("Tue, 02 Jun 2026 00:00:00 GMT".into());
        assert_eq!(
            rejected(other),
            Mismatch::Validator {
                which: "Last-Modified"
            }
        );
        let mut other = ok.clone();
        other.etag = None;
        assert_eq!(rejected(other), Mismatch::Validator { which: "ETag" });
    }

    #[test]
    fn the_total_must_match_the_urls_clen_even_when_the_first_response_had_none() {
        let span = Span::Header { start: 0 };
        let first = Answer {
            content_length: None,
            ..answer(200, None, None)
        };
        let obj = Object::of(&first, span, Some(1000));
        assert_eq!(obj.total, None);
        let c = continuation(span, 1000, 300, &obj).unwrap();
        let other = answer(206, Some("bytes 300-999/2000"), Some(700));
        assert!(matches!(
            check_continuation(&c, &obj, &other),
            Err(Outcome::Mismatch(Mismatch::Total { .. }))
        ));
    }

    #[test]
    fn a_query_range_continuation_needs_its_exact_length() {
        let span = Span::Query { start: 100 };
        let first = answer(200, None, Some(100));
        let obj = Object::of(&first, span, Some(5000));
        let c = continuation(span, 100, 40, &obj).unwrap();
        let check = |a: &Answer| check_continuation(&c, &obj, a);
        // googlevideo's answer: a 200 without Content-Range, exactly the bytes asked for.
        assert_eq!(check(&answer(200, None, Some(60))), Ok(()));
        for len in [None, Some(59), Some(61), Some(5000)] {
            assert!(
                matches!(
                    check(&answer(200, None, len)),
                    Err(Outcome::Mismatch(Mismatch::Length { .. }))
                ),
                "{len:?}"
            );
        }
        assert!(matches!(
            check(&answer(200, Some("bytes 140-199/9999"), Some(60))),
            Err(Outcome::Mismatch(Mismatch::Total { .. }))
        ));
        let mut other = answer(200, None, Some(60));
        other.etag = Some("\"b\"".into());
        assert!(matches!(
            check(&other),
            Err(Outcome::Mismatch(Mismatch::Validator { .. }))
        ));
    }
}
