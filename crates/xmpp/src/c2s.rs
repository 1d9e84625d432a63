//! RFC 6120 §4–§7 and XEP-0368: one client-to-server connection, from the first byte to the
//! end of the bound session. Drives the sans-IO negotiation and bound stream of
//! `cusax-xmpp-proto` over any byte stream.

use crate::modules::{self, Session, csi};
use crate::router::Delivery;
use crate::service::XmppService;
use async_trait::async_trait;
use cusax_account::{AccountId, Domain, Password, ScramHash as AccountHash};
use cusax_xmpp_proto::sasl::{
    ChannelBinding, Mechanism, SaslCondition, SaslServerConfig, ScramCredentials,
};
use cusax_xmpp_proto::stream::{
    BoundEvent, BoundStream, ServerConfig, ServerEvent, ServerNegotiation, StreamError,
    StreamErrorCondition as C,
};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Poll, ready};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// A byte stream a session runs over (TCP, or TLS over TCP).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// Performs the server side of a TLS handshake (STARTTLS) and extracts channel bindings.
#[async_trait]
pub trait TlsUpgrade: Send + Sync {
    /// Runs the handshake on `tcp`; returns the encrypted stream and its binding data.
    async fn upgrade(&self, tcp: TcpStream) -> std::io::Result<(Box<dyn Io>, Vec<ChannelBinding>)>;
}

/// A freshly accepted connection.
#[non_exhaustive]
pub enum Connection {
    /// Plain TCP; STARTTLS is offered when an upgrader is given.
    Plain(TcpStream, Option<Arc<dyn TlsUpgrade>>),
    /// XEP-0368 direct TLS, handshake already done.
    DirectTls(Box<dyn Io>, Vec<ChannelBinding>),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Connection::Plain(..) => "Connection::Plain",
            Connection::DirectTls(..) => "Connection::DirectTls",
        })
    }
}

/// Size of the read buffer each runtime thread lends to the connection it is reading.
const READ_BUF: usize = 16 * 1024;

thread_local! {
    /// The read buffer of this runtime thread. Connections own no read buffer: an idle one
    /// would hold it for nothing, and bytes never outlive the `feed` they are read for.
    static READ_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUF].into_boxed_slice());
}

/// Reads once from `io` into the thread's buffer and gives the bytes to `feed` before the
/// buffer is lent to anyone else; resolves to the count read (0 at end of stream).
async fn read_into<R, F>(io: &mut R, mut feed: F) -> std::io::Result<usize>
where
    R: AsyncRead + Unpin + ?Sized,
    F: FnMut(&[u8]),
{
    std::future::poll_fn(|cx| {
        READ_BUFFER.with_borrow_mut(|buf| {
            let mut rb = ReadBuf::new(buf);
            ready!(Pin::new(&mut *io).poll_read(cx, &mut rb))?;
            let data = rb.filled();
            if !data.is_empty() {
                feed(data);
            }
            Poll::Ready(Ok(data.len()))
        })
    })
    .await
}

impl XmppService {
    /// Serves one connection until it ends; never panics on client input.
    pub async fn serve(self, conn: Connection, peer: SocketAddr) {
        let started = Instant::now();
        // Boxed: negotiation state is large and short-lived, and must not stay part of the
        // session task's size for the life of an idle connection.
        match Box::pin(self.negotiate(conn, peer)).await {
            Ok(Some((io, bound, account))) => self.run_session(io, bound, account).await,
            Ok(None) => {}
            Err(e) => tracing::debug!(%peer, error = %e, "c2s connection ended during negotiation"),
        }
        tracing::debug!(%peer, secs = started.elapsed().as_secs_f32(), "c2s connection closed");
    }

    fn negotiation_config(&self, tls_upgrade: bool) -> ServerConfig {
        let cfg = &self.inner.config;
        let domains = cfg.domains.clone();
        ServerConfig {
            tls: if tls_upgrade {
                cfg.tls
            } else {
                cusax_xmpp_proto::stream::TlsPolicy::Disabled
            },
            mechanisms: Mechanism::ALL.to_vec(),
            sasl: SaslServerConfig {
                fake_salt_key: self.inner.fake_salt.clone(),
                fake_iterations: cfg.scram_iterations,
            },
            max_auth_attempts: cfg.max_auth_attempts,
            advertise_session: true,
            advertise_csi: self.module::<csi::Csi>().is_some(),
            limits: cfg.limits.clone(),
            is_served: Arc::new(move |d: &str| domains.iter().any(|x| x == d)),
        }
    }

