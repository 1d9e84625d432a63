//! RFC 3263 §4 ("Client Usage": NAPTR, then SRV, then A/AAAA) and RFC 6120 §3.2.1
//! ("Preferred Process: SRV Lookup", with XEP-0368 §3 for `_xmpps-client`): the SIP and XMPP
//! servers of a domain, from DNS.
//!
//! SIP (RFC 3263 §4.1–4.2): NAPTR records of the domain with the services this client speaks
//! (`SIPS+D2T`, `SIP+D2T`, `SIP+D2U`, flag `s`) in order/preference order name the SRV
//! records to query; without usable NAPTR records the SRV names `_sips._tcp`, `_sip._tcp` and
//! `_sip._udp` are queried in that order; without any SRV record the domain itself is the
//! server, UDP on 5060, if it has an address.
//!
//! XMPP (RFC 6120 §3.2.1, XEP-0368 §3): `_xmpp-client._tcp` (STARTTLS) and
//! `_xmpps-client._tcp` (direct TLS), merged as one record set in priority/weight order
//! (RFC 2782). A single SRV record with target `.` says the service is decidedly not
//! available: no fallback then. Without any SRV record: the domain on 5222 (RFC 6120 §3.2.2).

use std::net::SocketAddr;
use std::time::Duration;

use cusax_account::{AccountId, Domain};
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::rdata::{NAPTR, SRV};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};

use super::{
    Relationship, ServiceAccount, SetupError, SetupSource, SipSetup, SipTransport, XmppSetup,
    XmppTls,
};

/// Which DNS server answers the discovery queries.
#[derive(Debug, Clone, Default)]
pub struct DnsConfig {
    /// A name server to ask (UDP, and TCP on the same port for truncated answers); `None`:
    /// the system's configuration (`/etc/resolv.conf`).
    pub name_server: Option<SocketAddr>,
    /// Timeout of each query; `None`: the resolver's default (5 s, two attempts).
    pub timeout: Option<Duration>,
}

/// How the SIP targets were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SipVia {
    /// NAPTR records chose the transports (RFC 3263 §4.1).
    Naptr,
    /// SRV records per transport, no NAPTR (RFC 3263 §4.1).
    Srv,
    /// No SRV record: the domain's own address, UDP on 5060 (RFC 3263 §4.2).
    Fallback,
}

/// One SIP server to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipTarget {
    /// Host name (no trailing dot).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Transport.
    pub transport: SipTransport,
}

/// One XMPP server to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmppTarget {
    /// Host name (no trailing dot).
    pub host: String,
    /// Port.
    pub port: u16,
    /// STARTTLS or direct TLS.
    pub tls: XmppTls,
}

/// What DNS says about a domain's CUSAX service: servers in the order to try them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// The domain asked about.
    pub domain: String,
    /// SIP servers, most preferred first; empty when the domain has no SIP service.
    pub sip: Vec<SipTarget>,
    /// How [`Discovered::sip`] was found (`None` when it is empty).
    pub sip_via: Option<SipVia>,
    /// XMPP servers, most preferred first; empty when the domain has no XMPP service.
    pub xmpp: Vec<XmppTarget>,
}

impl Discovered {
    /// The account `user@domain` on the first SIP and the first XMPP server (filter
    /// [`Discovered::sip`] / [`Discovered::xmpp`] first to skip transports the caller lacks).
    pub fn account(&self, account: &str) -> Result<ServiceAccount, SetupError> {
        let id = AccountId::parse(account)?;
        let aor = id.aor().to_string();
        let jid = id.bare_jid().to_string();
        let sip = self.sip.first().map(|t| SipSetup {
            aor: aor.clone(),
            username: id.user().to_owned(),
            realm: id.domain().as_str().to_owned(),
            server_host: t.host.clone(),
            port: t.port,
            transport: t.transport,
            tls_port: self
                .sip
                .iter()
                .find(|o| o.transport == SipTransport::Tls && o.host == t.host)
                .map(|o| o.port),
        });
        let xmpp = self.xmpp.first().map(|t| XmppSetup {
            jid: jid.clone(),
            host: t.host.clone(),
            port: t.port,
            tls: t.tls,
            direct_tls_port: self
                .xmpp
                .iter()
                .find(|o| o.tls == XmppTls::Direct && o.host == t.host)
                .map(|o| o.port),
        });
        Ok(ServiceAccount {
            account: id.to_string(),
            password: None,
            sip,
            xmpp,
            cusax: Relationship {
                sip: aor,
                xmpp: jid,
            },
            source: SetupSource::Dns,
        })
    }
}

