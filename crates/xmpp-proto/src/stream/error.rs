//! RFC 6120 §4.9: stream errors and their XML form.

use minidom::Element;

use crate::ns;

/// A defined stream error condition (RFC 6120 §4.9.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum StreamErrorCondition {
    /// §4.9.3.1: the entity sent XML that cannot be processed.
    #[error("bad-format")]
    BadFormat,
    /// §4.9.3.2: an unsupported namespace prefix was used.
    #[error("bad-namespace-prefix")]
    BadNamespacePrefix,
    /// §4.9.3.3: a new stream for this entity conflicts with the existing one.
    #[error("conflict")]
    Conflict,
    /// §4.9.3.4: no traffic for too long.
    #[error("connection-timeout")]
    ConnectionTimeout,
    /// §4.9.3.5: the served domain is no longer served.
    #[error("host-gone")]
    HostGone,
    /// §4.9.3.6: the `to` domain is not served here.
    #[error("host-unknown")]
    HostUnknown,
    /// §4.9.3.7: a stanza lacks a required `to` or `from`.
    #[error("improper-addressing")]
    ImproperAddressing,
    /// §4.9.3.8: the server hit an internal error.
    #[error("internal-server-error")]
    InternalServerError,
    /// §4.9.3.9: the `from` address is not authorized.
    #[error("invalid-from")]
    InvalidFrom,
    /// §4.9.3.10: the stream or content namespace is wrong.
    #[error("invalid-namespace")]
    InvalidNamespace,
    /// §4.9.3.11: invalid XML (e.g. schema violation).
    #[error("invalid-xml")]
    InvalidXml,
    /// §4.9.3.12: the entity tried to act before authenticating.
    #[error("not-authorized")]
    NotAuthorized,
    /// §4.9.3.13: the data is not well-formed XML.
    #[error("not-well-formed")]
    NotWellFormed,
    /// §4.9.3.14: a local policy (e.g. a size limit) was violated.
    #[error("policy-violation")]
    PolicyViolation,
    /// §4.9.3.15: a remote server could not be reached.
    #[error("remote-connection-failed")]
    RemoteConnectionFailed,
    /// §4.9.3.16: the stream must be reset (e.g. security properties changed).
    #[error("reset")]
    Reset,
    /// §4.9.3.17: the server lacks resources.
    #[error("resource-constraint")]
    ResourceConstraint,
    /// §4.9.3.18: the XML used a construct forbidden by §11.1.
    #[error("restricted-xml")]
    RestrictedXml,
    /// §4.9.3.19: reconnect to the given host (`host`, `host:port` or `[v6]:port`).
    #[error("see-other-host")]
    SeeOtherHost(String),
    /// §4.9.3.20: the server is shutting down.
    #[error("system-shutdown")]
    SystemShutdown,
    /// §4.9.3.21: none of the above; an application condition should explain.
    #[error("undefined-condition")]
    UndefinedCondition,
    /// §4.9.3.22: an encoding other than UTF-8.
    #[error("unsupported-encoding")]
    UnsupportedEncoding,
    /// §4.9.3.23: a mandatory-to-negotiate feature is not supported by the receiver.
    #[error("unsupported-feature")]
    UnsupportedFeature,
    /// §4.9.3.24: an unknown first-level child of the stream.
    #[error("unsupported-stanza-type")]
    UnsupportedStanzaType,
    /// §4.9.3.25: the stream `version` is not supported.
    #[error("unsupported-version")]
    UnsupportedVersion,
}

