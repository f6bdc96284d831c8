//! The built-in minter against the simulated BotGuard behind the fake YouTube: every challenge
//! source and today's flow variants (the page's own challenge first; `/att/get` seeded with the
//! page's eacrToken when the page inlines a no-op interpreter or its challenge is stale;
//! `botguardData` answers and their `eats` returned through `/att/log`; the challenge's own
//! lifetime; the TV client's challenge when no page can be had), GenerateIT, expiry and renewal,
//! failure modes, single flight, cold start, and the whole proxy path where the fake verifies
//! the tokens it receives.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::botguard::{AttGetForm, CreateMode, LOOPING_JS, Verdict};
use common::*;
use potproxy::botguard::error::{BotGuardError, Step};
use potproxy::botguard::minter::BotGuard;
use potproxy::config::SourceKind;
use potproxy::token::Binding;
use potproxy::tokens::{TokenRequest, decode_cold_start};

const VIDEO: &str = "jNQXAC9IVRw";

struct Sim {
    origin: FakeOrigin,
    services: potproxy::Services,
    _fakes: Fakes,
    _dir: tempfile::TempDir,
}

impl Sim {
    fn bg(&self) -> Arc<BotGuard> {
        self.services.botguard.clone().expect("botguard configured")
    }
}

/// A minter (no proxy) against a fresh fake, minting only.
async fn sim(extra_toml: &str, tweak: impl FnOnce(&FakeOrigin)) -> Sim {
    sim_with(
        Harness::builder()
            .sources(&[SourceKind::BotGuard])
            .toml(extra_toml),
        tweak,
    )
    .await
}

/// The token services `builder` configures (no proxy) against a fresh fake.
async fn sim_with(builder: HarnessBuilder, tweak: impl FnOnce(&FakeOrigin)) -> Sim {
    let fakes = Fakes::start().await;
    tweak(&fakes.origin);
    let dir = tempfile::tempdir().unwrap();
    let config = builder.config(&fakes, dir.path());
    let services = potproxy::build_services(&config).unwrap();
    Sim {
        origin: fakes.origin.clone(),
        services,
        _fakes: fakes,
        _dir: dir,
    }
}

async fn mint_and_verify(s: &Sim, binding: &str) {
    let (token, _) = s.bg().mint(binding).await.expect("mint");
    assert_eq!(
        s.origin.state.bg.verify(token.as_str(), binding),
        Verdict::Valid
    );
}

/// The token service's token for [`VIDEO`], which the fake verifies.
async fn served_and_verified(s: &Sim) {
    let token = s
        .services
        .tokens
        .get(&TokenRequest::new(Binding::Video(VIDEO.into())))
        .await
        .expect("a token from the token service");
    assert_eq!(
        s.origin.state.bg.verify(token.as_str(), VIDEO),
        Verdict::Valid
    );
}

#[tokio::test]
async fn the_page_challenge_is_used_first_and_tokens_verify() {
    let s = sim("", |_| {}).await;
    mint_and_verify(&s, VIDEO).await;
    let c = s.origin.counts();
    assert_eq!((c.page, c.att_get, c.create, c.generate_it), (1, 0, 0, 1));
    assert_eq!(c.interpreter, 1, "interpreter fetched once");
    // The minter is reused: a second binding needs no new challenge.
    mint_and_verify(&s, "CgtGYWtlVmlzaXRvcijAgICAxjIKCgJERRIEEgAgNg%3D%3D").await;
    assert_eq!(s.origin.counts().generate_it, 1);
}

#[tokio::test]
async fn att_get_is_used_when_the_page_has_no_challenge() {
    let s = sim("", |o| o.behaviour().page_challenge = false).await;
    mint_and_verify(&s, VIDEO).await;
    let c = s.origin.counts();
    assert_eq!((c.page, c.att_get, c.create), (1, 1, 0));
    // The page gave no eacrToken; att/get speaks as the page's own web client.
    let att = att_get_bodies(&s);
    assert_eq!(att.len(), 1);
    assert_eq!(att[0]["context"]["client"]["clientName"], "WEB");
    assert!(att[0].get("eacrToken").is_none(), "{}", att[0]);
}

