#!/usr/bin/env python3
"""slixmpp peers driven by the cusaxd integration tests (one scenario per run).

Usage: peer.py SCENARIO --addr HOST:PORT --ca CERT [--user JID PASSWORD]...

Prints one line per checked fact and exits 0 only when the scenario's expectations hold;
any failure prints "FAIL: ..." and exits 1. Every wait is bounded.
"""
import argparse
import asyncio
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
