//! The minting flow's decisions, as pure functions of what the page and earlier answers gave:
//! whether the page's own challenge can be used (or is a no-op stub, stale, absent, malformed),
//! which challenge source to ask next, which interpreter may run, what `/att/log` is sent when
//! an answer carried `eats`, and how long a minter lives. [`super::waa`] does the asking;
//! nothing here touches the network.

use std::time::Duration;

use serde_json::{Value, json};

use super::challenge::{Attestation, Challenge, ChallengeError, interpreter_hash};
use super::settings::ChallengeSource;
use crate::learn::page::Page;

/// Renew this long before a minter's end (at most; a tenth of its life for short lives).
pub const RENEW_MARGIN: Duration = Duration::from_secs(600);

/// The engagement type of the challenge a WebPO minter runs (and of its `/att/log`).
pub const ENGAGEMENT_TYPE: &str = "ENGAGEMENT_TYPE_UNBOUND";

/// What the page's inline challenge is good for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageVerdict {
    /// Bound to this page's EVENT_ID and runnable: use it.
    Usable(Box<Attestation>),
    /// The page inlines a no-op interpreter instead of naming one (FreeTube#9607): running it
    /// yields no minter, so `/att/get` with the page's eacrToken is asked instead.
    Stub,
    /// Its `c`/`t` say it already expired (a cached page).
    Stale,
    /// The page carries no challenge.
    Absent,
    /// The page carries one that cannot be read.
    Malformed(String),
}

/// Judges the page's inline challenge at `now` (Unix seconds).
pub fn judge_page(page: &Page, now: u64) -> PageVerdict {
    let att = match super::challenge::inline_challenge(page) {
        Ok(Some(a)) => a,
        Ok(None) => return PageVerdict::Absent,
        Err(e) => return PageVerdict::Malformed(e.to_string()),
    };
    if att.challenge.interpreter_url.is_none() {
        return PageVerdict::Stub;
    }
    // A challenge about to end would give a minter of seconds and a warm-up on every mint:
    // as good as stale.
    if att
        .expires_at()
        .is_some_and(|end| end <= now + RENEW_MARGIN.as_secs())
    {
        return PageVerdict::Stale;
    }
    PageVerdict::Usable(Box::new(att))
}

/// What the page left for the next steps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageSeen {
    /// The page's ytcfg has an `EVENT_ID` (what page-bound challenges are checked against).
    pub event_id: bool,
    /// `ytAtN`'s `T`, for `/att/get`.
    pub eacr_token: Option<String>,
}

impl PageSeen {
    pub fn of(page: &Page) -> Self {
        PageSeen {
            event_id: page.ytcfg_str("EVENT_ID").is_some(),
            eacr_token: page.eacr_token().map(str::to_string),
        }
    }
}

/// What was asked so far, whatever the outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub tried: Vec<ChallengeSource>,
    /// The page, once fetched and read as a YouTube page.
    pub page: Option<PageSeen>,
}

/// The next request of the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Fetch the YouTube page (its inline challenge, ytcfg and eacrToken).
    Page,
    /// `/att/get` as the web client, with the page's eacrToken when it gave one.
    AttGet { eacr_token: Option<String> },
    /// `/att/get` as the TV client.
    Tv,
    /// WAA `Create`.
    Create,
}

/// The next source to ask: the first untried one in `order`, except that without a page's
/// EVENT_ID a web `/att/get` challenge is one the experiment refuses (LuanRT/BgUtils#44), so the
/// TV client's, which is not bound, goes first when it is in the order.
pub fn next_attempt(order: &[ChallengeSource], progress: &Progress) -> Option<Attempt> {
    let untried = |s: &ChallengeSource| !progress.tried.contains(s);
    let bound = progress.page.as_ref().is_some_and(|p| p.event_id);
    for source in order.iter().filter(|s| untried(s)) {
        return Some(match source {
            ChallengeSource::Page => Attempt::Page,
            ChallengeSource::AttGet => {
                if !bound && order.contains(&ChallengeSource::Tv) && untried(&ChallengeSource::Tv) {
                    Attempt::Tv
                } else {
                    Attempt::AttGet {
                        eacr_token: progress.page.as_ref().and_then(|p| p.eacr_token.clone()),
                    }
                }
            }
            ChallengeSource::Tv => Attempt::Tv,
            ChallengeSource::Create => Attempt::Create,
            ChallengeSource::Supplied => continue,
        });
    }
    None
}

