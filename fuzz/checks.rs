//! The properties the fuzz targets check, one function per target, each taking the fuzzer's
//! bytes. Shared by the libFuzzer binaries (`fuzz/fuzz_targets/`, nightly) and by
//! `tests/fuzz_corpus.rs`, which replays the committed corpus on stable in `cargo test`. Every
//! check asserts more than "no panic": a reader agrees with a reference walk of the same bytes,
//! an edit keeps every byte it does not own, a rewrite's output reads back with the token in it.
//!
//! Inputs that carry a token start with one length byte and the token's raw bytes; the rest is
//! the body, URL or document under test.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use potproxy::classify::{ManifestKind, UrlForm, split_path_query};
use potproxy::learn::page::{Page, initial_player_response, parse_js_string};
use potproxy::rewrite::media::{rewrite_manifest, rewrite_media};
use potproxy::rewrite::player::PlayerRequest;
use potproxy::rewrite::response::rewrite_player_response;
use potproxy::rewrite::sabr::{max_growth, po_token, set_po_token};
use potproxy::token::Token;
use potproxy::tokens::TokenCache;
use potproxy::ump::{self, Scanner};
use potproxy::wire::{self, Field};
use serde_json::{Map, Value};

/// A property check: panics when `data` breaks it.
pub type Check = fn(&[u8]);

/// The targets, by the name of their binary and corpus directory.
pub const TARGETS: &[(&str, Check)] = &[
    ("ump_scanner", ump_scanner),
    ("sabr_set_po_token", sabr_set_po_token),
    ("page_parse", page_parse),
    ("player_request", player_request),
    ("player_response", player_response),
    ("media_url", media_url),
    ("cache_file", cache_file),
    ("store_value", store_value),
];

/// Splits `data` into a token (the length byte, at most 63 bytes of it, at least one) and the
/// rest; `None` when there is no length byte.
fn token_and_rest(data: &[u8]) -> Option<(Token, Vec<u8>, &[u8])> {
    let (&len, rest) = data.split_first()?;
    let n = (len as usize % 64).min(rest.len()).max(1);
    let raw = rest.get(..n).unwrap_or(b"\x01").to_vec();
    let rest = rest.get(n..).unwrap_or_default();
    Some((Token::from_bytes(&raw), raw, rest))
}

// ---------------------------------------------------------------------------------------------
// UMP

const INTERESTING: &[u64] = &[
    ump::STREAM_PROTECTION_STATUS,
    ump::SABR_ERROR,
    ump::RELOAD_PLAYER_RESPONSE,
];
const MAX_COLLECTED: usize = 64 * 1024;

/// UMP's varint length from its first byte (the format's rule, restated for the reference walk).
fn ump_varint_len(b0: u8) -> usize {
    match b0 {
        0x00..=0x7f => 1,
        0x80..=0xbf => 2,
        0xc0..=0xdf => 3,
        0xe0..=0xef => 4,
        _ => 5,
    }
}

/// The interesting parts of a whole UMP buffer, read in one pass over the slice: the reference
/// the streaming scanner must agree with.
fn ump_reference(stream: &[u8]) -> Vec<ump::Part> {
    let mut out = Vec::new();
    let mut at = 0;
    let varint = |at: &mut usize| {
        let b = stream.get(*at..)?;
        let v = ump::decode_varint(b)?;
        *at += ump_varint_len(b[0]);
        Some(v)
    };
    while at < stream.len() {
        let (Some(part_type), Some(size)) = (varint(&mut at), varint(&mut at)) else {
            break;
        };
        let Some(end) = usize::try_from(size).ok().and_then(|s| at.checked_add(s)) else {
            break;
        };
        let Some(payload) = stream.get(at..end) else {
            break;
        };
        if INTERESTING.contains(&part_type) && payload.len() <= MAX_COLLECTED {
            out.push(ump::Part {
                part_type,
                payload: payload.to_vec(),
            });
        }
        at = end;
    }
    out
}

