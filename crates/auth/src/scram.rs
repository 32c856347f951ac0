//! SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677): password login where the server
//! never sees the password and the client can check it talks to the real server.
//!
//! The server keeps a [`ScramCredential`] (salt, iteration count, StoredKey, ServerKey) beside
//! the argon2id hash; both are made from the password when it is set. SCRAM cannot use the
//! argon2id hash itself: the client derives its proof with PBKDF2 from the salt we send.
//!
//! The exchange is a pure state machine: [`ClientFirst::parse`] reads the client's first
//! message, [`ScramServer::new`] answers it with the server-first message, and
//! [`ScramServer::finish`] checks the client's proof and returns the server-final message. The
//! account lookup, throttling and logging around it live in [`crate::Authenticator`].
//!
//! Channel binding (the `-PLUS` variant, RFC 5802 §6) ties the exchange to the TLS connection,
//! so a man in the middle with a certificate the client wrongly trusts still cannot log in.
//! Two binding types are known: `tls-exporter` (RFC 9266, the one for TLS 1.3) and
//! `tls-server-end-point` (RFC 5929 §4, a hash of the server certificate, for TLS 1.2). The
//! connection driver computes the data; this module only compares it.
//!
//! A small [`ScramClient`] exists for tests and tools; it is not used by the server.
//!
//! Limits: only SHA-256 is offered (SHA-1 is kept for the RFC 5802 test vectors). Usernames are
//! compared as sent (after `=2C`/`=3D` decoding), not SASLprep'd; passwords are SASLprep'd
//! (RFC 4013) when the credential is made, falling back to the raw bytes when that fails, as
//! most clients do.

use std::borrow::Cow;
use std::fmt;

use postfach_secret::Secret;
use postfach_store::ScramCredential;

use crate::crypto::{self, HashAlgorithm};
use crate::encoding::{base64_decode, base64_encode};

/// PBKDF2 iterations for new credentials. RFC 7677 §4: at least 4096; the cost falls on the
/// client at each login, so this stays moderate.
pub const ITERATIONS: u32 = 10_000;
/// Bytes of salt for new credentials.
const SALT_LEN: usize = 16;
/// Bytes of randomness in the server's nonce part.
const NONCE_LEN: usize = 18;
/// Iteration counts accepted from the store: a corrupt row must not make a login take hours.
const MAX_ITERATIONS: u32 = 1_000_000;

/// Why a SCRAM exchange failed. The names follow the `server-error-value`s of RFC 5802 §7.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// A message does not follow the RFC 5802 §7 syntax.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// The client asked for a mandatory extension (`m=`), which nobody has defined.
    #[error("SCRAM extensions are not supported")]
    ExtensionsNotSupported,
    /// The username is not valid `saslname` text.
    #[error("invalid username encoding")]
    InvalidUsernameEncoding,
    /// The client wants a channel binding type this connection cannot give.
    #[error("unsupported channel binding type")]
    UnsupportedChannelBindingType,
    /// The client chose SCRAM-SHA-256-PLUS but sent no channel binding, or the reverse.
    #[error("channel binding flag does not fit the mechanism")]
    ChannelBindingMisuse,
    /// The client believes the server cannot bind, but it can: a downgrade (RFC 5802 §6).
    #[error("server does support channel binding")]
    ServerDoesSupportChannelBinding,
    /// The channel binding data differs from the connection's: another TLS connection.
    #[error("channel bindings don't match")]
    ChannelBindingsDontMatch,
    /// The final message's nonce is not the one agreed.
    #[error("nonce mismatch")]
    NonceMismatch,
    /// The proof is wrong: wrong password (or unknown user).
    #[error("invalid proof")]
    InvalidProof,
}

impl ScramError {
    /// True when the error says something about the credentials (count it as a failed login);
    /// false for protocol errors that tested no password.
    pub fn is_credential_failure(&self) -> bool {
        matches!(
            self,
            ScramError::InvalidProof
                | ScramError::ChannelBindingsDontMatch
                | ScramError::ServerDoesSupportChannelBinding
                | ScramError::NonceMismatch
        )
    }
}

