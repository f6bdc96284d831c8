//! Proving a new minter before a client pays for it (`[tokens] prove_new_minters`): once a
//! download through the proxy has taught it a media URL, each new BotGuard minter's first
//! token is sent to googlevideo in one small ranged GET through that minter's own egress; a
//! minter googlevideo refuses is replaced before a client's download meets it. The fake
//! googlevideo refuses invalid tokens, and (`distrust_next`) the tokens of a minter whose
//! integrity token YouTube marked low trust.

mod common;

use std::time::Duration;

use common::botguard::Verdict;
use common::chain::start_http_connect_proxy;
use common::*;
use potproxy::config::SourceKind;
use potproxy::proof::{Outcome, PROOF_RANGE};
use serde_json::json;

const V1: &str = "jNQXAC9IVRw";
const V2: &str = "9bZkp7q19f0";
/// The `/metrics` series of proven proofs.
const PROVEN: &str = "potproxy_token_proofs_total{outcome=\"proven\"} ";

/// BotGuard as the only source, googlevideo refusing invalid tokens, the API on.
async fn harness(upstream_proxy: Option<&str>) -> Harness {
    harness_on(Fakes::start().await, upstream_proxy).await
}

async fn harness_on(fakes: Fakes, upstream_proxy: Option<&str>) -> Harness {
    fakes.origin.behaviour().enforce_media = true;
    let mut b = Harness::builder()
        .sources(&[SourceKind::BotGuard])
        .api(true);
    if let Some(p) = upstream_proxy {
        b = b.upstream_proxy(p);
    }
    b.start_on(fakes).await
}

/// Proofs so far by outcome.
fn proofs(h: &Harness, outcome: Outcome) -> u64 {
    let i = Outcome::LABELS
        .iter()
        .position(|l| *l == outcome.as_str())
        .unwrap();
    h.proxy
        .services
        .tokens
        .prover()
        .expect("proving is on")
        .counts()[i]
}

/// Waits (up to 30 s) until `f` holds: background proofs finish on their own time.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..600 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened: {what}");
}

/// A player request through the proxy, then a whole-file GET of its audio URL; returns the
/// download's status and whether every byte arrived.
async fn download(h: &Harness, video: &str) -> (u16, bool) {
    let p = player_response(&h.client(), &player_body("MWEB", video)).await;
    let url = p["streamingData"]["adaptiveFormats"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let res = h.client().get(&url).send().await.unwrap();
    let status = res.status().as_u16();
    let body = res.bytes().await.unwrap();
    (
        status,
        body.as_ref() == media_bytes(0, DEFAULT_MEDIA_LEN).as_slice(),
    )
}

/// Warms the configured egress's first minter before any traffic: nothing is known to prove
/// it against.
async fn first_minter(h: &Harness) {
    let bg = h.proxy.services.botguard.clone().unwrap();
    bg.warm(false).await.expect("warm-up");
    eventually("the first minter's proof", || {
        proofs(h, Outcome::NoTarget) == 1
    })
    .await;
}

/// googlevideo requests the fake saw since the last call.
fn media_requests(h: &Harness) -> Vec<Seen> {
    h.origin
        .take()
        .into_iter()
        .filter(|s| s.host.ends_with(".googlevideo.com"))
        .collect()
}

#[tokio::test]
async fn a_renewed_minter_is_proved_by_one_small_ranged_get_of_a_learned_url() {
    let h = harness(None).await;
    first_minter(&h).await;
    assert_eq!(download(&h, V1).await, (200, true));
    media_requests(&h);
    let verdicts = h.origin.verdicts().len();

    let proven_before = h.metric(PROVEN).await.unwrap_or(0);
    let bg = h.proxy.services.botguard.clone().unwrap();
    bg.warm(true).await.expect("renewal");

    let seen = media_requests(&h);
    assert_eq!(seen.len(), 1, "one proof request: {seen:?}");
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].query_values("range"), [PROOF_RANGE]);
    assert_eq!(seen[0].query_values("pot").len(), 1);
    let new = &h.origin.verdicts()[verdicts..];
    assert_eq!(
        new,
        [(format!("media {V1}"), Verdict::Valid)],
        "the proof carried a valid token for the learned URL's binding"
    );
    assert_eq!(proofs(&h, Outcome::Proven), 1);
    assert_eq!(proofs(&h, Outcome::Refused), 0);

    // The registry is the process's, shared with the other tests here: counted up, at least.
    assert!(h.metric(PROVEN).await.unwrap_or(0) > proven_before);
}

#[tokio::test]
async fn a_minter_googlevideo_refuses_is_replaced_before_a_client_download_meets_it() {
    let h = harness(None).await;
    first_minter(&h).await;
    assert_eq!(download(&h, V1).await, (200, true));
    {
        // The next minter's integrity token is distrusted: googlevideo refuses its tokens.
        let mut b = h.origin.behaviour();
        b.distrust_next = 1;
        b.low_trust = LowTrust::Forbidden;
        b.low_trust_budget = 0;
    }
    let bg = h.proxy.services.botguard.clone().unwrap();
    bg.warm(true).await.expect("renewal");
    assert_eq!(h.origin.counts().distrusted, 1);
    assert_eq!(
        proofs(&h, Outcome::Refused),
        1,
        "the distrusted minter's proof"
    );
    assert_eq!(proofs(&h, Outcome::Proven), 1, "its replacement's proof");
    assert_eq!(
        h.origin.counts().low_trust_403s,
        1,
        "only the proof met a 403"
    );
    media_requests(&h);

    // The next video's download is served at once: no refusal, nothing re-sent.
    assert_eq!(download(&h, V2).await, (200, true));
    assert_eq!(media_requests(&h).len(), 1, "one request, not healed");
    assert_eq!(h.origin.counts().low_trust_403s, 1);
}

