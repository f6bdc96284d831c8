//! A fleet of three nodes in one process, each with its own proxy and API port, sharing one
//! real `redis-server` (`[cluster] redis`) and one CA dir, against one fake origin: what one node
//! learns or mints, the others use; one binding asked of every node at once is minted once; and
//! Redis hanging, dying and coming back never costs a client request; and what a node reads back
//! from Redis or its cache file is validated (absurd expiries, wrong types, huge values, claims
//! without TTL, bad cache entries). Skips (with a message) only when redis-server is not
//! installed and `CI` is unset.

mod common;

use std::time::{Duration, Instant};

use common::botguard::{Trust, Verdict};
use common::redis::RedisServer;
use common::*;
use potproxy::RunningProxy;
use potproxy::config::SourceKind;
use serde_json::{Value, json};

const V1: &str = "jNQXAC9IVRw";

struct Fleet {
    fakes: Fakes,
    nodes: Vec<RunningProxy>,
    ca_dir: tempfile::TempDir,
}

/// Three nodes started concurrently on one empty CA dir, minting with the simulated BotGuard,
/// the API on (own ports), all on `redis`.
async fn fleet(redis: &RedisServer) -> Fleet {
    let fakes = Fakes::start().await;
    let ca_dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[cluster]\nredis = {:?}\nprefix = \"fleettest:\"\ntimeout_ms = 200\n",
        redis.url()
    );
    let builder = Harness::builder()
        .api(true)
        .sources(&[SourceKind::BotGuard])
        .toml(&toml);
    let configs: Vec<_> = (0..3)
        .map(|_| builder.config(&fakes, ca_dir.path()))
        .collect();
    let started = futures::future::join_all(configs.into_iter().map(potproxy::start)).await;
    let nodes = started
        .into_iter()
        .map(|r| r.expect("node starts"))
        .collect::<Vec<_>>();
    assert!(nodes.iter().all(|n| n.cluster.is_some()));
    Fleet {
        fakes,
        nodes,
        ca_dir,
    }
}

impl Fleet {
    /// A client through node `i` trusting only the `ca.pem` on the shared disk.
    fn client(&self, i: usize) -> reqwest::Client {
        let pem = std::fs::read(self.ca_dir.path().join("ca.pem")).unwrap();
        client_via(self.nodes[i].addr, &pem)
    }

    fn api(&self, i: usize) -> String {
        format!("http://{}/get_pot", self.nodes[i].api_addr.unwrap())
    }

    fn mints(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| n.services.botguard.as_ref().unwrap().stats().mints)
            .sum()
    }

    fn mints_on(&self, i: usize) -> u64 {
        self.nodes[i]
            .services
            .botguard
            .as_ref()
            .unwrap()
            .stats()
            .mints
    }
}

fn plain() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn get_pot(url: &str, binding: &str) -> String {
    let res = plain()
        .post(url)
        .body(serde_json::to_vec(&json!({"content_binding": binding})).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "get_pot {binding}");
    let v: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    v["poToken"].as_str().unwrap().to_string()
}

/// Real time, polled: the nodes write Redis in the background (fire-and-forget) over real
/// sockets, which a paused tokio clock does not drive. It usually takes milliseconds; the
/// deadline is generous for a loaded CI host.
const FLEET_WRITE_DEADLINE: Duration = Duration::from_secs(10);