/// Derives a SCRAM-SHA-256 credential for `password` with a fresh random salt.
pub fn credential(password: &Secret) -> Result<ScramCredential, String> {
    let salt = crypto::random_bytes(SALT_LEN)?;
    Ok(derive(HashAlgorithm::Sha256, password.expose_secret(), &salt, ITERATIONS))
}

/// RFC 5802 §3: SaltedPassword, ClientKey, StoredKey, ServerKey for the given parameters. The
/// normalised password, SaltedPassword and ClientKey are password equivalents: each is a
/// [`Secret`], wiped when this returns.
pub(crate) fn derive(
    algorithm: HashAlgorithm,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> ScramCredential {
    let normalized = normalize(password);
    let salted = crypto::pbkdf2(algorithm, normalized.expose_secret(), salt, iterations);
    let client_key = Secret::new(crypto::hmac(algorithm, salted.expose_secret(), b"Client Key"));
    ScramCredential {
        iterations,
        salt: salt.to_vec(),
        stored_key: crypto::hash(algorithm, client_key.expose_secret()),
        server_key: crypto::hmac(algorithm, salted.expose_secret(), b"Server Key"),
    }
}

/// RFC 5802 §2.2 `Normalize(str)`: SASLprep (RFC 4013) when the password is UTF-8 it accepts,
/// the bytes as they are otherwise. The copy is a [`Secret`]; a string SASLprep had to change
/// is taken over without another copy.
fn normalize(password: &[u8]) -> Secret {
    match std::str::from_utf8(password).map(stringprep::saslprep) {
        Ok(Ok(Cow::Owned(prepared))) => Secret::from(prepared),
        Ok(Ok(Cow::Borrowed(prepared))) => Secret::new(prepared.as_bytes().to_vec()),
        _ => Secret::new(password.to_vec()),
    }
}

/// A random server nonce part: base64 text, which never contains `,`.
pub fn server_nonce() -> Result<String, String> {
    crypto::random_bytes(NONCE_LEN).map(|b| base64_encode(&b))
}

// --- channel binding ------------------------------------------------------------------------

/// The kinds of TLS channel binding we can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelBindingType {
    /// RFC 9266: `export_keying_material("EXPORTER-Channel-Binding", no context, 32)`; TLS 1.3.
    TlsExporter,
    /// RFC 5929 §4: a hash of the server's end-entity certificate; for TLS 1.2.
    TlsServerEndPoint,
}

impl ChannelBindingType {
    /// The `cb-name` clients send (`p=tls-exporter`).
    pub fn name(self) -> &'static str {
        match self {
            ChannelBindingType::TlsExporter => "tls-exporter",
            ChannelBindingType::TlsServerEndPoint => "tls-server-end-point",
        }
    }
}

/// The channel binding data of one TLS connection.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelBinding {
    kind: ChannelBindingType,
    data: Vec<u8>,
}

impl fmt::Debug for ChannelBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelBinding").field("kind", &self.kind).field("len", &self.data.len()).finish()
    }
}

impl ChannelBinding {
    /// RFC 9266 label for the keying material exporter.
    pub const EXPORTER_LABEL: &'static [u8] = b"EXPORTER-Channel-Binding";
    /// RFC 9266 length of the exported keying material.
    pub const EXPORTER_LEN: usize = 32;

    /// Binding data of the given kind, as computed by the TLS layer.
    pub fn new(kind: ChannelBindingType, data: Vec<u8>) -> Self {
        Self { kind, data }
    }

    /// `tls-server-end-point` from the server's DER certificate (RFC 5929 §4.1): the hash of the
    /// certificate with the hash function of its signature algorithm, SHA-256 when that is MD5
    /// or SHA-1 or cannot be told (RSA-PSS parameters, EdDSA).
    pub fn tls_server_end_point(certificate_der: &[u8]) -> Self {
        let algorithm = certificate_hash(certificate_der);
        Self { kind: ChannelBindingType::TlsServerEndPoint, data: crypto::hash(algorithm, certificate_der) }
    }