    async fn negotiate(
        &self,
        conn: Connection,
        peer: SocketAddr,
    ) -> std::io::Result<Option<(Box<dyn Io>, Box<BoundStream>, AccountId)>> {
        let (mut plain, mut io, upgrader, mut neg): (Option<TcpStream>, Option<Box<dyn Io>>, _, _) =
            match conn {
                Connection::Plain(tcp, up) => {
                    let n = ServerNegotiation::new(self.negotiation_config(up.is_some()));
                    (Some(tcp), None, up, n)
                }
                Connection::DirectTls(s, cb) => {
                    let n = ServerNegotiation::new_direct_tls(self.negotiation_config(false), cb);
                    (None, Some(s), None, n)
                }
            };
        let deadline = tokio::time::Instant::now() + self.inner.config.negotiation_timeout;
        let mut account: Option<AccountId> = None;
        loop {
            let (need_tls, bound) = self.negotiation_events(&mut neg, peer, &mut account).await;
            let out = neg.take_output();
            if !out.is_empty() {
                write_all(&mut plain, &mut io, &out).await?;
            }
            if neg.is_closed() {
                shutdown(&mut plain, &mut io).await;
                return Ok(None);
            }
            if bound {
                let stream = match neg.into_bound() {
                    Ok(s) => Box::new(s),
                    Err(_) => return Ok(None),
                };
                let io = match (io, plain) {
                    (Some(io), _) => io,
                    (None, Some(tcp)) => Box::new(tcp) as Box<dyn Io>,
                    (None, None) => return Ok(None),
                };
                return Ok(account.map(|a| (io, stream, a)));
            }
            if need_tls {
                let (Some(tcp), Some(up)) = (plain.take(), upgrader.as_ref()) else {
                    return Ok(None);
                };
                let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
                let (s, cb) = timeout(remaining, up.upgrade(tcp)).await.map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake")
                })??;
                io = Some(s);
                neg.tls_established(cb);
                continue;
            }
            let n = tokio::select! {
                () = self.inner.shutdown.cancelled() => return Ok(None),
                r = tokio::time::timeout_at(deadline, read(&mut plain, &mut io, &mut neg)) => match r {
                    Ok(r) => r?,
                    Err(_) => {
                        let e = StreamError::from(C::ConnectionTimeout);
                        write_all(&mut plain, &mut io, &e.to_closing_bytes()).await?;
                        return Ok(None);
                    }
                },
            };
            if n == 0 {
                return Ok(None);
            }
        }
    }

    /// Reacts to the negotiation's pending events (credentials, authentication outcomes,
    /// bind); returns whether TLS must start now and whether a resource was bound.
    async fn negotiation_events(
        &self,
        neg: &mut ServerNegotiation,
        peer: SocketAddr,
        account: &mut Option<AccountId>,
    ) -> (bool, bool) {
        let (mut need_tls, mut bound) = (false, false);
        while let Some(ev) = neg.poll_event() {
            match ev {
                ServerEvent::NeedTls => need_tls = true,
                ServerEvent::NeedCredentials {
                    username,
                    mechanism,
                } => {
                    self.provide_credentials(neg, &username, mechanism, peer)
                        .await;
                }
                ServerEvent::VerifyPlain(auth) => {
                    let ok = self
                        .verify_plain(neg, &auth.authcid, auth.password.expose(), peer)
                        .await;
                    match ok {
                        Err(c) => neg.reject_auth(c),
                        Ok(ok) => neg.plain_result(ok),
                    }
                }
                ServerEvent::AuthFailed {
                    username,
                    condition,
                } => {
                    let acct = username.as_deref().and_then(|u| self.account_for(neg, u));
                    tracing::info!(protocol = "xmpp", account = %acct.as_ref().map(ToString::to_string).unwrap_or_else(|| format!("{username:?}")), %peer, condition = condition.as_str(), "authentication failed");
                    metrics::counter!("cusax_auth_failures_total", "protocol" => "xmpp")
                        .increment(1);
                    let key = acct.as_ref().map(ToString::to_string);
                    self.inner
                        .throttle
                        .failed(key.as_deref(), peer.ip(), Instant::now());
                }
                ServerEvent::Authenticated { username } => {
                    *account = self.account_for(neg, &username);
                    tracing::info!(protocol = "xmpp", account = %account.as_ref().map(ToString::to_string).unwrap_or_else(|| username.clone()), %peer, "authenticated");
                }
                ServerEvent::BindRequest { resource, .. } => neg.complete_bind(Ok(resource)),
                ServerEvent::Bound(_) => bound = true,
                ServerEvent::Closed(e) => {
                    tracing::debug!(%peer, error = ?e, "c2s negotiation closed");
                }
                _ => {}
            }
        }
        (need_tls, bound)
    }

    fn account_for(&self, neg: &ServerNegotiation, username: &str) -> Option<AccountId> {
        let domain = Domain::parse(neg.domain()?).ok()?;
        AccountId::new(username, domain).ok()
    }

    async fn provide_credentials(
        &self,
        neg: &mut ServerNegotiation,
        username: &str,
        mechanism: Mechanism,
        peer: SocketAddr,
    ) {
        let id = self.account_for(neg, username);
        let key = id.as_ref().map(ToString::to_string);
        let delay = self
            .inner
            .throttle
            .delay(key.as_deref(), peer.ip(), Instant::now());
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let Some(id) = id else {
            return neg.provide_credentials(None);
        };
        let rec = match self.inner.store.account(&id).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "reading an account failed");
                return neg.reject_auth(SaslCondition::TemporaryAuthFailure);
            }
        };
        let Some(rec) = rec else {
            return neg.provide_credentials(None);
        };
        if rec.locked {
            return neg.reject_auth(SaslCondition::AccountDisabled);
        }
        let hash = match mechanism.scram_hash() {
            Some(cusax_xmpp_proto::sasl::ScramHash::Sha1) => AccountHash::Sha1,
            _ => AccountHash::Sha256,
        };
        let creds = rec.credentials.scram(hash).map(|v| ScramCredentials {
            salt: v.salt.clone(),
            iterations: v.iterations,
            stored_key: v.stored_key.clone(),
            server_key: v.server_key.clone(),
        });
        neg.provide_credentials(creds);
    }

    /// PLAIN (over TLS only): checks the password against the stored SCRAM-SHA-256 verifier.
    async fn verify_plain(
        &self,
        neg: &ServerNegotiation,
        username: &str,
        password: &str,
        peer: SocketAddr,
    ) -> Result<bool, SaslCondition> {
        let Some(id) = self.account_for(neg, username) else {
            return Ok(false);
        };
        let delay = self
            .inner
            .throttle
            .delay(Some(&id.to_string()), peer.ip(), Instant::now());
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let rec = self
            .inner
            .store
            .account(&id)
            .await
            .map_err(|_| SaslCondition::TemporaryAuthFailure)?;
        let Some(rec) = rec else { return Ok(false) };
        let Some(v) = rec.credentials.scram(AccountHash::Sha256) else {
            return Ok(false);
        };
        let derived = cusax_account::ScramVerifier::derive(
            AccountHash::Sha256,
            &Password::new(password),
            &v.salt,
            v.iterations,
        );
        let ok = derived.stored_key == v.stored_key;
        if ok && rec.locked {
            return Err(SaslCondition::AccountDisabled);
        }
        Ok(ok)
    }

    /// The bound session until the stream ends. The stream comes boxed because an async fn
    /// keeps its arguments apart from its locals: inline, the parser state would be in the
    /// session task twice.
    // long: one select loop over the stream, the inbox, shutdown and the idle timer; its
    // locals are what an idle connection's task holds, so helpers would only move them around.
    async fn run_session(
        &self,
        mut io: Box<dyn Io>,
        mut stream: Box<BoundStream>,
        account: AccountId,
    ) {
        let full = stream.jid().clone();
        // The account's own spelling (an account id is always a valid bare JID).
        let bare = jid::BareJid::new(&account.to_string()).unwrap_or_else(|_| full.to_bare());
        let cfg = &self.inner.config;
        let (id, inbox) =
            self.inner
                .router
                .register(bare.as_str(), full.resource().as_str(), cfg.session_queue);
        let session = Session {
            account,
            bare,
            full,
            id,
        };
        tracing::info!(jid = %session.full, "c2s session bound");
        self.announce_session(&session.account, session.full.resource().as_str(), true);
        // Handlers are boxed: their state exists while a stanza is handled, not while the
        // session waits, which is what an idle connection's task size is made of.
        Box::pin(modules::session_started(self, &session)).await;
        let idle = tokio::time::sleep(cfg.idle_timeout);
        tokio::pin!(idle);
        let csi = self.module::<csi::Csi>().is_some();
        // XEP-0352: `Some` while the client is inactive (boxed: most sessions never are).
        let mut held: Option<Box<csi::Held>> = None;
        loop {
            while let Some(ev) = stream.poll_event() {
                match ev {
                    BoundEvent::Stanza(el) => match csi::ClientState::from_element(&el) {
                        Some(state) if csi => {
                            // §5: the change, and the flush, come before the next stanza.
                            if state == csi::ClientState::Inactive {
                                held.get_or_insert_with(Box::default);
                            } else if let Some(mut h) = held.take() {
                                send_all(&mut stream, h.flush());
                            }
                        }
                        _ => Box::pin(modules::handle(self, &session, el)).await,
                    },
                    BoundEvent::Closed(_) => {}
                    _ => {}
                }
            }
            let out = stream.take_output();
            if !out.is_empty() {
                match timeout(cfg.write_timeout, io.write_all(&out)).await {
                    Ok(Ok(())) => {}
                    _ => break,
                }
            }
            if stream.is_closed() {
                let _ = timeout(cfg.write_timeout, io.shutdown()).await;
                break;
            }
            stream.release_buffers();
            idle.as_mut()
                .reset(tokio::time::Instant::now() + cfg.idle_timeout);
            tokio::select! {
                biased;
                d = inbox.next() => match d {
                    Delivery::Kill(reason) => stream.fail(reason),
                    Delivery::Stanza(el) => match held.as_mut() {
                        Some(h) => {
                            if let Some(now) = h.offer(el) {
                                send_all(&mut stream, now);
                            }
                        }
                        None => send_all(&mut stream, [el]),
                    },
                },
                () = self.inner.shutdown.cancelled() => stream.fail(C::SystemShutdown.into()),
                r = read_into(&mut *io, |data| stream.feed(data)) => match r {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                },
                () = &mut idle => stream.fail(C::ConnectionTimeout.into()),
            }
        }
        inbox.close();
        Box::pin(modules::session_ended(self, &session)).await;
        tracing::info!(jid = %session.full, "c2s session ended");
        // A session replaced by a new one with the same resource (RFC 6120 §7.7.2.2) ends
        // after its successor was announced: the resource is still up.
        if self
            .inner
            .router
            .session(session.bare.as_str(), session.full.resource().as_str())
            .is_none()
        {
            self.announce_session(&session.account, session.full.resource().as_str(), false);
        }
    }
}

