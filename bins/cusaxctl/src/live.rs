//! RFC 7081 §3.2 (one service for the operator): the `sessions`, `bindings` and `user status`
//! verbs, which read and change the live state of a running `cusaxd` through its admin API
//! and print it as text tables (or the API's JSON with `--json`).

use crate::api::{Endpoint, encode};
use crate::cli::{ApiArgs, BindingsCmd, SessionsCmd};
use crate::commands::Ctx;
use anyhow::{Context, bail};
use cusax_account::{AccountId, Aor};
use cusax_store::StoreError;
use serde::Deserialize;
use std::io::Write as _;

/// One XMPP session as the API lists it.
#[derive(Debug, Deserialize)]
struct Session {
    jid: String,
    available: bool,
}

/// One SIP binding as the API lists it.
#[derive(Debug, Deserialize)]
struct Binding {
    aor: String,
    contact: String,
    expires_in: i64,
    transport: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    user_agent: Option<String>,
}

/// `GET /admin/v1/users/{account}`.
#[derive(Debug, Deserialize)]
struct UserView {
    account: String,
    xmpp: Vec<Session>,
    sip: Vec<Binding>,
    calls: Vec<String>,
}

fn endpoint(ctx: &Ctx, api: &ApiArgs) -> anyhow::Result<Endpoint> {
    Endpoint::new(&ctx.dir, &ctx.config, api.url.as_deref())
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> anyhow::Result<T> {
    serde_json::from_slice(body).context("cusaxd answered something other than the expected JSON")
}

/// Writes the API's answer as it came, with a final newline.
fn print_json(body: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(body)?;
    if !body.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// A bare JID (normalised like an account address) and an optional resource.
fn parse_jid(text: &str) -> anyhow::Result<(String, Option<String>)> {
    let t = text.trim();
    let (bare, resource) = match t.split_once('/') {
        Some((b, r)) => (b, Some(r)),
        None => (t, None),
    };
    let id = AccountId::parse(bare).with_context(|| format!("invalid JID {text:?}"))?;
    if resource.is_some_and(str::is_empty) {
        bail!("invalid JID {text:?}: empty resource");
    }
    Ok((id.to_string(), resource.map(str::to_owned)))
}

/// An address of record; `user@domain` is taken as `sip:user@domain`.
fn parse_aor(text: &str) -> anyhow::Result<Aor> {
    let t = text.trim();
    let has_scheme = t.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("sip:"))
        || t.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("sips:"));
    let r = if has_scheme {
        Aor::parse(t)
    } else {
        Aor::parse(&format!("sip:{t}"))
    };
    r.with_context(|| format!("invalid address of record {text:?}"))
}

/// Whether a session's full JID is the bare JID `bare` (any resource) or exactly `bare/resource`.
fn session_matches(full: &str, bare: &str, resource: Option<&str>) -> bool {
    let (b, r) = full.split_once('/').unwrap_or((full, ""));
    b.eq_ignore_ascii_case(bare) && resource.is_none_or(|want| want == r)
}

