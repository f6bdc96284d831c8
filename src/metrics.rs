//! The process's metrics: named counters and gauges any module can bump, and their Prometheus
//! text exposition (`GET /metrics` on the API). Names are prefixed `potproxy_`.
//!
//! Metrics are process-wide statics (as Prometheus scrapes a process), so a module needs no
//! handle to count: `metrics::TOKENS.with(&["botguard", "minted"]).inc()`. Label values are
//! short fixed words; never put a token, a visitor id, a URL or a client's text in a label.
//!
//! Adding one: declare a `static` below with `counter!` / `gauge!` (name without the prefix
//! and without `_total`, help, label names), add it to `register_all`, and call
//! `.with(&[values...])` where it happens. Gauges that describe state (cache sizes, minter
//! states) are best set where the state changes, or sampled by the `/metrics` handler just
//! before it encodes.

use std::sync::LazyLock;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// A counter family with fixed label names.
pub struct CounterVec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    family: Family<Labels, Counter>,
}

/// A gauge family with fixed label names.
pub struct GaugeVec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    family: Family<Labels, Gauge>,
}

fn label_set(names: &'static [&'static str], values: &[&str]) -> Labels {
    debug_assert_eq!(names.len(), values.len(), "one value per label name");
    names
        .iter()
        .zip(values)
        .map(|(n, v)| (*n, (*v).to_string()))
        .collect()
}

impl CounterVec {
    /// The counter for these label values (in the order of the label names).
    pub fn with(&self, values: &[&str]) -> Counter {
        self.family
            .get_or_create_owned(&label_set(self.labels, values))
    }

    /// The current value (tests, logs).
    pub fn get(&self, values: &[&str]) -> u64 {
        self.family
            .get(&label_set(self.labels, values))
            .map_or(0, |c| c.get())
    }
}

impl GaugeVec {
    /// The gauge for these label values (in the order of the label names).
    pub fn with(&self, values: &[&str]) -> Gauge {
        self.family
            .get_or_create_owned(&label_set(self.labels, values))
    }

    /// The current value (the live page, tests).
    pub fn get(&self, values: &[&str]) -> i64 {
        self.family
            .get(&label_set(self.labels, values))
            .map_or(0, |g| g.get())
    }

    /// Forgets every label combination (before re-sampling a state gauge).
    pub fn clear(&self) {
        self.family.clear();
    }
}

macro_rules! counter {
    ($name:literal, $help:literal, [$($label:literal),* $(,)?]) => {
        LazyLock::new(|| CounterVec {
            name: $name,
            help: $help,
            labels: &[$($label),*],
            family: Family::default(),
        })
    };
}

macro_rules! gauge {
    ($name:literal, $help:literal, [$($label:literal),* $(,)?]) => {
        LazyLock::new(|| GaugeVec {
            name: $name,
            help: $help,
            labels: &[$($label),*],
            family: Family::default(),
        })
    };
}

/// Proxied requests by `kind` (player, media, sabr, captions, page, innertube, other, tunnel)
/// and `outcome` (rewritten, kept, passed, gave_up, refused_upstream, error).
pub static REQUESTS: LazyLock<CounterVec> = counter!(
    "requests",
    "Proxied requests by kind and outcome",
    ["kind", "outcome"]
);

/// Token edits put into traffic, by `what` (player, media, sabr, captions, player_response).
pub static REWRITES: LazyLock<CounterVec> = counter!(
    "rewrites",
    "Tokens put into requests or responses",
    ["what"]
);

/// Token answers by `source` (cache, static, botguard, cold_start, provider, ...) and
/// `outcome` (minted, cached, failed, declined, refused).
pub static TOKENS: LazyLock<CounterVec> = counter!(
    "tokens",
    "Token answers by source and outcome",
    ["source", "outcome"]
);

/// Upstream failures by `kind` (request, tunnel_dial, body).
pub static UPSTREAM_ERRORS: LazyLock<CounterVec> =
    counter!("upstream_errors", "Failed upstream requests", ["kind"]);

/// Body bytes through the proxy by `direction` (upstream: client to origin; downstream:
/// origin to client) and `kind` (as in [`REQUESTS`]).
pub static BYTES: LazyLock<CounterVec> = counter!(
    "bytes",
    "Body bytes proxied, by direction and kind",
    ["direction", "kind"]
);

/// Proxy logins refused, by `outcome`: missing (no credentials; a client's usual first try),
/// wrong (credentials naming no user), backed_off (refused unchecked after too many wrong ones).
pub static AUTH_FAILURES: LazyLock<CounterVec> = counter!(
    "auth_failures",
    "Proxy logins refused (407 or 429), by outcome",
    ["outcome"]
);

/// Most `egress` label values a sample shows; minters beyond them are counted under `other`,
/// so callers naming many proxies cannot grow the metric without bound.
pub const MAX_EGRESS_LABELS: usize = 32;

/// The `egress` label of the `index`th egress in a sample: its (redacted) key for the first
/// [`MAX_EGRESS_LABELS`], `other` after them.
pub fn egress_label(index: usize, key: &str) -> &str {
    if index < MAX_EGRESS_LABELS {
        key
    } else {
        "other"
    }
}

/// How many minters are in each `state` (ready, warming, failed, cold) by `egress` (1 for the
/// current state of a named egress; `other` sums those beyond [`MAX_EGRESS_LABELS`]).
pub static MINTER_STATE: LazyLock<GaugeVec> = gauge!(
    "minter_state",
    "BotGuard minters per egress and state (1 = a named egress's current state)",
    ["egress", "state"]
);

