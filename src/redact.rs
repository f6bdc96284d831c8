//! Token redaction for logs and error messages: a token is shown as its first six characters and
//! its length, never whole.

/// `MlsBAA…(124)`: enough to tell tokens apart in a log, not enough to reuse one.
pub fn redact(token: &str) -> String {
    let head: String = token.chars().take(6).collect();
    format!("{head}…({})", token.chars().count())
}

/// A URL with any password replaced by `***` (proxy URLs in error messages).
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// The log filter: `spec` (`POTPROXY_LOG`) when it parses, else `default`, with hudsucker's
/// spans always below the threshold. hudsucker opens a span per request carrying its whole URI
/// (a googlevideo `ip=`, a client's own `pot=`), and a span's fields are printed on every line
/// logged inside it, whatever module logs that line.
pub fn log_filter(spec: Option<&str>, default: &str) -> tracing_subscriber::EnvFilter {
    let filter = spec
        .and_then(|s| tracing_subscriber::EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default));
    filter.add_directive("hudsucker=warn".parse().expect("static directive"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_six_characters_and_the_length() {
        assert_eq!(redact("MlsBAAAAAAAAAAAA"), "MlsBAA…(16)");
        assert_eq!(redact("abc"), "abc…(3)");
    }

    #[test]
    fn proxy_passwords_are_hidden() {
        assert_eq!(
            redact_url("http://u:secret@p.example:3128"),
            "http://u:***@p.example:3128/"
        );
        assert_eq!(redact_url("http://p.example:3128"), "http://p.example:3128");
    }
}