/// The JSON bodies of the `/att/get` requests the fake received, in order.
fn att_get_bodies(s: &Sim) -> Vec<serde_json::Value> {
    requests_to(s, "/youtubei/v1/att/get")
}

fn requests_to(s: &Sim, path: &str) -> Vec<serde_json::Value> {
    s.origin
        .seen()
        .into_iter()
        .filter(|r| r.path_and_query.split('?').next() == Some(path))
        .map(|r| r.json())
        .collect()
}

#[tokio::test]
async fn a_no_op_interpreter_on_the_page_is_never_run_and_att_get_with_its_eacr_token_is_asked() {
    let s = sim("", |o| o.behaviour().page_interpreter_stub = true).await;
    mint_and_verify(&s, VIDEO).await;
    let c = s.origin.counts();
    assert_eq!((c.page, c.att_get, c.create, c.generate_it), (1, 1, 0, 1));
    let att = att_get_bodies(&s);
    assert_eq!(att[0]["eacrToken"], "eacr-token-fake");
    assert_eq!(att[0]["context"]["client"]["clientName"], "WEB");
    assert_eq!(att[0]["engagementType"], "ENGAGEMENT_TYPE_UNBOUND");
    // The page's ytcfg (its EVENT_ID) is still the one the minter keeps.
    let m = s.bg().ready().expect("a fresh minter");
    assert_eq!(
        m.source,
        potproxy::botguard::settings::ChallengeSource::AttGet
    );
    assert!(
        m.page
            .as_ref()
            .is_some_and(|p| p.ytcfg_str("EVENT_ID").is_some())
    );
}

#[tokio::test]
async fn a_stale_page_challenge_falls_back_to_att_get_with_its_eacr_token() {
    let s = sim("", |o| {
        let mut b = o.behaviour();
        b.page_challenge_age_secs = 7200;
        b.challenge_ttl_secs = 3600;
    })
    .await;
    mint_and_verify(&s, VIDEO).await;
    let att = att_get_bodies(&s);
    assert_eq!(att.len(), 1);
    assert_eq!(att[0]["eacrToken"], "eacr-token-fake");
}

#[tokio::test]
async fn botguard_data_answers_are_run_and_their_eats_returned_through_att_log() {
    let s = sim("", |o| {
        let mut b = o.behaviour();
        b.page_challenge = false;
        b.att_get_form = AttGetForm::BotguardDataUrl;
    })
    .await;
    // The fake issues an integrity token only for a snapshot whose eats came back via att/log.
    mint_and_verify(&s, VIDEO).await;
    let c = s.origin.counts();
    assert_eq!(
        (c.att_get, c.att_log, c.interpreter, c.generate_it),
        (1, 1, 1, 1)
    );
    // The eats the fake handed out is echoed in the log's one-time context.
    let logs = requests_to(&s, "/youtubei/v1/att/log");
    assert_eq!(logs.len(), 1);
    let log = &logs[0];
    assert!(
        log["context"]["request"]["eats"]
            .as_str()
            .is_some_and(|e| e.starts_with("eats-")),
        "{log}"
    );
    assert_eq!(log["context"]["client"]["clientName"], "WEB");
    assert_eq!(log["engagementType"], "ENGAGEMENT_TYPE_UNBOUND");
    assert_eq!(log["ids"], serde_json::json!([]));
    assert!(log["challenge"].as_str().unwrap().contains("&t=3600"));
    assert!(log["webResponse"].as_str().unwrap().starts_with('$'));
}

