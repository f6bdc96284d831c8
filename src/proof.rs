//! Proving a new minter before a client pays for it. Owns the proof target (the configured
//! egress's, through which the proxy's forwarded media leaves: the last plain `videoplayback`
//! GET that googlevideo served with a token potproxy placed, as its URL without `pot`, the
//! binding its token was minted for and its `expire=`), the decisions (which responses teach a
//! target, what a proof's answer means, whether a refused minter is rebuilt) and the proof
//! itself: a token from the new minter for the target's binding, sent in one ranged GET
//! (`range=0-1023`, as clients ask) through the new minter's own egress client, its body never
//! read. Minters call [`Prover::prove`]; the media handler calls [`Prover::learn`].

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Method, StatusCode};

use crate::token::{Binding, Token};
use crate::upstream::HttpClient;

/// The bytes a proof asks for, as the `range` query parameter (googlevideo answers 200 with
/// that slice).
pub const PROOF_RANGE: &str = "0-1023";

/// How long a proof waits for googlevideo's answer; later is inconclusive.
pub const PROOF_TIMEOUT: Duration = Duration::from_secs(5);

/// Most egresses the browser source remembers which minter it proved: as many as the BotGuard
/// pool's minters may be (`[tokens.botguard] max_minters` is at most 1024), and the configured
/// egress besides. Not read from the pool, which depends on this module.
pub const MAX_EGRESSES: u64 = 1024 + 1;

/// A media URL a new minter's token can be proved against.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL without `pot` and `range`.
    pub url: String,
    /// What the token that googlevideo served was minted for.
    pub binding: Binding,
    /// The URL's `expire=`: googlevideo refuses it after that, whatever the token.
    pub expires: SystemTime,
}

/// Without the URL's query (`ip=`, the signature) and with session bindings redacted, so not
/// even a `{:?}` puts them in a log.
impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let base = self
            .url
            .split_once('?')
            .map_or(self.url.as_str(), |(b, _)| b);
        let binding = match &self.binding {
            Binding::Video(v) => format!("Video({v})"),
            Binding::Session(s) => format!("Session({})", crate::redact::redact(s)),
            Binding::Unknown => "Unknown".into(),
        };
        f.debug_struct("Target")
            .field("url", &format_args!("{base}?…"))
            .field("binding", &format_args!("{binding}"))
            .field("expires", &self.expires)
            .finish()
    }
}

/// What a proof found (the `outcome` label of `potproxy_token_proofs_total`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// googlevideo served the slice: the token is good.
    Proven,
    /// googlevideo answered 403: the minter's tokens are refused.
    Refused,
    /// Anything else (another status, a timeout, a broken connection, no token minted): the
    /// minter stays. Says why.
    Inconclusive(String),
    /// No media URL is known for the egress: nothing was sent.
    NoTarget,
}

impl Outcome {
    pub const LABELS: [&'static str; 4] = ["proven", "refused", "inconclusive", "no_target"];

    pub fn as_str(&self) -> &'static str {
        Self::LABELS[self.index()]
    }

    fn index(&self) -> usize {
        match self {
            Outcome::Proven => 0,
            Outcome::Refused => 1,
            Outcome::Inconclusive(_) => 2,
            Outcome::NoTarget => 3,
        }
    }
}

/// googlevideo's answer to a proof: 200/206 proves the token, 403 refuses it; anything else
/// says nothing about the token.
pub fn judge(status: StatusCode) -> Outcome {
    match status.as_u16() {
        200 | 206 => Outcome::Proven,
        403 => Outcome::Refused,
        other => Outcome::Inconclusive(format!("HTTP {other}")),
    }
}

/// Whether a refused minter is dropped and built again: only one that is not itself the
/// replacement of a refused minter, so a refusal that persists cannot loop.
pub fn rebuild(outcome: &Outcome, replacing: bool) -> bool {
    *outcome == Outcome::Refused && !replacing
}

