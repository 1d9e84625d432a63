//! XEP-0077: In-Band Registration — `<query xmlns='jabber:iq:register'>` with the fields the
//! server uses: `registered`, `username`, `password` and `remove`.

use super::{PayloadError, text_el};
use minidom::Element;

/// The registration namespace.
pub const NS: &str = "jabber:iq:register";

/// A registration query: the form request, its answer, a change or a cancellation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterQuery {
    /// `<registered/>` (§3.2.1): the requester already has an account.
    pub registered: bool,
    /// `<username/>`'s text, as sent (`Some("")`: the empty field of a form).
    pub username: Option<String>,
    /// `<password/>`'s text, as sent (`Some("")`: the empty field of a form).
    pub password: Option<String>,
    /// `<remove/>` (§3.2): cancel the registration.
    pub remove: bool,
}

impl TryFrom<&Element> for RegisterQuery {
    type Error = PayloadError;

    /// Fields the server does not use (other §14 fields, data forms) are skipped.
    fn try_from(el: &Element) -> Result<Self, PayloadError> {
        if !el.is("query", NS) {
            return Err(PayloadError::Unexpected);
        }
        let text = |n: &str| el.get_child(n, NS).map(Element::text);
        Ok(Self {
            registered: el.get_child("registered", NS).is_some(),
            username: text("username"),
            password: text("password"),
            remove: el.get_child("remove", NS).is_some(),
        })
    }
}

/// A field element: empty for an empty value (a form's field to fill in).
fn field(name: &str, value: &str) -> Element {
    if value.is_empty() {
        Element::bare(name, NS)
    } else {
        text_el(name, NS, value)
    }
}

impl From<&RegisterQuery> for Element {
    fn from(q: &RegisterQuery) -> Element {
        let mut out = Element::bare("query", NS);
        if q.registered {
            out.append_child(Element::bare("registered", NS));
        }
        if let Some(u) = &q.username {
            out.append_child(field("username", u));
        }
        if let Some(p) = &q.password {
            out.append_child(field("password", p));
        }
        if q.remove {
            out.append_child(Element::bare("remove", NS));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<RegisterQuery, PayloadError> {
        RegisterQuery::try_from(&s.parse::<Element>().expect("valid test XML"))
    }

    #[test]
    fn change_and_form_round_trip() {
        let q = parse(
            "<query xmlns='jabber:iq:register'><username>alice</username>\
             <password>s3cret</password><email>x</email></query>",
        );
        let want = RegisterQuery {
            username: Some("alice".into()),
            password: Some("s3cret".into()),
            ..RegisterQuery::default()
        };
        assert_eq!(q, Ok(want.clone()));
        assert_eq!(RegisterQuery::try_from(&Element::from(&want)), Ok(want));
        let form = RegisterQuery {
            registered: true,
            username: Some("alice".into()),
            password: Some(String::new()),
            remove: false,
        };
        let el = Element::from(&form);
        let names: Vec<&str> = el.children().map(Element::name).collect();
        assert_eq!(names, ["registered", "username", "password"]);
        let pw = el.get_child("password", NS).expect("password field");
        assert_eq!(pw.nodes().count(), 0, "the field to fill in is empty");
        assert_eq!(RegisterQuery::try_from(&el), Ok(form));
    }

    #[test]
    fn remove_parses_and_other_payloads_are_rejected() {
        let q = parse("<query xmlns='jabber:iq:register'><remove/></query>").expect("parses");
        assert!(q.remove);
        assert_eq!(q.password, None);
        assert_eq!(
            parse("<query xmlns='jabber:iq:roster'><remove/></query>"),
            Err(PayloadError::Unexpected)
        );
        assert_eq!(
            parse("<remove xmlns='jabber:iq:register'/>"),
            Err(PayloadError::Unexpected)
        );
    }
}