    /// The binding type.
    pub fn kind(&self) -> ChannelBindingType {
        self.kind
    }

    /// The binding data.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
}

/// The hash RFC 5929 §4.1 prescribes for a certificate, from its `signatureAlgorithm` OID.
fn certificate_hash(der: &[u8]) -> HashAlgorithm {
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, ... }
    // AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, parameters ANY OPTIONAL }
    let oid = der_element(der, 0x30)
        .and_then(|(certificate, _)| der_element(certificate, 0x30))
        .and_then(|(_, after_tbs)| der_element(after_tbs, 0x30))
        .and_then(|(algorithm, _)| der_element(algorithm, 0x06))
        .map(|(oid, _)| oid);
    const SHA384_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
    const SHA512_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
    const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    const ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
    match oid {
        Some(SHA384_RSA | ECDSA_SHA384) => HashAlgorithm::Sha384,
        Some(SHA512_RSA | ECDSA_SHA512) => HashAlgorithm::Sha512,
        _ => HashAlgorithm::Sha256,
    }
}

/// Reads one DER element with the expected tag: `(contents, rest)`.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len_byte, rest) = rest.split_first()?;
    let (len, rest) = if len_byte < 0x80 {
        (usize::from(len_byte), rest)
    } else {
        let count = usize::from(len_byte & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        (bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b)), rest)
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

// --- the exchange ---------------------------------------------------------------------------

/// Which of the two mechanisms the client chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// SCRAM-SHA-256: no channel binding.
    Plain,
    /// SCRAM-SHA-256-PLUS: channel binding required.
    Plus,
}

/// The client's `gs2-cbind-flag` (RFC 5802 §7).
#[derive(Debug, Clone, PartialEq, Eq)]
enum CbindFlag {
    /// `n`: the client does not support channel binding.
    Unsupported,
    /// `y`: the client supports it but thinks the server does not.
    ThinksServerCannot,
    /// `p=name`: the client binds with this type.
    Binds(String),
}

/// A parsed client-first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    flag: CbindFlag,
    /// The authorization identity (`a=`), if the client sent one.
    pub authzid: Option<String>,
    /// The authentication identity (`n=`), decoded.
    pub username: String,
    gs2_header: String,
    bare: String,
    nonce: String,
}

impl ClientFirst {
    /// Parses `gs2-header client-first-message-bare` (RFC 5802 §7).
    pub fn parse(message: &[u8]) -> Result<Self, ScramError> {
        let text = std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let mut parts = text.splitn(3, ',');
        let (Some(flag), Some(authz), Some(bare)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ScramError::Malformed("missing GS2 header"));
        };
        let flag = match flag {
            "n" => CbindFlag::Unsupported,
            "y" => CbindFlag::ThinksServerCannot,
            _ => match flag.strip_prefix("p=") {
                Some(name)
                    if !name.is_empty()
                        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') =>
                {
                    CbindFlag::Binds(name.to_owned())
                }
                _ => return Err(ScramError::Malformed("bad channel binding flag")),
            },
        };
        let authzid = match authz {
            "" => None,
            _ => match authz.strip_prefix("a=") {
                Some(name) => Some(saslname(name)?),
                None => return Err(ScramError::Malformed("bad authzid")),
            },
        };
        let gs2_header = text[..text.len() - bare.len()].to_owned();
        if bare.starts_with("m=") {
            return Err(ScramError::ExtensionsNotSupported);
        }
        let mut attrs = bare.split(',');
        let username = match attrs.next().and_then(|a| a.strip_prefix("n=")) {
            Some(name) => saslname(name)?,
            None => return Err(ScramError::Malformed("missing username")),
        };
        let nonce = match attrs.next().and_then(|a| a.strip_prefix("r=")) {
            Some(nonce) if is_printable(nonce) => nonce.to_owned(),
            _ => return Err(ScramError::Malformed("missing or bad nonce")),
        };
        check_extensions(attrs)?;
        Ok(Self { flag, authzid, username, gs2_header, bare: bare.to_owned(), nonce })
    }
}