impl StreamErrorCondition {
    /// The condition's element name.
    pub fn as_str(&self) -> &'static str {
        use StreamErrorCondition as C;
        match self {
            C::BadFormat => "bad-format",
            C::BadNamespacePrefix => "bad-namespace-prefix",
            C::Conflict => "conflict",
            C::ConnectionTimeout => "connection-timeout",
            C::HostGone => "host-gone",
            C::HostUnknown => "host-unknown",
            C::ImproperAddressing => "improper-addressing",
            C::InternalServerError => "internal-server-error",
            C::InvalidFrom => "invalid-from",
            C::InvalidNamespace => "invalid-namespace",
            C::InvalidXml => "invalid-xml",
            C::NotAuthorized => "not-authorized",
            C::NotWellFormed => "not-well-formed",
            C::PolicyViolation => "policy-violation",
            C::RemoteConnectionFailed => "remote-connection-failed",
            C::Reset => "reset",
            C::ResourceConstraint => "resource-constraint",
            C::RestrictedXml => "restricted-xml",
            C::SeeOtherHost(_) => "see-other-host",
            C::SystemShutdown => "system-shutdown",
            C::UndefinedCondition => "undefined-condition",
            C::UnsupportedEncoding => "unsupported-encoding",
            C::UnsupportedFeature => "unsupported-feature",
            C::UnsupportedStanzaType => "unsupported-stanza-type",
            C::UnsupportedVersion => "unsupported-version",
        }
    }

    /// Parses a condition element (`see-other-host` takes its text as the host).
    pub fn from_element(el: &Element) -> Option<StreamErrorCondition> {
        use StreamErrorCondition as C;
        if el.ns() != ns::STREAMS {
            return None;
        }
        Some(match el.name() {
            "bad-format" => C::BadFormat,
            "bad-namespace-prefix" => C::BadNamespacePrefix,
            "conflict" => C::Conflict,
            "connection-timeout" => C::ConnectionTimeout,
            "host-gone" => C::HostGone,
            "host-unknown" => C::HostUnknown,
            "improper-addressing" => C::ImproperAddressing,
            "internal-server-error" => C::InternalServerError,
            "invalid-from" => C::InvalidFrom,
            "invalid-namespace" => C::InvalidNamespace,
            "invalid-xml" => C::InvalidXml,
            "not-authorized" => C::NotAuthorized,
            "not-well-formed" => C::NotWellFormed,
            "policy-violation" => C::PolicyViolation,
            "remote-connection-failed" => C::RemoteConnectionFailed,
            "reset" => C::Reset,
            "resource-constraint" => C::ResourceConstraint,
            "restricted-xml" => C::RestrictedXml,
            "see-other-host" => C::SeeOtherHost(el.text()),
            "system-shutdown" => C::SystemShutdown,
            "undefined-condition" => C::UndefinedCondition,
            "unsupported-encoding" => C::UnsupportedEncoding,
            "unsupported-feature" => C::UnsupportedFeature,
            "unsupported-stanza-type" => C::UnsupportedStanzaType,
            "unsupported-version" => C::UnsupportedVersion,
            _ => return None,
        })
    }
}

/// A stream error: the condition plus optional descriptive text (RFC 6120 §4.9.2).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("stream error {condition}")]
pub struct StreamError {
    /// The defined condition.
    pub condition: StreamErrorCondition,
    /// Human-readable text (English), for diagnostics only.
    pub text: Option<String>,
}

impl From<StreamErrorCondition> for StreamError {
    fn from(condition: StreamErrorCondition) -> StreamError {
        StreamError {
            condition,
            text: None,
        }
    }
}

impl StreamError {
    /// A stream error with a descriptive text.
    pub fn with_text(condition: StreamErrorCondition, text: impl Into<String>) -> StreamError {
        StreamError {
            condition,
            text: Some(text.into()),
        }
    }

    /// The `<stream:error/>` element.
    pub fn to_element(&self) -> Element {
        let mut cond = Element::bare(self.condition.as_str(), ns::STREAMS);
        if let StreamErrorCondition::SeeOtherHost(host) = &self.condition {
            cond.append_text(host.clone());
        }
        let mut el = Element::builder("error", ns::STREAM).append(cond).build();
        if let Some(text) = &self.text {
            let mut t = Element::bare("text", ns::STREAMS);
            t.set_attr(rxml::Namespace::xml().clone(), lang_name(), "en");
            t.append_text(text.clone());
            el.append_child(t);
        }
        el
    }

    /// Parses a received `<stream:error/>` element.
    pub fn from_element(el: &Element) -> Option<StreamError> {
        if el.name() != "error" || el.ns() != ns::STREAM {
            return None;
        }
        let condition = el
            .children()
            .filter(|c| c.name() != "text")
            .find_map(StreamErrorCondition::from_element)
            .unwrap_or(StreamErrorCondition::UndefinedCondition);
        let text = el.get_child("text", ns::STREAMS).map(Element::text);
        Some(StreamError { condition, text })
    }

    /// The serialized `<stream:error>…</stream:error></stream:stream>` that ends a stream.
    pub fn to_closing_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        crate::xml::write_stream_child(&self.to_element(), &mut out);
        out.extend_from_slice(crate::xml::STREAM_CLOSE);
        out
    }
}

/// The `lang` local name, for `xml:lang` attributes.
pub(crate) fn lang_name() -> rxml::NcName {
    rxml::NcName::try_from("lang").unwrap_or_else(|_| unreachable!("'lang' is a valid NCName"))
}
