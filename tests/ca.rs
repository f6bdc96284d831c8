//! The CA on disk as a fleet and its clients see it: nodes starting together on one shared
//! `[ca] dir` end up with one pair, and the name constraints of a new CA are enforced by real
//! verifiers (rustls' webpki here, OpenSSL's `openssl verify` when the tool is installed).
//! Self-contained on purpose: only the public `potproxy::ca` API and normal dependencies.

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use hudsucker::certificate_authority::CertificateAuthority as _;
use potproxy::ca::{CaError, CertificateAuthority, PERMITTED_DOMAINS};
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, SanType};
use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};

// `ci()`: the one meaning of "this run is CI" every test uses.
#[path = "../src/testutil.rs"]
#[allow(dead_code)]
mod testutil;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn cert_der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

fn roots(ca_pem: &str) -> Arc<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der(ca_pem)).unwrap();
    Arc::new(roots)
}

/// A TLS handshake against the leaf `ca` issues for `host` (through hudsucker, as the proxy does),
/// by a client trusting only `trusted_pem`.
async fn handshake(ca: &CertificateAuthority, trusted_pem: &str, host: &str) -> Result<(), String> {
    let authority = ca.authority().unwrap();
    let server_config = authority.gen_server_config(&host.parse().unwrap()).await;
    let client_config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(trusted_pem))
        .with_no_client_auth();
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server = tokio_rustls::TlsAcceptor::from(server_config).accept(server_io);
    let client = tokio_rustls::TlsConnector::from(Arc::new(client_config))
        .connect(ServerName::try_from(host.to_string()).unwrap(), client_io);
    let (client, _server) = tokio::join!(client, server);
    client.map(drop).map_err(|e| e.to_string())
}

/// A leaf for `san` signed with the key in `dir/ca.key`, the way hudsucker builds one (the name
/// is also the CN).
fn leaf_signed_from_dir(dir: &Path, san: SanType, cn: &str) -> String {
    let ca_pem = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    let ca_key = KeyPair::from_pem(&std::fs::read_to_string(dir.join("ca.key")).unwrap()).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.subject_alt_names = vec![san];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate().unwrap();
    params.signed_by(&leaf_key, &issuer).unwrap().pem()
}

fn dns(name: &str) -> SanType {
    SanType::DnsName(name.try_into().unwrap())
}

fn ip(addr: &str) -> SanType {
    SanType::IpAddress(addr.parse().unwrap())
}

#[tokio::test]
async fn nodes_starting_together_on_an_empty_dir_share_one_ca() {
    const NODES: usize = 8;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("shared-volume").join("ca");
    let barrier = Arc::new(Barrier::new(NODES));
    let threads: Vec<_> = (0..NODES)
        .map(|_| {
            let (dir, barrier) = (dir.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                CertificateAuthority::load_or_create(&dir)
            })
        })
        .collect();
    let cas: Vec<CertificateAuthority> = threads
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();

    let on_disk = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    for ca in &cas {
        assert_eq!(ca.cert_pem, on_disk);
        handshake(ca, &on_disk, "www.youtube.com").await.unwrap();
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["ca.key", "ca.pem"], "no temporary files left");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("ca.key")), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }
}

#[test]
fn a_half_pair_left_by_a_crash_is_still_an_incomplete_error_after_the_wait() {
    let other = tempfile::tempdir().unwrap();
    CertificateAuthority::load_or_create(other.path()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(other.path().join("ca.key"), dir.path().join("ca.key")).unwrap();
    let key_before = std::fs::read(dir.path().join("ca.key")).unwrap();

    let e = CertificateAuthority::load_or_create_with(dir.path(), Duration::from_millis(200))
        .unwrap_err();
    match &e {
        CaError::Incomplete { present, missing } => {
            assert!(present.ends_with("ca.key"), "{e}");
            assert!(missing.ends_with("ca.pem"), "{e}");
        }
        other => panic!("expected Incomplete, got {other}"),
    }
    assert_eq!(
        std::fs::read(dir.path().join("ca.key")).unwrap(),
        key_before
    );
    assert!(!dir.path().join("ca.pem").exists());
}

#[test]
fn a_lone_certificate_is_an_incomplete_error_naming_the_missing_key() {
    let dir = tempfile::tempdir().unwrap();
    CertificateAuthority::load_or_create(dir.path()).unwrap();
    std::fs::remove_file(dir.path().join("ca.key")).unwrap();
    match CertificateAuthority::load_or_create(dir.path()) {
        Err(CaError::Incomplete { present, missing }) => {
            assert!(present.ends_with("ca.pem"));
            assert!(missing.ends_with("ca.key"));
        }
        other => panic!("expected Incomplete, got {other:?}"),
    }
    assert!(!dir.path().join("ca.key").exists(), "no key generated");
}

#[test]
fn a_node_that_lost_the_race_loads_the_pair_once_the_winner_publishes_it() {
    let winner = tempfile::tempdir().unwrap();
    let expected = CertificateAuthority::load_or_create(winner.path()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The winner's state between writing the key and publishing the certificate.
    std::fs::copy(winner.path().join("ca.key"), dir.path().join("ca.key")).unwrap();
    let publisher = {
        let (from, to) = (winner.path().join("ca.pem"), dir.path().to_path_buf());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            std::fs::copy(&from, to.join(".ca.pem.tmp")).unwrap();
            std::fs::rename(to.join(".ca.pem.tmp"), to.join("ca.pem")).unwrap();
        })
    };
    let loaded = CertificateAuthority::load_or_create_with(dir.path(), Duration::from_secs(30));
    publisher.join().unwrap();
    assert_eq!(loaded.unwrap().cert_pem, expected.cert_pem);
}