/// `saslname` decoding: `=2C` is `,`, `=3D` is `=`, any other `=` is an error.
fn saslname(raw: &str) -> Result<String, ScramError> {
    if raw.is_empty() {
        return Err(ScramError::InvalidUsernameEncoding);
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::InvalidUsernameEncoding),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    if out.contains('\0') {
        return Err(ScramError::InvalidUsernameEncoding);
    }
    Ok(out)
}

/// `saslname` encoding (for the client).
fn saslname_encode(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// RFC 5802 `printable`: `%x21-2B / %x2D-7E`, at least one.
fn is_printable(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// Optional `attr-val` extensions: ignored when well-formed (RFC 5802 §7).
fn check_extensions<'a>(attrs: impl Iterator<Item = &'a str>) -> Result<(), ScramError> {
    for attr in attrs {
        let mut chars = attr.chars();
        let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.next() == Some('=');
        if !ok {
            return Err(ScramError::Malformed("bad extension"));
        }
    }
    Ok(())
}

/// The server side of one exchange, after the server-first message.
pub struct ScramServer {
    algorithm: HashAlgorithm,
    credential: ScramCredential,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    /// `gs2-header` plus the binding data: what `c=` must carry.
    cbind_input: Vec<u8>,
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramServer").field("server_first", &self.server_first).finish_non_exhaustive()
    }
}

impl ScramServer {
    /// Answers a client-first message. `binding` is this connection's channel binding, `Some`
    /// exactly when the session advertises SCRAM-SHA-256-PLUS; `server_nonce` is printable
    /// random text (see [`server_nonce`]).
    pub fn new(
        first: &ClientFirst,
        variant: Variant,
        binding: Option<&ChannelBinding>,
        credential: ScramCredential,
        server_nonce: &str,
    ) -> Result<Self, ScramError> {
        Self::with_algorithm(HashAlgorithm::Sha256, first, variant, binding, credential, server_nonce)
    }

    fn with_algorithm(
        algorithm: HashAlgorithm,
        first: &ClientFirst,
        variant: Variant,
        binding: Option<&ChannelBinding>,
        credential: ScramCredential,
        server_nonce: &str,
    ) -> Result<Self, ScramError> {
        let mut cbind_input = first.gs2_header.as_bytes().to_vec();
        match (variant, &first.flag) {
            (Variant::Plain, CbindFlag::Unsupported) => {}
            // RFC 5802 §6: "y" while the server offers binding means someone removed the -PLUS
            // mechanism from the capability list on the way.
            (Variant::Plain, CbindFlag::ThinksServerCannot) => {
                if binding.is_some() {
                    return Err(ScramError::ServerDoesSupportChannelBinding);
                }
            }
            (Variant::Plus, CbindFlag::Binds(name)) => match binding {
                Some(b) if b.kind.name() == name => cbind_input.extend_from_slice(&b.data),
                _ => return Err(ScramError::UnsupportedChannelBindingType),
            },
            (Variant::Plain, CbindFlag::Binds(_))
            | (Variant::Plus, CbindFlag::Unsupported | CbindFlag::ThinksServerCannot) => {
                return Err(ScramError::ChannelBindingMisuse);
            }
        }
        let nonce = format!("{}{server_nonce}", first.nonce);
        let iterations = credential.iterations.clamp(1, MAX_ITERATIONS);
        let server_first = format!("r={nonce},s={},i={iterations}", base64_encode(&credential.salt));
        Ok(Self {
            algorithm,
            credential,
            client_first_bare: first.bare.clone(),
            server_first,
            nonce,
            cbind_input,
        })
    }

    /// The server-first message to send.
    pub fn server_first(&self) -> &str {
        &self.server_first
    }