/// Discovers the servers of `domain` (see the module documentation); fails with
/// [`SetupError::NoService`] when DNS names neither a SIP nor an XMPP server.
pub async fn discover(domain: &str, dns: &DnsConfig) -> Result<Discovered, SetupError> {
    let domain = Domain::parse(domain.trim()).map_err(|_| SetupError::Host(domain.to_owned()))?;
    let resolver = resolver(dns)?;
    let fqdn = fqdn(domain.as_str())?;
    let mut address: Option<bool> = None;

    let (mut sip, mut sip_via, sip_fallback) = discover_sip(&resolver, domain.as_str()).await?;
    if sip_fallback && has_address(&resolver, &fqdn, &mut address).await? {
        sip.push(SipTarget {
            host: domain.as_str().to_owned(),
            port: SipTransport::Udp.default_port(),
            transport: SipTransport::Udp,
        });
        sip_via = Some(SipVia::Fallback);
    }

    let (mut xmpp, xmpp_fallback) = discover_xmpp(&resolver, domain.as_str()).await?;
    if xmpp_fallback && has_address(&resolver, &fqdn, &mut address).await? {
        xmpp.push(XmppTarget {
            host: domain.as_str().to_owned(),
            port: 5222,
            tls: XmppTls::Starttls,
        });
    }
    if sip.is_empty() && xmpp.is_empty() {
        return Err(SetupError::NoService(domain.as_str().to_owned()));
    }
    Ok(Discovered {
        domain: domain.as_str().to_owned(),
        sip,
        sip_via,
        xmpp,
    })
}

/// [`discover`] for the account's domain, then [`Discovered::account`].
pub async fn discover_account(
    account: &str,
    dns: &DnsConfig,
) -> Result<ServiceAccount, SetupError> {
    let id = AccountId::parse(account)?;
    discover(id.domain().as_str(), dns).await?.account(account)
}

fn dns_error(e: NetError) -> SetupError {
    SetupError::Dns(e.to_string())
}

fn resolver(dns: &DnsConfig) -> Result<TokioResolver, SetupError> {
    let mut builder = match dns.name_server {
        Some(addr) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
            Resolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![ns]),
                TokioRuntimeProvider::default(),
            )
        }
        None => TokioResolver::builder_tokio().map_err(dns_error)?,
    };
    if let Some(t) = dns.timeout {
        builder.options_mut().timeout = t;
    }
    builder.build().map_err(dns_error)
}

fn fqdn(name: &str) -> Result<Name, SetupError> {
    let mut n = Name::from_utf8(name).map_err(|_| SetupError::Host(name.to_owned()))?;
    n.set_fqdn(true);
    Ok(n)
}

/// The records of `rtype` at `name`; "no such name" and "no such record" are empty answers.
async fn lookup(
    resolver: &TokioResolver,
    name: Name,
    rtype: RecordType,
) -> Result<Vec<RData>, SetupError> {
    match resolver.lookup(name, rtype).await {
        Ok(l) => Ok(l
            .answers()
            .iter()
            .filter(|r| r.record_type() == rtype)
            .map(|r| r.data.clone())
            .collect()),
        Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
        Err(e) => Err(dns_error(e)),
    }
}

/// An SRV record set.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SrvAnswer {
    /// No record.
    None,
    /// One record with target `.`: "decidedly not available" (RFC 2782).
    Unavailable,
    /// Records in the order to try them (RFC 2782 priority and weight), targets without the dot.
    Targets(Vec<(String, u16)>),
}

