//! The API's answers on the wire: JSON bodies, `{"error": ...}` with the status an error's kind
//! decides, and timestamps the way a JS `Date` serialises them.

use std::time::SystemTime;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

use super::ApiError;

pub(super) type ApiResponse = Response<Full<Bytes>>;

pub(super) fn json_response(status: StatusCode, v: &Value) -> ApiResponse {
    Response::builder()
        .status(status)
        .header(
            http::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )
        .body(Full::new(Bytes::from(serde_json::to_vec(v).expect("json"))))
        .expect("static response parts are valid")
}

pub(super) fn error(status: StatusCode, message: impl std::fmt::Display) -> ApiResponse {
    json_response(status, &json!({"error": message.to_string()}))
}

/// A failed call: the kind picks the status, the message carries the whole cause chain.
pub(super) fn failure(e: &ApiError) -> ApiResponse {
    error(e.status(), crate::errtext::error_chain(e))
}

pub(super) fn no_content() -> ApiResponse {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Full::new(Bytes::new()))
        .expect("static response parts are valid")
}

/// `2026-11-21T18:00:00.000Z`, as a JS `Date` serialises.
pub fn iso8601(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        dt.month() as u8,
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_has_milliseconds_and_z() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_795_300_000_123);
        assert_eq!(iso8601(t), "2026-11-21T22:26:40.123Z");
    }
}
