//! The CA page: `http://potproxy.invalid/` asked through the proxy (never dialled: `.invalid`
//! cannot resolve, RFC 2606) serves this page with the CA certificate and how to trust it on
//! each platform; `/ca.pem` there, and `GET /ca.pem` on the API, serve the PEM itself.

/// The name clients ask through the proxy for the CA page.
pub const CA_PAGE_HOST: &str = "potproxy.invalid";

/// The `Content-Type` of the PEM download.
pub const PEM_CONTENT_TYPE: &str = "application/x-pem-file";

/// Whether an absolute-form plain-HTTP request for `host` is for the CA page.
pub fn is_ca_page_host(host: &str) -> bool {
    host.trim_end_matches('.')
        .eq_ignore_ascii_case(CA_PAGE_HOST)
}

/// Text for HTML element content and quoted attribute values (the CA page and the live page).
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The HTML page with `pem` and per-OS install steps.
pub fn ca_page(pem: &str) -> String {
    let pem = html_escape(pem);
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>potproxy CA</title>
<style>body{{font-family:sans-serif;max-width:50em;margin:2em auto;padding:0 1em}}pre{{background:#f4f4f4;padding:1em;overflow-x:auto}}</style>
</head><body>
<h1>potproxy certificate authority</h1>
<p>potproxy decrypts only the YouTube hosts it adds Proof-of-Origin tokens to. Clients must trust
this CA for those hosts. New potproxy CAs carry X.509 name constraints: they can only sign
certificates for the intercepted domains. Download: <a href="/ca.pem">ca.pem</a>
(also <code>GET /ca.pem</code> on potproxy's API, or <code>potproxy ca</code>).</p>

<h2>Linux (system store, curl, OpenSSL)</h2>
<pre>curl -x http://PROXY http://potproxy.invalid/ca.pem -o potproxy-ca.crt
# Debian/Ubuntu
sudo cp potproxy-ca.crt /usr/local/share/ca-certificates/potproxy-ca.crt &amp;&amp; sudo update-ca-certificates
# Fedora/RHEL/Arch
sudo trust anchor --store potproxy-ca.crt</pre>
<h2>Linux: Chromium and other NSS users</h2>
<pre>certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n potproxy -i potproxy-ca.crt</pre>
<h2>macOS</h2>
<pre>sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain potproxy-ca.crt</pre>
<h2>Windows</h2>
<pre>certutil -addstore -f Root potproxy-ca.crt</pre>
<p>(or double-click the file, "Install Certificate", "Trusted Root Certification Authorities").</p>
<h2>Android</h2>
<p>Settings, Security, Encryption &amp; credentials, Install a certificate, CA certificate, pick
the downloaded file. Apps trust user CAs only when they opt in (network security config).</p>
<h2>iOS / iPadOS</h2>
<p>Open <a href="/ca.pem">ca.pem</a> in Safari, allow the profile download, install it under
Settings, General, VPN &amp; Device Management, then enable full trust under Settings, General,
About, Certificate Trust Settings.</p>
<h2>Firefox</h2>
<p>Settings, Privacy &amp; Security, Certificates, View Certificates, Authorities, Import, tick
"Trust this CA to identify websites". Or set <code>security.enterprise_roots.enabled</code>
to use the system store.</p>
<h2>Python, yt-dlp</h2>
<pre># a bundle of the system CAs plus potproxy's (SSL_CERT_FILE replaces the default bundle)
cat /etc/ssl/certs/ca-certificates.crt potproxy-ca.crt &gt; ~/potproxy-bundle.pem
export SSL_CERT_FILE=~/potproxy-bundle.pem REQUESTS_CA_BUNDLE=~/potproxy-bundle.pem
# yt-dlp prefers certifi's bundle when installed: make it use the system store instead
yt-dlp --compat-options no-certifi --proxy http://PROXY URL</pre>
<h2>Node.js</h2>
<pre>export NODE_EXTRA_CA_CERTS=/path/to/potproxy-ca.crt</pre>

<h2>Certificate</h2>
<pre>{pem}</pre>
</body></html>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_carries_the_pem_and_every_platform() {
        let page = ca_page("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
        assert!(page.contains("-----BEGIN CERTIFICATE-----\nMIIB"));
        for os in [
            "Linux", "NSS", "macOS", "Windows", "Android", "iOS", "Firefox", "Python", "Node.js",
        ] {
            assert!(page.contains(os), "{os} missing");
        }
        assert!(is_ca_page_host("POTPROXY.invalid."));
    }
}