/// The streaming UMP reader yields the same parts however the stream is cut into chunks, and
/// exactly the parts a one-pass walk of the whole buffer finds: none past the input, none
/// larger than the collection cap. Its varint reads back what was written.
pub fn ump_scanner(data: &[u8]) {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let mut whole = Scanner::new(INTERESTING);
    let at_once = whole.feed(stream);
    let mut chunked = Scanner::new(INTERESTING);
    let mut in_chunks = Vec::new();
    let mut rest = stream;
    let mut step = 0usize;
    while !rest.is_empty() {
        let size = 1 + (seed as usize + step * 7) % 17;
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        in_chunks.extend(chunked.feed(chunk));
        rest = tail;
        step += 1;
    }
    assert_eq!(at_once, in_chunks, "chunking changed the parts");
    assert_eq!(
        at_once,
        ump_reference(stream),
        "scanner and one-pass walk differ"
    );
    let total: usize = at_once.iter().map(|p| p.payload.len()).sum();
    assert!(
        total <= stream.len(),
        "parts hold more bytes than the input"
    );

    if let Some(b) = stream.get(..4) {
        let v = u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let mut enc = Vec::new();
        ump::encode_varint(v, &mut enc);
        assert_eq!(enc.len(), ump_varint_len(enc[0]));
        assert_eq!(ump::decode_varint(&enc), Some(v), "varint round trip");
    }
}

// ---------------------------------------------------------------------------------------------
// SABR

const STREAMER_CONTEXT: u32 = 19;
const PO_TOKEN: u32 = 2;

fn is_context(f: &Field<'_>) -> bool {
    f.number == STREAMER_CONTEXT && f.bytes().is_some()
}

fn raws<'a, 'b: 'a>(fields: impl IntoIterator<Item = &'a Field<'b>>) -> Vec<&'b [u8]> {
    fields.into_iter().map(|f| f.raw).collect()
}

/// Setting the token: the body reads back with exactly that token; every top-level field other
/// than streamer_context, and every context field other than `po_token`, keeps its exact bytes
/// and order; the body grows by at most `max_growth`; setting it again changes nothing; a body
/// that is not protobuf is refused (`None`, forwarded unchanged), any other is edited.
pub fn sabr_set_po_token(data: &[u8]) {
    let Some((_, token, body)) = token_and_rest(data) else {
        return;
    };
    let top = wire::fields(body);
    let editable = top.as_ref().is_some_and(|t| {
        t.iter()
            .filter(|f| is_context(f))
            .all(|f| f.message().is_some())
    });
    let out = set_po_token(body, &token);
    assert_eq!(
        out.is_some(),
        editable,
        "edited a body it cannot read, or refused one it can"
    );
    let (Some(out), Some(top)) = (out, top) else {
        return;
    };
    assert_eq!(
        po_token(&out).as_deref(),
        Some(&token[..]),
        "token does not read back"
    );
    assert!(
        out.len() <= body.len() + max_growth(token.len()),
        "grew past max_growth"
    );

    let new_top = wire::fields(&out).expect("the edited body is protobuf");
    assert_eq!(
        raws(top.iter().filter(|f| !is_context(f))),
        raws(new_top.iter().filter(|f| !is_context(f))),
        "a field outside streamer_context changed"
    );
    let old_ctx: Vec<_> = top.iter().filter(|f| is_context(f)).collect();
    let new_ctx: Vec<_> = new_top.iter().filter(|f| is_context(f)).collect();
    assert_eq!(
        new_ctx.len(),
        old_ctx.len().max(1),
        "streamer_context count changed"
    );
    for (i, (old, new)) in old_ctx.iter().zip(&new_ctx).enumerate() {
        let old_subs = old.message().expect("checked above");
        let new_subs = new.message().expect("edited context is protobuf");
        assert_eq!(
            raws(old_subs.iter().filter(|s| s.number != PO_TOKEN)),
            raws(new_subs.iter().filter(|s| s.number != PO_TOKEN)),
            "a streamer_context field other than po_token changed"
        );
        let tokens = new_subs.iter().filter(|s| s.number == PO_TOKEN).count();
        let last = i + 1 == new_ctx.len();
        assert_eq!(tokens, usize::from(last), "po_token count in context {i}");
    }
    assert_eq!(
        set_po_token(&out, &token).as_deref(),
        Some(&out[..]),
        "not idempotent"
    );
}