/// Minters and browser contexts of request-named egresses closed to make room for another
/// egress, by `what` (minter, browser_context).
pub static EGRESS_EVICTIONS: LazyLock<CounterVec> = counter!(
    "egress_evictions",
    "Per-egress minters and browser contexts closed to make room for another egress",
    ["what"]
);

/// Proofs of new minters' first tokens by `outcome` (proven, refused, inconclusive,
/// no_target).
pub static TOKEN_PROOFS: LazyLock<CounterVec> = counter!(
    "token_proofs",
    "Proofs of a new minter's first token by a ranged media GET, by outcome",
    ["outcome"]
);

/// Entries in the token cache.
pub static TOKEN_CACHE_ENTRIES: LazyLock<GaugeVec> =
    gauge!("token_cache_entries", "Tokens in the token cache", []);

/// Playback sessions known to the session store.
pub static SESSIONS: LazyLock<GaugeVec> =
    gauge!("sessions", "Playback sessions in the session store", []);

/// Failed or timed-out calls to the fleet's Redis (`[cluster]` only).
pub static CLUSTER_REDIS_CALLS_FAILED: LazyLock<GaugeVec> = gauge!(
    "cluster_redis_calls_failed",
    "Failed or timed-out calls to the cluster's Redis since start",
    []
);

/// 1 while the fleet's Redis answers, 0 while it is taken as down (`[cluster]` only).
pub static CLUSTER_REDIS_UP: LazyLock<GaugeVec> = gauge!(
    "cluster_redis_up",
    "Whether the cluster's Redis answers (1) or not (0)",
    []
);

/// Times the fleet's Redis went down since start (`[cluster]` only).
pub static CLUSTER_OUTAGES: LazyLock<GaugeVec> = gauge!(
    "cluster_outages",
    "Times the cluster's Redis was found down since start",
    []
);

/// SABR gateway events by `event`: stream (started), complete, failed, sabr_request, refusal
/// (a SABR response or status that refused the session's token), ip_mismatch.
pub static SABR_GATEWAY: LazyLock<CounterVec> = counter!(
    "sabr_gateway",
    "SABR gateway streams, SABR requests, refusals and address mismatches",
    ["event"]
);

/// Proportional memory (PSS, shared pages split between the processes sharing them) of the
/// browser's whole process tree (`browser` source only).
pub static BROWSER_PSS_BYTES: LazyLock<GaugeVec> = gauge!(
    "browser_pss_bytes",
    "PSS of the browser's whole process tree, bytes",
    []
);

/// PSS of the renderer serving each egress's browser context, by `egress` (as
/// [`MINTER_STATE`]); at most `[tokens.browser] max_contexts` + 1 series, re-sampled on each
/// scrape; a context whose renderer could not be told apart has none.
pub static BROWSER_CONTEXT_PSS_BYTES: LazyLock<GaugeVec> = gauge!(
    "browser_context_pss_bytes",
    "PSS of the renderer serving each egress's browser context, bytes",
    ["egress"]
);

fn register_all(r: &mut Registry) {
    for c in [
        &REQUESTS,
        &REWRITES,
        &TOKENS,
        &UPSTREAM_ERRORS,
        &BYTES,
        &AUTH_FAILURES,
        &EGRESS_EVICTIONS,
        &SABR_GATEWAY,
        &TOKEN_PROOFS,
    ] {
        r.register(c.name, c.help, c.family.clone());
    }
    for g in [&MINTER_STATE, &TOKEN_CACHE_ENTRIES, &SESSIONS] {
        if g.labels.is_empty() {
            // A family prints nothing until it has a series: show 0 from the start.
            g.with(&[]);
        }
        r.register(g.name, g.help, g.family.clone());
    }
    // Shown only where they mean something (a cluster, a browser source): no series until
    // sampled, so a node without Redis does not report it down.
    for g in [
        &CLUSTER_REDIS_CALLS_FAILED,
        &CLUSTER_REDIS_UP,
        &CLUSTER_OUTAGES,
        &BROWSER_PSS_BYTES,
        &BROWSER_CONTEXT_PSS_BYTES,
    ] {
        r.register(g.name, g.help, g.family.clone());
    }
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let mut r = Registry::with_prefix("potproxy");
    register_all(&mut r);
    r
});

/// The `Content-Type` of [`encode`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Every metric in the Prometheus text format (0.0.4).
pub fn encode() -> String {
    let mut out = String::new();
    prometheus_text::encode(&mut out, &REGISTRY).expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn egress_labels_beyond_the_cap_fold_into_other() {
        let keys: Vec<String> = (0..MAX_EGRESS_LABELS + 50)
            .map(|i| format!("http://10.0.0.{i}:3128"))
            .collect();
        let labels: std::collections::BTreeSet<&str> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| egress_label(i, k))
            .collect();
        assert_eq!(labels.len(), MAX_EGRESS_LABELS + 1);
        assert!(labels.contains("other") && labels.contains(keys[0].as_str()));
        assert!(!labels.contains(keys[MAX_EGRESS_LABELS].as_str()));
    }

    #[test]
    fn counters_appear_prefixed_with_their_labels() {
        REWRITES.with(&["captions"]).inc();
        let text = encode();
        assert!(
            text.contains("potproxy_rewrites_total{what=\"captions\"}"),
            "{text}"
        );
        assert!(text.contains("potproxy_sessions "), "{text}");
        assert!(REWRITES.get(&["captions"]) >= 1);
    }
}
