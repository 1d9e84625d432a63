//! RFC 3261 §7.3.3 and §20: header field names, compact forms and case-insensitive lookup.

macro_rules! header_kinds {
    ($( $(#[$doc:meta])* $kind:ident => $canon:literal, [$($alias:literal),*]; )*) => {
        /// The header fields the parser recognises by name; everything else is [`HeaderKind::Other`].
        #[non_exhaustive]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum HeaderKind {
            $( $(#[$doc])* $kind, )*
            /// A header field this crate has no typed knowledge of.
            Other,
        }

        impl HeaderKind {
            /// The canonical (long-form) name, or `""` for [`HeaderKind::Other`].
            pub fn canonical_name(self) -> &'static str {
                match self {
                    $( Self::$kind => $canon, )*
                    Self::Other => "",
                }
            }

            /// Looks up a header name, case-insensitively, including compact forms.
            pub fn from_name(name: &[u8]) -> Self {
                // Switch on length first: most lengths have one or two candidates, so this is
                // usually a single case-insensitive compare.
                if name.len() > MAX_KNOWN_NAME {
                    return Self::Other;
                }
                $( $( if $alias.len() == name.len() && name.eq_ignore_ascii_case($alias) { return Self::$kind; } )* )*
                Self::Other
            }
        }
    };
}

/// Longest recognised header name, in bytes.
const MAX_KNOWN_NAME: usize = 19;

header_kinds! {
    /// `Via` / `v` (RFC 3261 §20.42).
    Via => "Via", [b"via", b"v"];
    /// `From` / `f` (§20.20).
    From => "From", [b"from", b"f"];
    /// `To` / `t` (§20.39).
    To => "To", [b"to", b"t"];
    /// `Call-ID` / `i` (§20.8).
    CallId => "Call-ID", [b"call-id", b"i"];
    /// `CSeq` (§20.16).
    CSeq => "CSeq", [b"cseq"];
    /// `Max-Forwards` (§20.22).
    MaxForwards => "Max-Forwards", [b"max-forwards"];
    /// `Contact` / `m` (§20.10).
    Contact => "Contact", [b"contact", b"m"];
    /// `Expires` (§20.19).
    Expires => "Expires", [b"expires"];
    /// `Min-Expires` (§20.23).
    MinExpires => "Min-Expires", [b"min-expires"];
    /// `Content-Length` / `l` (§20.14).
    ContentLength => "Content-Length", [b"content-length", b"l"];
    /// `Content-Type` / `c` (§20.15).
    ContentType => "Content-Type", [b"content-type", b"c"];
    /// `Content-Encoding` / `e` (§20.12).
    ContentEncoding => "Content-Encoding", [b"content-encoding", b"e"];
    /// `Route` (§20.34).
    Route => "Route", [b"route"];
    /// `Record-Route` (§20.30).
    RecordRoute => "Record-Route", [b"record-route"];
    /// `Path` (RFC 3327).
    Path => "Path", [b"path"];
    /// `Call-Info` (§20.9).
    CallInfo => "Call-Info", [b"call-info"];
    /// `Event` / `o` (RFC 6665).
    Event => "Event", [b"event", b"o"];
    /// `Allow-Events` / `u` (RFC 6665).
    AllowEvents => "Allow-Events", [b"allow-events", b"u"];
    /// `Require` (§20.32).
    Require => "Require", [b"require"];
    /// `Proxy-Require` (§20.29).
    ProxyRequire => "Proxy-Require", [b"proxy-require"];
    /// `Supported` / `k` (§20.37).
    Supported => "Supported", [b"supported", b"k"];
    /// `Unsupported` (§20.40).
    Unsupported => "Unsupported", [b"unsupported"];
    /// `Authorization` (§20.7).
    Authorization => "Authorization", [b"authorization"];
    /// `Proxy-Authorization` (§20.28).
    ProxyAuthorization => "Proxy-Authorization", [b"proxy-authorization"];
    /// `WWW-Authenticate` (§20.44).
    WwwAuthenticate => "WWW-Authenticate", [b"www-authenticate"];
    /// `Proxy-Authenticate` (§20.27).
    ProxyAuthenticate => "Proxy-Authenticate", [b"proxy-authenticate"];
    /// `Authentication-Info` (§20.6).
    AuthenticationInfo => "Authentication-Info", [b"authentication-info"];
    /// `Allow` (§20.5).
    Allow => "Allow", [b"allow"];
    /// `Accept` (§20.1).
    Accept => "Accept", [b"accept"];
    /// `Subject` / `s` (§20.36).
    Subject => "Subject", [b"subject", b"s"];
    /// `User-Agent` (§20.41).
    UserAgent => "User-Agent", [b"user-agent"];
    /// `Server` (§20.35).
    Server => "Server", [b"server"];
    /// `Date` (§20.17).
    Date => "Date", [b"date"];
    /// `Timestamp` (§20.38).
    Timestamp => "Timestamp", [b"timestamp"];
    /// `Refer-To` / `r` (RFC 3515).
    ReferTo => "Refer-To", [b"refer-to", b"r"];
    /// `Session-Expires` / `x` (RFC 4028).
    SessionExpires => "Session-Expires", [b"session-expires", b"x"];
}

impl HeaderKind {
    /// True for fields whose grammar is `#value` (comma-separated list) so values may be split.
    pub fn is_list(self) -> bool {
        matches!(
            self,
            Self::Via
                | Self::Contact
                | Self::Route
                | Self::RecordRoute
                | Self::Path
                | Self::CallInfo
                | Self::Require
                | Self::ProxyRequire
                | Self::Supported
                | Self::Unsupported
                | Self::Allow
                | Self::AllowEvents
                | Self::Accept
                | Self::ContentEncoding
        )
    }

    pub(crate) fn missing_reason(self) -> &'static str {
        match self {
            Self::Via => "Missing Via Header",
            Self::From => "Missing From Header",
            Self::To => "Missing To Header",
            Self::CallId => "Missing Call-ID Header",
            Self::CSeq => "Missing CSeq Header",
            _ => "Missing Required Header",
        }
    }

    pub(crate) fn duplicate_reason(self) -> &'static str {
        match self {
            Self::From => "Multiple From Values",
            Self::To => "Multiple To Values",
            Self::CallId => "Multiple Call-ID Values",
            Self::CSeq => "Multiple CSeq Values",
            Self::MaxForwards => "Multiple Max-Forwards Values",
            _ => "Multiple Values In Single-Value Header",
        }
    }

    pub(crate) fn malformed_reason(self) -> &'static str {
        match self {
            Self::Via => "Malformed Via Header",
            Self::From => "Malformed From Header",
            Self::To => "Malformed To Header",
            Self::CallId => "Malformed Call-ID Header",
            Self::CSeq => "Malformed CSeq Header",
            Self::MaxForwards => "Malformed Max-Forwards Header",
            Self::Contact => "Malformed Contact Header",
            Self::Expires => "Malformed Expires Header",
            Self::Route => "Malformed Route Header",
            Self::RecordRoute => "Malformed Record-Route Header",
            Self::Authorization | Self::ProxyAuthorization => "Malformed Authorization Header",
            _ => "Malformed Header Field",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HeaderKind;

    #[test]
    fn lookup_long_compact_and_case() {
        assert_eq!(HeaderKind::from_name(b"VIA"), HeaderKind::Via);
        assert_eq!(HeaderKind::from_name(b"v"), HeaderKind::Via);
        assert_eq!(HeaderKind::from_name(b"I"), HeaderKind::CallId);
        assert_eq!(HeaderKind::from_name(b"cAlL-iD"), HeaderKind::CallId);
        assert_eq!(HeaderKind::from_name(b"l"), HeaderKind::ContentLength);
        assert_eq!(
            HeaderKind::from_name(b"Authentication-Info"),
            HeaderKind::AuthenticationInfo
        );
        assert_eq!(
            HeaderKind::from_name(b"X-Very-Long-Header-Name"),
            HeaderKind::Other
        );
        assert_eq!(HeaderKind::from_name(b""), HeaderKind::Other);
        assert_eq!(HeaderKind::from_name(b"q"), HeaderKind::Other);
    }
}