#[tokio::test]
async fn an_inline_botguard_data_interpreter_runs_only_once_its_hash_is_a_verified_one() {
    let s = sim("", |o| {
        let mut b = o.behaviour();
        b.page_challenge = false;
        b.att_get_form = AttGetForm::BotguardDataInline;
    })
    .await;
    // Nothing vouches for the inline script yet: it is refused before it runs.
    let e = s.bg().mint(VIDEO).await.unwrap_err();
    assert!(
        matches!(
            &e,
            BotGuardError::NoChallenge(_)
                | BotGuardError::Parse {
                    step: Step::Interpreter,
                    ..
                }
        ),
        "{e}"
    );
    assert_eq!(s.origin.counts().generate_it, 0, "the script never ran");
    // Once the same script was fetched from Google's URL and verified, the inline copy runs.
    s.origin.behaviour().att_get_form = AttGetForm::BotguardDataUrl;
    mint_and_verify(&s, VIDEO).await;
    assert_eq!(s.origin.counts().interpreter, 1);
    s.origin.behaviour().att_get_form = AttGetForm::BotguardDataInline;
    s.bg().invalidate();
    mint_and_verify(&s, VIDEO).await;
    let c = s.origin.counts();
    assert_eq!((c.interpreter, c.generate_it, c.att_log), (1, 2, 2));
}

#[tokio::test]
async fn the_page_challenge_runs_with_the_page_s_event_id_so_a_bound_challenge_is_accepted() {
    let s = sim("", |o| o.behaviour().require_event_id = true).await;
    mint_and_verify(&s, VIDEO).await;
    let c = s.origin.counts();
    assert_eq!((c.page, c.att_get, c.generate_it), (1, 0, 1));
}

#[tokio::test]
async fn an_unbound_web_att_get_challenge_without_a_page_is_refused_where_event_ids_are_checked() {
    // What the TV source avoids: no page, so no EVENT_ID for the web challenge.
    let s = sim(
        "[tokens.botguard]\nchallenge = [\"page\", \"att_get\"]\n",
        |o| {
            let mut b = o.behaviour();
            b.page_status = 429;
            b.require_event_id = true;
        },
    )
    .await;
    let e = s.bg().mint(VIDEO).await.unwrap_err();
    assert!(matches!(e, BotGuardError::EmptyIntegrityToken(_)), "{e}");
}

#[tokio::test]
async fn without_the_page_the_tv_client_s_challenge_is_asked_before_an_unbound_att_get() {
    let s = sim("", |o| {
        let mut b = o.behaviour();
        b.page_status = 429;
        b.require_event_id = true;
    })
    .await;
    mint_and_verify(&s, VIDEO).await;
    let c = s.origin.counts();
    assert_eq!((c.page, c.att_get, c.create), (1, 1, 0));
    let att = att_get_bodies(&s);
    assert_eq!(att[0]["context"]["client"]["clientName"], "TVHTML5");
    assert!(att[0].get("eacrToken").is_none());
    let m = s.bg().ready().expect("a fresh minter");
    assert_eq!(m.source, potproxy::botguard::settings::ChallengeSource::Tv);
}

#[tokio::test]
async fn the_challenge_s_own_lifetime_renews_the_minter_before_its_integrity_token_expires() {
    let s = sim("", |o| o.behaviour().challenge_ttl_secs = 3).await;
    mint_and_verify(&s, VIDEO).await;
    let m = s.bg().ready().expect("a fresh minter");
    // The integrity token lives 12 h; the challenge's `t` of 3 s bounds the minter.
    assert!(
        m.usable_until.duration_since(m.created) <= Duration::from_secs(3),
        "{:?}",
        m.usable_until.duration_since(m.created)
    );
    // Real time, waited on by condition (the renewal is scheduled by `std::time::Instant`);
    // the deadline is several times the lifetime, for a loaded CI host.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while s.origin.counts().generate_it < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "not renewed: {:?}",
            s.origin.counts()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        s.origin.counts().page >= 2,
        "the renewal fetched a new page"
    );
    mint_and_verify(&s, VIDEO).await;
}

#[tokio::test]
async fn create_plain_and_scrambled_both_work() {
    for mode in [CreateMode::Plain, CreateMode::Scrambled] {
        let s = sim(
            "[tokens.botguard]\nchallenge = [\"create\"]\nendpoint = \"googleapis\"\n",
            |o| o.behaviour().create = mode,
        )
        .await;
        mint_and_verify(&s, VIDEO).await;
        let c = s.origin.counts();
        assert_eq!((c.page, c.create), (0, 1), "{mode:?}");
        assert_eq!(c.interpreter, 0, "{mode:?}: Create inlines the script");
    }
}

