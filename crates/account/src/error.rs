//! Errors for addresses and identities (RFC 7622 for JIDs, RFC 3261 §19.1 for SIP URIs).

/// Why a user-supplied address could not become an account identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The text had no `@` separating user and domain.
    #[error("address `{0}` must be user@domain")]
    MissingAt(String),
    /// The user part is empty, too long or fails nodeprep (RFC 7622 §3.3).
    #[error("invalid user part `{0}`")]
    InvalidUser(String),
    /// The domain is empty, too long or not a valid host name.
    #[error("invalid domain `{0}`")]
    InvalidDomain(String),
    /// A SIP URI could not be read (scheme other than sip/sips, or malformed).
    #[error("invalid SIP address `{0}`")]
    InvalidSipUri(String),
    /// A phone-number alias had characters other than digits and an optional leading `+`.
    #[error("invalid phone number `{0}`")]
    InvalidNumber(String),
}
