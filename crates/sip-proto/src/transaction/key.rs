//! RFC 3261 §17.1.3 and §17.2.3: transaction keys, with the RFC 2543 fallback and ACK/CANCEL matching.

use crate::message::{Method, Request, Response};

/// Identifies a transaction; equal keys mean the message belongs to the same transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransactionKey {
    /// RFC 3261 key: branch (with the `z9hG4bK` cookie), sent-by (lowercased, server side
    /// only) and method (ACK counted as INVITE).
    Rfc3261 {
        /// The top Via branch.
        branch: Box<[u8]>,
        /// The top Via sent-by, lowercased; empty for client keys.
        sent_by: Box<[u8]>,
        /// The method, ACK mapped to INVITE.
        method: Box<[u8]>,
    },
    /// RFC 2543 fallback for branches without the cookie: Request-URI, From tag, Call-ID,
    /// CSeq number, method (ACK as INVITE) and the top Via. The To tag is left out so the ACK
    /// for a non-2xx (which carries the To tag of the response) matches its INVITE.
    Rfc2543 {
        /// Concatenation of the identifying fields.
        fields: Box<[u8]>,
    },
}

fn key_method(method: &[u8]) -> &[u8] {
    if method == b"ACK" { b"INVITE" } else { method }
}

impl TransactionKey {
    /// The key of a request arriving at a server transaction (§17.2.3); `None` when the
    /// identifying headers do not parse.
    pub fn server(req: &Request) -> Option<Self> {
        Self::server_with_method(req, req.method_bytes())
    }

    /// The key of the INVITE server transaction a CANCEL refers to (§9.2).
    pub fn cancel_target(cancel: &Request) -> Option<Self> {
        if cancel.method() != Method::Cancel {
            return None;
        }
        Self::server_with_method(cancel, b"INVITE")
    }

    fn server_with_method(req: &Request, method: &[u8]) -> Option<Self> {
        let via = req.top_via().ok()?;
        let method = key_method(method);
        if via.has_rfc3261_branch() {
            return Some(Self::Rfc3261 {
                branch: via.branch()?.into(),
                sent_by: via.sent_by().to_ascii_lowercase().into(),
                method: method.into(),
            });
        }
        let mut f = Vec::with_capacity(160);
        for part in [
            req.uri_bytes(),
            req.from_addr().ok()?.tag().unwrap_or_default(),
            req.call_id().ok()?,
            req.cseq().ok()?.number.to_string().as_bytes(),
            method,
            via.as_bytes(),
        ] {
            f.extend_from_slice(part);
            f.push(0);
        }
        Some(Self::Rfc2543 { fields: f.into() })
    }

    /// The key of a client transaction for the request it sends (§17.1.3).
    pub fn client(req: &Request) -> Option<Self> {
        let via = req.top_via().ok()?;
        Some(Self::Rfc3261 {
            branch: via.branch()?.into(),
            sent_by: Box::default(),
            method: key_method(req.method_bytes()).into(),
        })
    }

    /// The client transaction a response belongs to: top Via branch and CSeq method (§17.1.3).
    pub fn for_response(resp: &Response) -> Option<Self> {
        let via = resp.top_via().ok()?;
        let cseq = resp.cseq().ok()?;
        Some(Self::Rfc3261 {
            branch: via.branch()?.into(),
            sent_by: Box::default(),
            method: key_method(cseq.method_bytes).into(),
        })
    }
}
