//! TLS channel binding for SCRAM-SHA-256-PLUS: the data that ties a SASL exchange to this very
//! TLS connection, handed to the session after each handshake.
//!
//! TLS 1.3 uses `tls-exporter` (RFC 9266): 32 bytes of keying material exported with the label
//! `EXPORTER-Channel-Binding` and no context. TLS 1.2 uses `tls-server-end-point` (RFC 5929
//! §4): a hash of the certificate the server presented, found again by the name the client sent
//! (SNI), the way the resolver chose it. RFC 9266 allows `tls-exporter` on TLS 1.2 only with the
//! extended master secret, which rustls does not report, so it is not offered there.
//!
//! IMAP connections run rustls' unbuffered API (`tls_conn`), which has no exporter: for them
//! [`tls_exporter`] derives the same value from the connection's exporter secret (RFC 8446
//! §7.5), and [`tls_server_end_point`] takes the name from the ClientHello.
//!
//! Limits: if the certificates were reloaded between the handshake and the lookup, the TLS 1.2
//! binding names the new certificate and SCRAM-PLUS fails for that connection (safe: it fails
//! closed, and plain SCRAM or PLAIN still work).

use postfach_auth::scram::{ChannelBinding, ChannelBindingType};
use rustls::crypto::tls13::{HkdfExpander, OkmBlock};
use rustls::{ProtocolVersion, ServerConnection, Tls13CipherSuite};

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
        ProtocolVersion::TLSv1_2 => tls_server_end_point(certificates, conn.server_name()),
        _ => None,
    }
}

/// The TLS 1.2 binding (`tls-server-end-point`) of a connection whose client asked for
/// `server_name`.
pub(crate) fn tls_server_end_point(
    certificates: Option<&Certificates>,
    server_name: Option<&str>,
) -> Option<ChannelBinding> {
    let leaf = certificates?.end_entity(server_name)?;
    Some(ChannelBinding::tls_server_end_point(&leaf))
}

/// The TLS 1.3 binding (`tls-exporter`, RFC 9266) from the connection's exporter secret: the
/// exporter of RFC 8446 §7.5 with the binding's label and no context, as rustls'
/// `export_keying_material` computes it.
pub(crate) fn tls_exporter(suite: &Tls13CipherSuite, exporter_secret: &[u8]) -> Option<ChannelBinding> {
    let hash = suite.common.hash_provider;
    // rustls logs the secret at the hash's length; anything else is no secret of this suite.
    if exporter_secret.len() != hash.output_len() {
        return None;
    }
    let empty = hash.hash(&[]);
    let hkdf = suite.hkdf_provider;
    // Derive-Secret(exporter secret, label, "") ...
    let expander = hkdf.expander_for_okm(&OkmBlock::new(exporter_secret));
    let mut derived = vec![0u8; expander.hash_len()];
    expand_label(expander.as_ref(), ChannelBinding::EXPORTER_LABEL, empty.as_ref(), &mut derived)?;
    // ... then HKDF-Expand-Label(that, "exporter", Hash(context), length).
    let expander = hkdf.expander_for_okm(&OkmBlock::new(&derived));
    let mut data = vec![0u8; ChannelBinding::EXPORTER_LEN];
    expand_label(expander.as_ref(), b"exporter", empty.as_ref(), &mut data)?;
    Some(ChannelBinding::new(ChannelBindingType::TlsExporter, data))
}

/// HKDF-Expand-Label (RFC 8446 §7.1) into `out`.
fn expand_label(expander: &dyn HkdfExpander, label: &[u8], context: &[u8], out: &mut [u8]) -> Option<()> {
    const PREFIX: &[u8] = b"tls13 ";
    let length = u16::try_from(out.len()).ok()?.to_be_bytes();
    let label_len = [u8::try_from(PREFIX.len() + label.len()).ok()?];
    let context_len = [u8::try_from(context.len()).ok()?];
    expander.expand_slice(&[&length, &label_len, PREFIX, label, &context_len, context], out).ok()
}
