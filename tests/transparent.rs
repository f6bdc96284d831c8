//! Transparent mode against real redirect rules: a client in a network namespace of its own,
//! with no proxy setting at all, reaches this host over a veth pair; nftables redirects its TCP
//! 443 to potproxy's `[transparent]` listener. YouTube names get tokens; another TLS host is
//! tunnelled to the original destination with its own certificate; potproxy's own connection
//! to that destination carries `[transparent] mark` and is not redirected back into it, though
//! a rule in this host's `output` chain redirects every unmarked connection there.
//!
//! Needs root, `ip`, `nft` and `curl`: skipped with a message locally without them, failed
//! under CI (which runs as root and installs them in `.ci/run`).

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;

const VIDEO: &str = "dQw4w9WgXcQ";

fn run(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn ok(args: &[&str]) {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether this machine can run the test; the reason when it cannot.
fn missing() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    for tool in ["ip", "nft", "curl"] {
        let found = Command::new(tool)
            .arg(if tool == "curl" { "--version" } else { "-V" })
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    None
}

/// How the client's connections are sent to potproxy.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Divert {
    /// nftables `redirect` (NAT): the original destination from `SO_ORIGINAL_DST`.
    Redirect,
    /// nftables `tproxy` with a policy route: the original destination is the socket's own.
    Tproxy,
}

/// A client namespace behind a veth pair, this test's nftables table and (for TPROXY) its
/// policy route; removed on drop.
struct Net {
    ns: String,
    table: String,
    /// This host's end of the pair.
    host_ip: String,
    /// The fwmark and routing table of the TPROXY policy route, when there is one.
    route: Option<(String, String)>,
}

impl Net {
    fn new(transparent_port: u16, divert: Divert) -> Net {
        // Distinct per test of this binary (they run at once) and per concurrent run.
        let id = std::process::id() % 100 * 2 + 20 + u32::from(divert == Divert::Tproxy);
        let ns = format!("pptr{id}");
        let (vh, vc) = (format!("pph{id}"), format!("ppc{id}"));
        let host_ip = format!("10.231.{id}.1");
        let client_ip = format!("10.231.{id}.2");
        let table = format!("pptr{id}");
        // Leftovers of an earlier run that was killed.
        let _ = run(&["ip", "netns", "del", &ns]);
        let _ = run(&["ip", "link", "del", &vh]);
        let _ = run(&["nft", "delete", "table", "ip", &table]);
        let (mark, rt) = (format!("0x{:x}", 0x700 + id), (1000 + id).to_string());
        let _ = run(&["ip", "rule", "del", "fwmark", &mark, "lookup", &rt]);
        let net = Net {
            ns: ns.clone(),
            table: table.clone(),
            host_ip: host_ip.clone(),
            route: (divert == Divert::Tproxy).then(|| (mark.clone(), rt.clone())),
        };
        ok(&["ip", "netns", "add", &ns]);
        ok(&[
            "ip", "link", "add", &vh, "type", "veth", "peer", "name", &vc,
        ]);
        ok(&["ip", "link", "set", &vc, "netns", &ns]);
        ok(&["ip", "addr", "add", &format!("{host_ip}/24"), "dev", &vh]);
        ok(&["ip", "link", "set", &vh, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["ip", "netns", "exec", &ns];
            all.extend_from_slice(args);
            ok(&all);
        };
        inside(&["ip", "addr", "add", &format!("{client_ip}/24"), "dev", &vc]);
        inside(&["ip", "link", "set", &vc, "up"]);
        inside(&["ip", "link", "set", "lo", "up"]);
        inside(&["ip", "route", "add", "default", "via", &host_ip]);
        // The gateway rule: the client's HTTPS goes to potproxy. The host rule: this host's
        // own connections to the test's TLS origin go to potproxy too, unless marked.
        let pre = match divert {
            Divert::Redirect => format!(
                "chain pre {{ type nat hook prerouting priority dstnat; policy accept;\n\
                   iifname \"{vh}\" tcp dport 443 redirect to :{transparent_port}\n}}\n"
            ),
            Divert::Tproxy => {
                ok(&["ip", "rule", "add", "fwmark", &mark, "lookup", &rt]);
                ok(&[
                    "ip",
                    "route",
                    "add",
                    "local",
                    "0.0.0.0/0",
                    "dev",
                    "lo",
                    "table",
                    &rt,
                ]);
                format!(
                    "chain pre {{ type filter hook prerouting priority mangle; policy accept;\n\
                       iifname \"{vh}\" tcp dport 443 meta mark set {mark} tproxy to :{transparent_port} accept\n}}\n"
                )
            }
        };
        let rules = format!(
            "table ip {table} {{\n\
               {pre}\
               chain out {{ type nat hook output priority -100; policy accept;\n\
                 meta mark 0x5050 return\n\
                 ip daddr {host_ip} tcp dport 443 redirect to :{transparent_port}\n\
               }}\n\
             }}\n"
        );
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), rules).unwrap();
        ok(&["nft", "-f", file.path().to_str().unwrap()]);
        net
    }

    /// curl inside the client namespace.
    fn curl(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec![
            "ip",
            "netns",
            "exec",
            &self.ns,
            "curl",
            "-sS",
            "--max-time",
            "20",
        ];
        all.extend_from_slice(args);
        run(&all)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = run(&["nft", "delete", "table", "ip", &self.table]);
        if let Some((mark, rt)) = &self.route {
            let _ = run(&["ip", "rule", "del", "fwmark", mark, "lookup", rt]);
            let _ = run(&[
                "ip",
                "route",
                "del",
                "local",
                "0.0.0.0/0",
                "dev",
                "lo",
                "table",
                rt,
            ]);
        }
        let _ = run(&["ip", "netns", "del", &self.ns]);
    }
}