#[tokio::test]
async fn a_garbage_create_is_an_error_not_a_crash() {
    let s = sim("[tokens.botguard]\nchallenge = [\"create\"]\n", |o| {
        o.behaviour().create = CreateMode::Garbage
    })
    .await;
    let e = s.bg().mint(VIDEO).await.unwrap_err();
    assert!(matches!(e, BotGuardError::NoChallenge(_)), "{e}");
}

#[tokio::test]
async fn an_interpreter_whose_hash_does_not_match_is_refused() {
    let s = sim("", |o| {
        o.behaviour().interpreter_override = Some("globalThis.fakebg = {};".into())
    })
    .await;
    let e = s.bg().mint(VIDEO).await.unwrap_err();
    assert!(
        matches!(&e, BotGuardError::Parse { step: Step::Interpreter, what } if what.contains("hash mismatch")),
        "{e}"
    );
}

#[tokio::test]
async fn an_interpreter_that_loops_forever_times_out() {
    let s = sim("[tokens.botguard]\nvm_timeout_secs = 1\n", |o| {
        let mut b = o.behaviour();
        b.interpreter_override = Some(LOOPING_JS.into());
        b.challenge_names_override = true;
    })
    .await;
    // Real time: QuickJS's interrupt handler measures the 1 s VM budget on the wall clock.
    // Twenty times the budget leaves a loaded CI host room while still failing a VM that
    // ignores its budget (without the bound such a mint would hang the test forever).
    let started = std::time::Instant::now();
    let e = tokio::time::timeout(Duration::from_secs(20), s.bg().mint(VIDEO))
        .await
        .expect("the VM budget stops the loop")
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(e, BotGuardError::Vm(_)), "{e}");
}

#[tokio::test]
async fn a_null_integrity_token_is_a_hard_error() {
    let s = sim("", |o| o.behaviour().null_integrity_token = true).await;
    let e = s.bg().mint(VIDEO).await.unwrap_err();
    assert!(matches!(e, BotGuardError::EmptyIntegrityToken(_)), "{e}");
}