// ---------------------------------------------------------------------------------------------
// Pages

/// Any page reads without failing; any string, written into ytcfg or a player response as JSON
/// writes it, reads back unchanged, and a JS string literal reads back as its value.
pub fn page_parse(data: &[u8]) {
    let html = String::from_utf8_lossy(data);
    let page = Page::parse(&html);
    let _ = (page.facts(), page.visitor_data(), page.eacr_token());
    let _ = page.inline_challenge();
    let _ = initial_player_response(&html);

    let literal = serde_json::to_string(&*html).expect("a string serialises");
    let embedded = format!(
        "<script>ytcfg.set({{\"K{}\": [1, {{}}], \"VISITOR_DATA\": {literal}}});</script>",
        html.len()
    );
    let page = Page::parse(&embedded);
    assert_eq!(
        page.visitor_data(),
        Some(&*html),
        "ytcfg string did not read back"
    );
    let watch =
        format!("var ytInitialPlayerResponse = {{\"videoDetails\": {{\"videoId\": {literal}}}}};");
    let response = initial_player_response(&watch).expect("the object is found");
    assert_eq!(response["videoDetails"]["videoId"].as_str(), Some(&*html));
    let tail = "; rest";
    let source = format!("{literal}{tail}");
    let (value, rest) = parse_js_string(&source).expect("a JSON string is JS");
    assert_eq!((value.as_str(), rest), (&*html, tail), "JS string literal");
}

// ---------------------------------------------------------------------------------------------
// Player request and response JSON

/// The player body with its token set is the input with exactly
/// `serviceIntegrityDimensions.poToken` set (key order kept, other keys untouched), and reads
/// back with that token.
pub fn player_request(data: &[u8]) {
    let Some((token, _, body)) = token_and_rest(data) else {
        return;
    };
    let parsed = serde_json::from_slice::<Value>(body);
    let Ok(mut request) = PlayerRequest::parse(body) else {
        assert!(
            !matches!(parsed, Ok(Value::Object(_))),
            "refused a JSON object"
        );
        return;
    };
    let Ok(Value::Object(mut expected)) = parsed else {
        panic!("accepted a body that is not a JSON object");
    };
    let _ = request.decide(&[], false);
    let _ = request.decide(&["placeholder".to_string()], true);
    let _ = (
        request.client_version(),
        request.video_id(),
        request.visitor_data(),
    );

    request.set_token(&token);
    let out = request.to_bytes();
    let sid = expected
        .entry("serviceIntegrityDimensions")
        .or_insert_with(|| Value::Object(Map::new()));
    if !sid.is_object() {
        *sid = Value::Object(Map::new());
    }
    sid.as_object_mut()
        .expect("made an object")
        .insert("poToken".into(), Value::String(token.as_str().into()));
    assert_eq!(
        out,
        serde_json::to_vec(&expected).expect("serialises"),
        "more changed than the token"
    );
    let back = PlayerRequest::parse(&out).expect("output parses");
    assert_eq!(back.existing_token(), Some(token.as_str()));
}

