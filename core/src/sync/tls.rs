//! TLS for sync: rustls with the ring provider, WebPKI roots, optional
//! extra roots, and optional certificate pinning by SPKI SHA-256.
//!
//! Pinning wraps rustls' own verifier: the chain, name and validity are
//! checked normally first, and only then is the leaf's SubjectPublicKeyInfo
//! hashed and compared with the pins. Pinning the key rather than the
//! certificate survives certificate renewals that keep the key (the usual
//! practice, and what HPKP pinned too); an app pins a backup key as well.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The rustls client configuration sync uses: WebPKI roots plus
/// `extra_roots_pem`, and a pinning verifier when `pins` is not empty.
/// Fails with [`Error::InvalidSetting`] on unreadable PEM.
pub fn client_config(
    pins: &[[u8; 32]],
    extra_roots_pem: &[String],
) -> Result<rustls::ClientConfig> {
    let bad = |reason: String| Error::InvalidSetting {
        setting: "extra_roots_pem",
        reason,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for pem in extra_roots_pem {
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("PEM: {e}")))?;
        if certs.is_empty() {
            return Err(bad("no certificate in a PEM entry".into()));
        }
        for c in certs {
            roots.add(c).map_err(|e| bad(format!("certificate: {e}")))?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS versions: {e}")))?;
    if pins.is_empty() {
        return Ok(builder.with_root_certificates(roots).with_no_client_auth());
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| bad(format!("verifier: {e}")))?;
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinningVerifier {
            inner,
            pins: pins.to_vec(),
        }))
        .with_no_client_auth())
}

/// Normal WebPKI verification, then the leaf's SPKI hash must be pinned.
#[derive(Debug)]
struct PinningVerifier {
    inner: Arc<WebPkiServerVerifier>,
    pins: Vec<[u8; 32]>,
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let hash = spki_sha256(end_entity.as_ref()).ok_or(rustls::Error::InvalidCertificate(
            CertificateError::BadEncoding,
        ))?;
        if self.pins.contains(&hash) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// SHA-256 of the certificate's SubjectPublicKeyInfo (the value to pin),
/// or `None` if the DER is not a certificate.
pub fn spki_sha256(certificate_der: &[u8]) -> Option<[u8; 32]> {
    spki_of_certificate(certificate_der).map(|spki| Sha256::digest(spki).into())
}

/// The DER of the SubjectPublicKeyInfo inside an X.509 certificate (tag and
/// length included), found by walking the TBSCertificate's fields (RFC 5280
/// 4.1): optional `[0]` version, serial, signature algorithm, issuer,
/// validity, subject, then the key. `None` on anything malformed.
pub fn spki_of_certificate(der: &[u8]) -> Option<&[u8]> {
    let (cert, _) = tlv(der, 0x30)?;
    let (tbs, _) = tlv(cert.content, 0x30)?;
    let mut rest = tbs.content;
    if rest.first() == Some(&0xA0) {
        rest = tlv(rest, 0xA0)?.1;
    }
    for tag in [0x02, 0x30, 0x30, 0x30, 0x30] {
        rest = tlv(rest, tag)?.1;
    }
    let (spki, _) = tlv(rest, 0x30)?;
    Some(spki.whole)
}

struct Tlv<'a> {
    whole: &'a [u8],
    content: &'a [u8],
}

/// One DER element with the expected tag at the start of `input`, and what
/// follows it.
fn tlv(input: &[u8], tag: u8) -> Option<(Tlv<'_>, &[u8])> {
    if *input.first()? != tag {
        return None;
    }
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for b in input.get(2..2 + n)? {
            len = (len << 8) | usize::from(*b);
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    let whole = input.get(..end)?;
    Some((
        Tlv {
            whole,
            content: whole.get(header..)?,
        },
        input.get(end..)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spki_found_in_a_certificate_is_the_key_pairs_own() {
        for alg in [&rcgen::PKCS_ECDSA_P256_SHA256, &rcgen::PKCS_ED25519] {
            let key = rcgen::KeyPair::generate_for(alg).unwrap();
            let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
                .unwrap()
                .self_signed(&key)
                .unwrap();
            let spki = spki_of_certificate(cert.der()).unwrap();
            assert_eq!(spki, key.public_key_der().as_slice());
            let want: [u8; 32] = Sha256::digest(key.public_key_der()).into();
            assert_eq!(spki_sha256(cert.der()), Some(want));
        }
    }

    #[test]
    fn malformed_certificates_give_no_spki_and_never_panic() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().to_vec();
        for cut in 0..der.len().min(400) {
            let _ = spki_of_certificate(&der[..cut]);
        }
        assert!(spki_of_certificate(&der[..der.len() / 2]).is_none());
        assert!(spki_of_certificate(&[]).is_none());
        assert!(spki_of_certificate(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]).is_none());
    }

    #[test]
    fn unreadable_extra_roots_are_a_setting_error() {
        assert!(matches!(
            client_config(&[], &["not a pem".into()]),
            Err(Error::InvalidSetting { .. })
        ));
        assert!(client_config(&[[0; 32]], &[]).is_ok());
    }
}
