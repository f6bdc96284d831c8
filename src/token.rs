//! The PO token value: parsing and normalisation (yt-dlp's `clean_pot` rules), the text forms it
//! takes on the wire (JSON, query, path), and what a token is bound to.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// A PO token in canonical form: URL-safe base64 with `=` padding, as yt-dlp normalises it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Token(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenFormatError {
    #[error("a PO token must not be empty")]
    Empty,
    #[error("not base64 (a PO token is URL-safe base64 with `=` padding)")]
    NotBase64,
}

// Padding required, as yt-dlp requires it; stray low bits tolerated (Python's decoder ignores them).
const CANONICAL: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
    .with_decode_allow_trailing_bits(true);
const CANONICAL_URL: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CANONICAL);

impl Token {
    /// Accepts the forms clients and users write: URL-encoded, standard or URL-safe alphabet,
    /// padded. Characters outside the alphabet are an error here (yt-dlp drops them silently,
    /// but a config value with stray characters is more likely a paste mistake).
    pub fn parse(text: &str) -> Result<Token, TokenFormatError> {
        let unquoted = percent_encoding::percent_decode_str(text.trim()).decode_utf8_lossy();
        if unquoted.is_empty() {
            return Err(TokenFormatError::Empty);
        }
        let url_form: String = unquoted
            .chars()
            .map(|c| match c {
                '+' => '-',
                '/' => '_',
                c => c,
            })
            .collect();
        let bytes = CANONICAL_URL
            .decode(url_form.as_bytes())
            .map_err(|_| TokenFormatError::NotBase64)?;
        if bytes.is_empty() {
            return Err(TokenFormatError::Empty);
        }
        Ok(Token(URL_SAFE.encode(bytes)))
    }

    /// Wraps raw token bytes (as minted, or as carried in a SABR body).
    pub fn from_bytes(bytes: &[u8]) -> Token {
        Token(URL_SAFE.encode(bytes))
    }

    /// Canonical text: URL-safe base64 with padding. Used in JSON bodies and `/pot/<x>/` paths.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form for a query value: `=` percent-encoded as `%3D`.
    pub fn query_value(&self) -> String {
        self.0.replace('=', "%3D")
    }

    /// The decoded bytes.
    pub fn bytes(&self) -> Vec<u8> {
        URL_SAFE
            .decode(&self.0)
            .or_else(|_| STANDARD.decode(&self.0))
            .unwrap_or_default()
    }

    /// For logs: first six characters and length.
    pub fn redacted(&self) -> String {
        crate::redact::redact(&self.0)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({})", self.redacted())
    }
}

/// What a token is minted for (its content binding).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Binding {
    /// An 11-character video id (player tokens; GVS tokens in the video-bound regime).
    Video(String),
    /// Visitor data (logged out) or a DataSync ID (logged in): session-bound tokens.
    Session(String),
    /// Nothing is known about the request's binding: only a binding-independent token fits.
    Unknown,
}

impl Binding {
    pub fn key(&self) -> Option<&str> {
        match self {
            Binding::Video(v) | Binding::Session(v) => Some(v),
            Binding::Unknown => None,
        }
    }
}

/// True when `value`, as a client sent it, is one of the configured placeholders. Compared both
/// as written and after yt-dlp's normalisation, since yt-dlp rewrites what the user passed.
pub fn is_sentinel(value: &str, sentinels: &[String]) -> bool {
    if sentinels.iter().any(|s| s == value) {
        return true;
    }
    let Ok(normal) = Token::parse(value) else {
        return false;
    };
    sentinels
        .iter()
        .filter_map(|s| Token::parse(s).ok())
        .any(|s| s == normal)
}

/// Whether a request keeps the token its client put in, or gets the proxy's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenChoice {
    /// The client sent a real token of its own: leave it.
    KeepClients,
    /// No token, an empty one, a configured placeholder, or `always_replace`: set the proxy's.
    SetOurs,
}

