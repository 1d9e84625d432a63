#!/usr/bin/env python3
"""slixmpp peers driven by the cusaxd integration tests (one scenario per run).

Usage: peer.py SCENARIO --addr HOST:PORT --ca CERT [--user JID PASSWORD]...

Prints one line per checked fact and exits 0 only when the scenario's expectations hold;
any failure prints "FAIL: ..." and exits 1. Every wait is bounded.
"""
import argparse
import asyncio
import datetime
import logging
import ssl
import sys

import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError

TIMEOUT = 15
PUBSUB = "http://jabber.org/protocol/pubsub"
ACTIVITY = "http://jabber.org/protocol/activity"
REACH = "urn:xmpp:reach:0"
# XEP-0163 with caps, so that the client announces activity+notify and reach+notify
PEP_PLUGINS = ("xep_0115", "xep_0163", "xep_0108", "xep_0152")


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


class Peer(slixmpp.ClientXMPP):
    def __init__(self, jid, password, args, mech=None, plugins=()):
        kw = {"sasl_mech": mech} if mech else {}
        super().__init__(jid, password, **kw)
        self.args = args
        self.ca_certs = args.ca
        self.enable_direct_tls = False
        for p in ("xep_0030", "xep_0054", "xep_0077", "xep_0199", "xep_0203", *plugins):
            self.register_plugin(p)
        self.started = asyncio.Event()
        self.auth_failed = asyncio.Event()
        self.disconnected_ev = asyncio.Event()
        self.stream_errors = []
        self.messages = asyncio.Queue()
        self.presences = asyncio.Queue()
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("failed_all_auth", lambda _e: self.auth_failed.set())
        self.add_event_handler("failed_auth", lambda _e: self.auth_failed.set())
        self.add_event_handler("disconnected", lambda _e: self.disconnected_ev.set())
        self.add_event_handler("stream_error", lambda e: self.stream_errors.append(e["condition"]))
        self.add_event_handler("message", lambda m: self.messages.put_nowait(m))
        self.add_event_handler("presence_available", lambda p: self.presences.put_nowait(p))
        self.add_event_handler("presence_unavailable", lambda p: self.presences.put_nowait(p))
        # Wakes whoever waits for the client's roster to change (pushes, subscription answers).
        self.roster_changes = asyncio.Queue()
        self.add_event_handler("roster_update", lambda e: self.roster_changes.put_nowait(e))
        self.add_event_handler("presence_subscribed", lambda e: self.roster_changes.put_nowait(e))
        self.pep = asyncio.Queue()  # (from bare JID, node, payload element or None)
        self.add_event_handler("pubsub_publish", self._pep_event)

    def _pep_event(self, msg):
        for items in msg.xml.iter(f"{{{PUBSUB}#event}}items"):
            for item in items.findall(f"{{{PUBSUB}#event}}item"):
                payload = next(iter(item), None)
                self.pep.put_nowait((msg["from"].bare, items.get("node"), payload))

    async def _start(self, _event):
        await self.get_roster()
        self.send_presence()
        self.started.set()

    async def login(self):
        host, port = self.args.addr.rsplit(":", 1)
        self.connect(host, int(port))
        done, _ = await asyncio.wait(
            [asyncio.create_task(self.started.wait()), asyncio.create_task(self.auth_failed.wait())],
            timeout=TIMEOUT,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if not done:
            fail(f"{self.boundjid.bare}: no login outcome in {TIMEOUT}s")
        return self.started.is_set()


async def wait_for(queue, pred, what, timeout=TIMEOUT):
    try:
        async with asyncio.timeout(timeout):
            while True:
                item = await queue.get()
                if pred(item):
                    return item
    except TimeoutError:
        fail(f"timed out waiting for {what}")


def peer(args, i, mech=None, plugins=()):
    jid, pw = args.user[i]
    return Peer(jid, pw, args, mech, plugins)


async def scenario_login(args):
    """user 0 must log in with each SCRAM mechanism; user 1 (wrong password) must not."""
    for mech in ("SCRAM-SHA-1", "SCRAM-SHA-256"):
        c = peer(args, 0, mech)
        if not await c.login():
            fail(f"{mech} login refused")
        print(f"login ok {mech}", flush=True)
        c.disconnect()
        await asyncio.wait_for(c.disconnected_ev.wait(), TIMEOUT)
    bad = peer(args, 1, "SCRAM-SHA-256")
    if await bad.login():
        fail("wrong password accepted")
    print("wrong password refused", flush=True)


async def scenario_im(args):
    """Subscription handshake, presence, chat, and unavailable when a peer's TCP drops."""
    a, b = peer(args, 0), peer(args, 1)
    if not (await a.login() and await b.login()):
        fail("login")
    bare_a, bare_b = a.boundjid.bare, b.boundjid.bare
    a.send_presence(pto=bare_b, ptype="subscribe")
    await wait_for(a.presences, lambda p: p["from"].bare == bare_b and p["type"] == "available", "bob's presence at alice")
    # The server pushes the roster change before it delivers bob's presence (RFC 6121
    # §3.1.6), but slixmpp may apply the push after it has reported the presence.
    try:
        async with asyncio.timeout(TIMEOUT):
            while a.client_roster[bare_b]["subscription"] not in ("to", "both"):
                await a.roster_changes.get()
    except TimeoutError:
        fail(f"alice's roster item for bob has subscription {a.client_roster[bare_b]['subscription']}")
    print(f"subscribed: {a.client_roster[bare_b]['subscription']}", flush=True)
    a.send_message(mto=b.boundjid.full, mbody="hello bob", mtype="chat")
    m = await wait_for(b.messages, lambda m: m["body"] == "hello bob", "chat at bob")
    if m["from"].bare != bare_a:
        fail(f"message from {m['from']}")
    b.send_message(mto=bare_a, mbody="hi alice", mtype="chat")
    await wait_for(a.messages, lambda m: m["body"] == "hi alice", "chat at alice")
    print("chat ok", flush=True)
    b.transport.abort()  # the TCP connection drops without a closing tag
    await wait_for(a.presences, lambda p: p["from"].bare == bare_b and p["type"] == "unavailable", "bob unavailable")
    print("unavailable on drop ok", flush=True)


async def scenario_offline(args):
    """A message to an offline user arrives at next login with a XEP-0203 delay."""
    a = peer(args, 0)
    if not await a.login():
        fail("login")
    bare_c = args.user[1][0]
    a.send_message(mto=bare_c, mbody="while you were away", mtype="chat")
    # a ping round trip guarantees the server handled the message before carol connects
    await a.plugin["xep_0199"].ping(jid=a.boundjid.domain, timeout=TIMEOUT)
    c = peer(args, 1)
    if not await c.login():
        fail("login")
    m = await wait_for(c.messages, lambda m: m["body"] == "while you were away", "offline message")
    stamp = m["delay"]["stamp"]
    if stamp is None:
        fail("no delay stamp")
    print(f"offline ok, delay stamp {stamp.isoformat()}", flush=True)


async def get_numbers(client, jid):
    """Fetches a vCard; returns the NUMBER of every TEL and the vCard itself."""
    iq = await client.plugin["xep_0054"].get_vcard(jid=jid, cached=False, timeout=TIMEOUT)
    v = iq["vcard_temp"]
    return [el.findtext("{vcard-temp}NUMBER") for el in v.xml.findall("{vcard-temp}TEL")], v


async def scenario_vcard(args):
    """Another user's vCard names their SIP AOR; claiming it is refused; own set keeps pins."""
    a, b = peer(args, 0), peer(args, 1)
    if not (await a.login() and await b.login()):
        fail("login")
    bare_b = b.boundjid.bare
    nums, _ = await get_numbers(a, bare_b)
    if f"sip:{bare_b}" not in nums:
        fail(f"bob's vCard lacks his AOR: {nums}")
    print(f"bob's vCard numbers: {nums}", flush=True)
    stolen = a.plugin["xep_0054"].make_vcard()
    stolen["FN"] = "Not Bob"
    tel = stolen["TEL"]
    tel["NUMBER"] = f"sip:{bare_b}"
    try:
        await a.plugin["xep_0054"].publish_vcard(stolen, timeout=TIMEOUT)
        fail("claiming bob's AOR was accepted")
    except IqError as e:
        cond = e.iq["error"]["condition"]
        if cond not in ("not-acceptable", "forbidden"):
            fail(f"unexpected error {cond}")
        print(f"claim refused: {cond}", flush=True)
    mine = a.plugin["xep_0054"].make_vcard()
    mine["FN"] = "Alice A."
    await a.plugin["xep_0054"].publish_vcard(mine, timeout=TIMEOUT)
    nums, v = await get_numbers(b, a.boundjid.bare)
    if f"sip:{a.boundjid.bare}" not in nums or v["FN"] != "Alice A.":
        fail(f"alice's vCard after set: FN={v['FN']} numbers={nums}")
    print(f"own set kept pins: {nums}", flush=True)


async def scenario_passwd(args):
    """XEP-0077 password change: user 0's password becomes user 1's password field."""
    jid, old = args.user[0]
    new = args.user[1][1]
    a = peer(args, 0)
    if not await a.login():
        fail("login")
    await a.plugin["xep_0077"].change_password(new, timeout=TIMEOUT)
    print("password changed", flush=True)
    a.disconnect()
    if await Peer(jid, old, args, "SCRAM-SHA-256").login():
        fail("old password still works")
    print("old password refused", flush=True)
    if not await Peer(jid, new, args, "SCRAM-SHA-1").login():
        fail("new password refused")
    print("new password works", flush=True)


async def scenario_kicked(args):
    """Logs in, says READY, and expects the server to end the stream (lock)."""
    a = peer(args, 0)
    if not await a.login():
        fail("login")
    print("READY", flush=True)
    try:
        await asyncio.wait_for(a.disconnected_ev.wait(), 30)
    except TimeoutError:
        fail("session was not closed")
    print(f"closed with {a.stream_errors}", flush=True)
    if "not-authorized" not in a.stream_errors and "policy-violation" not in a.stream_errors:
        fail(f"no not-authorized stream error: {a.stream_errors}")


async def scenario_refused(args):
    """Login must fail (e.g. locked account)."""
    if await peer(args, 0).login():
        fail("login accepted")
    print("login refused", flush=True)


def reach_uris(payload):
    return [a.get("uri") for a in payload.findall(f"{{{REACH}}}addr")] if payload is not None else []


def on_the_phone(payload):
    return payload is not None and payload.find(f"{{{ACTIVITY}}}talking/{{{ACTIVITY}}}on_the_phone") is not None


async def scenario_on_the_phone(args):
    """user 0 (alice) opts in to "on the phone" (XEP-0049) and shares presence with user 1
    (bob, a PEP client with caps). bob gets alice's reachability (XEP-0152) by notification
    and by fetching it, prints READY, then must see her activity talking/on_the_phone
    (prints ON_THE_PHONE) and its withdrawal (prints STOPPED) as the test runs her call.
    bob's own activity (he did not opt in) must never appear."""
    a, b = peer(args, 0), peer(args, 1, plugins=PEP_PLUGINS)
    if not (await a.login() and await b.login()):
        fail("login")
    bare_a, bare_b = a.boundjid.bare, b.boundjid.bare
    opt_in = a.Iq(stype="set")
    opt_in.append(ET.fromstring(
        "<query xmlns='jabber:iq:private'>"
        "<phone-activity xmlns='urn:cusax:phone-activity:0' publish='true'/></query>"))
    await opt_in.send(timeout=TIMEOUT)
    print("alice opted in", flush=True)
    # slixmpp approves and subscribes back on both sides: a mutual subscription, at the end
    # of which the server sends bob alice's current items (a new subscriber).
    a.send_presence(pto=bare_b, ptype="subscribe")
    _, _, reach = await wait_for(b.pep, lambda e: e[0] == bare_a and e[1] == REACH, "alice's reach at bob")
    if f"sip:{bare_a}" not in reach_uris(reach):
        fail(f"alice's reach notification: {reach_uris(reach)}")
    print(f"reach notified: {reach_uris(reach)}", flush=True)
    got = await b.plugin["xep_0060"].get_items(jid=bare_a, node=REACH, timeout=TIMEOUT)
    fetched = [u for item in got.xml.iter(f"{{{PUBSUB}}}item") for u in reach_uris(next(iter(item), None))]
    if f"sip:{bare_a}" not in fetched:
        fail(f"alice's reach fetched: {fetched}")
    print(f"reach fetched: {fetched}", flush=True)
    item = b.client_roster[bare_a]
    print(f"bob's subscription to alice: {item['subscription']}", flush=True)
    print("READY", flush=True)

    own = []
    def activity_of(who, pred):
        def check(e):
            if e[0] == bare_b and e[1] == ACTIVITY:
                own.append(e)
            return e[0] == who and e[1] == ACTIVITY and pred(e[2])
        return check
    # the test now starts alice's call
    await wait_for(b.pep, activity_of(bare_a, on_the_phone), "alice on the phone", 60)
    print("ON_THE_PHONE", flush=True)
    await wait_for(b.pep, activity_of(bare_a, lambda p: p is not None and len(p) == 0), "alice's activity withdrawn")
    print("STOPPED", flush=True)
    if own:
        fail(f"bob's own activity was published without his opt-in: {own}")


async def scenario_echo(args):
    """User 0 answers each chat message with "echo: BODY" until "bye". Before the first answer
    it asks the sender's client for disco#info and fails on any Jingle RTP feature (a CUSAX
    client calls over SIP, RFC 7081 §2)."""
    b = peer(args, 0)
    if not await b.login():
        fail("login")
    print("READY", flush=True)
    checked = False
    while True:
        m = await wait_for(b.messages, lambda m: m["type"] in ("chat", "normal") and m["body"], "a message", 60)
        if not checked:
            info = await b["xep_0030"].get_info(jid=m["from"], timeout=TIMEOUT)
            feats = set(info["disco_info"]["features"])
            rtp = sorted(f for f in feats if f.startswith("urn:xmpp:jingle:apps:rtp") or "jingle:transports:ice" in f)
            if rtp:
                fail(f"the client offers Jingle RTP: {rtp}")
            if "urn:xmpp:ping" not in feats:
                fail(f"disco#info without ping: {sorted(feats)}")
            print(f"disco ok: {len(feats)} features, no Jingle RTP", flush=True)
            checked = True
        b.send_message(mto=m["from"], mbody="echo: " + m["body"], mtype="chat")
        print(f"echoed {m['body']!r} to {m['from']}", flush=True)
        if m["body"] == "bye":
            break
    b.disconnect()
    print("OK", flush=True)


async def scenario_own_presence(args):
    """RFC 6121 §4.2.2 / §4.5.2: a resource gets its own initial and unavailable presence back,
    and a second resource of the same account gets both too."""
    jid, pw = args.user[0]
    one = Peer(f"{jid}/one", pw, args)
    if not await one.login():
        fail("login one")
    full_one = one.boundjid.full
    await wait_for(one.presences, lambda p: p["from"] == full_one and p["type"] == "available", "one's own initial presence")
    print("own initial presence ok", flush=True)
    two = Peer(f"{jid}/two", pw, args)
    if not await two.login():
        fail("login two")
    full_two = two.boundjid.full
    await wait_for(two.presences, lambda p: p["from"] == full_two and p["type"] == "available", "two's own initial presence")
    await wait_for(two.presences, lambda p: p["from"] == full_one and p["type"] == "available", "one's presence at two")
    await wait_for(one.presences, lambda p: p["from"] == full_two and p["type"] == "available", "two's presence at one")
    print("other resource sees initial presence ok", flush=True)
    two.send_presence(ptype="unavailable")
    await wait_for(two.presences, lambda p: p["from"] == full_two and p["type"] == "unavailable", "two's own unavailable")
    await wait_for(one.presences, lambda p: p["from"] == full_two and p["type"] == "unavailable", "two's unavailable at one")
    print("unavailable reflected ok", flush=True)
    for c in (one, two):
        c.disconnect()
        await asyncio.wait_for(c.disconnected_ev.wait(), TIMEOUT)


OFFLINE_BODIES = ("kept across a restart 1", "kept across a restart 2")


async def scenario_offline_send(args):
    """User 0 sends OFFLINE_BODIES to user 1 (offline, never logged in here), then a ping
    round trip: the server handles a session's stanzas in order, so the messages are stored
    before the answer comes. The test then restarts cusaxd and runs offline_receive."""
    a = peer(args, 0)
    if not await a.login():
        fail("login")
    for body in OFFLINE_BODIES:
        a.send_message(mto=args.user[1][0], mbody=body, mtype="chat")
    await a.plugin["xep_0199"].ping(jid=a.boundjid.domain, timeout=TIMEOUT)
    print(f"sent {len(OFFLINE_BODIES)} while offline", flush=True)


def drain(queue):
    """What `queue` holds now, without waiting."""
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


async def drain_after_ping(client):
    """Every message that reached `client` before the answer to a ping sent now."""
    await client.plugin["xep_0199"].ping(jid=client.boundjid.domain, timeout=TIMEOUT)
    return drain(client.messages)


async def scenario_offline_receive(args):
    """User 1 logs in (after the restart): each of OFFLINE_BODIES arrives exactly once, with a
    XEP-0203 delay from the domain stamped before this login. A second login gets none of
    them again, though it is online and receives a fresh message from user 0."""
    before = datetime.datetime.now(datetime.timezone.utc)
    c = peer(args, 1)
    if not await c.login():
        fail("login")
    # Offline messages go out when the server handles the initial presence, which was sent
    # before the ping: all of them are in by the answer.
    got = [m for m in await drain_after_ping(c) if m["body"] in OFFLINE_BODIES]
    for body in OFFLINE_BODIES:
        copies = [m for m in got if m["body"] == body]
        if len(copies) != 1:
            fail(f"{body!r} arrived {len(copies)} times")
        m = copies[0]
        stamp, dfrom = m["delay"]["stamp"], m["delay"]["from"]
        if stamp is None or not stamp < before:
            fail(f"{body!r}: delay stamp {stamp} is not from before this login ({before})")
        if dfrom != c.boundjid.domain:
            fail(f"{body!r}: delay from {dfrom!r}")
        if m["from"].bare != args.user[0][0]:
            fail(f"{body!r} from {m['from']}")
        print(f"got {body!r} once, delay stamp {stamp.isoformat()} from {dfrom}", flush=True)
    if [m["body"] for m in got] != list(OFFLINE_BODIES):
        fail(f"order: {[m['body'] for m in got]}")
    c.disconnect()
    await asyncio.wait_for(c.disconnected_ev.wait(), TIMEOUT)

    again = peer(args, 1)
    if not await again.login():
        fail("second login")
    repeated = [m["body"] for m in await drain_after_ping(again) if m["body"] in OFFLINE_BODIES]
    a = peer(args, 0)
    if not await a.login():
        fail("login of the sender")
    a.send_message(mto=again.boundjid.full, mbody="fresh after the restart", mtype="chat")
    await wait_for(again.messages, lambda m: m["body"] == "fresh after the restart", "a fresh message")
    if repeated:
        fail(f"delivered again at the next login: {repeated}")
    print("second login: online, nothing delivered twice", flush=True)


BLOCKING_PLUGINS = ("xep_0191",)
NS_BLOCKING_ERRORS = "urn:xmpp:blocking:errors"


def block_pushes(client):
    """A queue of ("block"|"unblock", [jid…]) for the XEP-0191 pushes `client` receives."""
    q = asyncio.Queue()
    for kind in ("block", "unblock"):
        def push(iq, kind=kind):
            q.put_nowait((kind, [i.get("jid") for i in iq.xml.iter("{urn:xmpp:blocking}item")]))
        client.add_event_handler(f"{kind}ed", push)
    return q


def message_errors(client):
    q = asyncio.Queue()
    client.add_event_handler("message_error", q.put_nowait)
    return q


def presence_status(p):
    return (p["type"], p["status"])


async def scenario_blocking(args):
    """XEP-0191 with alice (user 0, two resources), bob (user 1) and carol (user 2): alice
    blocks bob — both her resources get the push, bob sees her go unavailable (§3.3), his
    message gets service-unavailable, and nothing of his (message to her bare or full JID,
    presence broadcast or directed) reaches her before carol's later control message; her
    own message to him gets not-acceptable with <blocked/>. Unblocking restores delivery."""
    a1, a2 = peer(args, 0, plugins=BLOCKING_PLUGINS), peer(args, 0, plugins=BLOCKING_PLUGINS)
    b, c = peer(args, 1), peer(args, 2)
    for client in (a1, a2, b, c):
        if not await client.login():
            fail(f"login of {client.boundjid}")
    bare_a, bare_b = a1.boundjid.bare, b.boundjid.bare
    pushes = {a1: block_pushes(a1), a2: block_pushes(a2)}
    b_errors, a_errors = message_errors(b), message_errors(a1)

    # A mutual subscription (slixmpp approves and subscribes back on its own), so that
    # presence flows both ways before the block.
    a1.send_presence(pto=bare_b, ptype="subscribe")
    for who in (a1, a2):
        await wait_for(who.presences, lambda p: p["from"].bare == bare_b and p["type"] == "available", "bob's presence at alice")
    await wait_for(b.presences, lambda p: p["from"].bare == bare_a and p["type"] == "available", "alice's presence at bob")
    for who in (a1, a2):
        if await who.plugin["xep_0191"].get_blocked_jids(timeout=TIMEOUT):
            fail("block list not empty at start")
    print("presence both ways, block list empty", flush=True)

    await a1.plugin["xep_0191"].block(bare_b, timeout=TIMEOUT)
    for who in (a1, a2):
        await wait_for(pushes[who], lambda e: e == ("block", [bare_b]), f"block push at {who.boundjid}")
    print("block pushed to both resources", flush=True)
    listed = await a2.plugin["xep_0191"].get_blocked_jids(timeout=TIMEOUT)
    if {j.bare for j in listed} != {bare_b}:
        fail(f"block list {listed}")
    print(f"block list: {sorted(str(j) for j in listed)}", flush=True)
    await wait_for(b.presences, lambda p: p["from"].bare == bare_a and p["type"] == "unavailable", "alice unavailable at bob")
    print("bob saw alice unavailable", flush=True)

    b.send_message(mto=bare_a, mbody="blocked to bare", mtype="chat")
    err = await wait_for(b_errors, lambda m: m["from"].bare == bare_a, "the error for bob's message")
    if err["error"]["condition"] != "service-unavailable":
        fail(f"bob's message to alice: {err['error']['condition']}")
    print("bob's message refused: service-unavailable", flush=True)
    b.send_message(mto=a1.boundjid.full, mbody="blocked to full", mtype="chat")
    b.send_presence(pstatus="blocked broadcast")
    b.send_presence(pto=a1.boundjid.full, pstatus="blocked directed")
    # The server handles bob's stanzas in order: by the answer it has dropped them all, and
    # every presence of alice's from before the block has reached bob.
    await b.plugin["xep_0199"].ping(jid=b.boundjid.domain, timeout=TIMEOUT)
    drain(b.presences)

    a1.send_message(mto=bare_b, mbody="to the blocked", mtype="chat")
    err = await wait_for(a_errors, lambda m: m["body"] == "to the blocked" or m["from"].bare == bare_b, "the error for alice's message")
    if err["error"]["condition"] != "not-acceptable" or err.xml.find(f".//{{{NS_BLOCKING_ERRORS}}}blocked") is None:
        fail(f"alice's message to bob: {err}")
    print("alice's message refused: not-acceptable with <blocked/>", flush=True)

    c.send_message(mto=bare_a, mbody="control after the block", mtype="chat")
    for who in (a1, a2):
        leaked = []
        def control(m):
            if m["from"].bare == bare_b and m["type"] != "error":
                leaked.append(m["body"])
            return m["body"] == "control after the block"
        await wait_for(who.messages, control, f"carol's control message at {who.boundjid}")
        leaked += [
            presence_status(p)
            for p in drain(who.presences)
            if p["from"].bare == bare_b and p["status"].startswith("blocked")
        ]
        if leaked:
            fail(f"reached {who.boundjid} from blocked bob: {leaked}")
    print("nothing from bob reached alice; carol's control message did", flush=True)

    await a1.plugin["xep_0191"].unblock(bare_b, timeout=TIMEOUT)
    for who in (a1, a2):
        await wait_for(pushes[who], lambda e: e == ("unblock", [bare_b]), f"unblock push at {who.boundjid}")
    print("unblock pushed to both resources", flush=True)
    if await a2.plugin["xep_0191"].get_blocked_jids(timeout=TIMEOUT):
        fail("block list not empty after unblock")
    await wait_for(b.presences, lambda p: p["from"].bare == bare_a and p["type"] == "available", "alice's presence at bob after unblock")
    print("bob got alice's presence again", flush=True)
    b.send_message(mto=bare_a, mbody="after unblock", mtype="chat")
    await wait_for(a1.messages, lambda m: m["from"].bare == bare_b and m["body"] == "after unblock", "bob's message after unblock")
    b.send_presence(pstatus="back")
    await wait_for(a1.presences, lambda p: p["from"].bare == bare_b and p["status"] == "back", "bob's presence after unblock")
    print("delivery restored: message and presence", flush=True)


CARBONS = "urn:xmpp:carbons:2"
CARBONS_PLUGINS = ("xep_0280", "xep_0334")


def carbon_queue(client, kind):
    """A queue of the (wrapper, forwarded message) of each `kind` carbon `client` accepts."""
    q = asyncio.Queue()
    client.add_event_handler(f"carbon_{kind}", lambda m: q.put_nowait((m, m[f"carbon_{kind}"])))
    return q


async def scenario_carbons(args):
    """XEP-0280 with alice (user 0, two resources with xep_0280 enabled) and bob (user 1): what
    alice's first resource sends to bob reaches her second one as a <sent/> carbon, bob's
    answer to her first resource's full JID reaches the second one as a <received/> carbon,
    both from her bare JID to the second resource's full JID; a <private/> (with <no-copy/>)
    message is not copied, as the copied message sent after it proves."""
    a1, a2 = peer(args, 0, plugins=CARBONS_PLUGINS), peer(args, 0, plugins=CARBONS_PLUGINS)
    b = peer(args, 1)
    for client in (a1, a2, b):
        if not await client.login():
            fail(f"login of {client.boundjid}")
    info = await a1.plugin["xep_0030"].get_info(jid=a1.boundjid.domain, timeout=TIMEOUT)
    if CARBONS not in info["disco_info"]["features"]:
        fail(f"server features lack {CARBONS}: {info['disco_info']['features']}")
    print("server advertises carbons", flush=True)
    for client in (a1, a2):
        await client.plugin["xep_0280"].enable(timeout=TIMEOUT)
    print("carbons enabled on both resources", flush=True)
    sent, received = carbon_queue(a2, "sent"), carbon_queue(a2, "received")
    stray = {"a1": carbon_queue(a1, "sent")}
    bare_a, full_a1, full_a2 = a1.boundjid.bare, a1.boundjid.full, a2.boundjid.full

    def check_wrapper(wrapper, what):
        if wrapper["from"] != bare_a or wrapper["to"] != full_a2:
            fail(f"{what} carbon from {wrapper['from']} to {wrapper['to']}")

    a1.send_message(mto=b.boundjid.bare, mbody="from one", mtype="chat")
    await wait_for(b.messages, lambda m: m["body"] == "from one", "alice's message at bob")
    wrapper, inner = await wait_for(sent, lambda e: True, "the sent carbon at alice's second resource")
    check_wrapper(wrapper, "sent")
    if inner["body"] != "from one" or inner["from"] != full_a1 or inner["to"].bare != b.boundjid.bare:
        fail(f"sent carbon holds {inner}")
    print("sent carbon ok", flush=True)

    b.send_message(mto=full_a1, mbody="reply to one", mtype="chat")
    await wait_for(a1.messages, lambda m: m["body"] == "reply to one", "bob's reply at alice's first resource")
    wrapper, inner = await wait_for(received, lambda e: True, "the received carbon at alice's second resource")
    check_wrapper(wrapper, "received")
    if inner["body"] != "reply to one" or inner["from"].bare != b.boundjid.bare or inner["to"] != full_a1:
        fail(f"received carbon holds {inner}")
    print("received carbon ok", flush=True)

    private = a1.make_message(mto=b.boundjid.bare, mbody="private one", mtype="chat")
    private.enable("carbon_private")
    private.enable("no-copy")
    private.send()
    a1.send_message(mto=b.boundjid.bare, mbody="after private", mtype="chat")
    m = await wait_for(b.messages, lambda m: m["body"] == "private one", "the private message at bob")
    if m.xml.find(f"{{{CARBONS}}}private") is None:
        fail("the <private/> element was removed")
    await wait_for(b.messages, lambda m: m["body"] == "after private", "the following message at bob")
    copied = []
    await wait_for(sent, lambda e: copied.append(e[1]["body"]) or e[1]["body"] == "after private", "the carbon of the following message")
    if copied != ["after private"]:
        fail(f"copied: {copied}")
    print("private message not copied, the following one copied", flush=True)
    if not stray["a1"].empty():
        fail("the sending resource got a carbon of its own message")


async def scenario_csi(args):
    """XEP-0352 with alice (user 0, xep_0352) and bob (user 1), subscribed both ways: alice
    goes inactive; bob's presence changes are held (only the latest is sent), his message
    arrives at once after the one presence held before it; presence held after that arrives
    once alice is active again, again only the latest."""
    a, b = peer(args, 0, plugins=("xep_0352",)), peer(args, 1)
    for client in (a, b):
        if not await client.login():
            fail(f"login of {client.boundjid}")
    if not a.plugin["xep_0352"].enabled:
        fail("the server did not offer CSI")
    print("csi feature offered", flush=True)
    bare_a, bare_b = a.boundjid.bare, b.boundjid.bare
    a.send_presence(pto=bare_b, ptype="subscribe")
    await wait_for(a.presences, lambda p: p["from"].bare == bare_b and p["type"] == "available", "bob's presence at alice")
    await wait_for(b.presences, lambda p: p["from"].bare == bare_a and p["type"] == "available", "alice's presence at bob")

    a.plugin["xep_0352"].send_inactive()
    # The server takes the state change before it answers the ping that follows.
    await a.plugin["xep_0199"].ping(jid=a.boundjid.domain, timeout=TIMEOUT)
    drain(a.presences)
    print("alice inactive", flush=True)

    seen = []
    def bob_status(want):
        def check(p):
            if p["from"].bare == bare_b:
                seen.append(p["status"])
            return p["from"].bare == bare_b and p["status"] == want
        return check

    b.send_presence(pstatus="away 1")
    b.send_presence(pstatus="away 2")
    b.send_message(mto=bare_a, mbody="while inactive", mtype="chat")
    await wait_for(a.messages, lambda m: m["body"] == "while inactive", "bob's message while alice is inactive")
    print("message delivered at once", flush=True)
    await wait_for(a.presences, bob_status("away 2"), "bob's latest presence")
    if seen != ["away 2"]:
        fail(f"presence while inactive: {seen}")
    print("held presence: only the latest sent, before the message", flush=True)

    seen.clear()
    b.send_presence(pstatus="back 3")
    b.send_presence(pstatus="back 4")
    # bob's presences have been routed to alice's session once the server answers him.
    await b.plugin["xep_0199"].ping(jid=b.boundjid.domain, timeout=TIMEOUT)
    a.plugin["xep_0352"].send_active()
    await wait_for(a.presences, bob_status("back 4"), "bob's held presence after active")
    await a.plugin["xep_0199"].ping(jid=a.boundjid.domain, timeout=TIMEOUT)
    seen += [p["status"] for p in drain(a.presences) if p["from"].bare == bare_b]
    if seen != ["back 4"]:
        fail(f"presence after active: {seen}")
    print("held presence arrived after active, only the latest", flush=True)


SCENARIOS = {n[len("scenario_"):]: f for n, f in globals().items() if n.startswith("scenario_")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--addr", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--user", nargs=2, action="append", default=[])
    ap.add_argument("--debug", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR)
    asyncio.run(asyncio.wait_for(SCENARIOS[args.scenario](args), 90))
    print("OK", flush=True)


if __name__ == "__main__":
    main()
