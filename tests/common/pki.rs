//! The test PKI: a throwaway CA and one leaf certificate for every name the fake origin answers
//! as ([`FAKE_NAMES`]), so the proxy talks real TLS to it and verifies the chain like it would
//! against YouTube; the CA is written out for `upstream.extra_ca_certs`.

use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// Names the fake origin's certificate covers: the real YouTube hosts plus one non-YouTube
/// name used for tunnel tests.
pub const FAKE_NAMES: &[&str] = &[
    "www.youtube.com",
    "m.youtube.com",
    "music.youtube.com",
    "youtubei.googleapis.com",
    "*.googlevideo.com",
    "www.google.com",
    "jnn-pa.googleapis.com",
    "tunnel.example.org",
];

pub fn install_provider() {
    potproxy::install_crypto_provider();
}

/// A test CA and a leaf for [`FAKE_NAMES`], written to a temp dir for `extra_ca_certs`.
pub struct TestPki {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    pub ca_path: PathBuf,
    /// The leaf for [`FAKE_NAMES`] and its key, as PEM files (for external origins).
    pub leaf_cert_path: PathBuf,
    pub leaf_key_path: PathBuf,
    pub server_config: Arc<rustls::ServerConfig>,
}

impl TestPki {
    pub fn new() -> Self {
        install_provider();
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca_params = CertificateParams::default();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "potproxy test upstream CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut leaf =
            CertificateParams::new(FAKE_NAMES.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "fake youtube origin");
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();

        let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

        let dir = tempfile::tempdir().unwrap();
        let ca_pem = ca_cert.pem();
        let ca_path = dir.path().join("upstream-ca.pem");
        std::fs::write(&ca_path, &ca_pem).unwrap();
        let leaf_cert_path = dir.path().join("leaf.pem");
        let leaf_key_path = dir.path().join("leaf.key");
        std::fs::write(&leaf_cert_path, leaf_cert.pem()).unwrap();
        std::fs::write(&leaf_key_path, leaf_key.serialize_pem()).unwrap();
        TestPki {
            dir,
            ca_pem,
            ca_path,
            leaf_cert_path,
            leaf_key_path,
            server_config: Arc::new(cfg),
        }
    }
}
