//! The proxy's root CA: `ca.pem` + `ca.key` in `[ca] dir`, generated with rcgen on first start
//! (ECDSA P-256, the key written with mode 0600) and reused afterwards. A corrupt file or a key that
//! does not belong to the certificate is an error naming the file, never silently replaced: users
//! have installed that certificate in their trust stores.
//!
//! Several nodes may share one `[ca] dir` (a volume) and start at the same moment: creating
//! `ca.key` exclusively elects one writer, and `ca.pem` only appears (renamed from a temporary
//! file) once both files are complete, so the others wait for the pair and load it.
//!
//! A new CA is name-constrained (critical nameConstraints, [`PERMITTED_DOMAINS`]): even if its key
//! leaks it cannot vouch for any other site. A CA generated before that keeps working unchanged;
//! to re-issue one with constraints, stop every node, delete `ca.pem` and `ca.key`, start again
//! and re-install the new `ca.pem` wherever the old one was trusted.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hudsucker::certificate_authority::RcgenAuthority;
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType, GeneralSubtree,
    IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints, PublicKeyData,
};

use crate::intercept::HostPattern;

/// Leaf certificates kept in memory (one per intercepted host name).
const LEAF_CACHE_SIZE: u64 = 1_000;

/// How long a node that lost the race to create the pair waits for the winner to publish it.
pub const PAIR_WAIT: Duration = Duration::from_secs(10);
const PAIR_POLL: Duration = Duration::from_millis(50);

/// DNS subtrees a new CA may certify: each covers the name itself and every name below it. They
/// are the registrable domains of the default `[intercept] hosts` (`youtubei.googleapis.com`
/// lives under `googleapis.com`). A host configured outside them gets a leaf clients reject.
pub const PERMITTED_DOMAINS: &[&str] = &[
    "youtube.com",
    "googlevideo.com",
    "youtube-nocookie.com",
    "googleapis.com",
];

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("cannot create CA directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a usable {what}: {reason}")]
    Corrupt {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error(
        "{key} does not belong to {cert}: the key and certificate are from different CAs (remove both to generate a new pair, then re-install ca.pem where you trusted it)"
    )]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("only one of {present} and {missing} exists; restore {missing} or remove {present}")]
    Incomplete { present: PathBuf, missing: PathBuf },
    #[error("generating the CA failed: {0}")]
    Generate(String),
}

/// The loaded CA: its certificate (PEM) and the key that signs leaves.
pub struct CertificateAuthority {
    pub cert_path: PathBuf,
    pub cert_pem: String,
    key: KeyPair,
    /// The certificate's permitted DNS subtrees; `None` when it has no name constraints.
    permitted: Option<Vec<String>>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_path", &self.cert_path)
            .finish_non_exhaustive()
    }
}

/// What is on disk, as far as the pair goes.
enum PairState {
    Complete,
    Empty,
    Incomplete { present: PathBuf, missing: PathBuf },
}

fn pair_state(cert_path: &Path, key_path: &Path) -> PairState {
    match (cert_path.exists(), key_path.exists()) {
        (true, true) => PairState::Complete,
        (false, false) => PairState::Empty,
        (true, false) => PairState::Incomplete {
            present: cert_path.to_path_buf(),
            missing: key_path.to_path_buf(),
        },
        (false, true) => PairState::Incomplete {
            present: key_path.to_path_buf(),
            missing: cert_path.to_path_buf(),
        },
    }
}

impl CertificateAuthority {
    /// Loads the pair from `dir`, or generates and writes one when neither file exists. Waits up
    /// to [`PAIR_WAIT`] for a pair another process is writing.
    pub fn load_or_create(dir: &Path) -> Result<Self, CaError> {
        Self::load_or_create_with(dir, PAIR_WAIT)
    }

