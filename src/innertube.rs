//! InnerTube calls the proxy makes on its own behalf (not the clients' calls it forwards): the
//! client version it claims per client name, the request `context` it sends, and
//! `POST /youtubei/v1/visitor_id`, YouTube's issuer of fresh visitor data. One table so every
//! caller claims the same version for the same client.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::upstream::{FetchError, HttpClient};

/// The version claimed for each web client name (wire-formats.md §1.4 lists the names). YouTube
/// accepts any recent version in the client's numbering scheme; these follow what current web
/// clients and yt-dlp send. Clients not listed fall back to [`DEFAULT_CLIENT`]'s version.
const CLIENT_VERSIONS: &[(&str, &str)] = &[
    ("WEB", "2.20260512.00.00"),
    ("MWEB", "2.20260708.05.00"),
    ("WEB_REMIX", "1.20260511.01.00"),
    ("WEB_CREATOR", "1.20260511.01.00"),
    ("WEB_EMBEDDED_PLAYER", "1.20260511.01.00"),
    ("TVHTML5", "7.20260511.10.00"),
    ("TVHTML5_SIMPLY", "1.0"),
    ("TVHTML5_SIMPLY_EMBEDDED_PLAYER", "2.0"),
];

/// The client the proxy speaks as when nothing names one.
pub const DEFAULT_CLIENT: &str = "WEB";

/// The version to claim for `client`: its row of the table, else the default client's.
pub fn client_version(client: &str) -> &'static str {
    CLIENT_VERSIONS
        .iter()
        .find(|(name, _)| *name == client)
        .or_else(|| CLIENT_VERSIONS.iter().find(|(n, _)| *n == DEFAULT_CLIENT))
        .map(|(_, v)| *v)
        .expect("the default client has a version")
}

/// The `context` object of an InnerTube request body for `client` at `version`.
pub fn context(client: &str, version: &str) -> Value {
    json!({"client": {"clientName": client, "clientVersion": version, "hl": "en"}})
}

#[derive(Debug, thiserror::Error)]
pub enum InnerTubeError {
    /// No answer (connection, TLS, timeout): worth retrying later.
    #[error("InnerTube {endpoint} request failed")]
    Request {
        endpoint: &'static str,
        #[source]
        source: FetchError,
    },
    /// YouTube answered with an error status.
    #[error("InnerTube {endpoint} answered HTTP {status}")]
    Status {
        endpoint: &'static str,
        status: StatusCode,
    },
    /// YouTube answered, but not with what the endpoint promises.
    #[error("InnerTube {endpoint} answer has no {missing}")]
    Malformed {
        endpoint: &'static str,
        missing: &'static str,
    },
}

/// Fresh visitor data, as YouTube issues it to a client without any.
pub async fn visitor_id(
    http: &HttpClient,
    client: &str,
    version: &str,
) -> Result<String, InnerTubeError> {
    const ENDPOINT: &str = "visitor_id";
    let body = json!({"context": context(client, version)});
    let res = http
        .send(
            Method::POST,
            "https://www.youtube.com/youtubei/v1/visitor_id?prettyPrint=false",
            &[("content-type", "application/json")],
            Some(serde_json::to_vec(&body).expect("a JSON value serialises")),
        )
        .await
        .map_err(|source| InnerTubeError::Request {
            endpoint: ENDPOINT,
            source,
        })?;
    if !res.status.is_success() {
        return Err(InnerTubeError::Status {
            endpoint: ENDPOINT,
            status: res.status,
        });
    }
    visitor_data_of(&res.body).ok_or(InnerTubeError::Malformed {
        endpoint: ENDPOINT,
        missing: "responseContext.visitorData",
    })
}

/// `responseContext.visitorData` of a `visitor_id` answer (pure).
fn visitor_data_of(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v["responseContext"]["visitorData"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_web_po_client_has_a_version_in_its_own_scheme() {
        for (name, version) in CLIENT_VERSIONS {
            assert!(crate::classify::is_webpo_client(name), "{name}");
            assert_eq!(client_version(name), *version);
        }
        assert!(client_version("MWEB").starts_with("2."));
        assert!(client_version("TVHTML5").starts_with("7."));
    }

    #[test]
    fn an_unknown_client_claims_the_default_clients_version() {
        assert_eq!(
            client_version("NOT_A_CLIENT"),
            client_version(DEFAULT_CLIENT)
        );
    }

    #[test]
    fn the_context_names_client_version_and_language() {
        let c = context("MWEB", "2.2");
        assert_eq!(c["client"]["clientName"], "MWEB");
        assert_eq!(c["client"]["clientVersion"], "2.2");
        assert_eq!(c["client"]["hl"], "en");
    }

    #[test]
    fn visitor_data_is_read_from_the_response_context() {
        assert_eq!(
            visitor_data_of(br#"{"responseContext":{"visitorData":"CgtABC"}}"#).as_deref(),
            Some("CgtABC")
        );
        assert_eq!(visitor_data_of(br#"{"responseContext":{}}"#), None);
        assert_eq!(visitor_data_of(b"<html>"), None);
    }
}
