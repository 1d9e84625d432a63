//! RFC 4616: the PLAIN SASL mechanism (server parsing and client message).

use std::fmt;

use super::{SaslCondition, ServerStep};

/// A secret string whose `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl Secret {
    /// The secret text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The parsed PLAIN message: identities SASLprep'd, the password for the caller to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainAuth {
    /// The authorization identity, if the client sent one.
    pub authzid: Option<String>,
    /// The SASLprep'd authentication identity (username).
    pub authcid: String,
    /// The SASLprep'd password.
    pub password: Secret,
}

/// Parses `[authzid] NUL authcid NUL passwd` (RFC 4616 §2).
pub fn parse_plain(data: &[u8]) -> Result<PlainAuth, SaslCondition> {
    let text = std::str::from_utf8(data).map_err(|_| SaslCondition::MalformedRequest)?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslCondition::MalformedRequest);
    };
    if authcid.is_empty() || password.is_empty() || authcid.len() > 255 || password.len() > 255 {
        return Err(SaslCondition::MalformedRequest);
    }
    let prep = |s: &str| {
        stringprep::saslprep(s)
            .map(|c| c.into_owned())
            .map_err(|_| SaslCondition::MalformedRequest)
    };
    let authcid = prep(authcid)?;
    let password = prep(password)?;
    if authcid.is_empty() || password.is_empty() {
        return Err(SaslCondition::MalformedRequest);
    }
    let authzid = if authzid.is_empty() {
        None
    } else if authzid.len() > 255 {
        return Err(SaslCondition::InvalidAuthzid);
    } else {
        Some(authzid.to_owned())
    };
    Ok(PlainAuth {
        authzid,
        authcid,
        password: Secret(password),
    })
}

/// Builds a PLAIN client message.
pub fn plain_client_message(authzid: Option<&str>, authcid: &str, password: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(authcid.len() + password.len() + 2);
    out.extend_from_slice(authzid.unwrap_or("").as_bytes());
    out.push(0);
    out.extend_from_slice(authcid.as_bytes());
    out.push(0);
    out.extend_from_slice(password.as_bytes());
    out
}

#[derive(Debug, Default)]
enum State {
    #[default]
    Initial,
    EmptySeen,
    Verifying(PlainAuth),
    Done,
}

/// A server-side PLAIN exchange: parse, let the caller verify, succeed or fail.
#[derive(Debug, Default)]
pub struct PlainServer {
    state: State,
}

impl PlainServer {
    pub(crate) fn step(&mut self, data: &[u8]) -> Result<ServerStep, SaslCondition> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Initial if data.is_empty() => {
                self.state = State::EmptySeen;
                Ok(ServerStep::Challenge(Vec::new()))
            }
            State::Initial | State::EmptySeen => {
                let auth = parse_plain(data)?;
                self.state = State::Verifying(auth.clone());
                Ok(ServerStep::VerifyPlain(auth))
            }
            State::Verifying(_) | State::Done => Err(SaslCondition::MalformedRequest),
        }
    }

    pub(crate) fn verified(&mut self, ok: bool) -> Result<ServerStep, SaslCondition> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Verifying(auth) if ok => Ok(ServerStep::Success {
                username: auth.authcid,
                authzid: auth.authzid,
                additional_data: None,
            }),
            State::Verifying(_) => Err(SaslCondition::NotAuthorized),
            _ => Err(SaslCondition::MalformedRequest),
        }
    }
}