    /// [`Self::load_or_create`] with its own bound on the wait for a half-written pair; after it a
    /// pair still missing one file is [`CaError::Incomplete`].
    pub fn load_or_create_with(dir: &Path, wait: Duration) -> Result<Self, CaError> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        let deadline = Instant::now() + wait;
        loop {
            match pair_state(&cert_path, &key_path) {
                PairState::Complete => return Self::load(cert_path, &key_path),
                PairState::Empty => {
                    if let Some(ca) = Self::create(dir, &cert_path, &key_path)? {
                        return Ok(ca);
                    }
                }
                // A lone key may be another process's, between writing it and publishing the
                // certificate; one that stays alone was left by a crash. A lone certificate
                // never is (the key comes first), so it is reported at once.
                PairState::Incomplete { present, missing } => {
                    if present != key_path || Instant::now() >= deadline {
                        return Err(CaError::Incomplete { present, missing });
                    }
                    std::thread::sleep(PAIR_POLL);
                }
            }
        }
    }

    /// Whether leaves this CA signs for `host` satisfy its name constraints (always, for a CA
    /// without any). For a `*.suffix` pattern pass `suffix`: names below it are permitted iff it is.
    pub fn permits_host(&self, host: &str) -> bool {
        self.permitted
            .as_deref()
            .is_none_or(|domains| dns_name_within(host, domains))
    }

    /// The intercepted host patterns this CA cannot sign usable leaves for: clients reject a
    /// leaf outside its name constraints. Empty for a CA without constraints.
    pub fn hosts_outside_constraints<'a>(&self, hosts: &'a [HostPattern]) -> Vec<&'a HostPattern> {
        hosts
            .iter()
            .filter(|p| {
                let name = match p {
                    HostPattern::Exact(h) => h.as_str(),
                    HostPattern::Suffix(s) => s.trim_start_matches('.'),
                };
                !self.permits_host(name)
            })
            .collect()
    }

    fn load(cert_path: PathBuf, key_path: &Path) -> Result<Self, CaError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| CaError::Read {
                path: p.to_path_buf(),
                source,
            })
        };
        let cert_pem = read(&cert_path)?;
        let key_pem = read(key_path)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| CaError::Corrupt {
            path: key_path.to_path_buf(),
            what: "private key",
            reason: e.to_string(),
        })?;
        let corrupt = |reason: String| CaError::Corrupt {
            path: cert_path.clone(),
            what: "CA certificate",
            reason,
        };
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
            .map(|c: rustls_pki_types::CertificateDer<'static>| c.to_vec())
            .map_err(|e| corrupt(e.to_string()))?;
        let (_, x509) =
            x509_parser::parse_x509_certificate(&der).map_err(|e| corrupt(e.to_string()))?;
        if !x509.is_ca() {
            return Err(corrupt(
                "not a CA certificate (basicConstraints CA=false)".into(),
            ));
        }
        if x509.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
            return Err(CaError::Mismatch {
                cert: cert_path,
                key: key_path.to_path_buf(),
            });
        }
        if !x509.validity().is_valid() {
            tracing::warn!(path = %cert_path.display(), "the CA certificate is outside its validity period; clients will reject intercepted connections");
        }
        let permitted = permitted_dns_subtrees(&x509).map_err(corrupt)?;
        Ok(CertificateAuthority {
            cert_path,
            cert_pem,
            key,
            permitted,
        })
    }

    /// Generates a pair and publishes it, or returns `None` when another process claimed the
    /// directory first (its pair is then loaded by the caller's loop).
    fn create(dir: &Path, cert_path: &Path, key_path: &Path) -> Result<Option<Self>, CaError> {
        create_private_dir(dir)?;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| CaError::Generate(e.to_string()))?;
        let cert_pem = ca_params()
            .self_signed(&key)
            .map_err(|e| CaError::Generate(e.to_string()))?
            .pem();
        // The exclusive create of ca.key is the election; readers ignore it until ca.pem exists.
        let Some(mut key_file) = create_exclusive(key_path, 0o600)? else {
            return Ok(None);
        };
        let written = write_synced(&mut key_file, key.serialize_pem().as_bytes())
            .map_err(|source| CaError::Write {
                path: key_path.to_path_buf(),
                source,
            })
            .and_then(|()| publish(cert_path, cert_pem.as_bytes()));
        if let Err(e) = written {
            // Our own half pair would only make every node report it as incomplete.
            let _ = std::fs::remove_file(key_path);
            return Err(e);
        }
        tracing::info!(path = %cert_path.display(), "generated a new CA; trust this certificate in your clients");
        Ok(Some(CertificateAuthority {
            cert_path: cert_path.to_path_buf(),
            cert_pem,
            key,
            permitted: Some(PERMITTED_DOMAINS.iter().map(|d| d.to_string()).collect()),
        }))
    }

    /// hudsucker's leaf-certificate authority, signing with this CA's key.
    pub fn authority(&self) -> Result<RcgenAuthority, CaError> {
        let key = KeyPair::from_pem(&self.key.serialize_pem())
            .map_err(|e| CaError::Generate(e.to_string()))?;
        let issuer =
            Issuer::from_ca_cert_pem(&self.cert_pem, key).map_err(|e| CaError::Corrupt {
                path: self.cert_path.clone(),
                what: "CA certificate",
                reason: e.to_string(),
            })?;
        Ok(RcgenAuthority::new(
            issuer,
            LEAF_CACHE_SIZE,
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
    }
}

/// The parameters of a new CA certificate.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "potproxy local CA");
    dn.push(DnType::OrganizationName, "potproxy");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    // Permitted DNS subtrees leave other name forms unconstrained (RFC 5280 4.2.1.10), so every
    // IP address is excluded outright: potproxy only signs leaves for intercepted host names.
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: PERMITTED_DOMAINS
            .iter()
            .map(|d| GeneralSubtree::DnsName(d.to_string()))
            .collect(),
        excluded_subtrees: vec![
            GeneralSubtree::IpAddress(CidrSubnet::V4([0; 4], [0; 4])),
            GeneralSubtree::IpAddress(CidrSubnet::V6([0; 16], [0; 16])),
        ],
    });
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    params
}

