#!/usr/bin/env python3
"""RFC 7616 §3.4 with RFC 8760 §2: an independent SIP user agent (Python standard library only)
that answers SHA-256 digest challenges, for the cusaxd end-to-end tests.

sipp 3.6 ("authentication must use MD5 or AKAv1-MD5") and baresip 1.0 on libre 1.1 answer only
MD5 challenges, so the SHA-256 path of a running cusaxd needs this peer.

Usage:
  sha256_peer.py register --server H:P --port LOCAL --user U --password PW --domain D
  sha256_peer.py call --server H:P --user U --password PW --domain D --callee USER

`register` binds LOCAL on 127.0.0.1, so a sipp UAS started there afterwards receives the calls.
Prints one line per checked fact and exits 0 only when every expectation held; any failure
prints "FAIL: ..." and exits 1. Every wait is bounded (TIMEOUT per transaction).
"""
import argparse
import hashlib
import re
import secrets
import socket
import sys
import time

TIMEOUT = 10.0
T1 = 0.5
# RFC 3261 §7.3.3 compact forms that a server may use.
COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length"}
PARAM = re.compile(r'([A-Za-z][\w-]*)=(?:"([^"]*)"|([^,\s]+))')


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


class Msg:
    """A parsed SIP message: start line, headers (lower-case names, in order), body."""

    def __init__(self, data):
        text = data.decode("utf-8", "replace")
        head, _, self.body = text.partition("\r\n\r\n")
        lines = head.split("\r\n")
        self.start = lines[0]
        self.headers = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:
                name, value = self.headers[-1]
                self.headers[-1] = (name, value + " " + line.strip())
                continue
            name, _, value = line.partition(":")
            name = name.strip().lower()
            self.headers.append((COMPACT.get(name, name), value.strip()))

    @property
    def code(self):
        parts = self.start.split(" ", 2)
        if parts[0] != "SIP/2.0" or len(parts) < 2 or not parts[1].isdigit():
            return None
        return int(parts[1])

    def all(self, name):
        return [v for n, v in self.headers if n == name]

    def first(self, name):
        values = self.all(name)
        return values[0] if values else None


def hash_hex(alg, text):
    fn = {"SHA-256": hashlib.sha256, "MD5": hashlib.md5}[alg]
    return fn(text.encode()).hexdigest()


def challenges(resp, header):
    """Each challenge of `header` as (algorithm, params); MD5 when algorithm= is absent."""
    out = []
    for value in resp.all(header):
        if not value.lower().startswith("digest"):
            continue
        params = {k.lower(): q or t for k, q, t in PARAM.findall(value)}
        out.append((params.get("algorithm", "MD5").upper(), params))
    return out


def sha256_challenge(resp, header, what):
    offered = challenges(resp, header)
    names = [a for a, _ in offered]
    print(f"{what}: {resp.code} offers {', '.join(names)}", flush=True)
    for alg, params in offered:
        if alg == "SHA-256":
            if "auth" not in params.get("qop", "").split(","):
                fail(f"{what}: SHA-256 challenge without qop=auth: {params}")
            return params
    fail(f"{what}: no SHA-256 challenge in {header}: {resp.all(header)}")