/// The one rule for every place a token travels (player body, media URL, SABR body): a client's
/// own token is respected, because it may be bound to something the proxy cannot see, unless it
/// is a placeholder the user configured or the user asked the proxy to replace every token.
pub fn keep_client_token(
    existing: Option<&str>,
    sentinels: &[String],
    always_replace: bool,
) -> TokenChoice {
    match existing {
        None | Some("") => TokenChoice::SetOurs,
        Some(_) if always_replace => TokenChoice::SetOurs,
        Some(t) if is_sentinel(t, sentinels) => TokenChoice::SetOurs,
        Some(_) => TokenChoice::KeepClients,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_token_gets_ours() {
        assert_eq!(keep_client_token(None, &[], false), TokenChoice::SetOurs);
        assert_eq!(
            keep_client_token(Some(""), &[], false),
            TokenChoice::SetOurs
        );
    }

    #[test]
    fn a_real_client_token_is_kept_unless_always_replace() {
        assert_eq!(
            keep_client_token(Some("MnQLhidw"), &[], false),
            TokenChoice::KeepClients
        );
        assert_eq!(
            keep_client_token(Some("MnQLhidw"), &[], true),
            TokenChoice::SetOurs
        );
    }

    #[test]
    fn a_placeholder_is_replaced_as_written_and_as_normalised() {
        let s = vec!["POTPROXYSENTINEL".to_string()];
        assert_eq!(
            keep_client_token(Some("POTPROXYSENTINEL"), &s, false),
            TokenChoice::SetOurs
        );
        let odd = vec!["a+b/".to_string()];
        assert_eq!(
            keep_client_token(Some("a-b_"), &odd, false),
            TokenChoice::SetOurs
        );
        assert_eq!(
            keep_client_token(Some("POTPROXYSENTINEX"), &s, false),
            TokenChoice::KeepClients
        );
    }

    #[test]
    fn url_encoded_standard_alphabet_is_normalised_to_url_safe_with_padding() {
        let t = Token::parse("Ml%2B%2Fab%3D%3D").unwrap();
        assert_eq!(t.as_str(), "Ml-_aQ==");
        assert_eq!(t.query_value(), "Ml-_aQ%3D%3D");
        assert_eq!(t.bytes(), vec![0x32, 0x5f, 0xbf, 0x69]);
    }

    #[test]
    fn garbage_and_empty_are_rejected() {
        assert_eq!(Token::parse(""), Err(TokenFormatError::Empty));
        assert_eq!(Token::parse("abc"), Err(TokenFormatError::NotBase64));
        assert_eq!(
            Token::parse("not a token"),
            Err(TokenFormatError::NotBase64)
        );
    }

    #[test]
    fn debug_output_never_shows_the_whole_token() {
        let t = Token::parse("MlsBAAAAAAAAAAAAAAAA").unwrap();
        let shown = format!("{t:?}");
        assert!(!shown.contains(t.as_str()), "{shown}");
        assert!(shown.contains("MlsBAA"), "{shown}");
    }

    #[test]
    fn sentinel_matches_as_written_and_after_normalisation() {
        let s = vec!["POTPROXYSENTINEL".to_string()];
        assert!(is_sentinel("POTPROXYSENTINEL", &s));
        assert!(!is_sentinel("POTPROXYSENTINEX", &s));
        let odd = vec!["a+b/".to_string()];
        assert!(is_sentinel("a-b_", &odd));
    }

    #[test]
    fn real_fixture_tokens_parse_and_decode_to_field_six() {
        let Some(dir) = crate::testutil::fixtures_dir() else {
            return;
        };
        let text = std::fs::read_to_string(dir.join("tokens/real_po_tokens.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut n = 0;
        crate::testutil::walk_strings(&v, &mut |s| {
            if s.len() > 80 {
                if let Ok(t) = Token::parse(s) {
                    let b = t.bytes();
                    assert_eq!(b[0], 0x32, "{}", t.redacted());
                    n += 1;
                }
            }
        });
        assert!(n > 0, "no token found in real_po_tokens.json");
    }
}