/// Listens on `addr` and splices each connection to `to`, counting them.
async fn forwarder(addr: SocketAddr, to: SocketAddr) -> Arc<AtomicUsize> {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut s) = tokio::net::TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut s).await;
                }
            });
        }
    });
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_no_proxy_setting_gets_tokens_and_other_hosts_are_tunnelled() {
    transparent_client(Divert::Redirect).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_under_tproxy() {
    transparent_client(Divert::Tproxy).await;
}

/// A client namespace diverted to potproxy by `divert`: YouTube gets tokens, another TLS host is
/// tunnelled to where it was going, and potproxy's own connection is not diverted back.
async fn transparent_client(divert: Divert) {
    if let Some(why) = missing() {
        assert!(
            !potproxy_ci(),
            "transparent test cannot run under CI: {why}"
        );
        eprintln!("skipping: {why}");
        return;
    }
    let tproxy = divert == Divert::Tproxy;
    let h = Harness::builder()
        .static_token()
        .toml(&format!(
            "[transparent]\nlisten = \"0.0.0.0:0\"\ntproxy = {tproxy}\n"
        ))
        .start()
        .await;
    let port = h
        .proxy
        .transparent_addr
        .expect("[transparent] listen")
        .port();
    let net = Net::new(port, divert);
    let origin = h.origin.addr;
    let ca = h.proxy.ca_cert_path.to_str().unwrap().to_string();

    // YouTube, by a documentation address never dialled: only the SNI names it.
    let body = serde_json::to_string(&player_body("WEB", VIDEO)).unwrap();
    let out = net.curl(&[
        "--resolve",
        "www.youtube.com:443:203.0.113.9",
        "--cacert",
        &ca,
        "-H",
        "content-type: application/json",
        "--data",
        &body,
        "https://www.youtube.com/youtubei/v1/player",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = h
        .origin
        .take()
        .into_iter()
        .find(|s| s.path_and_query.contains("/youtubei/v1/player"))
        .expect("the player request reached the fake YouTube");
    assert_eq!(
        seen.json()["serviceIntegrityDimensions"]["poToken"],
        static_token().as_str()
    );

    // Another TLS host at an address on this machine: tunnelled to that address byte for
    // byte (the client trusts only the origin's own CA), and potproxy's own marked connection
    // is not redirected back into it.
    let tls_origin: SocketAddr = format!("{}:443", net.host_ip).parse().unwrap();
    let arrived = forwarder(tls_origin, origin).await;
    let out = net.curl(&[
        "--resolve",
        &format!("tunnel.example.org:443:{}", net.host_ip),
        "--cacert",
        h.pki.ca_path.to_str().unwrap(),
        "--data",
        &body,
        "https://tunnel.example.org/youtubei/v1/player",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(arrived.load(Ordering::SeqCst), 1, "one connection, no loop");
    let seen = h
        .origin
        .take()
        .pop()
        .expect("the tunnelled request arrived");
    assert!(
        seen.json().get("serviceIntegrityDimensions").is_none(),
        "tunnelled traffic must not be rewritten"
    );
}

#[test]
fn the_printed_rules_are_valid_nftables() {
    if let Some(why) = missing() {
        assert!(!potproxy_ci(), "cannot check the rules under CI: {why}");
        eprintln!("skipping: {why}");
        return;
    }
    for args in [
        vec!["rules", "--gateway", "--port", "8443"],
        vec!["rules", "--port", "8443"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_potproxy"))
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &out.stdout).unwrap();
        // `-c`: parse and check against the kernel without applying.
        let check = run(&["nft", "-c", "-f", file.path().to_str().unwrap()]);
        assert!(
            check.status.success(),
            "{args:?} printed rules nft rejects: {}\n{}",
            String::from_utf8_lossy(&check.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

fn potproxy_ci() -> bool {
    testutil::ci()
}
