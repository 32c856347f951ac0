//! What a certificate says, read back from its DER: subject, names, validity and the SHA-256
//! fingerprint a client shows (`tls show`, the start log, renewal of the generated certificate).
//!
//! Limits: only the leaf is described; the chain behind it is neither read nor checked.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;

use crate::tls::TlsError;

/// The parts of a certificate an operator checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertInfo {
    /// The subject as text, such as `CN=mail.example.org`.
    pub(crate) subject: String,
    /// The subject's common name, if it has one.
    pub(crate) common_name: Option<String>,
    /// The subject alternative names (DNS names and IP addresses), in certificate order.
    pub(crate) names: Vec<String>,
    /// Start of validity.
    pub(crate) not_before: OffsetDateTime,
    /// End of validity.
    pub(crate) not_after: OffsetDateTime,
    /// SHA-256 of the DER, as [`fingerprint`] writes it.
    pub(crate) sha256: String,
}

impl CertInfo {
    /// Describes the DER certificate `der`; `None` if it does not parse.
    pub(crate) fn from_der(der: &[u8]) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let common_name =
            cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned);
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => names.push((*dns).to_owned()),
                    GeneralName::IPAddress(bytes) => names.extend(ip_address(bytes).map(|ip| ip.to_string())),
                    _ => {}
                }
            }
        }
        let validity = cert.validity();
        Some(Self {
            subject: cert.subject().to_string(),
            common_name,
            names,
            not_before: validity.not_before.to_datetime(),
            not_after: validity.not_after.to_datetime(),
            sha256: fingerprint(der),
        })
    }

    /// Describes the first (leaf) certificate of the PEM file `path`.
    pub(crate) fn read(path: &Path) -> Result<Self, TlsError> {
        let pem_error = |source| TlsError::Pem { path: path.to_owned(), source };
        let der = CertificateDer::pem_file_iter(path)
            .map_err(pem_error)?
            .next()
            .ok_or(rustls::pki_types::pem::Error::NoItemsFound)
            .map_err(pem_error)?
            .map_err(pem_error)?;
        Self::from_der(&der).ok_or_else(|| TlsError::Unreadable { path: path.to_owned() })
    }
}

/// The SHA-256 fingerprint of `der` as browsers and Thunderbird show it: upper-case hex bytes
/// separated by colons.
pub(crate) fn fingerprint(der: &[u8]) -> String {
    let mut text = String::with_capacity(32 * 3);
    for (i, byte) in Sha256::digest(der).iter().enumerate() {
        if i > 0 {
            text.push(':');
        }
        let _ = write!(text, "{byte:02X}");
    }
    text
}

/// A date as `2025-06-01 12:00:00 UTC`.
pub(crate) fn date(when: OffsetDateTime) -> String {
    let utc = when.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}

/// An IP address SAN: 4 or 16 bytes.
fn ip_address(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(IpAddr::V4(Ipv4Addr::from(v4)));
    }
    <[u8; 16]>::try_from(bytes).ok().map(|v6| IpAddr::V6(Ipv6Addr::from(v6)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_colon_separated_upper_hex() {
        // SHA-256 of the empty input.
        assert_eq!(
            fingerprint(b""),
            "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55"
        );
    }

    #[test]
    fn dates_are_utc() {
        let when = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(date(when), "2023-11-14 22:13:20 UTC");
    }
}
