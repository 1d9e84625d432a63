//! The commands: drive the SIP user agent, the XMPP client or both (the CUSAX layer) and print
//! their events as JSON lines.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use cusax_client::cusax::{ClientEvent, Cusax, ServiceConfig, callable_tel};
use cusax_client::setup::{self, ServiceAccount};
use cusax_client::sip::CallOptions;
use cusax_client::xmpp::{XmppClient, XmppConfig, XmppEvent, stanzas};
use cusax_client::{AudioSource, CallState, Event, MediaConfig, UaConfig, UserAgent};
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::cli::{AccountArgs, SourceArgs};
use crate::config::{self, Settings};

/// How long logging in may take before a command gives up.
const LOGIN_WAIT: Duration = Duration::from_secs(30);

/// Prints a one-line error on stderr and returns a failure status.
pub fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("cusax: {e:#}");
    ExitCode::FAILURE
}

fn print(e: &impl Serialize) {
    // Events always serialise (plain strings and numbers).
    if let Ok(line) = serde_json::to_string(e) {
        println!("{line}");
    }
}

fn source(s: &SourceArgs) -> AudioSource {
    match (&s.play, s.tone) {
        (Some(p), _) => AudioSource::Wav(p.clone()),
        (None, Some(hz)) => AudioSource::Tone(hz),
        (None, None) => AudioSource::Silence,
    }
}

fn seconds(s: f64, what: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("{what} must be a number of seconds"))
}

/// Resolves when SIGINT or SIGTERM arrives.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Connects the XMPP side and waits (bounded) for the login.
async fn xmpp_login(
    mut cfg: XmppConfig,
    online: bool,
) -> Result<(XmppClient, UnboundedReceiver<XmppEvent>)> {
    cfg.reconnect = false;
    if !online {
        cfg.initial_presence = None;
    }
    let (c, mut rx) = XmppClient::start(cfg)?;
    let deadline = tokio::time::Instant::now() + LOGIN_WAIT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(XmppEvent::Connected { .. })) => return Ok((c, rx)),
            Ok(Some(XmppEvent::LoginFailed { reason })) => bail!("XMPP login refused: {reason}"),
            Ok(Some(XmppEvent::Disconnected { reason, .. })) => bail!("XMPP: {reason}"),
            Ok(Some(_)) => {}
            Ok(None) => bail!("XMPP: the client stopped"),
            Err(_) => bail!("XMPP: no login within {LOGIN_WAIT:?}"),
        }
    }
}

/// What `cusax login` prints.
#[derive(Serialize)]
struct LoginReport {
    event: &'static str,
    account: String,
    sip_server: Option<String>,
    sip_transport: Option<String>,
    xmpp_server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sip: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    xmpp: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<PathBuf>,
}

/// The account's servers from DNS, keeping the XMPP targets this client can speak: the
/// `xmpp_server` setting is STARTTLS (RFC 6120 §5), so XEP-0368 direct-TLS targets
/// (`_xmpps-client._tcp`) are skipped even where they sort first.
async fn discover_starttls(user: &str, dns: &setup::DnsConfig) -> Result<ServiceAccount> {
    let domain = user
        .rsplit_once('@')
        .map(|(_, d)| d)
        .ok_or_else(|| anyhow!("--user {user:?}: want USER@DOMAIN"))?;
    let mut found = setup::discover(domain, dns).await?;
    found.xmpp.retain(|t| t.tls == setup::XmppTls::Starttls);
    Ok(found.account(user)?)
}