/// The permitted DNS subtrees of `x509`'s name constraints; `None` when DNS names are not
/// constrained (no extension, or no DNS subtree in it).
fn permitted_dns_subtrees(
    x509: &x509_parser::certificate::X509Certificate<'_>,
) -> Result<Option<Vec<String>>, String> {
    use x509_parser::extensions::GeneralName;
    let Some(constraints) = x509.name_constraints().map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let dns: Vec<String> = constraints
        .value
        .permitted_subtrees
        .iter()
        .flatten()
        .filter_map(|s| match s.base {
            GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    Ok((!dns.is_empty()).then_some(dns))
}

/// RFC 5280 DNS subtree matching: `youtube.com` covers itself and every name below it; a
/// constraint with a leading dot covers only names below it.
fn dns_name_within(host: &str, domains: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    domains.iter().any(|d| {
        if d.starts_with('.') {
            host.ends_with(d.as_str())
        } else {
            host == *d
                || host
                    .strip_suffix(d.as_str())
                    .is_some_and(|rest| rest.ends_with('.'))
        }
    })
}

fn create_private_dir(dir: &Path) -> Result<(), CaError> {
    crate::fsutil::create_private_dir(dir).map_err(|source| CaError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })
}

/// Creates `path` only if it does not exist (`None` if it does), with `mode` from the start so
/// the key is never readable by others, not even briefly.
fn create_exclusive(path: &Path, mode: u32) -> Result<Option<std::fs::File>, CaError> {
    match crate::fsutil::create_new(path, mode) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
        Err(source) => Err(CaError::Write {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn write_synced(f: &mut std::fs::File, data: &[u8]) -> std::io::Result<()> {
    f.write_all(data)?;
    f.sync_all()
}

/// Writes `cert_path` whole or not at all ([`crate::fsutil::write_atomic`]: temp file, fsync,
/// rename, fsync of the directory), so a process that sees both files can read both completely.
/// The certificate is public (0644); the key beside it was created 0600.
fn publish(cert_path: &Path, data: &[u8]) -> Result<(), CaError> {
    // Only the process holding the fresh ca.key gets here, so a certificate already in place was
    // put there by someone else; it is never overwritten.
    if cert_path.exists() {
        return Err(CaError::Write {
            path: cert_path.to_path_buf(),
            source: std::io::ErrorKind::AlreadyExists.into(),
        });
    }
    crate::fsutil::write_atomic(cert_path, data, 0o644).map_err(|source| CaError::Write {
        path: cert_path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_generates_and_second_start_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let a = CertificateAuthority::load_or_create(dir.path()).unwrap();
        let b = CertificateAuthority::load_or_create(dir.path()).unwrap();
        assert_eq!(a.cert_pem, b.cert_pem);
        assert!(a.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        a.authority().unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        CertificateAuthority::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join("ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn key_from_another_ca_is_a_mismatch() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        CertificateAuthority::load_or_create(a.path()).unwrap();
        CertificateAuthority::load_or_create(b.path()).unwrap();
        std::fs::copy(b.path().join("ca.key"), a.path().join("ca.key")).unwrap();
        let e = CertificateAuthority::load_or_create(a.path()).unwrap_err();
        assert!(matches!(e, CaError::Mismatch { .. }), "{e}");
    }

    #[test]
    fn corrupt_certificate_is_named() {
        let dir = tempfile::tempdir().unwrap();
        CertificateAuthority::load_or_create(dir.path()).unwrap();
        std::fs::write(dir.path().join("ca.pem"), "garbage").unwrap();
        let e = CertificateAuthority::load_or_create(dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("ca.pem"), "{e}");
    }

    #[test]
    fn a_lone_key_is_not_silently_replaced() {
        let dir = tempfile::tempdir().unwrap();
        CertificateAuthority::load_or_create(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join("ca.pem")).unwrap();
        assert!(matches!(
            CertificateAuthority::load_or_create_with(dir.path(), Duration::ZERO),
            Err(CaError::Incomplete { .. })
        ));
    }

    #[test]
    fn dns_subtrees_cover_the_domain_and_names_below_it_only() {
        let domains = vec!["youtube.com".to_string(), ".example.net".to_string()];
        for inside in ["youtube.com", "www.youtube.com", "a.b.YouTube.com."] {
            assert!(dns_name_within(inside, &domains), "{inside}");
        }
        for outside in [
            "evilyoutube.com",
            "youtube.com.evil.org",
            "example.net",
            "com",
            "203.0.113.5",
        ] {
            assert!(!dns_name_within(outside, &domains), "{outside}");
        }
        assert!(dns_name_within("www.example.net", &domains));
    }

    #[test]
    fn a_new_ca_permits_the_default_intercept_hosts_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        let reloaded = CertificateAuthority::load_or_create(dir.path()).unwrap();
        for ca in [&ca, &reloaded] {
            for pattern in crate::config::DEFAULT_INTERCEPT_HOSTS {
                assert!(
                    ca.permits_host(pattern.trim_start_matches("*.")),
                    "{pattern}"
                );
            }
            let defaults: Vec<HostPattern> = crate::config::DEFAULT_INTERCEPT_HOSTS
                .iter()
                .map(|h| HostPattern::parse(h).unwrap())
                .collect();
            assert!(ca.hosts_outside_constraints(&defaults).is_empty());
            let custom = ["*.youtube.com", "*.google.com", "accounts.google.com"]
                .map(|h| HostPattern::parse(h).unwrap());
            assert_eq!(
                ca.hosts_outside_constraints(&custom),
                [&custom[1], &custom[2]]
            );
            assert!(ca.permits_host("jnn-pa.googleapis.com"));
            assert!(!ca.permits_host("www.google.com"));
            assert!(!ca.permits_host("tunnel.example.org"));
        }
    }
}
