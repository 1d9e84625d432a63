//! RFC 6120 §8.3: stanza errors, their types and XML form.

use minidom::Element;

use crate::ns;

/// The `type` of a stanza error (RFC 6120 §8.3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StanzaErrorType {
    /// Retry after providing credentials.
    Auth,
    /// Do not retry (the error cannot be remedied).
    Cancel,
    /// Proceed (the condition was only a warning).
    Continue,
    /// Retry after changing the data sent.
    Modify,
    /// Retry after waiting (the error is temporary).
    Wait,
}

impl StanzaErrorType {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            StanzaErrorType::Auth => "auth",
            StanzaErrorType::Cancel => "cancel",
            StanzaErrorType::Continue => "continue",
            StanzaErrorType::Modify => "modify",
            StanzaErrorType::Wait => "wait",
        }
    }

    /// Parses the attribute value.
    pub fn from_name(s: &str) -> Option<StanzaErrorType> {
        Some(match s {
            "auth" => StanzaErrorType::Auth,
            "cancel" => StanzaErrorType::Cancel,
            "continue" => StanzaErrorType::Continue,
            "modify" => StanzaErrorType::Modify,
            "wait" => StanzaErrorType::Wait,
            _ => return None,
        })
    }
}

/// A defined stanza error condition (RFC 6120 §8.3.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StanzaErrorCondition {
    /// §8.3.3.1: malformed or unprocessable request.
    BadRequest,
    /// §8.3.3.2: a resource or session with that name already exists.
    Conflict,
    /// §8.3.3.3: the feature is not implemented.
    FeatureNotImplemented,
    /// §8.3.3.4: the requester lacks permission.
    Forbidden,
    /// §8.3.3.5: the recipient is gone; optional new address (XMPP URI).
    Gone(Option<String>),
    /// §8.3.3.6: the server hit an internal error.
    InternalServerError,
    /// §8.3.3.7: the addressed item does not exist.
    ItemNotFound,
    /// §8.3.3.8: the JID is malformed.
    JidMalformed,
    /// §8.3.3.9: the request violates the recipient's criteria.
    NotAcceptable,
    /// §8.3.3.10: nobody is allowed to do this.
    NotAllowed,
    /// §8.3.3.11: authentication is needed first.
    NotAuthorized,
    /// §8.3.3.12: a local policy was violated.
    PolicyViolation,
    /// §8.3.3.13: the recipient is temporarily unavailable.
    RecipientUnavailable,
    /// §8.3.3.14: redirect to the given address (XMPP URI).
    Redirect(Option<String>),
    /// §8.3.3.15: registration is required.
    RegistrationRequired,
    /// §8.3.3.16: the remote server does not exist.
    RemoteServerNotFound,
    /// §8.3.3.17: the remote server did not answer in time.
    RemoteServerTimeout,
    /// §8.3.3.18: the server lacks resources.
    ResourceConstraint,
    /// §8.3.3.19: the service is not offered.
    ServiceUnavailable,
    /// §8.3.3.20: a subscription is required.
    SubscriptionRequired,
    /// §8.3.3.21: none of the above.
    UndefinedCondition,
    /// §8.3.3.22: the request was unexpected here and now.
    UnexpectedRequest,
}

impl StanzaErrorCondition {
    /// The condition's element name.
    pub fn as_str(&self) -> &'static str {
        use StanzaErrorCondition as C;
        match self {
            C::BadRequest => "bad-request",
            C::Conflict => "conflict",
            C::FeatureNotImplemented => "feature-not-implemented",
            C::Forbidden => "forbidden",
            C::Gone(_) => "gone",
            C::InternalServerError => "internal-server-error",
            C::ItemNotFound => "item-not-found",
            C::JidMalformed => "jid-malformed",
            C::NotAcceptable => "not-acceptable",
            C::NotAllowed => "not-allowed",
            C::NotAuthorized => "not-authorized",
            C::PolicyViolation => "policy-violation",
            C::RecipientUnavailable => "recipient-unavailable",
            C::Redirect(_) => "redirect",
            C::RegistrationRequired => "registration-required",
            C::RemoteServerNotFound => "remote-server-not-found",
            C::RemoteServerTimeout => "remote-server-timeout",
            C::ResourceConstraint => "resource-constraint",
            C::ServiceUnavailable => "service-unavailable",
            C::SubscriptionRequired => "subscription-required",
            C::UndefinedCondition => "undefined-condition",
            C::UnexpectedRequest => "unexpected-request",
        }
    }

    /// The error type RFC 6120 §8.3.3 gives as usual for this condition.
    pub fn default_type(&self) -> StanzaErrorType {
        use StanzaErrorCondition as C;
        use StanzaErrorType as T;
        match self {
            C::BadRequest
            | C::JidMalformed
            | C::NotAcceptable
            | C::PolicyViolation
            | C::Redirect(_) => T::Modify,
            C::Forbidden | C::NotAuthorized | C::RegistrationRequired | C::SubscriptionRequired => {
                T::Auth
            }
            C::RecipientUnavailable
            | C::RemoteServerTimeout
            | C::ResourceConstraint
            | C::UnexpectedRequest => T::Wait,
            C::Conflict
            | C::FeatureNotImplemented
            | C::Gone(_)
            | C::InternalServerError
            | C::ItemNotFound
            | C::NotAllowed
            | C::RemoteServerNotFound
            | C::ServiceUnavailable
            | C::UndefinedCondition => T::Cancel,
        }
    }

    /// Parses a condition element (`gone`/`redirect` take their text as the address).
    pub fn from_element(el: &Element) -> Option<StanzaErrorCondition> {
        use StanzaErrorCondition as C;
        if el.ns() != ns::STANZAS {
            return None;
        }
        let uri = || Some(el.text()).filter(|t| !t.is_empty());
        Some(match el.name() {
            "bad-request" => C::BadRequest,
            "conflict" => C::Conflict,
            "feature-not-implemented" => C::FeatureNotImplemented,
            "forbidden" => C::Forbidden,
            "gone" => C::Gone(uri()),
            "internal-server-error" => C::InternalServerError,
            "item-not-found" => C::ItemNotFound,
            "jid-malformed" => C::JidMalformed,
            "not-acceptable" => C::NotAcceptable,
            "not-allowed" => C::NotAllowed,
            "not-authorized" => C::NotAuthorized,
            "policy-violation" => C::PolicyViolation,
            "recipient-unavailable" => C::RecipientUnavailable,
            "redirect" => C::Redirect(uri()),
            "registration-required" => C::RegistrationRequired,
            "remote-server-not-found" => C::RemoteServerNotFound,
            "remote-server-timeout" => C::RemoteServerTimeout,
            "resource-constraint" => C::ResourceConstraint,
            "service-unavailable" => C::ServiceUnavailable,
            "subscription-required" => C::SubscriptionRequired,
            "undefined-condition" => C::UndefinedCondition,
            "unexpected-request" => C::UnexpectedRequest,
            _ => return None,
        })
    }
}