async fn srv(resolver: &TokioResolver, name: &str) -> Result<SrvAnswer, SetupError> {
    let records: Vec<SRV> = lookup(resolver, fqdn(name)?, RecordType::SRV)
        .await?
        .into_iter()
        .filter_map(|d| match d {
            RData::SRV(s) => Some(s),
            _ => None,
        })
        .collect();
    Ok(srv_answer(&records, |max| rand::random_range(0..=max)))
}

/// Applies RFC 2782 to a record set; `pick(max)` returns a uniform number in `0..=max`.
fn srv_answer(records: &[SRV], pick: impl FnMut(u32) -> u32) -> SrvAnswer {
    if records.is_empty() {
        return SrvAnswer::None;
    }
    if records.len() == 1 && records.iter().all(|r| r.target.is_root()) {
        return SrvAnswer::Unavailable;
    }
    let usable: Vec<(u16, u16, (String, u16))> = records
        .iter()
        .filter(|r| !r.target.is_root() && r.port != 0)
        .map(|r| (r.priority, r.weight, (host_of(&r.target), r.port)))
        .collect();
    SrvAnswer::Targets(rfc2782_order(usable, pick))
}

/// RFC 2782 ordering: ascending priority; within one priority, repeatedly a weighted random
/// choice among the records not chosen yet (weight-0 records placed first, so they are chosen
/// only when the random number is 0).
fn rfc2782_order<T>(mut records: Vec<(u16, u16, T)>, mut pick: impl FnMut(u32) -> u32) -> Vec<T> {
    records.sort_by_key(|(prio, weight, _)| (*prio, *weight != 0));
    let mut out = Vec::with_capacity(records.len());
    let mut rest = records.into_iter().peekable();
    while let Some(first) = rest.next() {
        let prio = first.0;
        let mut group = vec![(first.1, first.2)];
        while let Some(next) = rest.next_if(|r| r.0 == prio) {
            group.push((next.1, next.2));
        }
        while !group.is_empty() {
            let total: u32 = group.iter().map(|(w, _)| u32::from(*w)).sum();
            let r = pick(total).min(total);
            let mut running = 0u32;
            let idx = group
                .iter()
                .position(|(w, _)| {
                    running += u32::from(*w);
                    running >= r
                })
                .unwrap_or(0);
            out.push(group.remove(idx).1);
        }
    }
    out
}