/// Waits until the fleet's Redis holds the `keys` (`prefix` + pattern) asked for and, when
/// `token` is given, a stored token equal to it.
async fn until_fleet_holds(redis: &RedisServer, patterns: &[&str], token: Option<&str>) {
    let client = ::redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let deadline = Instant::now() + FLEET_WRITE_DEADLINE;
    loop {
        let mut held = true;
        for pattern in patterns {
            let keys: Vec<String> = ::redis::cmd("KEYS")
                .arg(pattern)
                .query_async(&mut con)
                .await
                .unwrap();
            held &= !keys.is_empty();
        }
        if let Some(token) = token {
            let keys: Vec<String> = ::redis::cmd("KEYS")
                .arg("fleettest:tok:*")
                .query_async(&mut con)
                .await
                .unwrap();
            let values: Vec<Option<String>> = if keys.is_empty() {
                Vec::new()
            } else {
                ::redis::cmd("MGET")
                    .arg(&keys)
                    .query_async(&mut con)
                    .await
                    .unwrap()
            };
            held &= values
                .iter()
                .flatten()
                .any(|v| v.split_once('|').is_some_and(|(_, t)| t == token));
        }
        if held {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the fleet never held {patterns:?} {token:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the `traffic` task has completed `n` rounds; it stopping first means a request
/// failed (its panic is reported when the task is awaited).
async fn until_rounds(
    rounds: &std::sync::atomic::AtomicUsize,
    traffic: &tokio::task::JoinHandle<usize>,
    n: usize,
) {
    while rounds.load(std::sync::atomic::Ordering::SeqCst) < n && !traffic.is_finished() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn player(client: &reqwest::Client, video: &str) -> Value {
    let res = client
        .post("https://www.youtube.com/youtubei/v1/player?prettyPrint=false")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&player_body("MWEB", video)).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    serde_json::from_slice(&res.bytes().await.unwrap()).unwrap()
}

#[tokio::test]
async fn three_nodes_on_one_ca_dir_present_leaves_of_the_one_ca() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let f = fleet(&redis).await;
    let pem = std::fs::read_to_string(f.ca_dir.path().join("ca.pem")).unwrap();
    for (i, n) in f.nodes.iter().enumerate() {
        assert_eq!(n.ca_cert_pem, pem, "node {i} runs the CA on disk");
        let res = f
            .client(i)
            .get("https://www.youtube.com/")
            .send()
            .await
            .unwrap_or_else(|e| panic!("node {i}'s leaf does not verify with ca.pem: {e}"));
        assert!(res.status().as_u16() < 500, "node {i}: {}", res.status());
    }
}

#[tokio::test]
async fn a_session_learned_on_one_node_serves_media_on_the_others() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let f = fleet(&redis).await;
    {
        let mut b = f.fakes.origin.behaviour();
        b.enforce_media = true;
        b.gvs_regime = GvsRegime::Session;
    }
    let p = player(&f.client(0), V1).await;
    let url = p["streamingData"]["adaptiveFormats"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    // Learning reaches Redis in the background.
    until_fleet_holds(&redis, &["fleettest:url:*"], None).await;
    f.fakes.origin.take();
    let mut tokens = Vec::new();
    for node in [1, 2] {
        let res = f
            .client(node)
            .get(&url)
            .header("range", "bytes=0-999")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 206, "node {node}");
        assert!(
            res.bytes().await.unwrap() == media_bytes(0, 1000),
            "node {node}: media bytes intact"
        );
        let accepted = f
            .fakes
            .origin
            .take()
            .into_iter()
            .rfind(|s| s.path_and_query.starts_with("/videoplayback"))
            .unwrap();
        let pot = accepted.query_values("pot");
        // Node 1's token and the regime it learned reach Redis in the background.
        if let Some(t) = pot.first() {
            let t = t.replace("%3D", "=");
            until_fleet_holds(&redis, &["fleettest:regime:*"], Some(&t)).await;
        }
        tokens.push(pot);
    }
    let refused = f
        .fakes
        .origin
        .verdicts()
        .into_iter()
        .filter(|(w, v)| w.starts_with("media") && *v != Verdict::Valid)
        .count();
    assert!(
        refused <= 1,
        "{refused} refused media requests in the fleet"
    );
    assert!(!tokens[0].is_empty(), "node 1 sent a token");
    assert_eq!(tokens[0], tokens[1], "nodes 1 and 2 sent the same token");
}

#[tokio::test]
async fn sixty_concurrent_requests_for_one_binding_across_the_fleet_mint_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let f = fleet(&redis).await;
    let urls: Vec<String> = (0..3).map(|i| f.api(i)).collect();
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let url = urls[i % 3].clone();
            tokio::spawn(async move { get_pot(&url, "fleetwide01").await })
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for t in tasks {
        tokens.insert(t.await.unwrap());
    }
    assert_eq!(tokens.len(), 1, "one token for the fleet");
    assert_eq!(f.mints(), 1, "one mint for the fleet");
}

#[tokio::test]
async fn redis_hanging_dying_and_returning_never_fails_a_request_and_sharing_resumes() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let f = fleet(&redis).await;
    // Shared while Redis is up.
    let t = get_pot(&f.api(0), "beforefault").await;
    assert_eq!(get_pot(&f.api(1), "beforefault").await, t);

    // Traffic on every node (get_pot for new bindings, player requests through the proxies)
    // runs while Redis hangs and then dies; every request must succeed, promptly.
    let urls: Vec<String> = (0..3).map(|i| f.api(i)).collect();
    let clients: Vec<reqwest::Client> = (0..3).map(|i| f.client(i)).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rounds = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let traffic = {
        let (stop, rounds) = (stop.clone(), rounds.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                // Real time: what is measured is a real request against a hung or dead
                // redis-server. Each Redis call is bounded at 200 ms, so a round takes well
                // under a second; a request that waited on the hung server itself would run
                // into the client's 10 s timeout. 8 s leaves a loaded CI host room.
                let started = Instant::now();
                get_pot(&urls[i % 3], &format!("during{i:03}")).await;
                player(&clients[i % 3], V1).await;
                assert!(
                    started.elapsed() < Duration::from_secs(8),
                    "request {i} took {:?}",
                    started.elapsed()
                );
                i += 1;
                rounds.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            i
        })
    };
    // Each phase lasts until every node has served a round in it (rounds go round-robin),
    // not for a guessed time.
    until_rounds(&rounds, &traffic, 1).await;
    redis.hang();
    let hung_at = rounds.load(std::sync::atomic::Ordering::SeqCst);
    until_rounds(&rounds, &traffic, hung_at + 3).await;
    redis.kill();
    let killed_at = rounds.load(std::sync::atomic::Ordering::SeqCst);
    until_rounds(&rounds, &traffic, killed_at + 3).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let served = traffic
        .await
        .expect("every request during the faults succeeded");
    assert!(
        served > 3,
        "traffic ran during the faults ({served} rounds)"
    );
    let failed: u64 = f
        .nodes
        .iter()
        .map(|n| n.cluster.as_ref().unwrap().failures())
        .sum();
    assert!(failed > 0, "failed Redis calls are counted");
    for (i, n) in f.nodes.iter().enumerate() {
        let outages = n.cluster.as_ref().unwrap().outages();
        assert_eq!(
            outages, 1,
            "node {i}: one outage (logged once), not one per request"
        );
    }

    redis.restart();
    // Sharing resumes once the nodes notice (a probe every half second): a token minted on node
    // 0 is then served by node 1 without a mint. Real time (real sockets, the nodes' probe
    // clocks); the deadline is thirty probe intervals and more, for a loaded CI host.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut k = 0;
    loop {
        let binding = format!("afterrestart{k:02}");
        let minted_on_1 = f.mints_on(1);
        let a = get_pot(&f.api(0), &binding).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let b = get_pot(&f.api(1), &binding).await;
        if a == b && f.mints_on(1) == minted_on_1 {
            break;
        }
        assert!(Instant::now() < deadline, "sharing did not resume");
        tokio::time::sleep(Duration::from_millis(200)).await;
        k += 1;
    }
}