#[tokio::test]
async fn the_minter_is_renewed_before_its_integrity_token_expires() {
    let s = sim("", |o| o.behaviour().it_ttl_secs = 2).await;
    let (first, _) = s.bg().mint(VIDEO).await.expect("mint");
    assert_eq!(
        s.origin.state.bg.verify(first.as_str(), VIDEO),
        Verdict::Valid
    );
    assert_eq!(s.origin.counts().generate_it, 1);
    // Real time, waited on by condition: the minter schedules renewal by `std::time::Instant`
    // and the fake expires integrity tokens by the wall clock (whole seconds), neither of which
    // a paused tokio clock moves. Renewal runs at 90% of the 2 s lifetime, in the background;
    // the deadlines are ten times that, for a loaded CI host.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while s.origin.counts().generate_it < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "not renewed: {:?}",
            s.origin.counts()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Once the first integrity token has expired, tokens minted now carry the new one.
    while s.origin.state.bg.verify(first.as_str(), VIDEO) == Verdict::Valid {
        assert!(
            std::time::Instant::now() < deadline,
            "first token never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    mint_and_verify(&s, VIDEO).await;
}

#[tokio::test]
async fn a_hundred_concurrent_first_requests_for_one_binding_mint_once() {
    let s = sim("", |_| {}).await;
    let svc = s.services.tokens.clone();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move {
                svc.get(&TokenRequest::new(Binding::Video(VIDEO.into())))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap());
    }
    assert!(tokens.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(s.bg().stats().mints, 1);
    assert_eq!(s.origin.counts().generate_it, 1);
    assert_eq!(
        s.origin.state.bg.verify(tokens[0].as_str(), VIDEO),
        Verdict::Valid
    );
}

#[tokio::test]
async fn cold_start_tokens_bridge_the_warm_up_then_real_tokens_follow() {
    let s = sim_with(
        Harness::builder().sources(&[SourceKind::BotGuard, SourceKind::ColdStart]),
        |_| {},
    )
    .await;
    let svc = s.services.tokens.clone();
    let req = TokenRequest::new(Binding::Video(VIDEO.into()));
    let first = svc.get(&req).await.unwrap();
    let cold = decode_cold_start(first.as_str()).expect("a cold-start token first");
    assert_eq!(cold.binding, VIDEO);
    // The warm-up started in the background; a real token follows without a cache entry
    // for the placeholder standing in its way.
    // Real time (the warm-up talks to the fake over sockets), polled with a deadline generous
    // enough for a loaded CI host; a warm-up takes well under a second here.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut real = None;
    while std::time::Instant::now() < deadline {
        let t = svc.get(&req).await.unwrap();
        if decode_cold_start(t.as_str()).is_none() {
            real = Some(t);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let real = real.expect("a real token after warm-up");
    assert_eq!(
        s.origin.state.bg.verify(real.as_str(), VIDEO),
        Verdict::Valid
    );
}

#[tokio::test]
async fn end_to_end_player_and_media_requests_carry_tokens_the_fake_verifies() {
    let h = Harness::builder()
        .sources(&[SourceKind::BotGuard])
        .start()
        .await;
    h.origin.behaviour().enforce_media = true;
    let body = serde_json::to_vec(&player_body("MWEB", VIDEO)).unwrap();
    let res = h
        .client()
        .post("https://www.youtube.com/youtubei/v1/player?prettyPrint=false")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let player: serde_json::Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    let url = player["streamingData"]["adaptiveFormats"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!url.contains("pot="), "the client's URL has no token");

    let res = h.client().get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200, "media accepted");
    let bytes = res.bytes().await.unwrap();
    assert!(
        bytes == media_bytes(0, DEFAULT_MEDIA_LEN),
        "media bytes intact"
    );

    let verdicts = h.origin.verdicts();
    assert_eq!(
        verdicts,
        vec![
            (format!("player {VIDEO}"), Verdict::Valid),
            (format!("media {VIDEO}"), Verdict::Valid)
        ]
    );
}

#[tokio::test]
async fn when_minting_fails_the_proxy_forwards_the_request_unchanged() {
    let h = Harness::builder()
        .sources(&[SourceKind::BotGuard])
        .start()
        .await;
    h.origin.behaviour().null_integrity_token = true;
    let body = serde_json::to_vec(&player_body("MWEB", VIDEO)).unwrap();
    let res = h
        .client()
        .post("https://www.youtube.com/youtubei/v1/player")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen: Vec<_> = h
        .origin
        .take()
        .into_iter()
        .filter(|s| s.path_and_query.starts_with("/youtubei/v1/player"))
        .collect();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, body);
}

/// The browser minter takes the same flow: a no-op interpreter on the page sends it to
/// `/att/get` with the page's eacrToken, whose `botguardData` answer runs in the page with the
/// page's EVENT_ID and whose `eats` goes back through `/att/log` before GenerateIT.
#[tokio::test]
async fn the_browser_minter_follows_the_stub_fallback_and_returns_eats_through_att_log() {
    if !have_browser() {
        return;
    }
    let s = sim_with(Harness::builder().sources(&[SourceKind::Browser]), |o| {
        let mut b = o.behaviour();
        b.page_interpreter_stub = true;
        b.att_get_form = AttGetForm::BotguardDataUrl;
        b.require_event_id = true;
    })
    .await;
    served_and_verified(&s).await;
    let c = s.origin.counts();
    assert_eq!((c.page, c.att_get, c.att_log, c.generate_it), (1, 1, 1, 1));
    assert_eq!(att_get_bodies(&s)[0]["eacrToken"], "eacr-token-fake");
}

/// Without a page, the browser minter too runs the TV client's challenge.
#[tokio::test]
async fn the_browser_minter_takes_the_tv_challenge_when_no_page_can_be_had() {
    if !have_browser() {
        return;
    }
    let s = sim_with(Harness::builder().sources(&[SourceKind::Browser]), |o| {
        let mut b = o.behaviour();
        b.page_status = 429;
        b.require_event_id = true;
    })
    .await;
    served_and_verified(&s).await;
    assert_eq!(
        att_get_bodies(&s)[0]["context"]["client"]["clientName"],
        "TVHTML5"
    );
}