/// A target name as a host: ASCII, lower case, no trailing dot.
fn host_of(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

/// The SIP services this client speaks, with their NAPTR service tags (RFC 3263 §4.1).
const SIP_SERVICES: [(&str, SipTransport, &str); 3] = [
    ("SIPS+D2T", SipTransport::Tls, "_sips._tcp"),
    ("SIP+D2T", SipTransport::Tcp, "_sip._tcp"),
    ("SIP+D2U", SipTransport::Udp, "_sip._udp"),
];

/// The usable NAPTR records in the order to follow them: flag `s`, a service this client
/// speaks, no regexp; sorted by order, then preference (RFC 3403 §4.1).
fn select_naptr(records: &[NAPTR]) -> Vec<(SipTransport, String)> {
    let mut usable: Vec<(u16, u16, SipTransport, String)> = records
        .iter()
        .filter(|n| n.flags.eq_ignore_ascii_case(b"s") && n.regexp.is_empty())
        .filter(|n| !n.replacement.is_root())
        .filter_map(|n| {
            let (_, transport, _) = SIP_SERVICES
                .iter()
                .find(|(tag, _, _)| n.services.eq_ignore_ascii_case(tag.as_bytes()))?;
            Some((n.order, n.preference, *transport, host_of(&n.replacement)))
        })
        .collect();
    usable.sort_by_key(|(order, pref, _, _)| (*order, *pref));
    usable
        .into_iter()
        .map(|(_, _, t, name)| (t, name))
        .collect()
}

/// SIP targets, how they were found, and whether the A/AAAA fallback applies (no SRV record
/// at all).
async fn discover_sip(
    resolver: &TokioResolver,
    domain: &str,
) -> Result<(Vec<SipTarget>, Option<SipVia>, bool), SetupError> {
    let naptr: Vec<NAPTR> = lookup(resolver, fqdn(domain)?, RecordType::NAPTR)
        .await?
        .into_iter()
        .filter_map(|d| match d {
            RData::NAPTR(n) => Some(n),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for (transport, name) in select_naptr(&naptr) {
        if let SrvAnswer::Targets(t) = srv(resolver, &name).await? {
            out.extend(t.into_iter().map(|(host, port)| SipTarget {
                host,
                port,
                transport,
            }));
        }
    }
    if !out.is_empty() {
        return Ok((out, Some(SipVia::Naptr), false));
    }
    // No usable NAPTR (or none leading anywhere): SRV per transport, TLS first.
    let mut any_srv = false;
    for (_, transport, prefix) in SIP_SERVICES {
        match srv(resolver, &format!("{prefix}.{domain}")).await? {
            SrvAnswer::None => {}
            SrvAnswer::Unavailable => any_srv = true,
            SrvAnswer::Targets(t) => {
                any_srv = true;
                out.extend(t.into_iter().map(|(host, port)| SipTarget {
                    host,
                    port,
                    transport,
                }));
            }
        }
    }
    if !out.is_empty() {
        return Ok((out, Some(SipVia::Srv), false));
    }
    Ok((out, None, !any_srv))
}

/// XMPP targets and whether the fallback to the domain applies (no SRV record at all).
async fn discover_xmpp(
    resolver: &TokioResolver,
    domain: &str,
) -> Result<(Vec<XmppTarget>, bool), SetupError> {
    let mut merged: Vec<SRV> = Vec::new();
    let mut tls_of = Vec::new();
    let mut any_srv = false;
    for (prefix, tls) in [
        ("_xmpp-client._tcp", XmppTls::Starttls),
        ("_xmpps-client._tcp", XmppTls::Direct),
    ] {
        let records: Vec<SRV> = lookup(
            resolver,
            fqdn(&format!("{prefix}.{domain}"))?,
            RecordType::SRV,
        )
        .await?
        .into_iter()
        .filter_map(|d| match d {
            RData::SRV(s) => Some(s),
            _ => None,
        })
        .collect();
        match srv_answer(&records, |_| 0) {
            SrvAnswer::None => {}
            SrvAnswer::Unavailable => any_srv = true,
            SrvAnswer::Targets(_) => {
                any_srv = true;
                for r in records
                    .into_iter()
                    .filter(|r| !r.target.is_root() && r.port != 0)
                {
                    tls_of.push(tls);
                    merged.push(r);
                }
            }
        }
    }
    // XEP-0368 §3: both sets ordered by priority and weight as if they were one.
    let tagged: Vec<(u16, u16, XmppTarget)> = merged
        .iter()
        .zip(tls_of)
        .map(|(r, tls)| {
            (
                r.priority,
                r.weight,
                XmppTarget {
                    host: host_of(&r.target),
                    port: r.port,
                    tls,
                },
            )
        })
        .collect();
    let out = rfc2782_order(tagged, |max| rand::random_range(0..=max));
    Ok((out, !any_srv))
}

/// Whether the domain has an A or AAAA record (asked once, remembered in `known`).
async fn has_address(
    resolver: &TokioResolver,
    fqdn: &Name,
    known: &mut Option<bool>,
) -> Result<bool, SetupError> {
    if let Some(k) = *known {
        return Ok(k);
    }
    let found = match resolver.lookup_ip(fqdn.clone()).await {
        Ok(l) => l.iter().next().is_some(),
        Err(e) if e.is_no_records_found() || e.is_nx_domain() => false,
        Err(e) => return Err(dns_error(e)),
    };
    *known = Some(found);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    fn srv_rec(prio: u16, weight: u16, port: u16, target: &str) -> SRV {
        SRV::new(prio, weight, port, name(target))
    }

    fn naptr(order: u16, pref: u16, flags: &str, service: &str, replacement: &str) -> NAPTR {
        NAPTR::new(
            order,
            pref,
            flags.as_bytes().into(),
            service.as_bytes().into(),
            Box::default(),
            name(replacement),
        )
    }

    #[test]
    fn naptr_order_preference_and_unsupported_services() {
        let records = [
            naptr(30, 10, "s", "SIP+D2U", "_sip._udp.example.org."),
            naptr(10, 20, "s", "SIPS+D2T", "_sips._tcp.b.example.org."),
            naptr(10, 10, "S", "sips+d2t", "_sips._tcp.a.example.org."),
            naptr(5, 10, "s", "SIP+D2S", "_sip._sctp.example.org."),
            naptr(5, 10, "u", "SIP+D2T", "_sip._tcp.example.org."),
            naptr(20, 10, "s", "SIP+D2T", "_sip._tcp.Example.org."),
        ];
        assert_eq!(
            select_naptr(&records),
            vec![
                (SipTransport::Tls, "_sips._tcp.a.example.org".to_owned()),
                (SipTransport::Tls, "_sips._tcp.b.example.org".to_owned()),
                (SipTransport::Tcp, "_sip._tcp.example.org".to_owned()),
                (SipTransport::Udp, "_sip._udp.example.org".to_owned()),
            ]
        );
    }

    #[test]
    fn srv_dot_is_unavailable_and_empty_is_none() {
        assert_eq!(srv_answer(&[], |_| 0), SrvAnswer::None);
        assert_eq!(
            srv_answer(&[srv_rec(0, 0, 0, ".")], |_| 0),
            SrvAnswer::Unavailable
        );
        assert_eq!(
            srv_answer(&[srv_rec(0, 0, 5061, "SIP.example.org.")], |_| 0),
            SrvAnswer::Targets(vec![("sip.example.org".into(), 5061)])
        );
    }

    #[test]
    fn srv_priority_then_weight() {
        let records = [
            srv_rec(20, 0, 1, "c.example."),
            srv_rec(10, 60, 2, "a.example."),
            srv_rec(10, 40, 3, "b.example."),
            srv_rec(10, 0, 4, "z.example."),
        ];
        // Random 0 picks the weight-0 record first (it sorts to the front), then the first
        // weighted one in running-sum order.
        let low = srv_answer(&records, |_| 0);
        let hosts = |a: SrvAnswer| match a {
            SrvAnswer::Targets(t) => t.into_iter().map(|(h, _)| h).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            hosts(low),
            ["z.example", "a.example", "b.example", "c.example"]
        );
        // Random = max picks the last by running sum: b (60+40), then a, then z.
        let high = srv_answer(&records, |max| max);
        assert_eq!(
            hosts(high),
            ["b.example", "a.example", "z.example", "c.example"]
        );
        // Over many draws, weight 60 comes first about 60 % of the time.
        let mut first_a = 0;
        for _ in 0..2000 {
            let order = srv_answer(&records[1..3], |max| rand::random_range(0..=max));
            if hosts(order)[0] == "a.example" {
                first_a += 1;
            }
        }
        assert!((1000..1400).contains(&first_a), "{first_a}");
    }

    #[test]
    fn account_from_discovered_targets() {
        let d = Discovered {
            domain: "example.org".into(),
            sip: vec![
                SipTarget {
                    host: "sip.example.org".into(),
                    port: 5062,
                    transport: SipTransport::Tcp,
                },
                SipTarget {
                    host: "sip.example.org".into(),
                    port: 5063,
                    transport: SipTransport::Tls,
                },
            ],
            sip_via: Some(SipVia::Naptr),
            xmpp: vec![XmppTarget {
                host: "xmpp.example.org".into(),
                port: 5223,
                tls: XmppTls::Direct,
            }],
        };
        let a = d.account("alice@example.org").expect("account");
        let s = a.sip.expect("sip");
        assert_eq!((s.server_host.as_str(), s.port), ("sip.example.org", 5062));
        assert_eq!((s.transport, s.tls_port), (SipTransport::Tcp, Some(5063)));
        assert_eq!(s.aor, "sip:alice@example.org");
        let x = a.xmpp.expect("xmpp");
        assert_eq!(
            (x.port, x.tls, x.direct_tls_port),
            (5223, XmppTls::Direct, Some(5223))
        );
        assert_eq!(a.source, SetupSource::Dns);
    }
}
