//! The proxy auto-config file served at `GET /proxy.pac` on the API: the intercepted hosts go
//! through the proxy, everything else `DIRECT`, so a browser or OS pointed at it sends potproxy
//! only the traffic potproxy has a reason to see.

use crate::intercept::HostPattern;

/// `FindProxyForURL` sending hosts matching `patterns` to `PROXY proxy` (a `host:port`).
pub fn pac(patterns: &[HostPattern], proxy: &str) -> String {
    let mut tests = Vec::new();
    for p in patterns {
        match p {
            HostPattern::Exact(h) => tests.push(format!("host == {}", js_string(h))),
            // `.suffix` matches names ending in it, not the bare suffix, as intercept does.
            HostPattern::Suffix(s) => tests.push(format!(
                "(dnsDomainIs(host, {s}) && host != {bare})",
                s = js_string(s),
                bare = js_string(s.trim_start_matches('.'))
            )),
        }
    }
    let cond = if tests.is_empty() {
        "false".to_string()
    } else {
        tests.join(" ||\n      ")
    };
    format!(
        "// potproxy: only the hosts potproxy intercepts go through it.\n\
         function FindProxyForURL(url, host) {{\n\
         \x20 host = host.toLowerCase().replace(/\\.$/, \"\");\n\
         \x20 if ({cond}) {{\n\
         \x20   return {target};\n\
         \x20 }}\n\
         \x20 return \"DIRECT\";\n\
         }}\n",
        target = js_string(&format!("PROXY {proxy}")),
    )
}

/// A JavaScript string literal (host names and addresses only carry safe characters, but
/// quote properly anyway).
fn js_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_each_pattern_and_the_proxy() {
        let pats = vec![
            HostPattern::parse("www.youtube.com").unwrap(),
            HostPattern::parse("*.googlevideo.com").unwrap(),
        ];
        let text = pac(&pats, "127.0.0.1:8080");
        assert!(text.contains("host == \"www.youtube.com\""), "{text}");
        assert!(
            text.contains("dnsDomainIs(host, \".googlevideo.com\")"),
            "{text}"
        );
        assert!(text.contains("\"PROXY 127.0.0.1:8080\""), "{text}");
    }
}