/// A stanza error (RFC 6120 §8.3.2): type, condition, optional `by` and text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("stanza error {} ({})", condition.as_str(), error_type.as_str())]
pub struct StanzaError {
    /// The error type.
    pub error_type: StanzaErrorType,
    /// The defined condition.
    pub condition: StanzaErrorCondition,
    /// The entity that generated the error, if stated.
    pub by: Option<String>,
    /// Human-readable text (English).
    pub text: Option<String>,
}

impl StanzaError {
    /// An error with the condition's usual type and no text.
    pub fn new(condition: StanzaErrorCondition) -> StanzaError {
        StanzaError {
            error_type: condition.default_type(),
            condition,
            by: None,
            text: None,
        }
    }

    /// The `<error/>` element in the content namespace `content_ns`.
    pub fn to_element(&self, content_ns: &str) -> Element {
        let mut cond = Element::bare(self.condition.as_str(), ns::STANZAS);
        if let StanzaErrorCondition::Gone(Some(u)) | StanzaErrorCondition::Redirect(Some(u)) =
            &self.condition
        {
            cond.append_text(u.clone());
        }
        let mut el = Element::builder("error", content_ns)
            .attr(type_name(), self.error_type.as_str())
            .append(cond)
            .build();
        if let Some(by) = &self.by {
            el.set_attr(rxml::Namespace::NONE, by_name(), by.clone());
        }
        if let Some(text) = &self.text {
            let mut t = Element::bare("text", ns::STANZAS);
            t.set_attr(
                rxml::Namespace::xml().clone(),
                crate::stream::error::lang_name(),
                "en",
            );
            t.append_text(text.clone());
            el.append_child(t);
        }
        el
    }

    /// Parses an `<error/>` child element (any content namespace).
    pub fn from_element(el: &Element) -> Option<StanzaError> {
        if el.name() != "error" {
            return None;
        }
        let error_type = el.attr("type").and_then(StanzaErrorType::from_name)?;
        let condition = el
            .children()
            .filter(|c| c.name() != "text")
            .find_map(StanzaErrorCondition::from_element)
            .unwrap_or(StanzaErrorCondition::UndefinedCondition);
        Some(StanzaError {
            error_type,
            condition,
            by: el.attr("by").map(str::to_owned),
            text: el.get_child("text", ns::STANZAS).map(Element::text),
        })
    }

    /// Builds the error reply to `stanza`: same name, namespace and id, `to`/`from` swapped,
    /// `type='error'`, no original payload.
    pub fn reply_to(&self, stanza: &Element) -> Element {
        let mut reply = Element::bare(stanza.name(), stanza.ns());
        for (attr, src) in [("id", "id"), ("to", "from"), ("from", "to")] {
            if let (Some(v), Ok(n)) = (stanza.attr(src), rxml::NcName::try_from(attr)) {
                reply.set_attr(rxml::Namespace::NONE, n, v.to_owned());
            }
        }
        reply.set_attr(rxml::Namespace::NONE, type_name(), "error");
        reply.append_child(self.to_element(&stanza.ns()));
        reply
    }
}

fn type_name() -> rxml::NcName {
    rxml::NcName::try_from("type").unwrap_or_else(|_| unreachable!("'type' is a valid NCName"))
}

fn by_name() -> rxml::NcName {
    rxml::NcName::try_from("by").unwrap_or_else(|_| unreachable!("'by' is a valid NCName"))
}
