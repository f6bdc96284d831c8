//! The operator's and clients' routes: `GET /metrics` (Prometheus text), `/healthz` (alive),
//! `/readyz` (200 only when a token can be served), `/proxy.pac` and `/ca.pem`.

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;

use super::ApiState;
use super::responses::{ApiResponse, error};
use crate::metrics;
use crate::observe::ca_page::PEM_CONTENT_TYPE;

fn text(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> ApiResponse {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(Full::new(body.into()))
        .expect("static response parts are valid")
}

/// Samples the state gauges, then encodes every metric.
pub(super) fn metrics(state: &ApiState) -> ApiResponse {
    let services = &state.services;
    metrics::TOKEN_CACHE_ENTRIES
        .with(&[])
        .set(services.tokens.cache().stats().entries as i64);
    if let Some(pool) = &services.minters {
        metrics::MINTER_STATE.clear();
        for (i, (egress, current)) in pool.states().into_iter().enumerate() {
            let egress = crate::redact::redact_url(&egress);
            let egress = metrics::egress_label(i, &egress);
            for s in crate::botguard::minter::MinterState::ALL {
                metrics::MINTER_STATE
                    .with(&[egress, s.as_str()])
                    .inc_by(i64::from(s == current));
            }
        }
    }
    if let Some(cluster) = &state.cluster {
        let gauge = |g: &metrics::GaugeVec, v: u64| g.with(&[]).set(v as i64);
        gauge(&metrics::CLUSTER_REDIS_CALLS_FAILED, cluster.failures());
        gauge(&metrics::CLUSTER_REDIS_UP, u64::from(cluster.available()));
        gauge(&metrics::CLUSTER_OUTAGES, cluster.outages());
    }
    if let Some(browsers) = &services.browsers {
        metrics::BROWSER_PSS_BYTES
            .with(&[])
            .set(browsers.pss_bytes() as i64);
        metrics::BROWSER_CONTEXT_PSS_BYTES.clear();
        for (i, (egress, pss)) in browsers.context_pss().into_iter().enumerate() {
            let egress = crate::redact::redact_url(&egress);
            metrics::BROWSER_CONTEXT_PSS_BYTES
                .with(&[metrics::egress_label(i, &egress)])
                .inc_by(pss as i64);
        }
    }
    text(StatusCode::OK, metrics::CONTENT_TYPE, metrics::encode())
}

pub(super) fn healthz() -> ApiResponse {
    text(StatusCode::OK, "text/plain; charset=utf-8", "ok\n")
}

/// 200 when some source can serve a token now (a static default token, a ready minter, a
/// reachable provider); else 503 naming why each source cannot.
pub(super) async fn readyz(state: &ApiState) -> ApiResponse {
    let mut why = Vec::new();
    for source in state.services.tokens.sources() {
        match source.readiness().await {
            Ok(()) => {
                return text(
                    StatusCode::OK,
                    "text/plain; charset=utf-8",
                    format!("ready: {}\n", source.name()),
                );
            }
            Err(reason) => why.push(reason.to_string()),
        }
    }
    if why.is_empty() {
        why.push("no token sources configured".into());
    }
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "text/plain; charset=utf-8",
        format!("not ready: {}\n", why.join("; ")),
    )
}

/// The PAC file naming this proxy. A proxy on an unspecified address (`0.0.0.0`) is named by
/// the host the client reached the API with.
pub(super) fn proxy_pac(state: &ApiState, headers: &HeaderMap) -> ApiResponse {
    let Some(addr) = state.own_proxy else {
        return error(StatusCode::NOT_FOUND, "no proxy listener in this process");
    };
    let proxy = if addr.ip().is_unspecified() {
        let host = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| crate::intercept::split_authority(h, 80).0.to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "127.0.0.1".into());
        let host = match host.parse::<std::net::Ipv6Addr>() {
            Ok(_) => format!("[{host}]"),
            Err(_) => host,
        };
        format!("{host}:{}", addr.port())
    } else {
        addr.to_string()
    };
    text(
        StatusCode::OK,
        "application/x-ns-proxy-autoconfig",
        crate::observe::pac::pac(&state.intercept, &proxy),
    )
}

pub(super) fn ca_pem(state: &ApiState) -> ApiResponse {
    match &state.ca_pem {
        Some(pem) => text(StatusCode::OK, PEM_CONTENT_TYPE, pem.clone()),
        None => error(StatusCode::NOT_FOUND, "no CA in this process"),
    }
}