#[tokio::test]
async fn a_source_set_aside_on_one_node_is_set_aside_for_the_fleet_until_it_expires() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let f = fleet(&redis).await;
    let (a, b) = (
        f.nodes[0].cluster.clone().unwrap(),
        f.nodes[1].cluster.clone().unwrap(),
    );
    a.set_aside(
        "provider",
        Some("http://proxy.example:3128"),
        Duration::from_secs(60),
        "3 refusals",
    );
    a.set_aside("botguard", None, Duration::from_millis(300), "refused");
    let deadline = Instant::now() + FLEET_WRITE_DEADLINE;
    let seen = loop {
        let seen = b.set_asides().await.expect("redis up");
        if seen.len() == 2 || Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(seen.len(), 2, "{seen:?}");
    let p = seen.iter().find(|s| s.source == "provider").unwrap();
    assert_eq!(p.egress.as_deref(), Some("http://proxy.example:3128"));
    assert_eq!(p.reason, "3 refusals");
    // The 300 ms verdict expires on the wall clock (its `until_ms`, read by every node), which a
    // paused tokio clock does not move: polled, with a generous deadline.
    let deadline = Instant::now() + FLEET_WRITE_DEADLINE;
    let seen = loop {
        let seen = f.nodes[2]
            .cluster
            .as_ref()
            .unwrap()
            .set_asides()
            .await
            .unwrap();
        if seen.len() < 2 || Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        seen.iter().map(|s| s.source.as_str()).collect::<Vec<_>>(),
        ["provider"],
        "the expired verdict is gone"
    );
    b.clear_aside("provider", Some("http://proxy.example:3128"));
    let deadline = Instant::now() + FLEET_WRITE_DEADLINE;
    while !a.set_asides().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "cleared fleet-wide");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const V2: &str = "9bZkp7q19f0";