/// The target a forwarded media request teaches, if any: a plain `videoplayback` GET (not
/// UMP, not SABR, not a POST) whose token potproxy placed in its query, answered 200/206, with
/// an `expire=` still ahead of `now`. The target URL has its `pot` and `range` removed.
pub fn learnable(
    method: &Method,
    url: &str,
    status: StatusCode,
    binding: &Binding,
    now: SystemTime,
) -> Option<Target> {
    if *method != Method::GET || !matches!(status.as_u16(), 200 | 206) {
        return None;
    }
    binding.key()?;
    let parsed = url::Url::parse(url).ok()?;
    if parsed.scheme() != "https"
        || !parsed.host_str()?.ends_with(".googlevideo.com")
        || !parsed.path().ends_with("/videoplayback")
    {
        return None;
    }
    // The raw query is kept as sent (order, encoding); only `pot` and `range` go.
    let (base, query) = url.split_once('?')?;
    let mut expire = None;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let name = pair.split_once('=').map_or(pair, |(k, _)| k);
        match name {
            "ump" | "sabr" => return None,
            "pot" | "range" => {}
            _ => {
                // The first `expire` is the one googlevideo's signature covers; a URL with a
                // second or an unreadable one teaches nothing.
                if name == "expire" {
                    if expire.is_some() {
                        return None;
                    }
                    expire = Some(pair.split_once('=')?.1.parse::<u64>().ok()?);
                }
                kept.push(pair);
            }
        }
    }
    let expires = UNIX_EPOCH.checked_add(Duration::from_secs(expire?))?;
    if expires <= now {
        return None;
    }
    Some(Target {
        url: format!("{base}?{}", kept.join("&")),
        binding: binding.clone(),
        expires,
    })
}

/// The proof request's URL: the target with `token` as `pot` and [`PROOF_RANGE`].
pub fn proof_url(target: &Target, token: &Token) -> String {
    format!(
        "{}&pot={}&range={PROOF_RANGE}",
        target.url,
        token.query_value()
    )
}

/// The proof target, and the counts of proofs by outcome.
pub struct Prover {
    /// The configured egress's target: the media the proxy forwards leaves through it, so no
    /// other egress ever learns one.
    target: std::sync::Mutex<Option<Target>>,
    /// The configured egress's key.
    home: String,
    counts: [AtomicU64; 4],
}

impl Prover {
    /// `home`: the key of the egress the proxy's forwarded traffic leaves through.
    pub fn new(home: String) -> Self {
        Prover {
            target: std::sync::Mutex::new(None),
            home,
            counts: Default::default(),
        }
    }

