//! Google's real BotGuard VM (captured 2026-05-13, `../shared/fixtures/botguard/`) in our QuickJS
//! host: the interpreter loads with its hash verified, `a()` delivers the four setup functions,
//! the snapshot returns a real `$` response, `webPoSignalOutput[0]` appears, and the integrity
//! token Google issued in the same session yields a minter of well-formed tokens.

use std::time::{Duration, Instant};

use potproxy::botguard::challenge::{Challenge, parse_page};
use potproxy::botguard::vm::{LoadRequest, VmHandle, VmLimits};

// The fixture rule shared with the unit tests: skip locally, fail under CI.
#[path = "../src/testutil.rs"]
#[allow(dead_code)]
mod testutil;

#[tokio::test]
async fn real_botguard_vm_runs_and_mints_well_formed_tokens() {
    let Some(dir) = testutil::fixtures_dir() else {
        return;
    };
    let bg = dir.join("botguard");
    let html = std::fs::read_to_string(bg.join("youtube_channel_page_20260513.html")).unwrap();
    let page = parse_page(&html).unwrap();
    let challenge: Challenge = page.challenge.clone().unwrap();
    let js =
        std::fs::read(bg.join(format!("interpreter_{}.js", challenge.interpreter_hash))).unwrap();
    challenge
        .verify_interpreter(&js)
        .expect("interpreter hash verified");

    let vm = VmHandle::spawn(VmLimits {
        op_timeout: Duration::from_secs(20),
        ..VmLimits::default()
    })
    .unwrap();
    let t = Instant::now();
    let fns = vm
        .load(LoadRequest {
            interpreter_js: String::from_utf8(js).unwrap(),
            program: challenge.program.clone(),
            global_name: challenge.global_name.clone(),
            ytcfg_json: Some(serde_json::to_string(&page.ytcfg).unwrap()),
        })
        .await
        .expect("vm.a() calls back");
    let load_ms = t.elapsed().as_millis();
    assert_eq!(
        fns, "function,function,function,function",
        "four setup functions"
    );

    let t = Instant::now();
    let (response, has_minter) = vm.snapshot().await.expect("snapshot");
    let snapshot_ms = t.elapsed().as_millis();
    if response.starts_with("E:") {
        panic!("BotGuard reports a missing browser feature: {response}");
    }
    eprintln!(
        "snapshot: {} chars, starts {:?}",
        response.len(),
        &response[..12.min(response.len())]
    );
    assert!(
        response.starts_with('$'),
        "response: {}",
        &response[..60.min(response.len())]
    );
    assert!(
        response.len() > 1000,
        "response only {} chars",
        response.len()
    );
    if !has_minter {
        eprintln!("VM telemetry: {}", vm.telemetry().await.unwrap_or_default());
    }
    assert!(has_minter, "webPoSignalOutput[0] must be filled");

    let it: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(bg.join("generateIT_response.json")).unwrap(),
    )
    .unwrap();
    let t = Instant::now();
    vm.create_minter(it[0].as_str().unwrap())
        .await
        .expect("minter from the real integrity token");
    let minter_ms = t.elapsed().as_millis();

    let t = Instant::now();
    let a = vm.mint("dQw4w9WgXcQ").await.unwrap();
    let first_mint_us = t.elapsed().as_micros();
    let t = Instant::now();
    let b = vm.mint("dQw4w9WgXcQ").await.unwrap();
    let second_mint_us = t.elapsed().as_micros();
    assert_ne!(a, b, "tokens differ per call");
    for tok in [&a, &b] {
        let bytes = potproxy::token::Token::parse(tok).unwrap().bytes();
        assert_eq!(bytes[0], 0x32, "field 6 tag");
        assert_eq!(bytes[1] as usize, bytes.len() - 2, "field 6 length");
    }
    let mem = vm.stats().await.unwrap().memory_used_bytes;
    eprintln!(
        "real VM: load {load_ms} ms, snapshot {snapshot_ms} ms, minter {minter_ms} ms, mint {first_mint_us} us then {second_mint_us} us, token {} chars, JS heap {:.1} MiB",
        a.len(),
        mem as f64 / 1048576.0
    );
}