#[tokio::test]
async fn a_refusal_that_persists_rebuilds_the_minter_once_and_keeps_the_replacement() {
    let h = harness(None).await;
    first_minter(&h).await;
    assert_eq!(download(&h, V1).await, (200, true));
    {
        let mut b = h.origin.behaviour();
        b.distrust_next = 10;
        b.low_trust = LowTrust::Forbidden;
        b.low_trust_budget = 0;
    }
    let builds = h.origin.counts().generate_it;
    let bg = h.proxy.services.botguard.clone().unwrap();
    let kept = bg.warm(true).await.expect("renewal");
    assert_eq!(
        h.origin.counts().generate_it - builds,
        2,
        "the renewal and one replacement, no more"
    );
    assert_eq!(proofs(&h, Outcome::Refused), 2);
    assert_eq!(
        bg.ready().map(|m| m.id),
        Some(kept.id),
        "the replacement serves (its refusals are healed as they are met)"
    );
}

#[tokio::test]
async fn without_a_learned_media_url_a_new_minter_sends_nothing_to_googlevideo() {
    let h = harness(None).await;
    let bg = h.proxy.services.botguard.clone().unwrap();
    bg.warm(false).await.expect("warm-up");
    bg.warm(true).await.expect("renewal");
    eventually("both proofs counted", || proofs(&h, Outcome::NoTarget) == 2).await;
    assert!(media_requests(&h).is_empty());
    assert_eq!(proofs(&h, Outcome::Proven), 0);
    assert_eq!(proofs(&h, Outcome::Refused), 0);
}

#[tokio::test]
async fn a_proof_for_one_egress_never_uses_a_url_learned_through_another() {
    let fakes = Fakes::start().await;
    let (a, a_seen) = start_http_connect_proxy(fakes.origin.addr).await;
    let (b, b_seen) = start_http_connect_proxy(fakes.origin.addr).await;
    let h = harness_on(fakes, Some(&format!("http://{a}"))).await;
    let tunnels = |seen: &common::chain::Seen| std::mem::take(&mut *seen.lock().unwrap());
    let googlevideo = |t: &[String]| t.iter().any(|t| t.contains(".googlevideo.com:"));

    first_minter(&h).await;
    assert_eq!(download(&h, V1).await, (200, true));
    assert!(
        googlevideo(&tunnels(&a_seen)),
        "the download left through A"
    );
    media_requests(&h);

    // A minter for egress B (a provider API caller naming B) is made: nothing learned there.
    let res = reqwest::Client::new()
        .post(format!("http://{}/get_pot", h.proxy.api_addr.unwrap()))
        .header("content-type", "application/json")
        .body(json!({"content_binding": V2, "proxy": format!("http://{b}")}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    eventually("B's minter's proof", || proofs(&h, Outcome::NoTarget) == 2).await;
    let through_b = tunnels(&b_seen);
    assert!(!through_b.is_empty(), "B's minter was made through B");
    assert!(
        !googlevideo(&through_b),
        "nothing sent to googlevideo through B: {through_b:?}"
    );
    assert!(media_requests(&h).is_empty());

    // A's renewed minter is proved through A.
    let bg = h.proxy.services.botguard.clone().unwrap();
    bg.warm(true).await.expect("renewal");
    assert_eq!(proofs(&h, Outcome::Proven), 1);
    assert!(googlevideo(&tunnels(&a_seen)), "A's proof left through A");
    assert!(!googlevideo(&tunnels(&b_seen)));
}

#[tokio::test]
async fn a_browser_minter_googlevideo_refuses_is_replaced_before_the_next_download_meets_it() {
    if !have_browser() {
        return;
    }
    let fakes = Fakes::start().await;
    fakes.origin.behaviour().enforce_media = true;
    let h = Harness::builder()
        .sources(&[SourceKind::Browser])
        .api(true)
        .start_on(fakes)
        .await;
    assert_eq!(download(&h, V1).await, (200, true));
    eventually("the first minter's proof", || {
        proofs(&h, Outcome::NoTarget) == 1
    })
    .await;
    {
        let mut b = h.origin.behaviour();
        b.distrust_next = 1;
        b.low_trust = LowTrust::Forbidden;
        b.low_trust_budget = 0;
    }
    // A new minter (its integrity token distrusted) makes a provider API caller's token.
    let pool = h.proxy.services.browsers.clone().unwrap();
    pool.default_minter().invalidate().await;
    let res = reqwest::Client::new()
        .post(format!("http://{}/get_pot", h.proxy.api_addr.unwrap()))
        .header("content-type", "application/json")
        .body(json!({"content_binding": V2}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    eventually("the distrusted minter's proof", || {
        proofs(&h, Outcome::Refused) == 1
    })
    .await;
    assert_eq!(h.origin.counts().distrusted, 1);
    eventually("its replacement", || pool.default_minter().is_warm()).await;
    media_requests(&h);

    // The next video's download is served at once by the replacement's token.
    let before = h.origin.counts().low_trust_403s;
    assert_eq!(download(&h, "dQw4w9WgXcQ").await, (200, true));
    // Its first token also starts the replacement's proof.
    eventually("the replacement's proof", || {
        proofs(&h, Outcome::Proven) == 1
    })
    .await;
    let client: Vec<_> = media_requests(&h)
        .into_iter()
        .filter(|s| s.query_values("range") != [PROOF_RANGE])
        .collect();
    assert_eq!(client.len(), 1, "one request, not healed: {client:?}");
    assert_eq!(h.origin.counts().low_trust_403s, before);
}