/// Bytes of a format the fake googlevideo cuts after 1 MiB when its token is low trust.
const GRADED_LEN: u64 = 3 * 1024 * 1024 + 17;

/// GETs `url` through `client`; the status and the whole body (panics when it breaks).
async fn get_all(client: &reqwest::Client, url: &str) -> (u16, Vec<u8>) {
    let res = client.get(url).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.bytes().await.unwrap().to_vec())
}

fn graded_audio_url(p: &Value) -> String {
    p["streamingData"]["adaptiveFormats"][0]["url"]
        .as_str()
        .unwrap()
        .replace(
            &format!("clen={DEFAULT_MEDIA_LEN}"),
            &format!("clen={GRADED_LEN}"),
        )
}

#[tokio::test]
async fn a_source_set_aside_on_one_node_is_not_used_by_another() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let fakes = Fakes::start().await;
    let ca_dir = tempfile::tempdir().unwrap();
    let toml = {
        let bg = &fakes.origin.state.bg;
        format!(
            "[cluster]\nredis = {:?}\nprefix = \"verdicts:\"\ntimeout_ms = 200\n\n\
             [tokens.static.bindings]\n\"{V1}\" = \"{}\"\n\"{V2}\" = \"{}\"\n",
            redis.url(),
            bg.signed_token(V1, common::botguard::Trust::High),
            bg.signed_token(V2, common::botguard::Trust::High)
        )
    };
    {
        let mut b = fakes.origin.behaviour();
        b.grade_trust = true;
        b.low_trust = LowTrust::Cut;
        b.enforce_media = true;
    }
    let builder = Harness::builder()
        .api(true)
        .sources(&[SourceKind::BotGuard, SourceKind::Static])
        .toml(&toml);
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let cfg = builder.config(&fakes, ca_dir.path());
        nodes.push(potproxy::start(cfg).await.expect("node starts"));
    }
    let pem = std::fs::read(ca_dir.path().join("ca.pem")).unwrap();
    let (a, b) = (
        client_via(nodes[0].addr, &pem),
        client_via(nodes[1].addr, &pem),
    );

    // Node A: BotGuard's (QuickJS, low-trust) tokens are cut off, renewed once, set aside.
    let url = graded_audio_url(&player(&a, V1).await);
    let (status, body) = get_all(&a, &url).await;
    assert_eq!(status, 200);
    assert!(
        body == media_bytes(0, GRADED_LEN),
        "node A's body byte-exact"
    );
    assert!(
        fakes.origin.counts().low_trust_cuts >= 1,
        "the fake did cut"
    );
    let aside = nodes[0].services.tokens.set_aside();
    assert!(
        aside.iter().any(|s| s.source == "botguard"),
        "botguard set aside on A: {aside:?}"
    );

    // Node B learns the verdict from the fleet (it refreshes every second). Real time (node B's
    // refresh clock, real sockets); twenty refreshes leave a loaded CI host room.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !nodes[1]
        .services
        .tokens
        .set_aside()
        .iter()
        .any(|s| s.source == "botguard" && s.egress == "direct")
    {
        assert!(Instant::now() < deadline, "node B never saw the verdict");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Node B: the next video goes straight to the static source; nothing is refused.
    let c = fakes.origin.counts();
    let refusals_before = c.low_trust_cuts + c.low_trust_403s + c.low_trust_ump + c.bot_checks;
    let b_mints = nodes[1].services.botguard.as_ref().unwrap().stats().mints;
    fakes.origin.take();
    let url = graded_audio_url(&player(&b, V2).await);
    let (status, body) = get_all(&b, &url).await;
    assert_eq!(status, 200);
    assert!(
        body == media_bytes(0, GRADED_LEN),
        "node B's body byte-exact"
    );
    let c = fakes.origin.counts();
    assert_eq!(
        c.low_trust_cuts + c.low_trust_403s + c.low_trust_ump + c.bot_checks,
        refusals_before,
        "no refusal on node B"
    );
    assert_eq!(
        nodes[1].services.botguard.as_ref().unwrap().stats().mints,
        b_mints,
        "node B did not mint with botguard"
    );
    for s in fakes
        .origin
        .take()
        .into_iter()
        .filter(|s| s.path_and_query.starts_with("/videoplayback"))
    {
        let pot = &s.query_values("pot")[0];
        assert_eq!(
            fakes.origin.state.bg.trust(pot, V2),
            Some(common::botguard::Trust::High)
        );
    }
}

// What is read back is validated: a store (or cache file) holding values potproxy did not write.