#[test]
fn a_new_ca_is_name_constrained_to_the_youtube_domains_and_no_ip_address() {
    use x509_parser::extensions::GeneralName;
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
    let der = cert_der(&ca.cert_pem);
    let (_, x509) = x509_parser::parse_x509_certificate(&der).unwrap();
    let constraints = x509.name_constraints().unwrap().expect("nameConstraints");
    assert!(constraints.critical);

    let permitted: Vec<String> = constraints
        .value
        .permitted_subtrees
        .iter()
        .flatten()
        .map(|s| match s.base {
            GeneralName::DNSName(d) => d.to_string(),
            ref other => panic!("unexpected permitted subtree {other:?}"),
        })
        .collect();
    assert_eq!(
        permitted,
        [
            "youtube.com",
            "googlevideo.com",
            "youtube-nocookie.com",
            "googleapis.com"
        ]
    );
    assert_eq!(permitted, PERMITTED_DOMAINS);

    let excluded: Vec<&[u8]> = constraints
        .value
        .excluded_subtrees
        .iter()
        .flatten()
        .map(|s| match s.base {
            GeneralName::IPAddress(bytes) => bytes,
            ref other => panic!("unexpected excluded subtree {other:?}"),
        })
        .collect();
    assert_eq!(
        excluded,
        [&[0u8; 8][..], &[0u8; 32][..]],
        "0.0.0.0/0 and ::/0"
    );
}

#[test]
fn rustls_accepts_leaves_inside_the_constraints_and_rejects_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        roots(&ca.cert_pem),
        provider(),
    )
    .build()
    .unwrap();
    let verify = |san: SanType, cn: &str, server_name: &str| {
        let leaf = cert_der(&leaf_signed_from_dir(dir.path(), san, cn));
        verifier.verify_server_cert(
            &leaf,
            &[],
            &ServerName::try_from(server_name.to_string()).unwrap(),
            &[],
            UnixTime::now(),
        )
    };
    for host in [
        "www.youtube.com",
        "rr4---sn-u125g5-5p.googlevideo.com",
        "youtubei.googleapis.com",
        "www.youtube-nocookie.com",
    ] {
        verify(dns(host), host, host).unwrap_or_else(|e| panic!("{host}: {e}"));
    }
    let outside = verify(dns("www.example.com"), "www.example.com", "www.example.com");
    let e = outside.expect_err("a leaf outside the permitted subtrees");
    assert!(format!("{e:?}").contains("NameConstraint"), "{e:?}");
    let by_ip = verify(ip("203.0.113.5"), "203.0.113.5", "203.0.113.5");
    let e = by_ip.expect_err("a leaf for an IP address");
    assert!(format!("{e:?}").contains("NameConstraint"), "{e:?}");
}

/// `openssl verify -CAfile ca.pem leaf.pem`: exit status and combined output.
fn openssl_verify(dir: &Path, leaf_pem: &str) -> Option<(bool, String)> {
    let leaf_path = dir.join("leaf-under-test.pem");
    std::fs::write(&leaf_path, leaf_pem).unwrap();
    let out = match std::process::Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(dir.join("ca.pem"))
        .arg(&leaf_path)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("running openssl: {e}"),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

#[test]
fn openssl_accepts_leaves_inside_the_constraints_and_rejects_the_rest() {
    let ca_dir = tempfile::tempdir().unwrap();
    CertificateAuthority::load_or_create(ca_dir.path()).unwrap();
    let work = tempfile::tempdir().unwrap();
    std::fs::copy(ca_dir.path().join("ca.pem"), work.path().join("ca.pem")).unwrap();
    let verify = |san: SanType, cn: &str| {
        openssl_verify(work.path(), &leaf_signed_from_dir(ca_dir.path(), san, cn))
    };

    let Some((ok, text)) = verify(dns("www.youtube.com"), "www.youtube.com") else {
        if testutil::ci() {
            panic!("openssl is not installed; CI must run this test");
        }
        eprintln!("skipping: openssl is not installed");
        return;
    };
    assert!(ok, "www.youtube.com: {text}");

    let (ok, text) = verify(dns("www.example.com"), "www.example.com").unwrap();
    assert!(!ok, "www.example.com verified: {text}");
    assert!(text.contains("permitted subtree violation"), "{text}");

    let (ok, text) = verify(ip("203.0.113.5"), "203.0.113.5").unwrap();
    assert!(!ok, "an IP leaf verified: {text}");
    assert!(text.contains("excluded subtree violation"), "{text}");
}

#[tokio::test]
async fn a_ca_made_before_name_constraints_keeps_working_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "potproxy local CA");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let old_pem = params.self_signed(&key).unwrap().pem();
    std::fs::write(dir.path().join("ca.pem"), &old_pem).unwrap();
    std::fs::write(dir.path().join("ca.key"), key.serialize_pem()).unwrap();

    let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
    assert_eq!(ca.cert_pem, old_pem);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ca.pem")).unwrap(),
        old_pem
    );
    assert!(ca.permits_host("www.example.com"));
    handshake(&ca, &old_pem, "www.youtube.com").await.unwrap();
    handshake(&ca, &old_pem, "tunnel.example.org")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_constrained_ca_signs_working_leaves_for_intercepted_hosts_only() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
    for host in ["www.youtube.com", "rr1---sn-x.googlevideo.com"] {
        handshake(&ca, &ca.cert_pem, host).await.unwrap();
    }
    let e = handshake(&ca, &ca.cert_pem, "tunnel.example.org")
        .await
        .unwrap_err();
    assert!(e.to_lowercase().contains("constraint"), "{e}");
}
