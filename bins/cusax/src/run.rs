//! The `call` and `listen` commands: drive a user agent and print its events as JSON lines.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cusax_client::{Account, AudioSource, CallState, Event, MediaConfig, UaConfig, UserAgent};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::cli::SourceArgs;

/// Prints a one-line error on stderr and returns a failure status.
pub fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("cusax: {e:#}");
    ExitCode::FAILURE
}

fn print(e: &Event) {
    // An Event always serialises (plain strings and numbers).
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

/// Stops the user agent and prints what it still reports.
async fn stop(ua: &UserAgent, events: &mut UnboundedReceiver<Event>) {
    ua.shutdown().await;
    while let Some(e) = events.recv().await {
        print(&e);
    }
}

/// `cusax call`: exit status 0 when the call was established.
pub async fn call(
    account: Account,
    uri: &str,
    src: &SourceArgs,
    record: Option<PathBuf>,
    duration: Option<f64>,
    ring_timeout: f64,
) -> Result<ExitCode> {
    let duration = duration.map(|d| seconds(d, "--duration")).transpose()?;
    let ring = seconds(ring_timeout, "--ring-timeout")?;
    let (ua, mut events) = UserAgent::start(UaConfig::new(account))
        .await
        .context("opening the SIP transport")?;
    let media = MediaConfig {
        source: source(src),
        record,
    };
    let id = ua.call(uri, media).await?;
    let mut established = false;
    let mut hangup_at = tokio::time::Instant::now() + ring;
    let mut hung_up = false;
    let interrupt = interrupted();
    tokio::pin!(interrupt);
    loop {
        tokio::select! {
            e = events.recv() => {
                let Some(e) = e else { break };
                print(&e);
                if let Event::CallState { call_id, state, .. } = &e
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
                ua.hangup(&id).await;
            }
            _ = &mut interrupt, if !hung_up => {
                hung_up = true;
                ua.hangup(&id).await;
            }
        }
    }
    stop(&ua, &mut events).await;
    Ok(if established {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `cusax listen`: runs until interrupted; fails when the registration is refused.
pub async fn listen(
    account: Account,
    auto_answer: bool,
    record_dir: Option<PathBuf>,
    src: &SourceArgs,
    expires: u32,
) -> Result<ExitCode> {
    if let Some(d) = &record_dir {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let mut cfg = UaConfig::new(account);
    cfg.register = true;
    cfg.expires = expires;
    cfg.auto_answer = auto_answer;
    cfg.record_dir = record_dir;
    cfg.answer_source = source(src);
    if let AudioSource::Wav(p) = &cfg.answer_source {
        cusax_client::media::audio::read_wav(p)?;
    }
    let (ua, mut events) = UserAgent::start(cfg)
        .await
        .context("opening the SIP transport")?;
    let interrupt = interrupted();
    tokio::pin!(interrupt);
    let mut refused = false;
    loop {
        tokio::select! {
            e = events.recv() => {
                let Some(e) = e else { bail!("the SIP transport closed") };
                print(&e);
                if matches!(e, Event::RegistrationFailed { .. }) {
                    refused = true;
                    break;
                }
            }
            _ = &mut interrupt => break,
        }
    }
    stop(&ua, &mut events).await;
    Ok(if refused {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