def credentials(ch, user, password, method, uri):
    """RFC 7616 §3.4.1 response for qop=auth, algorithm SHA-256."""
    realm, nonce = ch["realm"], ch["nonce"]
    cnonce, nc = secrets.token_hex(8), "00000001"
    ha1 = hash_hex("SHA-256", f"{user}:{realm}:{password}")
    ha2 = hash_hex("SHA-256", f"{method}:{uri}")
    response = hash_hex("SHA-256", f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
    return (
        f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm=SHA-256, cnonce="{cnonce}", qop=auth, nc={nc}'
    )


class Ua:
    """One UDP socket, one Call-ID; requests retransmitted per RFC 3261 §17.1 (bounded)."""

    def __init__(self, server, port, user, domain):
        host, p = server.rsplit(":", 1)
        self.server = (host, int(p))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.local = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.user, self.domain = user, domain
        self.call_id = secrets.token_hex(12) + "@sha256-peer"
        self.from_tag = secrets.token_hex(6)
        self.cseq = 0

    def build(self, method, ruri, to, branch, cseq, extra=(), body=""):
        lines = [
            f"{method} {ruri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.local};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@{self.domain}>;tag={self.from_tag}",
            f"To: {to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:{self.user}@{self.local};transport=udp>",
            "User-Agent: cusax-sha256-peer",
            *extra,
            f"Content-Length: {len(body.encode())}",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def send(self, data):
        self.sock.sendto(data, self.server)

    def transaction(self, data, branch, method):
        """Sends `data` and returns the final response of its transaction (TIMEOUT bound)."""
        deadline = time.monotonic() + TIMEOUT
        interval, next_send, provisional = T1, time.monotonic(), False
        while time.monotonic() < deadline:
            now = time.monotonic()
            if not provisional and now >= next_send:
                self.send(data)
                next_send, interval = now + interval, min(interval * 2, 4.0)
            self.sock.settimeout(max(0.01, min(next_send, deadline) - now))
            try:
                raw, _ = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            resp = Msg(raw)
            via, cseq = resp.first("via") or "", (resp.first("cseq") or "").split()
            if resp.code is None or f"branch={branch}" not in via or cseq[-1:] != [method]:
                continue  # another transaction's retransmission, or a request
            if resp.code < 200:
                provisional = True
                continue
            return resp
        fail(f"{method}: no final response within {TIMEOUT} s")

    def request(self, method, ruri, to, extra=(), body=""):
        self.cseq += 1
        branch = "z9hG4bK" + secrets.token_hex(8)
        data = self.build(method, ruri, to, branch, self.cseq, extra, body)
        return self.transaction(data, branch, method), branch


def register(args):
    ua = Ua(args.server, args.port, args.user, args.domain)
    ruri, aor = f"sip:{args.domain}", f"<sip:{args.user}@{args.domain}>"
    exp = ["Expires: 3600"]
    resp, _ = ua.request("REGISTER", ruri, aor, exp)
    if resp.code != 401:
        fail(f"REGISTER without credentials: {resp.start}")
    ch = sha256_challenge(resp, "www-authenticate", "REGISTER challenge")
    bad = credentials(ch, args.user, "wrong-" + args.password, "REGISTER", ruri)
    resp, _ = ua.request("REGISTER", ruri, aor, exp + [f"Authorization: {bad}"])
    if resp.code not in (401, 403):
        fail(f"wrong SHA-256 response was not refused: {resp.start}")
    print(f"wrong SHA-256 response refused: {resp.code}", flush=True)
    if resp.code == 403:
        resp, _ = ua.request("REGISTER", ruri, aor, exp)
    ch = sha256_challenge(resp, "www-authenticate", "REGISTER re-challenge")
    good = credentials(ch, args.user, args.password, "REGISTER", ruri)
    resp, _ = ua.request("REGISTER", ruri, aor, exp + [f"Authorization: {good}"])
    contact = f"sip:{args.user}@{ua.local}"
    if resp.code != 200 or not any(contact in c for c in resp.all("contact")):
        fail(f"SHA-256 REGISTER: {resp.start}, Contact {resp.all('contact')}, want {contact}")
    print(f"registered with SHA-256: 200, Contact {contact}", flush=True)


SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def invite(ua, ruri, to, auth=None):
    """One INVITE transaction; ACKs a non-2xx final response (RFC 3261 §17.1.1.3)."""
    extra = ["Content-Type: application/sdp"] + ([f"Proxy-Authorization: {auth}"] if auth else [])
    resp, branch = ua.request("INVITE", ruri, to, extra, SDP)
    if resp.code >= 300:
        ack = ua.build("ACK", ruri, resp.first("to"), branch, ua.cseq)
        ua.send(ack)
    return resp


def route_set(resp):
    """The caller's route set: the 2xx's Record-Route entries, reversed (RFC 3261 §12.1.2)."""
    entries = [u for v in resp.all("record-route") for u in re.findall(r"<[^>]+>", v)]
    return ["Route: " + ", ".join(reversed(entries))] if entries else []


def call(args):
    ua = Ua(args.server, 0, args.user, args.domain)
    ruri, to = f"sip:{args.callee}@{args.domain}", f"<sip:{args.callee}@{args.domain}>"
    resp = invite(ua, ruri, to)
    if resp.code != 407:
        fail(f"INVITE without credentials: {resp.start}")
    ch = sha256_challenge(resp, "proxy-authenticate", "INVITE challenge")
    resp = invite(ua, ruri, to, credentials(ch, args.user, "wrong-" + args.password, "INVITE", ruri))
    if resp.code not in (401, 403, 407):
        fail(f"wrong SHA-256 response was not refused: {resp.start}")
    print(f"wrong SHA-256 INVITE refused: {resp.code}", flush=True)
    if resp.code == 403:
        resp = invite(ua, ruri, to)
    ch = sha256_challenge(resp, "proxy-authenticate", "INVITE re-challenge")
    resp = invite(ua, ruri, to, credentials(ch, args.user, args.password, "INVITE", ruri))
    if resp.code != 200:
        fail(f"SHA-256 INVITE: {resp.start}")
    print("call answered with SHA-256 credentials: 200", flush=True)
    hang_up(ua, resp)


def hang_up(ua, ok):
    """ACK for the 2xx and BYE along the dialog's route set, to the callee's Contact."""
    target = re.search(r"<([^>]+)>", ok.first("contact") or "")
    if not target:
        fail(f"200 without Contact: {ok.headers}")
    routes, to = route_set(ok), ok.first("to")
    ack_branch = "z9hG4bK" + secrets.token_hex(8)
    ua.send(ua.build("ACK", target.group(1), to, ack_branch, ua.cseq, routes))
    resp, _ = ua.request("BYE", target.group(1), to, routes)
    if resp.code != 200:
        fail(f"BYE: {resp.start}")
    print("bye: 200", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("action", choices=["register", "call"])
    ap.add_argument("--server", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--domain", required=True)
    ap.add_argument("--callee")
    args = ap.parse_args()
    if args.action == "call" and not args.callee:
        fail("call needs --callee")
    {"register": register, "call": call}[args.action](args)
    print("OK", flush=True)


if __name__ == "__main__":
    main()
