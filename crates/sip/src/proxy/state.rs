//! The proxy's transaction state (RFC 3261 §16.7, the response context): server and client
//! transaction entries, the branches of each proxied request, and the timers, all in
//! [`ProxyState`] behind the proxy's one mutex.

use super::forward::{BRANCH_PREFIX, Plan};
use super::table::Table;
use super::target::Target;
use super::txn::{ClientTxn, ServerTxn};
use crate::types::{Dest, Peer};
use bytes::Bytes;
use cusax_sip_proto::Request;
use cusax_sip_proto::transaction::TransactionKey;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

/// Where a branch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BranchState {
    /// Sent, nothing heard yet.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived (or was synthesised on timeout).
    Done(u16),
}

#[derive(Debug)]
pub(super) struct Branch {
    pub(super) key: TransactionKey,
    pub(super) dest: Dest,
    pub(super) state: BranchState,
    /// CANCEL asked for before any provisional response (RFC 3261 §9.1: wait for one).
    pub(super) cancel_pending: bool,
    pub(super) request: Request,
}

/// The response context of one proxied request (RFC 3261 §16.7).
#[derive(Debug)]
pub(super) struct Forwarding {
    pub(super) plan: Plan,
    pub(super) branches: Vec<Branch>,
    /// Serial groups (by q-value) not started yet.
    pub(super) groups: VecDeque<Vec<Target>>,
    /// Best final response so far, already without our Via: (code, bytes).
    pub(super) best: Option<(u16, Bytes)>,
    /// A final response went upstream.
    pub(super) finished: bool,
}

impl Forwarding {
    /// Records that branch `ckey` ended with `code`. False when it had already ended and
    /// this is not a 2xx (a retransmitted or late final answer, ignored).
    pub(super) fn mark_done(&mut self, ckey: &TransactionKey, code: u16) -> bool {
        if let Some(b) = self.branches.iter_mut().find(|b| &b.key == ckey) {
            if matches!(b.state, BranchState::Done(_)) && !(200..300).contains(&code) {
                return false;
            }
            b.state = BranchState::Done(code);
        }
        true
    }

    /// Branches still waiting for a final answer, to be cancelled; those without a provisional
    /// answer are only marked (§9.1).
    pub(super) fn pending_branches(&mut self) -> Vec<(Request, Dest)> {
        let mut v = Vec::new();
        for b in &mut self.branches {
            match b.state {
                BranchState::Proceeding => v.push((b.request.clone(), b.dest.clone())),
                BranchState::Trying => b.cancel_pending = true,
                BranchState::Done(_) => {}
            }
        }
        v
    }

    /// Every branch started so far has a final answer.
    pub(super) fn all_done(&self) -> bool {
        self.branches
            .iter()
            .all(|b| matches!(b.state, BranchState::Done(_)))
    }
}

#[derive(Debug)]
pub(super) struct ServerEntry {
    pub(super) txn: ServerTxn,
    /// The request as received (to build local responses and new branches).
    pub(super) request: Request,
    pub(super) peer: Peer,
    pub(super) reply: Dest,
    pub(super) fwd: Forwarding,
}

#[derive(Debug)]
pub(super) struct ClientEntry {
    pub(super) txn: ClientTxn,
    pub(super) server: TransactionKey,
    pub(super) dest: Dest,
    /// A CANCEL's own transaction: its responses go nowhere.
    pub(super) is_cancel: bool,
}

#[derive(Debug, Clone)]
pub(super) enum TimerRef {
    Server(TransactionKey),
    Client(TransactionKey),
    /// Timer C of a proxied INVITE (RFC 3261 §16.6 step 11, §16.8).
    TimerC(TransactionKey),
    /// A branch still without a final answer when its request ended: removed if it is
    /// still waiting when this fires (RFC 3261 §16.8: 64·T1 after CANCEL).
    Reap(TransactionKey),
}

/// Timer C: a proxied INVITE that has no final answer after this long is cancelled (408).
/// RFC 3261 §16.6 step 11 asks for more than 3 minutes.
pub(super) const TIMER_C: std::time::Duration = std::time::Duration::from_secs(185);

/// Proxied requests in progress at most; beyond that new ones get 503 (bounded memory). A
/// completed transaction lingers 32 s on UDP (RFC 3261 timers J and L), so a call (INVITE and
/// BYE) holds two for about that long: 600k covers ~9,000 calls/s, at a few KiB each.
pub(super) const MAX_SERVER_TRANSACTIONS: usize = 600_000;

#[derive(Debug)]
pub(super) struct Timer {
    pub(super) at: Instant,
    seq: u64,
    pub(super) what: TimerRef,
}

impl PartialEq for Timer {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Timer {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// All transaction state of the proxy.
#[derive(Debug)]
pub struct ProxyState {
    /// Sharded: a single map this size stalled the dispatch thread each time it grew.
    pub(super) servers: Table<TransactionKey, ServerEntry>,
    pub(super) clients: Table<TransactionKey, ClientEntry>,
    pub(super) timers: BinaryHeap<Reverse<Timer>>,
    seq: u64,
    /// Seeds branch parameters so that they are unique across restarts.
    branch_seed: u64,
}

impl ProxyState {
    pub(crate) fn new(secret: [u8; 32]) -> Self {
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&secret[24..32]);
        Self {
            servers: Table::new(),
            clients: Table::new(),
            timers: BinaryHeap::new(),
            seq: 0,
            branch_seed: u64::from_le_bytes(seed),
        }
    }

    pub(super) fn next_branch(&mut self, loop_hash: u32) -> String {
        self.seq = self.seq.wrapping_add(1);
        let unique = self
            .branch_seed
            .wrapping_add(self.seq.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        format!("{BRANCH_PREFIX}{loop_hash:08x}.{unique:016x}")
    }

    pub(super) fn arm(&mut self, at: Option<Instant>, what: TimerRef) {
        if let Some(at) = at {
            self.seq = self.seq.wrapping_add(1);
            self.timers.push(Reverse(Timer {
                at,
                seq: self.seq,
                what,
            }));
        }
    }

    /// Number of server and client transactions held (for tests and metrics).
    pub fn transactions(&self) -> (usize, usize) {
        (self.servers.len(), self.clients.len())
    }
}
