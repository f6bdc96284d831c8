//! `config.example.toml` documents every key; this keeps it parseable and keeps it in step with
//! the defaults the proxy really uses.

use std::path::Path;

use potproxy::config::{Config, DEFAULT_INTERCEPT_HOSTS, Overrides, RawConfig};

fn example() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let raw = RawConfig::load(&path).expect("config.example.toml must parse");
    Config::resolve(raw, Overrides::default()).expect("config.example.toml must validate")
}

#[test]
fn example_config_parses_and_matches_the_defaults() {
    let ex = example();
    let def = Config::default();
    assert_eq!(ex.listen, def.listen);
    assert_eq!(ex.strict, def.strict);
    assert_eq!(ex.ca_dir, def.ca_dir);
    assert_eq!(ex.intercept, def.intercept);
    assert_eq!(ex.intercept.len(), DEFAULT_INTERCEPT_HOSTS.len());
    assert_eq!(ex.max_body_bytes, def.max_body_bytes);
    assert_eq!(ex.upstream.connect_timeout, def.upstream.connect_timeout);
    assert_eq!(ex.upstream.http2, def.upstream.http2);
    assert_eq!(ex.tokens.always_replace, def.tokens.always_replace);
    assert_eq!(ex.tokens.sentinels, def.tokens.sentinels);
    assert_eq!(ex.tokens.sources, def.tokens.sources);
    assert_eq!(ex.tokens.ttl, def.tokens.ttl);
    assert_eq!(ex.tokens.set_aside, def.tokens.set_aside);
    assert_eq!(ex.tokens.cache_file, def.tokens.cache_file);
    let (e, d) = (&ex.tokens.botguard, &def.tokens.botguard);
    assert_eq!(e.prewarm, d.prewarm);
    assert_eq!(e.settings.challenge_order, d.settings.challenge_order);
    assert_eq!(e.settings.endpoint, d.settings.endpoint);
    assert_eq!(e.settings.user_agent, d.settings.user_agent);
    assert_eq!(e.settings.vm.op_timeout, d.settings.vm.op_timeout);
    assert_eq!(e.settings.warmup_wait, d.settings.warmup_wait);
    assert_eq!(e.max_minters, d.max_minters);
    assert_eq!(ex.tokens.browser, def.tokens.browser);
    assert_eq!(ex.tokens.provider_timeout, def.tokens.provider_timeout);
    assert_eq!(ex.default_regime, def.default_regime);
    assert_eq!(ex.rewrite_player_response, def.rewrite_player_response);
    assert_eq!(ex.api.enabled, def.api.enabled);
    assert_eq!(ex.api.listen, def.api.listen);
    assert_eq!(ex.api.compat_version, def.api.compat_version);
    assert_eq!(ex.upstream.proxy, def.upstream.proxy);
    assert_eq!(ex.timeouts, def.timeouts);
    assert_eq!(ex.limits, def.limits);
    assert_eq!(ex.api.token, def.api.token);
    assert_eq!(ex.api.public, def.api.public);
    assert_eq!(ex.access.auth_backoff, def.access.auth_backoff);
    assert_eq!(ex.access.users.is_empty(), def.access.users.is_empty());
    assert_eq!(
        ex.access.loopback_destinations,
        def.access.loopback_destinations
    );
}

#[test]
fn every_documented_section_is_a_real_key() {
    // A key the parser does not know fails to parse, so a typo in the example is caught above;
    // here, check the example mentions every top-level section the parser has.
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml"))
            .unwrap();
    for section in [
        "[ca]",
        "[intercept]",
        "[upstream]",
        "[upstream.resolve]",
        "[auth]",
        "[access]",
        "[tokens]",
        "[tokens.botguard]",
        "[tokens.browser]",
        "[tokens.provider]",
        "[tokens.static]",
        "[tokens.static.bindings]",
        "[bindings]",
        "[api]",
        "[rewrite]",
        "[timeouts]",
        "[limits]",
        "[cluster]",
    ] {
        assert!(
            text.contains(section),
            "config.example.toml lacks {section}"
        );
    }
    for key in [
        "listen",
        "strict",
        "dir",
        "hosts",
        "extra_ca_certs",
        "connect_timeout_secs",
        "http2",
        "ttl",
        "cache_file",
        "sentinels",
        "always_replace",
        "challenge",
        "endpoint",
        "user_agent",
        "vm_timeout_secs",
        "warmup_wait_secs",
        "client_idle_secs",
        "tunnel_idle_secs",
        "upstream_headers_secs",
        "upstream_idle_secs",
        "drain_secs",
        "prewarm",
        "timeout_secs",
        "default_regime",
        "enabled",
        "compat_version",
        "player_response",
        "max_body_bytes",
        "args",
        "mint_timeout_secs",
        "warmup_timeout_secs",
    ] {
        assert!(
            text.contains(&format!("\n{key} =")),
            "config.example.toml lacks key {key}"
        );
    }
    // Their defaults depend on the machine (a browser on PATH), so they are shown commented out:
    // an uncommented value would stop matching the default somewhere.
    for key in ["sources", "executable"] {
        assert!(
            text.contains(&format!("\n# {key} =")),
            "config.example.toml lacks key {key}"
        );
    }
    // Keys shown only as examples (commented out) are still documented.
    for key in ["proxy =", "default =", "url =", "max_connections ="] {
        assert!(
            text.contains(key),
            "config.example.toml does not document {key}"
        );
    }
}