/// Where a player response carries URLs.
fn url_slots(response: &mut Value) -> Vec<&mut Value> {
    let mut slots = Vec::new();
    let Value::Object(top) = response else {
        return slots;
    };
    let mut sd = None;
    let mut captions = None;
    for (k, v) in top.iter_mut() {
        match k.as_str() {
            "streamingData" => sd = Some(v),
            "captions" => captions = Some(v),
            _ => {}
        }
    }
    if let Some(Value::Object(sd)) = sd {
        for (k, v) in sd.iter_mut() {
            match (k.as_str(), v) {
                ("hlsManifestUrl" | "dashManifestUrl", v) => slots.push(v),
                ("formats" | "adaptiveFormats", Value::Array(list)) => {
                    for f in list.iter_mut().filter_map(Value::as_object_mut) {
                        for (k, v) in f.iter_mut() {
                            if k == "url" || k == "signatureCipher" {
                                slots.push(v);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let tracks = captions
        .and_then(|c| c.get_mut("playerCaptionsTracklistRenderer"))
        .and_then(|r| r.get_mut("captionTracks"))
        .and_then(Value::as_array_mut);
    for t in tracks.into_iter().flatten() {
        if let Some(u) = t.get_mut("baseUrl") {
            slots.push(u);
        }
    }
    slots
}

/// The query pairs of a raw query, without `pot` and without empty pairs.
fn pairs_without_pot(query: &str) -> Vec<&str> {
    query
        .split('&')
        .filter(|p| !p.is_empty() && *p != "pot" && !p.starts_with("pot="))
        .collect()
}

fn pot_pairs(query: &str) -> Vec<&str> {
    query
        .split('&')
        .filter(|p| *p == "pot" || p.starts_with("pot="))
        .collect()
}

/// A rewritten format URL: when the original is an absolute URL, the new one is too, with the
/// same origin, path and fragment, its query pairs kept in order and exactly one `pot`. (URLs
/// with spaces or control characters are left out: the URL parser trims and drops those.)
fn check_format_url(old: &str, new: &str, token: &Token) {
    if old.chars().any(|c| c.is_ascii_control() || c == ' ') {
        return;
    }
    let Ok(old) = url::Url::parse(old) else {
        return;
    };
    let new = url::Url::parse(new).unwrap_or_else(|e| panic!("rewritten URL {new:?}: {e}"));
    assert_eq!(
        old[..url::Position::AfterPath],
        new[..url::Position::AfterPath]
    );
    assert_eq!(old.fragment(), new.fragment(), "fragment moved");
    let (oq, nq) = (old.query().unwrap_or(""), new.query().unwrap_or(""));
    assert_eq!(
        pairs_without_pot(oq),
        pairs_without_pot(nq),
        "query pairs changed"
    );
    let pot = format!("pot={}", token.query_value());
    assert_eq!(pot_pairs(nq), [pot.as_str()], "not exactly one pot");
}

/// Rewriting a player response changes only URL fields, counts what it changed, gives every
/// rewritten format URL exactly one `pot` with its other pairs kept, and rewriting again
/// changes nothing more in format URLs.
pub fn player_response(data: &[u8]) {
    let Some((token, _, body)) = token_and_rest(data) else {
        return;
    };
    let Ok(original) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let mut response = original.clone();
    let changed = rewrite_player_response(&mut response, Some(&token), Some(&token), "WEB");
    let mut a = original.clone();
    let mut b = response.clone();
    let old_urls: Vec<Value> = url_slots(&mut a).iter().map(|v| (**v).clone()).collect();
    let new_urls: Vec<Value> = url_slots(&mut b).iter().map(|v| (**v).clone()).collect();
    assert_eq!(old_urls.len(), new_urls.len());
    // A URL that already carried this very token counts as changed though it reads the same.
    let differ = old_urls
        .iter()
        .zip(&new_urls)
        .filter(|(o, n)| o != n)
        .count();
    assert!(
        (differ..=old_urls.len()).contains(&changed),
        "{changed} URLs counted, {differ} changed"
    );
    for slot in url_slots(&mut a).into_iter().chain(url_slots(&mut b)) {
        *slot = Value::Null;
    }
    assert_eq!(a, b, "something other than a URL changed");

    let formats = |v: &Value| -> Vec<String> {
        let sd = &v["streamingData"];
        ["formats", "adaptiveFormats"]
            .iter()
            .filter_map(|l| sd[*l].as_array())
            .flatten()
            .filter_map(|f| Some(f["url"].as_str()?.to_string()))
            .collect()
    };
    for (old, new) in formats(&original).iter().zip(formats(&response)) {
        if *old != new {
            check_format_url(old, &new, &token);
        }
    }
    let mut again = response.clone();
    rewrite_player_response(&mut again, Some(&token), None, "WEB");
    assert_eq!(
        formats(&again),
        formats(&response),
        "format URLs not idempotent"
    );
}

// ---------------------------------------------------------------------------------------------
// Media URLs

/// Media and manifest URL rewrites: the query form keeps the path and every other query pair,
/// with exactly one `pot`, and is idempotent; the path form and manifests carry `/pot/<token>`
/// and keep the query as sent.
pub fn media_url(data: &[u8]) {
    let Some((token, _, rest)) = token_and_rest(data) else {
        return;
    };
    let url = String::from_utf8_lossy(rest);
    let (path, query) = split_path_query(&url);

    let out = rewrite_media(&url, UrlForm::Query, &token);
    let (new_path, new_query) = split_path_query(&out);
    assert_eq!(new_path, path, "query form changed the path");
    let new_query = new_query.expect("a query with pot");
    let pot = format!("pot={}", token.query_value());
    assert_eq!(pot_pairs(new_query), [pot.as_str()], "not exactly one pot");
    assert_eq!(
        pairs_without_pot(query.unwrap_or("")),
        pairs_without_pot(new_query),
        "other query pairs changed"
    );
    assert_eq!(
        rewrite_media(&out, UrlForm::Query, &token),
        out,
        "not idempotent"
    );

    let segment = format!("/pot/{}", token.as_str());
    let out = rewrite_media(&url, UrlForm::Path, &token);
    let (new_path, new_query) = split_path_query(&out);
    assert!(
        new_path.contains(&segment),
        "path form without /pot/<token>"
    );
    assert_eq!(new_query, query, "path form changed the query");

    for kind in [ManifestKind::Hls, ManifestKind::Dash] {
        let out = rewrite_manifest(&url, kind, &token);
        let (new_path, new_query) = split_path_query(&out);
        assert!(new_path.contains(&segment), "manifest without /pot/<token>");
        assert_eq!(new_query, query, "manifest rewrite changed the query");
    }
}

// ---------------------------------------------------------------------------------------------
// Stored values

static FILES: AtomicU64 = AtomicU64::new(0);

/// A token cache file of any content loads without failing; what it loads is within the
/// cache's bounds and unexpired, and a flushed cache loads again to the same entries.
pub fn cache_file(data: &[u8]) {
    let dir = std::env::temp_dir().join(format!(
        "potproxy-fuzz-{}-{}",
        std::process::id(),
        FILES.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("tokens.json");
    std::fs::write(&path, data).expect("write the cache file");

    let entries = |cache: &TokenCache| -> HashMap<String, String> {
        let now = SystemTime::now();
        cache
            .keys()
            .iter()
            .map(|k| {
                assert!(k.binding().len() <= 512, "kept an over-long binding");
                let issued = cache.lookup(k).expect("a listed key is served");
                assert!(issued.expires_at > now, "served an expired token");
                let token = issued.token.as_str().to_string();
                assert_eq!(
                    Token::parse(&token).ok(),
                    Some(issued.token),
                    "token not canonical"
                );
                (format!("{k:?}"), token)
            })
            .collect()
    };
    let cache = TokenCache::persistent(&path);
    let loaded = entries(&cache);
    cache.flush();
    drop(cache);
    let again = TokenCache::persistent(&path);
    assert_eq!(entries(&again), loaded, "a flushed cache loads differently");
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The fleet's stored token value (`{expires unix ms}|{token}`): whatever Redis returns decodes
/// to nothing or to an unexpired canonical token, the same one written again; a set-aside entry
/// that decodes survives a round trip.
pub fn store_value(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let now = SystemTime::now();
    if let Ok(Some((token, expires_at))) = potproxy::cluster::decode_token(&text, now) {
        assert!(
            expires_at > SystemTime::now() - Duration::from_secs(1),
            "expired"
        );
        let ms = expires_at
            .duration_since(UNIX_EPOCH)
            .expect("after the epoch")
            .as_millis();
        let written = format!("{ms}|{}", token.as_str());
        let (back, at) = potproxy::cluster::decode_token(&written, now)
            .expect("reads back")
            .expect("still unexpired");
        assert_eq!((back, at), (token, expires_at), "stored token round trip");
    }
    if let Ok(aside) = serde_json::from_str::<potproxy::cluster::SetAside>(&text) {
        let _ = aside.until();
        let json = serde_json::to_string(&aside).expect("serialises");
        let back: potproxy::cluster::SetAside = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, aside);
    }
}
