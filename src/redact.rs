//! Token redaction for logs and error messages: a token is shown as its first six characters and
//! its length, never whole.

/// `MlsBAA…(124)`: enough to tell tokens apart in a log, not enough to reuse one.
pub fn redact(token: &str) -> String {
    let head: String = token.chars().take(6).collect();
    format!("{head}…({})", token.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_six_characters_and_the_length() {
        assert_eq!(redact("MlsBAAAAAAAAAAAA"), "MlsBAA…(16)");
        assert_eq!(redact("abc"), "abc…(3)");
    }
}
