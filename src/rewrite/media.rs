//! URL rewrites for googlevideo: `pot` in the query of `/videoplayback`, `/pot/<token>` in path-form
//! media URLs and in HLS/DASH manifest paths. Pure string functions: every byte of the URL other
//! than the token's own place is kept as the client sent it.

use crate::classify::{ManifestKind, UrlForm, query_param, split_path_query};
use crate::token::Token;

/// Sets exactly one `pot=` in a raw query string. An existing `pot` keeps its position and gets
/// the new value; later duplicates are dropped; without one, `pot` is appended. Everything else
/// (order, encoding, empty parameters) is untouched.
pub fn set_query_pot(query: &str, token: &Token) -> String {
    let pot = format!("pot={}", token.query_value());
    let mut parts: Vec<&str> = Vec::new();
    let mut placed = false;
    for pair in query.split('&') {
        if pair == "pot" || pair.starts_with("pot=") {
            if !placed {
                parts.push(&pot);
                placed = true;
            }
        } else {
            parts.push(pair);
        }
    }
    if !placed {
        if parts == [""] {
            parts.clear();
        }
        parts.push(&pot);
    }
    parts.join("&")
}

/// Caption (`/api/timedtext`) query: one `pot`, plus `potc=1` and `c=<client>` when absent.
pub fn set_caption_query(query: &str, token: &Token, client: &str) -> String {
    let mut q = set_query_pot(query, token);
    if query_param(&q, "potc").is_none() {
        q.push_str("&potc=1");
    }
    if query_param(&q, "c").is_none() {
        q.push_str("&c=");
        q.push_str(client);
    }
    q
}

/// Replaces the value after an existing `/pot/` key segment. Returns `None` when there is none.
/// Pairs are walked from `pairs_from` (the index of the first key segment) so only a real key
/// matches.
fn replace_path_pot(path: &str, pairs_from: usize, token: &Token) -> Option<String> {
    let segs: Vec<&str> = path.split('/').collect();
    let mut i = pairs_from;
    while i + 1 < segs.len() {
        if segs[i] == "pot" {
            let mut out: Vec<&str> = segs.clone();
            out[i + 1] = token.as_str();
            return Some(out.join("/"));
        }
        i += 2;
    }
    None
}

/// Path-form `/videoplayback/k/v/...`: replace `/pot/<x>` in place or append `/pot/<token>`.
pub fn set_path_pot(path: &str, token: &Token) -> String {
    // segs: ["", "videoplayback", k1, v1, ...] so keys start at index 2.
    if let Some(p) = replace_path_pot(path, 2, token) {
        return p;
    }
    let trimmed = path.trim_end_matches('/');
    format!("{trimmed}/pot/{}", token.as_str())
}

/// Manifest paths. HLS: `/pot/<token>` goes before the trailing `/file/index.m3u8` or
/// `/playlist/index.m3u8` (the manifest server reads key/value pairs up to `file`); DASH: appended.
pub fn set_manifest_pot(path: &str, kind: ManifestKind, token: &Token) -> String {
    // segs: ["", "api", "manifest", kind, k1, v1, ...] so keys start at index 4.
    if let Some(p) = replace_path_pot(path, 4, token) {
        return p;
    }
    let trimmed = path.trim_end_matches('/');
    if kind == ManifestKind::Hls {
        for tail in ["/file/", "/playlist/"] {
            if let Some(idx) = trimmed.rfind(tail) {
                return format!(
                    "{}/pot/{}{}",
                    &trimmed[..idx],
                    token.as_str(),
                    &trimmed[idx..]
                );
            }
        }
    }
    format!("{trimmed}/pot/{}", token.as_str())
}

/// Rewrites a media request's path-and-query. Never called for SABR URLs: their token travels
/// in the request body, and `sabr=1` URLs must keep their query as signed (the plan stage,
/// `handler::plan::plan_media`, places a SABR token in the body).
pub fn rewrite_media(path_and_query: &str, form: UrlForm, token: &Token) -> String {
    let (path, query) = split_path_query(path_and_query);
    match (form, query) {
        (UrlForm::Query, q) => format!("{path}?{}", set_query_pot(q.unwrap_or(""), token)),
        (UrlForm::Path, Some(q)) => format!("{}?{q}", set_path_pot(path, token)),
        (UrlForm::Path, None) => set_path_pot(path, token),
    }
}

