//! The InnerTube `/youtubei/v1/player` JSON body: reading what identifies the request (client,
//! video id, visitor data, an existing token) and setting `serviceIntegrityDimensions.poToken`.
//! Pure: bytes in, bytes out. Key order is preserved (serde_json `preserve_order`), so the only
//! difference a client could see is the token and insignificant whitespace.

use serde_json::{Map, Value};

use crate::classify::is_webpo_client;
use crate::token::{Token, TokenChoice, keep_client_token};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlayerBodyError {
    #[error("player body is not valid JSON: {0}")]
    NotJson(String),
    #[error("player body is JSON but not an object")]
    NotObject,
}

/// A parsed player request body.
#[derive(Debug, Clone)]
pub struct PlayerRequest {
    json: Map<String, Value>,
}

/// What to do with a player request's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlayerAction {
    /// Set the proxy's token (absent, empty or placeholder, or `always_replace`).
    SetToken,
    /// Leave the body as it is, for the reason given.
    Leave(&'static str),
}

impl PlayerRequest {
    pub fn parse(bytes: &[u8]) -> Result<Self, PlayerBodyError> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(json)) => Ok(PlayerRequest { json }),
            Ok(_) => Err(PlayerBodyError::NotObject),
            Err(e) => Err(PlayerBodyError::NotJson(e.to_string())),
        }
    }

    fn client(&self) -> Option<&Map<String, Value>> {
        self.json.get("context")?.get("client")?.as_object()
    }

    pub fn client_name(&self) -> Option<&str> {
        self.client()?.get("clientName")?.as_str()
    }

    pub fn client_version(&self) -> Option<&str> {
        self.client()?.get("clientVersion")?.as_str()
    }

    /// Sets `context.client.visitorData` (creating `context.client` if needed).
    pub fn set_visitor_data(&mut self, visitor: &str) {
        let ctx = self
            .json
            .entry("context")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(ctx) = ctx {
            let client = ctx
                .entry("client")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(client) = client {
                client.insert("visitorData".into(), Value::String(visitor.to_string()));
            }
        }
    }

    pub fn video_id(&self) -> Option<&str> {
        self.json.get("videoId")?.as_str()
    }

    pub fn visitor_data(&self) -> Option<&str> {
        self.client()?
            .get("visitorData")?
            .as_str()
            .filter(|s| !s.is_empty())
    }

    /// The token the client sent, if any (possibly empty or a placeholder).
    pub fn existing_token(&self) -> Option<&str> {
        self.json
            .get("serviceIntegrityDimensions")?
            .get("poToken")?
            .as_str()
    }

    /// Decides whether the proxy's token belongs in this body.
    pub fn decide(&self, sentinels: &[String], always_replace: bool) -> PlayerAction {
        let Some(client) = self.client_name() else {
            return PlayerAction::Leave("no context.client.clientName");
        };
        if !is_webpo_client(client) {
            return PlayerAction::Leave("client does not use web PO tokens");
        }
        match keep_client_token(self.existing_token(), sentinels, always_replace) {
            TokenChoice::SetOurs => PlayerAction::SetToken,
            TokenChoice::KeepClients => PlayerAction::Leave("client sent its own token"),
        }
    }

    /// Sets `serviceIntegrityDimensions.poToken`, keeping any sibling keys; a non-object value
    /// under `serviceIntegrityDimensions` is replaced.
    pub fn set_token(&mut self, token: &Token) {
        let sid = self
            .json
            .entry("serviceIntegrityDimensions")
            .or_insert_with(|| Value::Object(Map::new()));
        if !sid.is_object() {
            *sid = Value::Object(Map::new());
        }
        if let Value::Object(m) = sid {
            m.insert("poToken".into(), Value::String(token.as_str().to_owned()));
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.json).expect("a JSON map always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::innertube_fixture;

    fn token() -> Token {
        Token::from_bytes(&[0x32, 0x5b, 1, 2, 3, 4])
    }

    fn rewrite(body: &[u8]) -> Option<Value> {
        let mut p = PlayerRequest::parse(body).unwrap();
        match p.decide(&["POTPROXYSENTINEL".into()], false) {
            PlayerAction::SetToken => {
                p.set_token(&token());
                Some(serde_json::from_slice(&p.to_bytes()).unwrap())
            }
            PlayerAction::Leave(_) => None,
        }
    }

    #[test]
    fn web_fixture_gets_token_and_keeps_everything_else() {
        let Some(body) = innertube_fixture("np2024_web_player_audiotrack_full", "request") else {
            return;
        };
        let before: Value = serde_json::from_slice(&body).unwrap();
        let mut after = rewrite(&body).expect("WEB is a WebPO client");
        assert_eq!(
            after["serviceIntegrityDimensions"]["poToken"],
            Value::String(token().as_str().into())
        );
        after
            .as_object_mut()
            .unwrap()
            .remove("serviceIntegrityDimensions");
        assert_eq!(after, before);
    }

    #[test]
    fn tvhtml5_fixtures_get_token() {
        for name in [
            "np2025_tvhtml5_player_relatedmix_signatureCipher",
            "np2025_tvhtml5_simply_embedded_agerestricted",
        ] {
            let Some(body) = innertube_fixture(name, "request") else {
                return;
            };
            let p = PlayerRequest::parse(&body).unwrap();
            assert!(p.client_name().unwrap().starts_with("TVHTML5"), "{name}");
            assert!(rewrite(&body).is_some(), "{name}");
        }
    }

    #[test]
    fn android_and_visionos_fixtures_are_left_alone() {
        for name in [
            "np2026_visionos_player_cclicensed",
            "np2026_android_reel_item_watch_cclicensed",
        ] {
            let Some(body) = innertube_fixture(name, "request") else {
                return;
            };
            assert!(rewrite(&body).is_none(), "{name}");
        }
    }

    #[test]
    fn key_order_is_preserved() {
        let body = br#"{"videoId":"abcdefghijk","racyCheckOk":true,"context":{"client":{"clientName":"MWEB","clientVersion":"2.2"}}}"#;
        let mut p = PlayerRequest::parse(body).unwrap();
        p.set_token(&token());
        let out = String::from_utf8(p.to_bytes()).unwrap();
        let vi = out.find("videoId").unwrap();
        let ro = out.find("racyCheckOk").unwrap();
        let cx = out.find("context").unwrap();
        let sd = out.find("serviceIntegrityDimensions").unwrap();
        assert!(vi < ro && ro < cx && cx < sd, "{out}");
    }

    #[test]
    fn a_real_client_token_is_kept_unless_always_replace() {
        let body = br#"{"context":{"client":{"clientName":"WEB"}},"videoId":"abcdefghijk","serviceIntegrityDimensions":{"poToken":"MnQLhidw"}}"#;
        let p = PlayerRequest::parse(body).unwrap();
        assert!(matches!(p.decide(&[], false), PlayerAction::Leave(_)));
        assert_eq!(p.decide(&[], true), PlayerAction::SetToken);
    }

    #[test]
    fn empty_and_sentinel_tokens_are_replaced() {
        for existing in ["", "POTPROXYSENTINEL"] {
            let body = format!(
                r#"{{"context":{{"client":{{"clientName":"WEB"}}}},"serviceIntegrityDimensions":{{"poToken":"{existing}"}}}}"#
            );
            let after = rewrite(body.as_bytes()).unwrap();
            assert_eq!(
                after["serviceIntegrityDimensions"]["poToken"],
                Value::String(token().as_str().into())
            );
        }
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        assert!(matches!(
            PlayerRequest::parse(b"{\"context\":"),
            Err(PlayerBodyError::NotJson(_))
        ));
        assert_eq!(
            PlayerRequest::parse(b"[1,2]").unwrap_err(),
            PlayerBodyError::NotObject
        );
    }
}
