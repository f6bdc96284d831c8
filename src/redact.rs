//! What may reach a log line, and how: tokens redacted (the first six characters and the
//! length, never whole), proxy passwords hidden, the log filter, and the escaping of characters a client could use to forge or
//! disguise a line (control characters, bidi overrides) in both log formats.

use std::borrow::Cow;
use std::fmt::Write as _;

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

/// The log filter: `spec` (`POTPROXY_LOG`) when it parses, else `default`. No span potproxy
/// opens carries a URI's query (`ip=`, a client's own `pot=`): a span's fields are printed on
/// every line logged inside it.
pub fn log_filter(spec: Option<&str>, default: &str) -> tracing_subscriber::EnvFilter {
    spec.and_then(|s| tracing_subscriber::EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default))
}

/// Characters no log line carries raw: C0 controls (newline included: a forged line), DEL, C1
/// controls (U+0080-U+009F, 8-bit terminal escapes), and the bidi controls that reorder what a
/// reader sees (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069).
pub fn unsafe_in_logs(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// `text` with every [`unsafe_in_logs`] character written as `\u{202e}` (Rust's escape
/// syntax); borrowed unchanged when there is none.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_in_logs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_in_logs(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A JSON log line with the characters serde_json leaves raw (DEL, C1 and bidi controls; it
/// escapes C0 itself) written as `\u202e` escapes. Outside strings a JSON line is ASCII, so
/// these only occur inside strings, where the escape is the same character to any parser.
pub fn escape_json_line(line: &str) -> Cow<'_, str> {
    let raw = |c: char| unsafe_in_logs(c) && c > '\u{1f}';
    if !line.chars().any(raw) {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 16);
    for c in line.chars() {
        if raw(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The text log format's fields (an event's and its spans'): tracing-subscriber's own field
/// format, every value passed through [`escape_controls`]. Field names lose their terminal
/// styling; values can no longer carry it.
#[derive(Debug, Default)]
pub struct EscapedFields(tracing_subscriber::fmt::format::DefaultFields);

impl<'w> tracing_subscriber::fmt::FormatFields<'w> for EscapedFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: tracing_subscriber::fmt::format::Writer<'w>,
        fields: R,
    ) -> std::fmt::Result {
        let mut line = String::new();
        self.0.format_fields(
            tracing_subscriber::fmt::format::Writer::new(&mut line),
            fields,
        )?;
        writer.write_str(&escape_controls(&line))
    }
}

/// A writer of JSON log lines through [`escape_json_line`]. tracing-subscriber hands it one
/// whole line per write; bytes that are not UTF-8 on their own pass unchanged.
#[derive(Debug)]
pub struct JsonEscaping<W>(pub W);

impl<W: std::io::Write> std::io::Write for JsonEscaping<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match std::str::from_utf8(buf).map(escape_json_line) {
            Ok(Cow::Owned(escaped)) => {
                self.0.write_all(escaped.as_bytes())?;
                Ok(buf.len())
            }
            _ => self.0.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
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
    fn control_and_bidi_characters_are_escaped_and_others_kept() {
        let cases = [
            ("/watch?v=abc", "/watch?v=abc"),
            ("a\u{1b}[31mred", "a\\u{1b}[31mred"),
            ("line\nforged", "line\\u{a}forged"),
            ("tab\there\r", "tab\\u{9}here\\u{d}"),
            ("nul\u{0}del\u{7f}", "nul\\u{0}del\\u{7f}"),
            ("c1\u{85}\u{9b}", "c1\\u{85}\\u{9b}"),
            ("evil\u{202e}gpj.exe", "evil\\u{202e}gpj.exe"),
            (
                "\u{202a}\u{202b}\u{202c}\u{202d}",
                "\\u{202a}\\u{202b}\\u{202c}\\u{202d}",
            ),
            (
                "\u{2066}\u{2067}\u{2068}\u{2069}",
                "\\u{2066}\\u{2067}\\u{2068}\\u{2069}",
            ),
            ("\u{200e}\u{200f}\u{61c}", "\\u{200e}\\u{200f}\\u{61c}"),
            // Printable non-ASCII stays: names, emoji, and the zero-width joiner.
            (
                "café ü 東京 👍 a\u{200d}b \u{a0}",
                "café ü 東京 👍 a\u{200d}b \u{a0}",
            ),
        ];
        for (raw, escaped) in cases {
            assert_eq!(escape_controls(raw), escaped, "{raw:?}");
        }
        assert!(matches!(escape_controls("clean"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_lines_keep_their_meaning_and_lose_raw_bidi_and_c1() {
        let value = serde_json::json!({"path": "/a\u{202e}b\u{85}c\u{7f}\u{1b}d\u{2067}"});
        let line = format!("{value}\n");
        let escaped = escape_json_line(&line);
        assert!(
            !escaped.contains(['\u{202e}', '\u{85}', '\u{7f}', '\u{1b}', '\u{2067}']),
            "{escaped}"
        );
        assert!(
            escaped.contains("\\u202e") && escaped.ends_with("}\n"),
            "{escaped}"
        );
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, value);

        use std::io::Write;
        let mut w = JsonEscaping(Vec::new());
        w.write_all(line.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(w.0).unwrap(), escaped);
    }

    #[test]
    fn text_log_fields_are_escaped_in_events_and_spans() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let out = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(EscapedFields::default())
            .with_writer(move || out.clone())
            .finish();
        let host = "www.youtube.com\u{202e}moc.live";
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("req", ua = %"agent\u{1b}]0;pwned\u{7}");
            let _in = span.enter();
            tracing::info!(%host, path = %"/x\u{85}\ny", "seen {}", "msg\u{2066}");
        });
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.trim_end().chars().any(unsafe_in_logs), "{text}");
        for want in [
            "www.youtube.com\\u{202e}moc.live",
            "/x\\u{85}\\u{a}y",
            "msg\\u{2066}",
            "agent\\u{1b}]0;pwned\\u{7}",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
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