impl Attempt {
    /// The source this attempt counts as tried.
    pub fn source(&self) -> ChallengeSource {
        match self {
            Attempt::Page => ChallengeSource::Page,
            Attempt::AttGet { .. } => ChallengeSource::AttGet,
            Attempt::Tv => ChallengeSource::Tv,
            Attempt::Create => ChallengeSource::Create,
        }
    }
}

/// Where the interpreter comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpreterPlan {
    /// The challenge's inline script: its hash is the one the challenge states, or one of an
    /// interpreter already verified.
    Inline,
    /// An interpreter already verified under the challenge's hash.
    Known,
    /// Download it from the challenge's URL and check it against the hash.
    Fetch(String),
    /// Nothing that may run.
    Refuse(ChallengeError),
}

/// Which interpreter may run for `c`; `known` says whether a hash is that of an interpreter
/// verified before. An inline script never runs on its own say-so: its hash must match.
pub fn interpreter_plan(c: &Challenge, known: impl Fn(&str) -> bool) -> InterpreterPlan {
    let mut refusal = None;
    if let Some(js) = &c.interpreter_js {
        let actual = interpreter_hash(js.as_bytes());
        if (!c.interpreter_hash.is_empty() && actual == c.interpreter_hash) || known(&actual) {
            return InterpreterPlan::Inline;
        }
        refusal = Some(if c.interpreter_hash.is_empty() {
            ChallengeError::Missing("interpreterHash")
        } else {
            ChallengeError::HashMismatch {
                expected: c.interpreter_hash.clone(),
                actual,
            }
        });
    }
    match &c.interpreter_url {
        Some(_) if c.interpreter_hash.is_empty() => {
            InterpreterPlan::Refuse(ChallengeError::Missing("interpreterHash"))
        }
        Some(_) if known(&c.interpreter_hash) => InterpreterPlan::Known,
        Some(url) => InterpreterPlan::Fetch(url.clone()),
        None => InterpreterPlan::Refuse(refusal.unwrap_or(ChallengeError::Missing("interpreter"))),
    }
}

/// The `/att/log` body a client sends after running a challenge whose answer carried `eats`
/// (YouTube.js #1248 `BotGuardManager.log`): `eats` rides in the request's one-time context as
/// `context.request.eats`, next to the answer's `challenge` text and the VM's response. `None`
/// when there is nothing to log (no `eats`, or no `challenge` text to echo).
pub fn att_log_body(
    context: &Value,
    text: Option<&str>,
    eats: Option<&str>,
    web_response: &str,
) -> Option<Value> {
    let eats = eats?;
    let challenge = text?;
    let mut context = context.clone();
    if !context.is_object() {
        context = json!({});
    }
    let request = context
        .as_object_mut()
        .expect("an object")
        .entry("request")
        .or_insert_with(|| json!({}));
    if !request.is_object() {
        *request = json!({});
    }
    request["eats"] = Value::String(eats.to_string());
    Some(json!({
        "context": context,
        "challenge": challenge,
        "engagementType": ENGAGEMENT_TYPE,
        "ids": [],
        "webResponse": web_response,
    }))
}