/// `cusax login`: set up, check, save.
pub async fn login(
    config: Option<&Path>,
    provision: Option<&str>,
    dns: Option<setup::DnsConfig>,
    password_stdin: bool,
    no_check: bool,
    args: &AccountArgs,
) -> Result<ExitCode> {
    let mut file = config::load(config).unwrap_or_default();
    let user = args
        .user
        .clone()
        .or(file.account.user.clone())
        .ok_or_else(|| anyhow!("pass --user USER@DOMAIN"))?;
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else if let Some(p) = &args.password_file {
        config::read_password_file(p)?
    } else if let Some(p) = file.account.password.clone() {
        p
    } else {
        bail!("no password: use --password-stdin or --password-file FILE");
    };
    // The file is read from anywhere later: keep an absolute path.
    let ca_file = args
        .ca_file
        .clone()
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
        .or(file.account.ca_file.clone());
    let trust = cusax_client::tls::TrustConfig {
        ca_file,
        no_system_roots: false,
    };
    let account: ServiceAccount = match provision {
        Some(url) => setup::provision(url, &user, &password, &trust).await?,
        None => match &dns {
            Some(dns) => discover_starttls(&user, dns)
                .await?
                .with_password(password.clone()),
            None => ServiceAccount::manual(&user, None)?.with_password(password.clone()),
        },
    };
    let a = &mut file.account;
    a.user = Some(account.account.clone());
    a.password = Some(password);
    a.ca_file = trust.ca_file.clone();
    a.server = args.server.clone().or_else(|| {
        account
            .sip
            .as_ref()
            .map(|s| format!("{}:{}", s.server_host, s.port))
    });
    a.transport = args
        .transport
        .clone()
        .or_else(|| args.tcp.then(|| "tcp".to_owned()))
        .or_else(|| account.sip.as_ref().map(|s| s.transport.token().to_owned()));
    a.xmpp_server = args.xmpp_server.clone().or_else(|| {
        account
            .xmpp
            .as_ref()
            .map(|x| format!("{}:{}", x.host, x.port))
    });
    a.provisioned_from = match &account.source {
        setup::SetupSource::Provisioning { url } => Some(url.clone()),
        _ => None,
    };
    let settings = config::settings_of(&file, &AccountArgs::default())?;
    let mut report = LoginReport {
        event: "login",
        account: account.account.clone(),
        sip_server: file.account.server.clone(),
        sip_transport: file.account.transport.clone(),
        xmpp_server: file.account.xmpp_server.clone(),
        sip: None,
        xmpp: None,
        config: None,
    };
    if !no_check {
        let (x, _rx) = xmpp_login(settings.need_xmpp()?, false).await?;
        x.shutdown().await;
        report.xmpp = Some("ok");
        let mut ua = settings.ua()?;
        ua.register = true;
        let (ua, mut rx) = UserAgent::start(ua).await.context("SIP")?;
        let r = tokio::time::timeout(LOGIN_WAIT, async {
            while let Some(e) = rx.recv().await {
                match e {
                    Event::Registered { .. } => return Ok(()),
                    Event::RegistrationFailed { code, reason, .. } => {
                        return Err(anyhow!("SIP registration refused: {code} {reason}"));
                    }
                    _ => {}
                }
            }
            Err(anyhow!("SIP: the user agent stopped"))
        })
        .await
        .map_err(|_| anyhow!("SIP: no registration within {LOGIN_WAIT:?}"))
        .and_then(|r| r);
        ua.shutdown().await;
        r?;
        report.sip = Some("ok");
    }
    let path = config::save(config, &file)?;
    report.config = Some(path);
    print(&report);
    Ok(ExitCode::SUCCESS)
}

/// `cusax roster`: one line per contact, with the SIP address from their vCard.
pub async fn roster(s: &Settings) -> Result<ExitCode> {
    let (x, _rx) = xmpp_login(s.need_xmpp()?, false).await?;
    for item in x.roster().await? {
        let card = x.vcard(Some(&item.jid)).await.unwrap_or_default();
        print(&json!({
            "event": "contact",
            "jid": item.jid,
            "sip": callable_tel(&card, &s.domain),
            "name": item.name.or(card.full_name),
            "subscription": item.subscription,
        }));
    }
    x.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// `cusax add`.
pub async fn add(s: &Settings, jid: &str, name: Option<&str>) -> Result<ExitCode> {
    let (x, _rx) = xmpp_login(s.need_xmpp()?, false).await?;
    x.add_contact(jid, name).await?;
    x.shutdown().await;
    print(&json!({"event": "contact_added", "jid": jid}));
    Ok(ExitCode::SUCCESS)
}

/// `cusax send`.
pub async fn send(s: &Settings, jid: &str, text: &str) -> Result<ExitCode> {
    let (x, _rx) = xmpp_login(s.need_xmpp()?, false).await?;
    let id = x.send_message(jid, text).await?;
    x.shutdown().await;
    print(&json!({"event": "sent", "to": jid, "id": id}));
    Ok(ExitCode::SUCCESS)
}

/// `cusax chat`: stdin lines out, the peer's messages in, until EOF or SIGINT.
pub async fn chat(s: &Settings, jid: &str) -> Result<ExitCode> {
    let (x, mut rx) = xmpp_login(s.need_xmpp()?, true).await?;
    let (line_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if line_tx.send(line).is_err() {
                return;
            }
        }
    });
    let peer = stanzas::bare(jid).to_ascii_lowercase();
    let interrupt = interrupted();
    tokio::pin!(interrupt);
    loop {
        tokio::select! {
            l = lines.recv() => match l {
                Some(text) if !text.trim().is_empty() => {
                    let id = x.send_message(jid, &text).await?;
                    print(&json!({"event": "sent", "to": jid, "id": id}));
                }
                Some(_) => {}
                None => break,
            },
            e = rx.recv() => match e {
                Some(e @ (XmppEvent::Message { .. } | XmppEvent::MessageError { .. } | XmppEvent::Presence { .. })) => {
                    let from = match &e {
                        XmppEvent::Message { from, .. } | XmppEvent::MessageError { from, .. } | XmppEvent::Presence { from, .. } => from,
                        _ => unreachable!("matched above"),
                    };
                    if stanzas::bare(from).eq_ignore_ascii_case(&peer) {
                        print(&e);
                    }
                }
                Some(XmppEvent::Disconnected { reason, .. }) => bail!("XMPP: {reason}"),
                Some(_) => {}
                None => break,
            },
            _ = &mut interrupt => break,
        }
    }
    x.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// `cusax whois`.