/// One node on `redis` under the prefix `poison:`, the API on, minting with the simulated
/// BotGuard, its token cache in `cache`. A generous Redis timeout, so a large value would be
/// read in full if the node asked for it.
async fn poisoned_node(redis: &RedisServer, cache: &std::path::Path) -> Harness {
    Harness::builder()
        .api(true)
        .sources(&[SourceKind::BotGuard])
        .cache_file(cache)
        .toml(&format!(
            "[cluster]\nredis = {:?}\nprefix = \"poison:\"\ntimeout_ms = 2000\n",
            redis.url()
        ))
        .start()
        .await
}

/// Runs one command against `redis` from the test (the attacker's side).
fn plant(redis: &RedisServer, cmd: &mut ::redis::Cmd) -> ::redis::Value {
    let mut conn = ::redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    cmd.query(&mut conn).unwrap()
}

/// `/get_pot` for `binding`: the whole answer (panics unless 200).
async fn get_pot_answer(h: &Harness, binding: &str) -> Value {
    let url = format!("http://{}/get_pot", h.proxy.api_addr.unwrap());
    let res = plain()
        .post(url)
        .body(serde_json::to_vec(&json!({"content_binding": binding})).unwrap())
        .send()
        .await
        .unwrap_or_else(|e| panic!("get_pot {binding}: no answer: {e}"));
    assert_eq!(res.status(), 200, "get_pot {binding}");
    serde_json::from_slice(&res.bytes().await.unwrap()).unwrap()
}

fn unix_ms_from_now(d: Duration) -> u64 {
    (std::time::SystemTime::now() + d)
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The default `[tokens] ttl` plus a minute of slack.
const TTL_CAP: Duration = Duration::from_secs(6 * 3600 + 60);

#[tokio::test]
async fn a_token_with_an_absurd_expiry_in_redis_is_served_no_longer_than_the_ttl() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("token-cache.json");
    let h = poisoned_node(&redis, &cache).await;
    let cap = potproxy::api::iso8601(std::time::SystemTime::now() + TTL_CAP);
    // Year 5138, and past year 9999 (where formatting the expiry used to panic).
    for (binding, ms) in [
        ("farfuture01", "100000000000000".to_string()),
        ("farfuture02", u64::MAX.to_string()),
    ] {
        let planted = h.origin.state.bg.signed_token(binding, Trust::High);
        plant(
            &redis,
            ::redis::cmd("SET")
                .arg(format!("poison:tok:video:-:{binding}"))
                .arg(format!("{ms}|{planted}")),
        );
        let v = get_pot_answer(&h, binding).await;
        let expires = v["expiresAt"].as_str().unwrap();
        assert!(expires <= cap.as_str(), "{binding}: expires {expires}");
    }
    // Nor does the cache file keep the store's expiry (it would survive a flush and a restart).
    h.proxy.services.tokens.cache().flush();
    let file: Value = serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    let cap_secs = unix_ms_from_now(TTL_CAP) / 1000;
    for e in file["entries"].as_array().unwrap() {
        assert!(e["expires_at"].as_u64().unwrap() <= cap_secs, "{e}");
    }
}