/// Rewrites a manifest request's path-and-query (the query, if any, is kept as is).
pub fn rewrite_manifest(path_and_query: &str, kind: ManifestKind, token: &Token) -> String {
    let (path, query) = split_path_query(path_and_query);
    let path = set_manifest_pot(path, kind, token);
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok() -> Token {
        Token::from_bytes(&[0x32, 0x53, 0x10, 0x52, 0x3d])
    }

    #[test]
    fn query_pot_is_appended_once_and_order_kept() {
        let t = Token::from_bytes(&[0x32, 0x01, 0xff]);
        let q = "expire=1&ei=x&ip=1.2.3.4&id=o-A&itag=140&c=MWEB&n=abc&sig=AB%3D";
        let out = set_query_pot(q, &t);
        assert_eq!(out, format!("{q}&pot={}", t.query_value()));
        assert_eq!(out.matches("pot=").count(), 1);
    }

    #[test]
    fn existing_pot_is_replaced_in_place_and_duplicates_dropped() {
        let t = tok();
        let out = set_query_pot("a=1&pot=OLD&b=2&pot=OLD2&c=3", &t);
        assert_eq!(out, format!("a=1&pot={}&b=2&c=3", t.query_value()));
    }

    #[test]
    fn padding_is_percent_encoded_in_query() {
        let t = Token::from_bytes(&[0x32, 0x01]);
        assert!(t.as_str().ends_with('='));
        let out = set_query_pot("a=1", &t);
        assert!(out.ends_with("%3D"), "{out}");
        assert!(!out.trim_start_matches("a=1&pot=").contains('='), "{out}");
    }

    #[test]
    fn empty_query_gets_only_pot() {
        let t = tok();
        assert_eq!(set_query_pot("", &t), format!("pot={}", t.query_value()));
    }

    #[test]
    fn path_form_appends_or_replaces_pot_segment() {
        let t = tok();
        let p = "/videoplayback/id/abc.1/itag/140/sq/5";
        assert_eq!(set_path_pot(p, &t), format!("{p}/pot/{}", t.as_str()));
        let with = "/videoplayback/id/abc.1/pot/OLD/itag/140";
        assert_eq!(
            set_path_pot(with, &t),
            format!("/videoplayback/id/abc.1/pot/{}/itag/140", t.as_str())
        );
        // A value spelled "pot" is not a key.
        let tricky = "/videoplayback/id/pot/itag/140";
        assert_eq!(
            set_path_pot(tricky, &t),
            format!("{tricky}/pot/{}", t.as_str())
        );
    }

    #[test]
    fn hls_manifest_gets_pot_before_file_or_playlist() {
        let t = tok();
        let p = "/api/manifest/hls_variant/expire/1/ei/x/lsig/AB/file/index.m3u8";
        assert_eq!(
            set_manifest_pot(p, ManifestKind::Hls, &t),
            format!(
                "/api/manifest/hls_variant/expire/1/ei/x/lsig/AB/pot/{}/file/index.m3u8",
                t.as_str()
            )
        );
        let p = "/api/manifest/hls_playlist/expire/1/itag/140/playlist/index.m3u8";
        assert!(
            set_manifest_pot(p, ManifestKind::Hls, &t)
                .ends_with(&format!("/pot/{}/playlist/index.m3u8", t.as_str()))
        );
    }

    #[test]
    fn dash_manifest_gets_pot_appended() {
        let t = tok();
        let p = "/api/manifest/dash/expire/1/id/abc.1/itag/0/";
        assert_eq!(
            set_manifest_pot(p, ManifestKind::Dash, &t),
            format!(
                "/api/manifest/dash/expire/1/id/abc.1/itag/0/pot/{}",
                t.as_str()
            )
        );
    }
}
