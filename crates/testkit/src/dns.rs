//! RFC 1035 zones served by an in-process authoritative name server (hickory-server) on
//! loopback, for tests of RFC 3263 / RFC 6120 §3.2.1 discovery: the records are text as
//! `cusaxctl dns` prints them, the server is independent of the resolver under test.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::proto::rr::{LowerName, Name, RecordSet, RrKey};
use hickory_server::proto::serialize::txt::Parser;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};

/// A parsed zone: its origin and records.
pub type Zone = (Name, BTreeMap<RrKey, RecordSet>);

/// A zone: an SOA for `origin`, then `body` (master-file lines, TTLs given).
pub fn zone(origin: &str, body: &str) -> Zone {
    let text = format!(
        "{origin}. 60 IN SOA ns.{origin}. hostmaster.{origin}. 1 3600 600 86400 60\n{body}"
    );
    let name = Name::from_ascii(format!("{origin}.")).expect("origin");
    Parser::new(text.as_str(), None, Some(name))
        .parse()
        .unwrap_or_else(|e| panic!("zone {origin}: {e}\n{text}"))
}

/// Serves the zones on 127.0.0.1 (UDP, and TCP on the same port for truncated answers) from
/// the current tokio runtime; returns the address and the server (dropping it stops serving).
pub async fn serve(zones: Vec<Zone>) -> (SocketAddr, Server<Catalog>) {
    let mut catalog = Catalog::new();
    for (origin, records) in zones {
        let handler: InMemoryZoneHandler =
            InMemoryZoneHandler::new(origin.clone(), records, ZoneType::Primary, AxfrPolicy::Deny)
                .expect("zone");
        let handlers: Vec<Arc<dyn ZoneHandler>> = vec![Arc::new(handler)];
        catalog.upsert(LowerName::new(&origin), handlers);
    }
    let mut server = Server::new(catalog);
    // A free UDP port and TCP on the same number; retried when another process holds the
    // TCP port.
    for _ in 0..20 {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("udp");
        let addr = udp.local_addr().expect("addr");
        if let Ok(tcp) = tokio::net::TcpListener::bind(addr).await {
            server.register_socket(udp);
            server.register_listener(tcp, Duration::from_secs(5), 4096);
            return (addr, server);
        }
    }
    panic!("no port free for both UDP and TCP");
}

/// [`serve`] on a thread of its own, for tests without a runtime (that run binaries); it
/// serves until dropped.
#[derive(Debug)]
pub struct DnsThread {
    /// Where the zones are served (UDP and TCP).
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DnsThread {
    /// Starts serving `zones`.
    pub fn start(zones: Vec<Zone>) -> Self {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let (addr, _server) = serve(zones).await;
                let _ = addr_tx.send(addr);
                // Serves until the sender is dropped or used.
                let _ = stopped.await;
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the DNS server binds within 10 s");
        Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for DnsThread {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
