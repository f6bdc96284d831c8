//! A fleet of three nodes in one process, each with its own proxy and API port, sharing one
//! real `redis-server` (`[cluster] redis`) and one CA dir, against one fake origin: what one node
//! learns or mints, the others use; one binding asked of every node at once is minted once; and
//! Redis hanging, dying and coming back never costs a client request. Skips (with a message)
//! only when redis-server is not installed and `CI` is unset.

mod common;

use std::time::{Duration, Instant};

use common::botguard::Verdict;
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
    // Learning reaches Redis in the background: give it a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
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
        tokens.push(accepted.query_values("pot"));
        tokio::time::sleep(Duration::from_millis(100)).await;
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
    let traffic = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let started = Instant::now();
                get_pot(&urls[i % 3], &format!("during{i:03}")).await;
                player(&clients[i % 3], V1).await;
                assert!(
                    started.elapsed() < Duration::from_secs(4),
                    "request {i} took {:?}",
                    started.elapsed()
                );
                i += 1;
            }
            i
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.hang();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(1000)).await;
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
    // 0 is then served by node 1 without a mint.
    let deadline = Instant::now() + Duration::from_secs(15);
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
    let deadline = Instant::now() + Duration::from_secs(5);
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
    tokio::time::sleep(Duration::from_millis(400)).await;
    let seen = f.nodes[2]
        .cluster
        .as_ref()
        .unwrap()
        .set_asides()
        .await
        .unwrap();
    assert_eq!(
        seen.iter().map(|s| s.source.as_str()).collect::<Vec<_>>(),
        ["provider"],
        "the expired verdict is gone"
    );
    b.clear_aside("provider", Some("http://proxy.example:3128"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !a.set_asides().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "cleared fleet-wide");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