/// Text from the server or a phone, safe for a terminal: control characters escaped.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Left-aligned columns two spaces apart, the last one unpadded; a header line even when
/// there are no rows.
fn table(indent: &str, header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::from(indent);
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                let pad = w.saturating_sub(cell.chars().count()) + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `3599` → `59m59s`; a binding past its time (not listed by the server) → `expired`.
fn duration(secs: i64) -> String {
    if secs <= 0 {
        return "expired".to_owned();
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// One `label:   value` line of the user view.
fn field(out: &mut String, label: &str, value: &str) {
    out.push_str(&format!("{label:<10}{value}\n"));
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn sessions_table(indent: &str, sessions: &[Session]) -> String {
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            vec![
                clean(&s.jid),
                if s.available { "yes" } else { "no" }.to_owned(),
            ]
        })
        .collect();
    table(indent, &["JID", "AVAILABLE"], &rows)
}

fn bindings_table(indent: &str, bindings: &[Binding], with_aor: bool) -> String {
    let opt = |v: &Option<String>| v.as_deref().map_or_else(|| "-".to_owned(), clean);
    let rows: Vec<Vec<String>> = bindings
        .iter()
        .map(|b| {
            let mut row = Vec::with_capacity(6);
            if with_aor {
                row.push(clean(&b.aor));
            }
            row.extend([
                clean(&b.contact),
                duration(b.expires_in),
                clean(&b.transport),
                opt(&b.source),
                opt(&b.user_agent),
            ]);
            row
        })
        .collect();
    let mut header = Vec::with_capacity(6);
    if with_aor {
        header.push("AOR");
    }
    header.extend(["CONTACT", "EXPIRES IN", "TRANSPORT", "SOURCE", "USER AGENT"]);
    table(indent, &header, &rows)
}

/// `cusaxctl sessions …`.
pub async fn sessions(ctx: &Ctx, cmd: SessionsCmd) -> anyhow::Result<()> {
    match cmd {
        SessionsCmd::List { jid, api } => {
            let filter = jid.as_deref().map(parse_jid).transpose()?;
            let body = endpoint(ctx, &api)?.get("/admin/v1/sessions").await?;
            match &filter {
                // The API lists every session; one JID's are picked here.
                Some((bare, resource)) => {
                    let all: Vec<serde_json::Value> = decode(&body)?;
                    let (picked, json): (Vec<Session>, Vec<serde_json::Value>) = all
                        .into_iter()
                        .filter_map(|v| {
                            let s: Session = serde_json::from_value(v.clone()).ok()?;
                            session_matches(&s.jid, bare, resource.as_deref()).then_some((s, v))
                        })
                        .unzip();
                    if api.json {
                        print_json(serde_json::to_string(&json)?.as_bytes())?;
                    } else {
                        print!("{}", sessions_table("", &picked));
                    }
                }
                None if api.json => print_json(&body)?,
                None => {
                    let all: Vec<Session> = decode(&body)?;
                    print!("{}", sessions_table("", &all));
                }
            }
        }
        SessionsCmd::Kick { jid, api } => {
            let (bare, resource) = parse_jid(&jid)?;
            let target = match &resource {
                Some(r) => format!("{bare}/{r}"),
                None => bare,
            };
            let body = endpoint(ctx, &api)?
                .delete(&format!("/admin/v1/sessions/{}", encode(&target)))
                .await?;
            if api.json {
                return print_json(&body);
            }
            #[derive(Deserialize)]
            struct Ended {
                ended: usize,
            }
            let Ended { ended } = decode(&body)?;
            println!(
                "ended {} of {}",
                count(ended, "session", "sessions"),
                clean(&target)
            );
        }
    }
    Ok(())
}

/// `cusaxctl bindings …`.
pub async fn bindings(ctx: &Ctx, cmd: BindingsCmd) -> anyhow::Result<()> {
    match cmd {
        BindingsCmd::List { aor, api } => {
            let aor = aor.as_deref().map(parse_aor).transpose()?;
            let path = match &aor {
                Some(a) => format!("/admin/v1/bindings?aor={}", encode(a.as_str())),
                None => "/admin/v1/bindings".to_owned(),
            };
            let body = endpoint(ctx, &api)?.get(&path).await?;
            if api.json {
                return print_json(&body);
            }
            let list: Vec<Binding> = decode(&body)?;
            print!("{}", bindings_table("", &list, true));
        }
        BindingsCmd::Remove { aor, contact, api } => {
            let aor = parse_aor(&aor)?;
            let mut path = format!("/admin/v1/bindings/{}", encode(aor.as_str()));
            if let Some(c) = &contact {
                let c = c.trim();
                if c.is_empty() {
                    bail!("--contact needs a contact URI");
                }
                path.push_str("?contact=");
                path.push_str(&encode(c));
            }
            let body = endpoint(ctx, &api)?.delete(&path).await?;
            if api.json {
                return print_json(&body);
            }
            #[derive(Deserialize)]
            struct Removed {
                removed: usize,
            }
            let Removed { removed } = decode(&body)?;
            println!("removed {} of {aor}", count(removed, "binding", "bindings"));
        }
    }
    Ok(())
}

/// `cusaxctl user status USER@DOMAIN`: the store's view (exists, locked, aliases) and the
/// running server's (sessions, bindings, calls).
pub async fn user_status(ctx: &Ctx, user: &str, api: &ApiArgs) -> anyhow::Result<()> {
    let id = AccountId::parse(user).context("invalid address")?;
    let Some(rec) = ctx.store.account(&id).await? else {
        return Err(StoreError::UnknownAccount(id).into());
    };
    let aliases = ctx.store.aliases(&id).await?;
    let body = endpoint(ctx, api)?
        .get(&format!("/admin/v1/users/{}", encode(&id.to_string())))
        .await?;
    if api.json {
        return print_json(&body);
    }
    let view: UserView = decode(&body)?;
    let mut out = String::new();
    field(&mut out, "account:", &clean(&view.account));
    field(&mut out, "sip aor:", id.aor().as_str());
    let locked = if rec.locked {
        "yes (logins refused on SIP and XMPP)"
    } else {
        "no"
    };
    field(&mut out, "locked:", locked);
    let aliases: Vec<String> = aliases.iter().map(ToString::to_string).collect();
    let aliases = if aliases.is_empty() {
        "none".to_owned()
    } else {
        aliases.join(", ")
    };
    field(&mut out, "aliases:", &aliases);
    if view.xmpp.is_empty() {
        field(&mut out, "xmpp:", "no session");
    } else {
        field(
            &mut out,
            "xmpp:",
            &count(view.xmpp.len(), "session", "sessions"),
        );
        out.push_str(&sessions_table("  ", &view.xmpp));
    }
    if view.sip.is_empty() {
        field(&mut out, "sip:", "no binding");
    } else {
        field(
            &mut out,
            "sip:",
            &count(view.sip.len(), "binding", "bindings"),
        );
        out.push_str(&bindings_table("  ", &view.sip, false));
    }
    if view.calls.is_empty() {
        field(&mut out, "calls:", "none");
    } else {
        field(
            &mut out,
            "calls:",
            &count(view.calls.len(), "call", "calls"),
        );
        for c in &view.calls {
            out.push_str("  ");
            out.push_str(&clean(c));
            out.push('\n');
        }
    }
    print!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_keep_the_header_when_empty() {
        assert_eq!(table("", &["JID", "AVAILABLE"], &[]), "JID  AVAILABLE\n");
        let rows = vec![
            vec!["alice@example.org/phone".to_owned(), "yes".to_owned()],
            vec!["b@x/y".to_owned(), "no".to_owned()],
        ];
        assert_eq!(
            table("  ", &["JID", "AVAILABLE"], &rows),
            "  JID                      AVAILABLE\n  alice@example.org/phone  yes\n  b@x/y                    no\n"
        );
    }

    #[test]
    fn durations_and_control_characters() {
        assert_eq!(duration(42), "42s");
        assert_eq!(duration(3599), "59m59s");
        assert_eq!(duration(7200), "2h00m00s");
        assert_eq!(duration(0), "expired");
        assert_eq!(clean("phone\x1b[2J\n"), "phone\\u{1b}[2J\\n");
    }

    #[test]
    fn jids_and_aors_are_normalised() {
        assert_eq!(
            parse_jid("Alice@Example.org/Phone").expect("full"),
            ("alice@example.org".to_owned(), Some("Phone".to_owned()))
        );
        assert_eq!(
            parse_jid("alice@example.org").expect("bare"),
            ("alice@example.org".to_owned(), None)
        );
        assert!(parse_jid("alice@example.org/").is_err());
        assert!(parse_jid("no-at-sign").is_err());
        assert_eq!(
            parse_aor("alice@example.org").expect("no scheme").as_str(),
            "sip:alice@example.org"
        );
        assert_eq!(
            parse_aor("SIP:alice@example.org").expect("scheme").as_str(),
            "sip:alice@example.org"
        );
        assert!(session_matches(
            "alice@example.org/phone",
            "alice@example.org",
            None
        ));
        assert!(session_matches(
            "alice@example.org/phone",
            "alice@example.org",
            Some("phone")
        ));
        assert!(!session_matches(
            "alice@example.org/phone",
            "alice@example.org",
            Some("desk")
        ));
        assert!(!session_matches(
            "alice@example.org.evil/phone",
            "alice@example.org",
            None
        ));
    }
}
