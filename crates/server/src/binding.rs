//! TLS channel binding for SCRAM-SHA-256-PLUS: the data that ties a SASL exchange to this very
//! TLS connection, handed to the session after each handshake.
//!
//! TLS 1.3 uses `tls-exporter` (RFC 9266): 32 bytes of keying material exported with the label
//! `EXPORTER-Channel-Binding` and no context. TLS 1.2 uses `tls-server-end-point` (RFC 5929
//! §4): a hash of the certificate the server presented, found again by the name the client sent
//! (SNI), the way the resolver chose it. RFC 9266 allows `tls-exporter` on TLS 1.2 only with the
//! extended master secret, which rustls does not report, so it is not offered there.
//!
//! Limits: if the certificates were reloaded between the handshake and the lookup, the TLS 1.2
//! binding names the new certificate and SCRAM-PLUS fails for that connection (safe: it fails
//! closed, and plain SCRAM or PLAIN still work).

use postfach_auth::scram::{ChannelBinding, ChannelBindingType};
use rustls::{ProtocolVersion, ServerConnection};

use crate::tls::Certificates;

/// The channel binding of an established TLS connection, if one can be given.
pub(crate) fn channel_binding(
    conn: &ServerConnection,
    certificates: Option<&Certificates>,
) -> Option<ChannelBinding> {
    match conn.protocol_version()? {
        ProtocolVersion::TLSv1_3 => {
            let data = conn
                .export_keying_material(
                    vec![0u8; ChannelBinding::EXPORTER_LEN],
                    ChannelBinding::EXPORTER_LABEL,
                    None,
                )
                .ok()?;
            Some(ChannelBinding::new(ChannelBindingType::TlsExporter, data))
        }
        ProtocolVersion::TLSv1_2 => {
            let leaf = certificates?.end_entity(conn.server_name())?;
            Some(ChannelBinding::tls_server_end_point(&leaf))
        }
        _ => None,
    }
}
