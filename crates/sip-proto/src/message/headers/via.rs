//! RFC 3261 §20.42 and §18.2.1, RFC 3581: the Via header field value.

use crate::message::params::Params;
use crate::message::text::{is_lws, is_token, parse_u64, trim};
use crate::message::uri::{Host, is_ipv4, is_ipv6, split_hostport};

/// The `rport` parameter (RFC 3581): requested without a value, or filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rport {
    /// `;rport` — the client asks for the source port.
    Requested,
    /// `;rport=N`.
    Port(u16),
}

/// One Via value (`SIP/2.0/UDP host:port;params`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    raw: &'a [u8],
    protocol: &'a [u8],
    transport: &'a [u8],
    sent_by: &'a [u8],
    host: Host<'a>,
    port: Option<u16>,
    params: Params<'a>,
    branch: Option<&'a [u8]>,
    received: Option<&'a [u8]>,
    rport: Option<Rport>,
}

fn take_token(s: &[u8]) -> (&[u8], &[u8]) {
    let end = s.iter().position(|&b| !is_token(b)).unwrap_or(s.len());
    (&s[..end], &s[end..])
}

fn skip_lws(s: &[u8]) -> &[u8] {
    let i = s.iter().position(|&b| !is_lws(b)).unwrap_or(s.len());
    &s[i..]
}

fn slash(s: &[u8]) -> Option<&[u8]> {
    skip_lws(s).strip_prefix(b"/").map(skip_lws)
}

impl<'a> Via<'a> {
    /// Parses one via-parm.
    pub fn parse(raw: &'a [u8]) -> Option<Self> {
        let raw = trim(raw);
        let (name, rest) = take_token(raw);
        let (version, rest) = take_token(slash(rest)?);
        let (transport, rest) = take_token(slash(rest)?);
        if name.is_empty() || version.is_empty() || transport.is_empty() {
            return None;
        }
        let protocol = &raw[..version.as_ptr() as usize - raw.as_ptr() as usize + version.len()];
        let rest = rest
            .strip_prefix(b" ")
            .or_else(|| rest.strip_prefix(b"\t"))
            .or_else(|| rest.strip_prefix(b"\r\n"))?;
        let rest = skip_lws(rest);
        let semi = memchr::memchr(b';', rest).unwrap_or(rest.len());
        let sent_by = trim(&rest[..semi]);
        let (host, port) = split_hostport(sent_by)?;
        let mut via = Self {
            raw,
            protocol,
            transport,
            sent_by,
            host,
            port,
            params: Params::default(),
            branch: None,
            received: None,
            rport: None,
        };
        if semi < rest.len() {
            let (mut branch, mut received, mut rport) = (None, None, None);
            via.params = Params::parse_each(&rest[semi + 1..], |p| {
                let v = p.value;
                let n = p.name;
                if n.eq_ignore_ascii_case(b"branch") {
                    branch = Some(v.filter(|v| v.iter().all(|&b| is_token(b)))?);
                } else if n.eq_ignore_ascii_case(b"received") {
                    let v = v?;
                    let inner = v
                        .strip_prefix(b"[")
                        .and_then(|x| x.strip_suffix(b"]"))
                        .unwrap_or(v);
                    if !is_ipv4(inner) && !is_ipv6(inner) {
                        return None;
                    }
                    received = Some(v);
                } else if n.eq_ignore_ascii_case(b"rport") {
                    rport = Some(match v {
                        None => Rport::Requested,
                        Some(v) => Rport::Port(u16::try_from(parse_u64(v, 65535)?).ok()?),
                    });
                } else if n.eq_ignore_ascii_case(b"ttl") {
                    parse_u64(v?, 255)?;
                }
                Some(())
            })?;
            via.branch = branch;
            via.received = received;
            via.rport = rport;
        }
        Some(via)
    }

    /// The value exactly as written.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// `SIP/2.0` (protocol name and version, as written).
    pub fn protocol(&self) -> &'a [u8] {
        self.protocol
    }

    /// The transport token (`UDP`, `TCP`, `TLS`, `WS`, …), as written.
    pub fn transport(&self) -> &'a [u8] {
        self.transport
    }

    /// The `sent-by` text (`host[:port]`), as written.
    pub fn sent_by(&self) -> &'a [u8] {
        self.sent_by
    }

    /// The sent-by host.
    pub fn host(&self) -> Host<'a> {
        self.host
    }

    /// The sent-by port, if present.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&'a [u8]> {
        self.branch
    }

    /// True when the branch starts with the RFC 3261 magic cookie `z9hG4bK` and has more after it.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch
            .is_some_and(|b| b.len() > 7 && b.starts_with(b"z9hG4bK"))
    }

    /// The `received` parameter, as written (brackets tolerated per RFC 5118 §4.5).
    pub fn received(&self) -> Option<&'a [u8]> {
        self.received
    }

    /// The `rport` parameter.
    pub fn rport(&self) -> Option<Rport> {
        self.rport
    }

    /// All parameters.
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// One parameter by name (`Some(b"")` for a flag).
    pub fn param(&self, name: &str) -> Option<&'a [u8]> {
        self.params.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_variants() {
        let v = Via::parse(b"SIP / 2.0 / UDP [2001:db8::9:1]:6050;branch=z9hG4bKas3;rport;received=[2001:db8::9:255]").expect("via");
        assert_eq!(v.transport(), b"UDP");
        assert_eq!(v.host(), Host::Ipv6(b"2001:db8::9:1"));
        assert_eq!(v.port(), Some(6050));
        assert_eq!(v.branch(), Some(&b"z9hG4bKas3"[..]));
        assert_eq!(v.rport(), Some(Rport::Requested));
        assert!(v.has_rfc3261_branch());
        let v = Via::parse(b"SIP/2.0/TCP host.example.com;rport=5070;ttl=3;x=\"q\"").expect("via");
        assert_eq!(v.rport(), Some(Rport::Port(5070)));
        assert_eq!(v.sent_by(), b"host.example.com");
        for bad in [
            &b"SIP/2.0/UDP 192.0.2.15;;"[..],
            b"SIP/2.0/UDP",
            b"SIP/2.0 host",
            b"SIP/2.0/UDP h;branch",
            b"SIP/2.0/UDP h;received=foo",
            b"SIP/2.0/UDP h:99999",
        ] {
            assert!(
                Via::parse(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