    /// Checks the client-final message; on success returns the server-final message (`v=...`)
    /// that proves to the client that we know its password's keys.
    pub fn finish(&self, client_final: &[u8]) -> Result<String, ScramError> {
        let text = std::str::from_utf8(client_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        // The proof is the last attribute (RFC 5802 §7 client-final-message).
        let Some(at) = text.rfind(",p=") else {
            return Err(ScramError::Malformed("missing proof"));
        };
        let (without_proof, proof) = (&text[..at], &text[at + 3..]);
        let proof = base64_decode(proof.as_bytes()).ok_or(ScramError::Malformed("bad proof encoding"))?;
        let mut attrs = without_proof.split(',');
        let binding = match attrs.next().and_then(|a| a.strip_prefix("c=")) {
            Some(b) => base64_decode(b.as_bytes()).ok_or(ScramError::Malformed("bad channel binding"))?,
            None => return Err(ScramError::Malformed("missing channel binding")),
        };
        let nonce =
            attrs.next().and_then(|a| a.strip_prefix("r=")).ok_or(ScramError::Malformed("missing nonce"))?;
        check_extensions(attrs)?;

        let auth_message = format!("{},{},{without_proof}", self.client_first_bare, self.server_first);
        let client_signature =
            crypto::hmac(self.algorithm, &self.credential.stored_key, auth_message.as_bytes());
        let proof_ok = proof.len() == client_signature.len() && {
            // ClientKey opens the account as well as the password does: keep it wrapped.
            let client_key = Secret::new(proof.iter().zip(&client_signature).map(|(p, s)| p ^ s).collect());
            crypto::ct_eq(
                &crypto::hash(self.algorithm, client_key.expose_secret()),
                &self.credential.stored_key,
            )
        };
        // Binding and nonce are checked after the proof was computed, so every failure costs
        // the same.
        if !crypto::ct_eq(&binding, &self.cbind_input) {
            return Err(ScramError::ChannelBindingsDontMatch);
        }
        if nonce != self.nonce {
            return Err(ScramError::NonceMismatch);
        }
        if !proof_ok {
            return Err(ScramError::InvalidProof);
        }
        let server_signature =
            crypto::hmac(self.algorithm, &self.credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", base64_encode(&server_signature)))
    }
}

// --- a client, for tests and tools ----------------------------------------------------------

/// The client side of SCRAM-SHA-256(-PLUS), for tests and tools. Not hardened for use against
/// untrusted servers beyond what the RFC requires (it does check the server signature).
pub struct ScramClient {
    password: Secret,
    gs2_header: String,
    binding: Vec<u8>,
    first_bare: String,
    nonce: String,
    expected_server_signature: Option<Vec<u8>>,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient").field("first_bare", &self.first_bare).finish_non_exhaustive()
    }
}

impl ScramClient {
    /// Starts an exchange for `username`/`password` with the given client nonce, binding with
    /// `binding` when given (SCRAM-SHA-256-PLUS).
    pub fn new(username: &str, password: &[u8], nonce: &str, binding: Option<&ChannelBinding>) -> Self {
        let gs2_header = match binding {
            Some(b) => format!("p={},,", b.kind.name()),
            None => "n,,".to_owned(),
        };
        Self {
            password: Secret::new(password.to_vec()),
            gs2_header,
            binding: binding.map(|b| b.data.clone()).unwrap_or_default(),
            first_bare: format!("n={},r={nonce}", saslname_encode(username)),
            nonce: nonce.to_owned(),
            expected_server_signature: None,
        }
    }

    /// The client-first message.
    pub fn client_first(&self) -> String {
        format!("{}{}", self.gs2_header, self.first_bare)
    }