/// Queues stanzas on the bound stream, in order.
fn send_all(stream: &mut BoundStream, stanzas: impl IntoIterator<Item = minidom::Element>) {
    for el in stanzas {
        if stream.send_stanza(&el).is_err() {
            tracing::debug!("dropping a stanza that cannot be serialized");
        }
    }
}

/// Reads once from whichever stream is current and feeds the negotiation.
async fn read(
    plain: &mut Option<TcpStream>,
    io: &mut Option<Box<dyn Io>>,
    neg: &mut ServerNegotiation,
) -> std::io::Result<usize> {
    match (io, plain) {
        (Some(s), _) => read_into(&mut **s, |d| neg.feed(d)).await,
        (None, Some(t)) => read_into(t, |d| neg.feed(d)).await,
        (None, None) => Ok(0),
    }
}

async fn write_all(
    plain: &mut Option<TcpStream>,
    io: &mut Option<Box<dyn Io>>,
    data: &[u8],
) -> std::io::Result<()> {
    match (io, plain) {
        (Some(s), _) => s.write_all(data).await,
        (None, Some(t)) => t.write_all(data).await,
        (None, None) => Ok(()),
    }
}

async fn shutdown(plain: &mut Option<TcpStream>, io: &mut Option<Box<dyn Io>>) {
    let _ = match (io, plain) {
        (Some(s), _) => s.shutdown().await,
        (None, Some(t)) => t.shutdown().await,
        (None, None) => Ok(()),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Most of an idle connection's memory is its task, i.e. this future: negotiation and
    /// stanza handlers are boxed so that they do not stay in it (inlined, they weigh KiBs).
    #[tokio::test]
    async fn connection_task_stays_small() {
        let store = Arc::new(cusax_store::memory::MemoryStore::default());
        let svc = XmppService::new(
            crate::XmppConfig::default(),
            store,
            tokio_util::sync::CancellationToken::new(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let tcp = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let peer = listener.local_addr().expect("addr");
        let task = svc.serve(Connection::Plain(tcp, None), peer);
        let size = std::mem::size_of_val(&task);
        eprintln!("connection task: {size} bytes");
        assert!(size <= 1536, "the connection task grew to {size} bytes");
    }
}