/// How long a minter is used: its integrity token's lifetime, bounded by its challenge's own
/// (`c + t`, Unix seconds) when stated, less the renewal margin. A challenge that already ended
/// by this clock was still answered fresh (a stale page's is never run: [`judge_page`]), so
/// this clock is behind or ahead: its bound is ignored rather than renewing in a tight loop.
pub fn minter_life(it_ttl_secs: u64, challenge_expires: Option<u64>, now: u64) -> Duration {
    let secs = match challenge_expires {
        Some(end) if end > now => it_ttl_secs.min(end - now),
        _ => it_ttl_secs,
    };
    let life = Duration::from_secs(secs);
    life.saturating_sub(RENEW_MARGIN.min(life / 10))
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChallengeSource::{AttGet, Create, Page as PageSrc, Supplied, Tv};

    const HASH: &str = "GKHPdbjXdAzLptBtk5NastbDkUFAkaEKXg3Jazyf5I0";

    fn page_with(r: &str) -> Page {
        let escaped = r.replace('\'', "\\'");
        Page::parse(&format!(
            r#"<script>ytcfg.set({{"EVENT_ID":"ev","INNERTUBE_CONTEXT":{{}}}});</script><script>window.ytAtN({{'R': '{escaped}', 'T': 'eacr'}});</script>"#
        ))
    }

    #[test]
    fn the_page_challenge_is_judged_usable_stub_stale_absent_or_malformed() {
        let url = format!(
            r#""interpreterUrl":{{"privateDoNotAccessOrElseTrustedResourceUrlWrappedValue":"//www.google.com/js/th/{HASH}.js"}}"#
        );
        let stub = r#""interpreterJavascript":{"privateDoNotAccessOrElseSafeScriptWrappedValue":"(function(){})()"}"#;
        let bg = |interp: &str, text: &str| {
            format!(
                r#"{{"challenge":"{text}","bgChallenge":{{{interp},"interpreterHash":"{HASH}","program":"p","globalName":"g"}}}}"#
            )
        };
        let now = 1_800_000_000u64;
        let fresh = format!("a=6&c={}&t=3600", now - 10);
        let old = format!("a=6&c={}&t=3600", now - 7200);
        let ending = format!("a=6&c={}&t=3600", now - 3500);
        let cases: Vec<(Page, &str)> = vec![
            (page_with(&bg(&url, &fresh)), "usable"),
            (page_with(&bg(&url, "a=6&a2=10")), "usable"),
            (page_with(&bg(stub, &fresh)), "stub"),
            (page_with(&bg(&format!("{stub},{url}"), &fresh)), "usable"),
            (page_with(&bg(&url, &old)), "stale"),
            (page_with(&bg(&url, &ending)), "stale"),
            (
                Page::parse(r#"<script>ytcfg.set({"EVENT_ID":"ev"});</script>"#),
                "absent",
            ),
            (
                page_with("{\"bgChallenge\": {\"program\": \"p\"}}"),
                "malformed",
            ),
            (Page::parse("<html>captcha</html>"), "malformed"),
        ];
        for (page, want) in cases {
            let got = match judge_page(&page, now) {
                PageVerdict::Usable(_) => "usable",
                PageVerdict::Stub => "stub",
                PageVerdict::Stale => "stale",
                PageVerdict::Absent => "absent",
                PageVerdict::Malformed(_) => "malformed",
            };
            assert_eq!(got, want, "{page:?}");
        }
    }

    #[test]
    fn the_real_page_s_challenge_is_usable_while_its_c_plus_t_lasts() {
        let Some(dir) = crate::testutil::fixtures_dir() else {
            return;
        };
        let html = std::fs::read_to_string(dir.join("botguard/youtube_channel_page_20260513.html"))
            .unwrap();
        let page = Page::parse(&html);
        let issued = 1_778_671_634;
        assert!(matches!(
            judge_page(&page, issued + 60),
            PageVerdict::Usable(a) if a.text.is_some()
        ));
        assert_eq!(judge_page(&page, issued + 21_600), PageVerdict::Stale);
        assert_eq!(
            judge_page(&page, issued + 21_300),
            PageVerdict::Stale,
            "ends in 5 min"
        );
        let seen = PageSeen::of(&page);
        assert!(seen.event_id && seen.eacr_token.is_some());
    }

    #[test]
    fn sources_are_asked_in_order_with_the_eacr_token_and_tv_before_an_unbound_att_get() {
        let default = [PageSrc, AttGet, Tv, Create];
        let seen = |event_id, eacr: Option<&str>| PageSeen {
            event_id,
            eacr_token: eacr.map(str::to_string),
        };
        let progress = |tried: &[ChallengeSource], page: Option<PageSeen>| Progress {
            tried: tried.to_vec(),
            page,
        };
        let att = |e: Option<&str>| {
            Some(Attempt::AttGet {
                eacr_token: e.map(str::to_string),
            })
        };
        let cases: Vec<(&[ChallengeSource], Progress, Option<Attempt>)> = vec![
            (&default, progress(&[], None), Some(Attempt::Page)),
            // The page's challenge was a stub or stale: att/get seeded with its eacrToken.
            (
                &default,
                progress(&[PageSrc], Some(seen(true, Some("T")))),
                att(Some("T")),
            ),
            // A page without an inline challenge still gives its EVENT_ID: plain att/get.
            (
                &default,
                progress(&[PageSrc], Some(seen(true, None))),
                att(None),
            ),
            // No page (captcha, error): the TV challenge is not EVENT_ID-bound, so it goes first.
            (&default, progress(&[PageSrc], None), Some(Attempt::Tv)),
            (&default, progress(&[PageSrc, Tv], None), att(None)),
            (
                &default,
                progress(&[PageSrc, Tv, AttGet], None),
                Some(Attempt::Create),
            ),
            (
                &default,
                progress(&[PageSrc, AttGet, Tv, Create], None),
                None,
            ),
            // Without Tv in the order the unbound att/get is still tried.
            (&[PageSrc, AttGet], progress(&[PageSrc], None), att(None)),
            (&[AttGet, PageSrc], progress(&[], None), att(None)),
            (&[Tv], progress(&[], None), Some(Attempt::Tv)),
            (
                &[Supplied, Create],
                progress(&[], None),
                Some(Attempt::Create),
            ),
        ];
        for (order, p, want) in cases {
            assert_eq!(next_attempt(order, &p), want, "{order:?} {p:?}");
        }
    }

    #[test]
    fn an_inline_interpreter_runs_only_when_its_hash_is_stated_or_known() {
        let js = "var trayride = {};";
        let h = interpreter_hash(js.as_bytes());
        let c = |inline: Option<&str>, url: Option<&str>, hash: &str| Challenge {
            interpreter_url: url.map(str::to_string),
            interpreter_js: inline.map(str::to_string),
            interpreter_hash: hash.to_string(),
            program: "p".into(),
            global_name: "g".into(),
            client_experiments_state_blob: None,
        };
        let url = format!("https://www.google.com/js/th/{h}.js");
        let none = |_: &str| false;
        let known = |x: &str| x == h;
        let fetch = InterpreterPlan::Fetch(url.clone());
        let cases: Vec<(Challenge, bool, InterpreterPlan)> = vec![
            (c(Some(js), None, &h), false, InterpreterPlan::Inline),
            (c(Some(js), None, ""), true, InterpreterPlan::Inline),
            // botguardData inlining a script nobody verified: never run.
            (
                c(Some(js), None, ""),
                false,
                InterpreterPlan::Refuse(ChallengeError::Missing("interpreterHash")),
            ),
            (c(Some("tampered"), Some(&url), &h), false, fetch.clone()),
            (c(None, Some(&url), &h), false, fetch),
            (c(None, Some(&url), &h), true, InterpreterPlan::Known),
            (
                c(None, Some(&url), ""),
                false,
                InterpreterPlan::Refuse(ChallengeError::Missing("interpreterHash")),
            ),
        ];
        for (challenge, is_known, want) in cases {
            let got = if is_known {
                interpreter_plan(&challenge, known)
            } else {
                interpreter_plan(&challenge, none)
            };
            assert_eq!(got, want, "{challenge:?}");
        }
        let tampered = interpreter_plan(&c(Some("tampered"), None, &h), none);
        assert!(matches!(
            tampered,
            InterpreterPlan::Refuse(ChallengeError::HashMismatch { .. })
        ));
    }

    #[test]
    fn att_log_carries_eats_in_the_one_time_context_with_the_challenge_and_response() {
        let ctx = json!({"client": {"clientName": "WEB"}, "request": {"useSsl": true}});
        let body = att_log_body(&ctx, Some("a=6&c=1"), Some("EATS"), "$resp").unwrap();
        assert_eq!(
            body,
            json!({
                "context": {"client": {"clientName": "WEB"}, "request": {"useSsl": true, "eats": "EATS"}},
                "challenge": "a=6&c=1",
                "engagementType": "ENGAGEMENT_TYPE_UNBOUND",
                "ids": [],
                "webResponse": "$resp"
            })
        );
        let bare = att_log_body(&json!({}), Some("c"), Some("E"), "$r").unwrap();
        assert_eq!(bare["context"], json!({"request": {"eats": "E"}}));
        assert!(att_log_body(&ctx, Some("a=6"), None, "$r").is_none());
        assert!(att_log_body(&ctx, None, Some("E"), "$r").is_none());
    }

    #[test]
    fn the_challenge_lifetime_bounds_the_minter_and_the_margin_scales_down() {
        let now = 1_800_000_000u64;
        let cases: Vec<(u64, Option<u64>, u64)> = vec![
            // (integrity token TTL, challenge end, expected life in seconds)
            (43_200, None, 43_200 - 600),
            (43_200, Some(now + 3600), 3600 - 360),
            (1800, Some(now + 86_400), 1800 - 180),
            (43_200, Some(now + 20), 18),
            // Ended by this clock although just issued: a skewed clock, not a reason to spin.
            (43_200, Some(now - 5), 43_200 - 600),
            (2, None, 1),
        ];
        for (ttl, end, want) in cases {
            let got = minter_life(ttl, end, now);
            assert_eq!(got.as_secs(), want, "{ttl} {end:?}");
        }
        assert_eq!(minter_life(2, None, now), Duration::from_millis(1800));
    }
}