    /// Answers the server-first message with the client-final message.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<String, ScramError> {
        let text = std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let mut attrs = text.split(',');
        let nonce = attrs.next().and_then(|a| a.strip_prefix("r=")).ok_or(ScramError::Malformed("nonce"))?;
        let salt = attrs
            .next()
            .and_then(|a| a.strip_prefix("s="))
            .and_then(|s| base64_decode(s.as_bytes()))
            .ok_or(ScramError::Malformed("salt"))?;
        let iterations: u32 = attrs
            .next()
            .and_then(|a| a.strip_prefix("i="))
            .and_then(|i| i.parse().ok())
            .filter(|i| (1..=MAX_ITERATIONS).contains(i))
            .ok_or(ScramError::Malformed("iterations"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ScramError::NonceMismatch);
        }
        let algorithm = HashAlgorithm::Sha256;
        let normalized = normalize(self.password.expose_secret());
        let salted = crypto::pbkdf2(algorithm, normalized.expose_secret(), &salt, iterations);
        let client_key = Secret::new(crypto::hmac(algorithm, salted.expose_secret(), b"Client Key"));
        let stored_key = crypto::hash(algorithm, client_key.expose_secret());
        let mut cbind_input = self.gs2_header.as_bytes().to_vec();
        cbind_input.extend_from_slice(&self.binding);
        let without_proof = format!("c={},r={nonce}", base64_encode(&cbind_input));
        let auth_message = format!("{},{text},{without_proof}", self.first_bare);
        let signature = crypto::hmac(algorithm, &stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.expose_secret().iter().zip(&signature).map(|(k, s)| k ^ s).collect();
        let server_key = crypto::hmac(algorithm, salted.expose_secret(), b"Server Key");
        self.expected_server_signature = Some(crypto::hmac(algorithm, &server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", base64_encode(&proof)))
    }

    /// True when the server-final message proves the server knows the credential.
    pub fn verify_server_final(&self, server_final: &[u8]) -> bool {
        let Some(expected) = &self.expected_server_signature else {
            return false;
        };
        server_final
            .strip_prefix(b"v=")
            .and_then(base64_decode)
            .is_some_and(|sig| crypto::ct_eq(&sig, expected))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Runs one exchange through the server with fixed nonce and salt, RFC-example style.
    fn exchange(
        algorithm: HashAlgorithm,
        client_first: &str,
        password: &[u8],
        salt_b64: &str,
        server_nonce: &str,
        client_final: &str,
    ) -> (String, Result<String, ScramError>) {
        let salt = base64_decode(salt_b64.as_bytes()).unwrap();
        let credential = derive(algorithm, password, &salt, 4096);
        let first = ClientFirst::parse(client_first.as_bytes()).unwrap();
        let server =
            ScramServer::with_algorithm(algorithm, &first, Variant::Plain, None, credential, server_nonce)
                .unwrap();
        (server.server_first().to_owned(), server.finish(client_final.as_bytes()))
    }

    /// RFC 7677 §3: the SCRAM-SHA-256 example exchange, byte for byte.
    #[test]
    fn rfc7677_example() {
        let (server_first, server_final) = exchange(
            HashAlgorithm::Sha256,
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            b"pencil",
            "W22ZaJ0SNY7soEsUEjb6gQ==",
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        );
        assert_eq!(
            server_first,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        assert_eq!(server_final.unwrap(), "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    /// RFC 5802 §5: the SCRAM-SHA-1 example exchange (same code, other hash).
    #[test]
    fn rfc5802_example() {
        let (server_first, server_final) = exchange(
            HashAlgorithm::Sha1,
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            b"pencil",
            "QSXCR+Q6sek8bf92",
            "3rfcNHYJY1ZVvWVs7j",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        );
        assert_eq!(server_first, "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096");
        assert_eq!(server_final.unwrap(), "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    }

    #[test]
    fn wrong_password_tampered_nonce_and_binding_fail() {
        let (_, wrong) = exchange(
            HashAlgorithm::Sha256,
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            b"pencil2",
            "W22ZaJ0SNY7soEsUEjb6gQ==",
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        );
        assert_eq!(wrong, Err(ScramError::InvalidProof));
        let (_, nonce) = exchange(
            HashAlgorithm::Sha256,
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            b"pencil",
            "W22ZaJ0SNY7soEsUEjb6gQ==",
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        );
        assert_eq!(nonce, Err(ScramError::NonceMismatch));
        // "eSws" is "y,,": the gs2 header differs from the one in client-first.
        let (_, binding) = exchange(
            HashAlgorithm::Sha256,
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            b"pencil",
            "W22ZaJ0SNY7soEsUEjb6gQ==",
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        );
        assert_eq!(binding, Err(ScramError::ChannelBindingsDontMatch));
    }

    fn credential_for(password: &[u8]) -> ScramCredential {
        derive(HashAlgorithm::Sha256, password, b"0123456789abcdef", 4096)
    }

    /// Client and server of this module agree, with and without channel binding.
    fn round_trip(
        binding_client: Option<&ChannelBinding>,
        binding_server: Option<&ChannelBinding>,
        variant: Variant,
    ) -> Result<bool, ScramError> {
        let mut client = ScramClient::new("alice,=x", b"s3cret", "clientnonce", binding_client);
        let first = ClientFirst::parse(client.client_first().as_bytes())?;
        assert_eq!(first.username, "alice,=x");
        let server =
            ScramServer::new(&first, variant, binding_server, credential_for(b"s3cret"), "servernonce")?;
        let last = client.client_final(server.server_first().as_bytes())?;
        let server_final = server.finish(last.as_bytes())?;
        Ok(client.verify_server_final(server_final.as_bytes()))
    }

    #[test]
    fn channel_binding_rules() {
        let exporter = ChannelBinding::new(ChannelBindingType::TlsExporter, vec![7; 32]);
        let other_connection = ChannelBinding::new(ChannelBindingType::TlsExporter, vec![8; 32]);
        let end_point = ChannelBinding::new(ChannelBindingType::TlsServerEndPoint, vec![7; 32]);
        assert_eq!(round_trip(None, None, Variant::Plain), Ok(true));
        assert_eq!(
            round_trip(None, Some(&exporter), Variant::Plain),
            Ok(true),
            "n is fine with PLUS on offer"
        );
        assert_eq!(round_trip(Some(&exporter), Some(&exporter), Variant::Plus), Ok(true));
        // A man in the middle terminates TLS: the client's binding data differs from ours.
        assert_eq!(
            round_trip(Some(&other_connection), Some(&exporter), Variant::Plus),
            Err(ScramError::ChannelBindingsDontMatch)
        );
        assert_eq!(
            round_trip(Some(&end_point), Some(&exporter), Variant::Plus),
            Err(ScramError::UnsupportedChannelBindingType)
        );
        assert_eq!(
            round_trip(Some(&exporter), None, Variant::Plus),
            Err(ScramError::UnsupportedChannelBindingType)
        );
        assert_eq!(round_trip(None, Some(&exporter), Variant::Plus), Err(ScramError::ChannelBindingMisuse));
        assert_eq!(
            round_trip(Some(&exporter), Some(&exporter), Variant::Plain),
            Err(ScramError::ChannelBindingMisuse)
        );
    }

    #[test]
    fn downgrade_is_detected() {
        let exporter = ChannelBinding::new(ChannelBindingType::TlsExporter, vec![7; 32]);
        let first = ClientFirst::parse(b"y,,n=user,r=abc").unwrap();
        let refused = ScramServer::new(&first, Variant::Plain, Some(&exporter), credential_for(b"x"), "s");
        assert_eq!(refused.err(), Some(ScramError::ServerDoesSupportChannelBinding));
        // Without binding on offer, "y" is an honest answer.
        assert!(ScramServer::new(&first, Variant::Plain, None, credential_for(b"x"), "s").is_ok());
    }

    #[test]
    fn client_first_syntax() {
        let first = ClientFirst::parse(b"n,a=bob,n=alice,r=nonce,x=ignored").unwrap();
        assert_eq!(first.authzid.as_deref(), Some("bob"));
        assert_eq!(first.username, "alice");
        assert_eq!(first.gs2_header, "n,a=bob,");
        assert_eq!(first.bare, "n=alice,r=nonce,x=ignored");
        for (bad, err) in [
            (&b"n,,m=ext,n=a,r=b"[..], ScramError::ExtensionsNotSupported),
            (b"n,,n=a=41,r=b", ScramError::InvalidUsernameEncoding),
            (b"n,,n=,r=b", ScramError::InvalidUsernameEncoding),
            (b"x,,n=a,r=b", ScramError::Malformed("bad channel binding flag")),
            (b"p=,,n=a,r=b", ScramError::Malformed("bad channel binding flag")),
            (b"n,b=c,n=a,r=b", ScramError::Malformed("bad authzid")),
            (b"n,,r=b", ScramError::Malformed("missing username")),
            (b"n,,n=a", ScramError::Malformed("missing or bad nonce")),
            (b"n,,n=a,r=", ScramError::Malformed("missing or bad nonce")),
            (b"n,,n=a,r=b,1", ScramError::Malformed("bad extension")),
            (b"n,,", ScramError::Malformed("missing username")),
            (b"n", ScramError::Malformed("missing GS2 header")),
            (b"\xff,,n=a,r=b", ScramError::Malformed("not UTF-8")),
        ] {
            assert_eq!(ClientFirst::parse(bad), Err(err), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn client_final_syntax_errors_do_not_panic() {
        let first = ClientFirst::parse(b"n,,n=user,r=abc").unwrap();
        let server = ScramServer::new(&first, Variant::Plain, None, credential_for(b"x"), "def").unwrap();
        for bad in [
            &b""[..],
            b"p=",
            b"c=biws,p=AAAA",
            b"r=abcdef,p=AAAA",
            b"c=!!,r=abcdef,p=AAAA",
            b"c=biws,r=abcdef,p=!",
        ] {
            assert!(
                matches!(server.finish(bad), Err(ScramError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // A proof of the wrong length is just a wrong proof.
        assert_eq!(server.finish(b"c=biws,r=abcdef,p=AAAA"), Err(ScramError::InvalidProof));
    }

    #[test]
    fn saslprep_applies_to_passwords() {
        // RFC 4013 §3: U+00AD SOFT HYPHEN maps to nothing, so "I\u{AD}X" and "IX" are one password.
        assert_eq!(credential_for("I\u{AD}X".as_bytes()), credential_for(b"IX"));
        // Bytes that are not UTF-8 are used as they are.
        assert_ne!(credential_for(b"\xff\xfe"), credential_for(b""));
    }

    #[test]
    fn end_point_hash_follows_the_signature_algorithm() {
        // SEQUENCE { SEQUENCE {} (tbs), SEQUENCE { OID ecdsa-with-SHA384 }, BIT STRING }
        let ecdsa384 = [
            0x30, 0x11, 0x30, 0x00, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
            0x03, 0x01, 0x00,
        ];
        assert_eq!(certificate_hash(&ecdsa384), HashAlgorithm::Sha384);
        assert_eq!(ChannelBinding::tls_server_end_point(&ecdsa384).data().len(), 48);
        // ecdsa-with-SHA256, and garbage, hash with SHA-256.
        let mut ecdsa256 = ecdsa384;
        ecdsa256[15] = 0x02;
        assert_eq!(certificate_hash(&ecdsa256), HashAlgorithm::Sha256);
        assert_eq!(certificate_hash(b"\x30\x84\xff\xff\xff\xff"), HashAlgorithm::Sha256);
        assert_eq!(ChannelBinding::tls_server_end_point(b"").data().len(), 32);
    }

    #[test]
    fn fresh_credentials_and_nonces_differ() {
        let a = credential(&Secret::from(b"pw".to_vec())).unwrap();
        let b = credential(&Secret::from(b"pw".to_vec())).unwrap();
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.stored_key, b.stored_key);
        assert_eq!(a.iterations, ITERATIONS);
        let n = server_nonce().unwrap();
        assert!(is_printable(&n) && n.len() == 24, "{n}");
    }
}