    /// A forwarded media request carrying potproxy's token for `binding` was answered
    /// `status`: remember it for the configured egress when it is a usable target.
    pub fn learn(&self, method: &Method, url: &str, status: StatusCode, binding: &Binding) {
        if let Some(t) = learnable(method, url, status, binding, SystemTime::now()) {
            *self.slot() = Some(t);
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Target>> {
        self.target.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live target of the egress `key` (an expired one is dropped); only the configured
    /// egress has one.
    pub fn target(&self, key: &str, now: SystemTime) -> Option<Target> {
        if key != self.home {
            return None;
        }
        let mut slot = self.slot();
        if slot.as_ref().is_some_and(|t| t.expires <= now) {
            *slot = None;
        }
        slot.clone()
    }

    /// Forgets egress `key`'s target: minters in a row were refused against it, so the URL
    /// itself may be what googlevideo refuses. Traffic teaches the next one.
    pub fn forget(&self, key: &str) {
        if key == self.home {
            *self.slot() = None;
        }
    }

    /// The key of the egress the proxy's forwarded traffic leaves through.
    pub fn home(&self) -> &str {
        &self.home
    }

    /// Proofs so far by outcome, in [`Outcome::LABELS`] order.
    pub fn counts(&self) -> [u64; 4] {
        std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed))
    }

    fn count(&self, outcome: &Outcome) {
        self.counts[outcome.index()].fetch_add(1, Ordering::Relaxed);
        crate::metrics::TOKEN_PROOFS.with(&[outcome.as_str()]).inc();
    }

    /// Proves a new minter of egress `key`: `mint` makes its token for a binding, `http`
    /// leaves through that egress. Counted, and logged (a refusal at warn).
    pub async fn prove<F, Fut, E>(&self, key: &str, http: &HttpClient, mint: F) -> Outcome
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<Token, E>>,
        E: std::fmt::Display,
    {
        let outcome = match self.target(key, SystemTime::now()) {
            None => Outcome::NoTarget,
            // The mint too: a minter that hangs must not hold a renewal (or its caller) up.
            Some(t) => tokio::time::timeout(PROOF_TIMEOUT, Self::send(&t, http, mint))
                .await
                .unwrap_or_else(|_| {
                    Outcome::Inconclusive(format!("no answer within {PROOF_TIMEOUT:?}"))
                }),
        };
        self.count(&outcome);
        match &outcome {
            Outcome::Refused => tracing::warn!(
                egress = key,
                reason = "googlevideo answered 403 to its first token",
                "new minter refused by its proof"
            ),
            Outcome::Inconclusive(why) => {
                tracing::info!(egress = key, reason = %why, "new minter's proof inconclusive; keeping it")
            }
            Outcome::Proven => tracing::info!(egress = key, "new minter proven"),
            Outcome::NoTarget => {
                tracing::debug!(
                    egress = key,
                    "no media URL known for this egress; minter not proved"
                )
            }
        }
        outcome
    }

    async fn send<F, Fut, E>(target: &Target, http: &HttpClient, mint: F) -> Outcome
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<Token, E>>,
        E: std::fmt::Display,
    {
        let Some(binding) = target.binding.key() else {
            return Outcome::NoTarget;
        };
        let token = match mint(binding.to_string()).await {
            Ok(t) => t,
            Err(e) => return Outcome::Inconclusive(format!("mint failed: {e}")),
        };
        let Ok(uri) = proof_url(target, &token).parse::<http::Uri>() else {
            return Outcome::Inconclusive("unbuildable URL".into());
        };
        match http.stream(Method::GET, uri, http::HeaderMap::new()).await {
            // The body is dropped unread: the status is the answer.
            Ok(res) => judge(res.status()),
            // Not the error's text: it names the URL, which carries the token and `ip=`.
            Err(e) => Outcome::Inconclusive(match e {
                crate::upstream::FetchError::Timeout { after, .. } => {
                    format!("no answer within {after:?}")
                }
                _ => "request failed".to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_printed_for_debugging_shows_neither_its_query_nor_a_session() {
        let t = learnable(&Method::GET, URL, StatusCode::OK, &video(), now()).unwrap();
        let shown = format!("{t:?}");
        assert!(
            !shown.contains("203.0.113.9") && !shown.contains("o-AB"),
            "{shown}"
        );
        assert!(
            shown.contains("rr1---sn-abc.googlevideo.com/videoplayback"),
            "{shown}"
        );
        let visitor = "CgtWaXNpdG9yRGF0YUFCQw%3D%3D";
        let s = learnable(
            &Method::GET,
            URL,
            StatusCode::OK,
            &Binding::Session(visitor.into()),
            now(),
        )
        .unwrap();
        assert!(!format!("{s:?}").contains(visitor));
    }

    #[test]
    fn proofs_remember_as_many_egresses_as_the_pool_may_have_minters() {
        assert_eq!(
            MAX_EGRESSES,
            crate::botguard::pool::MAX_MAX_MINTERS as u64 + 1
        );
    }

    const URL: &str = "https://rr1---sn-abc.googlevideo.com/videoplayback?expire=4102444800&id=o-AB&itag=251&ip=203.0.113.9&pot=OLD&range=0-99&clen=1000";

    fn video() -> Binding {
        Binding::Video("jNQXAC9IVRw".into())
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    #[test]
    fn only_403_refuses_and_only_200_or_206_proves() {
        let cases = [
            (200, Outcome::Proven),
            (206, Outcome::Proven),
            (403, Outcome::Refused),
            (404, Outcome::Inconclusive("HTTP 404".into())),
            (429, Outcome::Inconclusive("HTTP 429".into())),
            (503, Outcome::Inconclusive("HTTP 503".into())),
            (302, Outcome::Inconclusive("HTTP 302".into())),
        ];
        for (status, want) in cases {
            assert_eq!(
                judge(StatusCode::from_u16(status).unwrap()),
                want,
                "{status}"
            );
        }
    }

    #[test]
    fn a_refused_minter_is_rebuilt_once_and_its_replacement_never() {
        let cases = [
            (Outcome::Refused, false, true),
            (Outcome::Refused, true, false),
            (Outcome::Proven, false, false),
            (Outcome::Inconclusive("HTTP 503".into()), false, false),
            (Outcome::NoTarget, false, false),
        ];
        for (outcome, replacing, want) in cases {
            assert_eq!(
                rebuild(&outcome, replacing),
                want,
                "{outcome:?} {replacing}"
            );
        }
    }

    #[test]
    fn a_served_videoplayback_get_is_learned_without_its_token_and_range() {
        let t = learnable(&Method::GET, URL, StatusCode::OK, &video(), now()).unwrap();
        assert_eq!(t.binding, video());
        assert_eq!(t.expires, UNIX_EPOCH + Duration::from_secs(4_102_444_800));
        assert_eq!(
            t.url,
            "https://rr1---sn-abc.googlevideo.com/videoplayback?expire=4102444800&id=o-AB&itag=251&ip=203.0.113.9&clen=1000",
            "the old token and range gone, the rest kept as sent"
        );
        let token = Token::from_bytes(&[0x32, 1, 2, 3, 4]);
        let proof = proof_url(&t, &token);
        let u = url::Url::parse(&proof).unwrap();
        let q: Vec<_> = u.query_pairs().into_owned().collect();
        assert!(q.contains(&("pot".into(), token.as_str().to_string())));
        assert!(
            proof.contains(&format!("&pot={}&", token.query_value())),
            "{proof}"
        );
        assert!(q.contains(&("range".into(), PROOF_RANGE.into())));
        assert_eq!(q.iter().filter(|(k, _)| k == "pot").count(), 1);
        assert_eq!(u.host_str(), Some("rr1---sn-abc.googlevideo.com"));
    }

    #[test]
    fn what_cannot_prove_a_token_is_not_learned() {
        let partial = StatusCode::PARTIAL_CONTENT;
        assert!(learnable(&Method::GET, URL, partial, &video(), now()).is_some());
        let cases: [(&Method, String, StatusCode, Binding, &str); 11] = [
            (&Method::POST, URL.into(), partial, video(), "a POST"),
            (&Method::HEAD, URL.into(), partial, video(), "a HEAD"),
            (
                &Method::GET,
                URL.into(),
                StatusCode::FORBIDDEN,
                video(),
                "a refusal",
            ),
            (
                &Method::GET,
                URL.into(),
                StatusCode::OK,
                Binding::Unknown,
                "no binding",
            ),
            (
                &Method::GET,
                format!("{URL}&ump=1"),
                partial,
                video(),
                "UMP",
            ),
            (
                &Method::GET,
                format!("{URL}&sabr=1"),
                partial,
                video(),
                "SABR",
            ),
            (
                &Method::GET,
                URL.replace("googlevideo.com", "example.com"),
                partial,
                video(),
                "not googlevideo",
            ),
            (
                &Method::GET,
                URL.replace("expire=4102444800&", ""),
                partial,
                video(),
                "no expire",
            ),
            (
                &Method::GET,
                format!("{URL}&expire=18446744073709551615"),
                partial,
                video(),
                "a second expire (past what a clock holds)",
            ),
            (
                &Method::GET,
                URL.replace("4102444800", "18446744073709551615"),
                partial,
                video(),
                "an expire past what a clock holds",
            ),
            (
                &Method::GET,
                URL.replace("4102444800", "soon"),
                partial,
                video(),
                "an unreadable expire",
            ),
        ];
        for (method, url, status, binding, what) in cases {
            assert_eq!(
                learnable(method, &url, status, &binding, now()),
                None,
                "{what}"
            );
        }
        let past = URL.replace("4102444800", "1700000000");
        assert_eq!(
            learnable(&Method::GET, &past, partial, &video(), now()),
            None,
            "expired"
        );
    }

    #[test]
    fn targets_are_kept_per_egress_and_dropped_once_expired() {
        let p = Prover::new("direct".into());
        p.learn(&Method::GET, URL, StatusCode::OK, &video());
        assert!(p.target("direct", SystemTime::now()).is_some());
        assert_eq!(p.target("http://other:3128", SystemTime::now()), None);
        let after = UNIX_EPOCH + Duration::from_secs(4_102_444_800);
        assert_eq!(p.target("direct", after), None, "expired");
        assert_eq!(p.target("direct", SystemTime::now()), None, "and forgotten");
    }

    #[tokio::test]
    async fn without_a_target_nothing_is_minted_and_no_target_is_counted() {
        let p = Prover::new("direct".into());
        let cfg = crate::upstream::UpstreamConfig {
            resolve: vec![],
            extra_ca_certs: vec![],
            connect_timeout: Duration::from_secs(1),
            http2: false,
            proxy: crate::upstream::Egress::Direct,
            mark: None,
        };
        let http = HttpClient::new(&cfg, Duration::from_secs(1)).unwrap();
        let minted = std::sync::atomic::AtomicBool::new(false);
        let out = p
            .prove("direct", &http, |_| async {
                minted.store(true, Ordering::SeqCst);
                Ok::<Token, String>(Token::from_bytes(&[0x32, 1, 2]))
            })
            .await;
        assert!(!minted.load(Ordering::SeqCst), "no mint without a target");
        assert_eq!(out, Outcome::NoTarget);
        assert_eq!(p.counts(), [0, 0, 0, 1]);
    }
}
