//! RFC 3263 §4.1 ("the client SHOULD perform a NAPTR query for the domain in the URI"),
//! RFC 2782, RFC 6120 §3.2.1 and XEP-0368 §3: the zone lines that publish a served domain.
//!
//! `cusaxctl dns DOMAIN` prints them in master-file syntax (RFC 1035 §5.1), one record per
//! line with owner, TTL, class, type and data, and `;` comments saying what each group is for.
//! Ports come from `cusaxd.toml`; the address records of the target host are the operator's
//! (cusaxctl does not know the public address).

use cusax_account::Domain;
use cusax_server::config::Config;
use std::fmt::Write as _;

/// The ports a domain's records point at, all fixed (a `0` port cannot be published).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// `sip.port`: SIP over UDP and TCP.
    pub sip: u16,
    /// `sip.tls_port`: SIP over TLS.
    pub sips: u16,
    /// `xmpp.port`: XMPP clients with STARTTLS.
    pub xmpp: u16,
    /// `xmpp.tls_port`: XMPP clients with direct TLS.
    pub xmpps: u16,
    /// `http.port`: HTTPS provisioning.
    pub https: u16,
}

impl Ports {
    /// The configured ports; a `0` ("any free port") is refused, naming its key.
    pub fn from_config(c: &Config) -> anyhow::Result<Self> {
        let fixed = |key: &str, port: u16| {
            if port == 0 {
                anyhow::bail!(
                    "{key} is 0 (any free port) in the configuration; DNS records need a fixed port"
                );
            }
            Ok(port)
        };
        Ok(Self {
            sip: fixed("sip.port", c.sip.port)?,
            sips: fixed("sip.tls_port", c.sip.tls_port)?,
            xmpp: fixed("xmpp.port", c.xmpp.port)?,
            xmpps: fixed("xmpp.tls_port", c.xmpp.tls_port)?,
            https: fixed("http.port", c.http.port)?,
        })
    }
}

/// SRV service name of the provisioning hint. Not `_cusax-provisioning`: RFC 6335 §5.1 caps
/// service names at 15 characters.
pub const PROVISIONING_SERVICE: &str = "_cusax-prov._tcp";

enum Line {
    Comment(String),
    Record {
        owner: String,
        rtype: &'static str,
        rdata: String,
    },
}

fn comment(text: impl Into<String>) -> Line {
    Line::Comment(text.into())
}

fn record(owner: String, rtype: &'static str, rdata: String) -> Line {
    Line::Record {
        owner,
        rtype,
        rdata,
    }
}

fn srv(owner: String, priority: u16, port: u16, target: &str) -> Line {
    // Weight 0: one target per service, no load sharing (RFC 2782).
    record(owner, "SRV", format!("{priority} 0 {port} {target}"))
}

/// The records for `domain` served by `host`, in publishing order.
fn lines(domain: &Domain, host: &Domain, ports: Ports) -> Vec<Line> {
    let d = format!("{domain}.");
    let h = format!("{host}.");
    let mut out = vec![comment(format!(
        "cusax: records for {domain} served by {host} (cusaxctl dns); {host} needs A/AAAA records."
    ))];

    // RFC 3263 §4.1: NAPTR tells a client which transports the domain offers and in which
    // order. TLS first (RFC 7081 §7 wants TLS on both protocols; RFC 3263's own example leads
    // with SIPS+D2T), then TCP (no fragmentation of large INVITEs, RFC 3261 §18.1.1), then UDP
    // for phones that have nothing else. A client uses the first one it supports.
    out.push(comment(
        "SIP (RFC 3263): NAPTR picks the transport (TLS, then TCP, then UDP), SRV host and port.",
    ));
    for (order, service, srv_name) in [
        (10, "SIPS+D2T", "_sips._tcp"),
        (20, "SIP+D2T", "_sip._tcp"),
        (30, "SIP+D2U", "_sip._udp"),
    ] {
        out.push(record(
            d.clone(),
            "NAPTR",
            format!("{order} 10 \"s\" \"{service}\" \"\" {srv_name}.{d}"),
        ));
    }
    out.push(srv(format!("_sips._tcp.{d}"), 10, ports.sips, &h));
    out.push(srv(format!("_sip._tcp.{d}"), 10, ports.sip, &h));
    out.push(srv(format!("_sip._udp.{d}"), 10, ports.sip, &h));

    // XEP-0368 §3: clients merge both record sets by priority. Direct TLS gets the better one:
    // no plaintext bytes before TLS and one round trip less than STARTTLS (RFC 6120 §5).
    out.push(comment(
        "XMPP clients (RFC 6120 §3.2.1, XEP-0368): direct TLS first, STARTTLS next.",
    ));
    out.push(srv(format!("_xmpps-client._tcp.{d}"), 5, ports.xmpps, &h));
    out.push(srv(format!("_xmpp-client._tcp.{d}"), 10, ports.xmpp, &h));

    // cusaxd has no server-to-server listener yet. A target of "." says the service is
    // decidedly not available (RFC 2782), so other servers fail at once instead of falling
    // back to the domain's address on 5269 (RFC 6120 §3.2.2) and waiting for a timeout.
    out.push(comment(
        "XMPP federation is not served yet: the \".\" target tells other servers not to try.",
    ));
    out.push(srv(format!("_xmpp-server._tcp.{d}"), 0, 0, "."));

    // The provisioning hint is an SRV with a TXT beside it at the same name, the DNS-SD pair
    // (RFC 6763 §6): the SRV carries host and port exactly like every record above (so a
    // client resolves it with the same code, and both can never disagree), and the TXT the
    // `path` key that SRV cannot carry; the scheme is always https.
    out.push(comment(format!(
        "Provisioning (RFC 7081 §2): https://{host}:{}/provisioning",
        ports.https
    )));
    out.push(srv(
        format!("{PROVISIONING_SERVICE}.{d}"),
        10,
        ports.https,
        &h,
    ));
    out.push(record(
        format!("{PROVISIONING_SERVICE}.{d}"),
        "TXT",
        "\"path=/provisioning\"".to_owned(),
    ));
    out
}

/// The zone text: records aligned on their owner column, each line ending in a newline.
pub fn zone(domain: &Domain, host: &Domain, ttl: u32, ports: Ports) -> String {
    let lines = lines(domain, host, ports);
    let width = lines
        .iter()
        .filter_map(|l| match l {
            Line::Record { owner, .. } => Some(owner.len()),
            Line::Comment(_) => None,
        })
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for l in &lines {
        // Writing to a String cannot fail.
        let _ = match l {
            Line::Comment(text) => writeln!(out, "; {text}"),
            Line::Record {
                owner,
                rtype,
                rdata,
            } => writeln!(out, "{owner:<width$} {ttl} IN {rtype} {rdata}"),
        };
    }
    out
}