pub async fn whois(s: &Settings, uri: &str) -> Result<ExitCode> {
    let (c, _rx) = dual(s, false, false, false, false).await?;
    wait_xmpp_up(&c).await?;
    let a = c.whois(uri).await?;
    c.shutdown().await;
    print(&json!({"event": "whois", "uri": uri, "attribution": a}));
    Ok(if a.contact.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn wait_xmpp_up(c: &Cusax) -> Result<()> {
    if c.xmpp().connected(LOGIN_WAIT).await {
        Ok(())
    } else {
        bail!("XMPP: not logged in within {LOGIN_WAIT:?}")
    }
}

/// Both sides under the CUSAX layer.
async fn dual(
    s: &Settings,
    online: bool,
    register: bool,
    on_the_phone: bool,
    presence_after_sip: bool,
) -> Result<(Cusax, UnboundedReceiver<ClientEvent>)> {
    let mut sip = s.ua()?;
    sip.register = register;
    let mut xmpp = s.need_xmpp()?;
    if !online {
        // A lookup only: contacts do not see us come and go.
        xmpp.initial_presence = None;
    }
    let cfg = ServiceConfig {
        sip,
        xmpp,
        service_domain: s.domain.clone(),
        on_the_phone: on_the_phone || s.options.on_the_phone,
        presence_after_sip: presence_after_sip || s.options.presence_after_sip,
    };
    Ok(Cusax::start(cfg).await?)
}

/// Stops and prints what is still reported.
async fn stop_dual(c: &Cusax, events: &mut UnboundedReceiver<ClientEvent>) {
    c.shutdown().await;
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(6), events.recv()).await {
        print(&e);
    }
}

/// `cusax call`: exit status 0 when the call was established.
#[allow(clippy::too_many_arguments)]
pub async fn call(
    s: &Settings,
    target: &str,
    src: &SourceArgs,
    record: Option<PathBuf>,
    duration: Option<f64>,
    ring_timeout: f64,
    anonymous: bool,
    on_the_phone: bool,
) -> Result<ExitCode> {
    let duration = duration.map(|d| seconds(d, "--duration")).transpose()?;
    let ring = seconds(ring_timeout, "--ring-timeout")?;
    let media = MediaConfig {
        source: source(src),
        record,
    };
    let options = Some(CallOptions { anonymous });
    // With an XMPP account the call goes through the CUSAX layer (contacts by JID, "on the
    // phone"); without one, SIP alone.
    let (id, mut events, ctl): (String, Box<dyn EventSource>, Ctl) = if s.xmpp_server.is_some() {
        let (c, rx) = dual(s, true, false, on_the_phone, false).await?;
        let is_jid = !target.contains(':') && target.contains('@');
        if is_jid {
            wait_xmpp_up(&c).await?;
        }
        let id = c.call_with(target, media, options).await?;
        (id, Box::new(rx), Ctl::Dual(c))
    } else {
        let (ua, rx) = UserAgent::start(s.ua()?)
            .await
            .context("opening the SIP transport")?;
        // Without XMPP, user@host is a SIP address.
        let uri = if target.contains(':') || !target.contains('@') {
            cusax_client::cusax::dial_uri(target, &s.domain).unwrap_or_else(|| target.to_owned())
        } else {
            target.to_owned()
        };
        let id = ua.call_with(&uri, media, options).await?;
        (id, Box::new(SipOnly(rx)), Ctl::Sip(ua))
    };
    let mut established = false;
    let mut hangup_at = tokio::time::Instant::now() + ring;
    let mut hung_up = false;
    let interrupt = interrupted();
    tokio::pin!(interrupt);
    loop {
        tokio::select! {
            e = events.next() => {
                let Some(e) = e else { break };
                print(&e);
                if let ClientEvent::Sip(Event::CallState { call_id, state, .. }) = &e
                    && *call_id == id
                {
                    match state {
                        CallState::Established => {
                            established = true;
                            hangup_at = match duration {
                                Some(d) => tokio::time::Instant::now() + d,
                                None => tokio::time::Instant::now() + Duration::from_secs(86_400 * 365),
                            };
                        }
                        CallState::Ended | CallState::Failed => break,
                        _ => {}
                    }
                }
            }
            _ = tokio::time::sleep_until(hangup_at), if !hung_up => {
                hung_up = true;
                ctl.hangup(&id).await;
            }
            _ = &mut interrupt, if !hung_up => {
                hung_up = true;
                ctl.hangup(&id).await;
            }
        }
    }
    ctl.shutdown().await;
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(6), events.next()).await {
        print(&e);
    }
    Ok(if established {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

enum Ctl {
    Dual(Cusax),
    Sip(UserAgent),
}

impl Ctl {
    async fn hangup(&self, id: &str) {
        match self {
            Ctl::Dual(c) => c.ua().hangup(id).await,
            Ctl::Sip(u) => u.hangup(id).await,
        }
    }

    async fn shutdown(&self) {
        match self {
            Ctl::Dual(c) => c.shutdown().await,
            Ctl::Sip(u) => u.shutdown().await,
        }
    }
}

/// Events of either kind of session, as [`ClientEvent`]s.
trait EventSource: Send {
    fn next(&mut self) -> std::pin::Pin<Box<dyn Future<Output = Option<ClientEvent>> + Send + '_>>;
}

impl EventSource for UnboundedReceiver<ClientEvent> {
    fn next(&mut self) -> std::pin::Pin<Box<dyn Future<Output = Option<ClientEvent>> + Send + '_>> {
        Box::pin(self.recv())
    }
}

struct SipOnly(UnboundedReceiver<Event>);

impl EventSource for SipOnly {
    fn next(&mut self) -> std::pin::Pin<Box<dyn Future<Output = Option<ClientEvent>> + Send + '_>> {
        Box::pin(async move { self.0.recv().await.map(ClientEvent::Sip) })
    }
}

/// `cusax listen`: runs until interrupted; fails when the registration or login is refused.
#[allow(clippy::too_many_arguments)]
pub async fn listen(
    s: &Settings,
    auto_answer: bool,
    record_dir: Option<PathBuf>,
    src: &SourceArgs,
    expires: u32,
    on_the_phone: bool,
    presence_after_sip: bool,
    approve_all: bool,
) -> Result<ExitCode> {
    if let Some(d) = &record_dir {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let configure = |cfg: &mut UaConfig| {
        cfg.register = true;
        cfg.expires = expires;
        cfg.auto_answer = auto_answer;
        cfg.record_dir = record_dir.clone();
        cfg.answer_source = source(src);
    };
    if let AudioSource::Wav(p) = source(src) {
        cusax_client::media::audio::read_wav(&p)?;
    }
    let interrupt = interrupted();
    tokio::pin!(interrupt);
    let mut refused = false;
    if s.xmpp_server.is_none() {
        let mut cfg = s.ua()?;
        configure(&mut cfg);
        let (ua, mut events) = UserAgent::start(cfg)
            .await
            .context("opening the SIP transport")?;
        loop {
            tokio::select! {
                e = events.recv() => {
                    let Some(e) = e else { bail!("the SIP user agent stopped") };
                    print(&e);
                    if matches!(e, Event::RegistrationFailed { .. }) {
                        refused = true;
                        break;
                    }
                }
                _ = &mut interrupt => break,
            }
        }
        ua.shutdown().await;
        while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(6), events.recv()).await {
            print(&e);
        }
    } else {
        let mut sip = s.ua()?;
        configure(&mut sip);
        let cfg = ServiceConfig {
            sip,
            xmpp: s.need_xmpp()?,
            service_domain: s.domain.clone(),
            on_the_phone: on_the_phone || s.options.on_the_phone,
            presence_after_sip: presence_after_sip || s.options.presence_after_sip,
        };
        let (c, mut events) = Cusax::start(cfg).await?;
        loop {
            tokio::select! {
                e = events.recv() => {
                    let Some(e) = e else { bail!("the client stopped") };
                    print(&e);
                    match &e {
                        ClientEvent::Sip(Event::RegistrationFailed { .. })
                        | ClientEvent::Xmpp(XmppEvent::LoginFailed { .. }) => {
                            refused = true;
                            break;
                        }
                        ClientEvent::Xmpp(XmppEvent::Subscription { from, kind }) if approve_all && kind == "subscribe" => {
                            c.xmpp().approve(from).await?;
                        }
                        _ => {}
                    }
                }
                _ = &mut interrupt => break,
            }
        }
        stop_dual(&c, &mut events).await;
    }
    Ok(if refused {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