#[tokio::test]
async fn values_of_the_wrong_type_or_shape_in_redis_are_ignored() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let h = poisoned_node(&redis, &dir.path().join("c.json")).await;
    plant(
        &redis,
        ::redis::cmd("RPUSH")
            .arg("poison:tok:video:-:wrongtype01")
            .arg("x"),
    );
    plant(
        &redis,
        ::redis::cmd("SET")
            .arg("poison:tok:video:-:wrongshape1")
            .arg("no expiry, no token"),
    );
    // A set-aside that would last 584 million years.
    plant(
        &redis,
        ::redis::cmd("HSET").arg("poison:asides").arg("botguard|-").arg(
            json!({"source": "botguard", "egress": null, "reason": "planted", "until_ms": u64::MAX})
                .to_string(),
        ),
    );
    for binding in ["wrongtype01", "wrongshape1"] {
        let v = get_pot_answer(&h, binding).await;
        assert_eq!(
            h.origin
                .state
                .bg
                .verify(v["poToken"].as_str().unwrap(), binding),
            Verdict::Valid,
            "{binding}: a token minted here"
        );
    }
    let cluster = h.proxy.cluster.as_ref().unwrap();
    assert_eq!(
        cluster.set_asides().await,
        Some(vec![]),
        "the absurd set-aside is not honoured"
    );
    assert!(
        cluster.ignored() >= 3,
        "{} values ignored",
        cluster.ignored()
    );
    // The wrong-typed key was replaced by this node's token.
    let deadline = Instant::now() + Duration::from_secs(5);
    while plant(
        &redis,
        ::redis::cmd("TYPE").arg("poison:tok:video:-:wrongtype01"),
    ) != ::redis::Value::SimpleString("string".into())
    {
        assert!(
            Instant::now() < deadline,
            "the wrong-typed key was repaired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_huge_value_in_redis_is_neither_read_whole_nor_served() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let h = poisoned_node(&redis, &dir.path().join("c.json")).await;
    // 8 MiB of valid base64 behind a valid expiry: a "token" if read whole.
    let huge = format!(
        "{}|{}",
        unix_ms_from_now(Duration::from_secs(3600)),
        "A".repeat(8 << 20)
    );
    plant(
        &redis,
        ::redis::cmd("SET")
            .arg("poison:tok:video:-:hugevalue01")
            .arg(huge),
    );
    let v = get_pot_answer(&h, "hugevalue01").await;
    let token = v["poToken"].as_str().unwrap();
    assert!(token.len() < 4096, "a {} byte token served", token.len());
    assert_eq!(
        h.origin.state.bg.verify(token, "hugevalue01"),
        Verdict::Valid
    );
    assert!(h.proxy.cluster.as_ref().unwrap().ignored() >= 1);
}

#[tokio::test]
async fn a_claim_without_ttl_in_redis_does_not_hold_up_minting() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let h = poisoned_node(&redis, &dir.path().join("c.json")).await;
    let lock = "poison:lock:video:-:stuckclaim1";
    plant(
        &redis,
        ::redis::cmd("SET").arg(lock).arg("a node long gone"),
    );
    let cluster = h.proxy.cluster.as_ref().unwrap();
    let before = cluster.calls();
    let v = get_pot_answer(&h, "stuckclaim1").await;
    let calls = cluster.calls() - before;
    assert_eq!(
        h.origin
            .state
            .bg
            .verify(v["poToken"].as_str().unwrap(), "stuckclaim1"),
        Verdict::Valid
    );
    // Waiting out a claim that never expires costs two calls every 20 ms for 5 s.
    assert!(calls < 30, "{calls} redis calls for one request");
    let ttl = plant(&redis, ::redis::cmd("PTTL").arg(lock));
    assert_ne!(
        ttl,
        ::redis::Value::Int(-1),
        "the claim without TTL was repaired"
    );
}

#[tokio::test]
async fn a_cache_file_with_bad_entries_starts_and_skips_them() {
    let fakes = Fakes::start().await;
    let good = fakes.origin.state.bg.signed_token(V1, Trust::High);
    let in_an_hour = unix_ms_from_now(Duration::from_secs(3600)) / 1000;
    let entry = |binding: &str, expires_at: Value| json!({"kind": "video", "binding": binding, "egress": null, "token": good, "expires_at": expires_at});
    // Each file beside one good entry: an expiry out of range (a panic at start, exit 101,
    // before), then junk (the whole file dropped, before).
    let bad: [Vec<Value>; 2] = [
        vec![entry("outofrange1", json!(u64::MAX))],
        vec![
            entry("notanumber1", json!("soon")),
            json!("garbage"),
            json!({"kind": "video"}),
        ],
    ];
    let mut fakes = Some(fakes);
    for (i, bad) in bad.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("token-cache.json");
        let mut entries = vec![entry(V1, json!(in_an_hour))];
        entries.extend(bad);
        let file = json!({"version": 2, "entries": entries});
        std::fs::write(&cache, file.to_string()).unwrap();
        let builder = Harness::builder()
            .api(true)
            .sources(&[SourceKind::BotGuard])
            .cache_file(&cache);
        let h = match fakes.take() {
            Some(f) => builder.start_on(f).await,
            None => builder.start().await,
        };
        let bindings: Vec<String> = h
            .proxy
            .services
            .tokens
            .cache()
            .keys()
            .iter()
            .map(|k| k.binding().to_string())
            .collect();
        assert_eq!(
            bindings,
            [V1],
            "file {i}: the good entry loaded, the bad skipped"
        );
        let v = get_pot_answer(&h, V1).await;
        let good = potproxy::token::Token::parse(&good).unwrap();
        assert_eq!(
            v["poToken"].as_str().unwrap(),
            good.as_str(),
            "file {i}: served from the file"
        );
    }
}
