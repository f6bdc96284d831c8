//! The proxy's root CA: `ca.pem` + `ca.key` in `[ca] dir`, generated with rcgen on first start
//! (ECDSA P-256, the key written with mode 0600) and reused afterwards. A corrupt file or a key that
//! does not belong to the certificate is an error naming the file, never silently replaced: users
//! have installed that certificate in their trust stores.

use std::io::Write;
use std::path::{Path, PathBuf};

use hudsucker::certificate_authority::RcgenAuthority;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData,
};

/// Leaf certificates kept in memory (one per intercepted host name).
const LEAF_CACHE_SIZE: u64 = 1_000;

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
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_path", &self.cert_path)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Loads the pair from `dir`, or generates and writes one when neither file exists.
    pub fn load_or_create(dir: &Path) -> Result<Self, CaError> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        match (cert_path.exists(), key_path.exists()) {
            (true, true) => Self::load(cert_path, &key_path),
            (false, false) => Self::create(dir, cert_path, &key_path),
            (true, false) => Err(CaError::Incomplete {
                present: cert_path,
                missing: key_path,
            }),
            (false, true) => Err(CaError::Incomplete {
                present: key_path,
                missing: cert_path,
            }),
        }
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
        Ok(CertificateAuthority {
            cert_path,
            cert_pem,
            key,
        })
    }

    fn create(dir: &Path, cert_path: PathBuf, key_path: &Path) -> Result<Self, CaError> {
        create_private_dir(dir)?;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| CaError::Generate(e.to_string()))?;
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
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(3650);
        let cert = params
            .self_signed(&key)
            .map_err(|e| CaError::Generate(e.to_string()))?;
        let cert_pem = cert.pem();
        write_file(key_path, key.serialize_pem().as_bytes(), 0o600)?;
        write_file(&cert_path, cert_pem.as_bytes(), 0o644)?;
        tracing::info!(path = %cert_path.display(), "generated a new CA; trust this certificate in your clients");
        Ok(CertificateAuthority {
            cert_path,
            cert_pem,
            key,
        })
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

fn create_private_dir(dir: &Path) -> Result<(), CaError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).map_err(|source| CaError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), CaError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(path).map_err(|source| CaError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .map_err(|source| CaError::Write {
            path: path.to_path_buf(),
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
            CertificateAuthority::load_or_create(dir.path()),
            Err(CaError::Incomplete { .. })
        ));
    }
}
