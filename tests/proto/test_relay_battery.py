"""Open-relay battery (issue 3 "What must be true", hmailserver-behaviour.md §2.3, §14 item 6):
from 127.0.0.2 (the Internet range) WITHOUT AUTH, address tricks that try to get mail for an
external domain accepted. Each attempt must be refused with a 5xx at MAIL or RCPT (DATA then has
no recipient), a fake remote MTA (aiosmtpd) that routes point at must receive nothing, and
`gannet queue list` must hold none of the would-be relay recipients.

The relay target is `victim.test` (routed to the fake MTA with `gannet route add`), not
`other.test`: that one is a local domain in gannet.WORLD. Routes also point `[127.0.0.50]` and
`localhost` there when the CLI accepts them."""
import threading
import time

import pytest

from gannet import EXT, free_port, make_message, token
from tlsutil import (AUTH_REQUIRED, _tserver_health, auth_login, connect, queue_list,
                     secure_session, tserver)

__all__ = ["tserver", "_tserver_health"]  # fixtures used by name

V = "victim.test"
OURS = "example.test"

# (id, MAIL FROM argument, RCPT TO argument). Every one must be refused.
TRICKS = [
    ("plain-external", f"<{EXT}>", f"<user@{V}>"),
    ("percent-hack", f"<{EXT}>", f"<user%{V}@{OURS}>"),
    ("percent-hack-upper", f"<{EXT}>", f"<USER%{V.upper()}@{OURS.upper()}>"),
    ("percent-hack-double", f"<{EXT}>", f"<user%{V}%{OURS}@{OURS}>"),
    ("percent-in-domain", f"<{EXT}>", f"<user@{V}%{OURS}>"),
    ("percent-local-domain-last", f"<{EXT}>", f"<user%{OURS}@{V}>"),
    ("quoted-at", f"<{EXT}>", f'<"user@{V}"@{OURS}>'),
    ("quoted-percent", f"<{EXT}>", f'<"user%{V}"@{OURS}>'),
    ("quoted-at-and-percent", f"<{EXT}>", f'<"user@{V}%{OURS}"@{OURS}>'),
    ("quoted-local-external", f"<{EXT}>", f'<"user"@{V}>'),
    ("source-route", f"<{EXT}>", f"<@{OURS}:user@{V}>"),
    ("source-route-list", f"<{EXT}>", f"<@a.test,@{OURS}:user@{V}>"),
    ("source-route-ours-last", f"<{EXT}>", f"<@{V},@{OURS}:user@{V}>"),
    ("double-at", f"<{EXT}>", f"<user@{V}@{OURS}>"),
    ("double-at-ours-first", f"<{EXT}>", f"<user@{OURS}@{V}>"),
    ("escaped-at", f"<{EXT}>", f"<user\\@{V}@{OURS}>"),
    ("bang-path", f"<{EXT}>", f"<{V}!user@{OURS}>"),
    ("bang-path-bare", f"<{EXT}>", f"<{V}!user>"),
    ("address-literal", f"<{EXT}>", "<user@[127.0.0.50]>"),
    ("address-literal-own-ip", f"<{EXT}>", "<user@[127.0.0.1]>"),
    ("ipv6-literal", f"<{EXT}>", "<user@[IPv6:::1]>"),
    ("trailing-dot", f"<{EXT}>", f"<user@{V}.>"),
    ("trailing-dot-ours", f"<{EXT}>", f"<user%{V}@{OURS}.>"),
    ("uppercase", f"<{EXT}>", f"<user@{V.upper()}>"),
    ("mixed-case", f"<{EXT}>", "<User@Victim.Test>"),
    ("extra-spaces", f"<{EXT}>", f"<user@{V}>   "),
    ("no-brackets", f"<{EXT}>", f"user@{V}"),
    ("space-before-bracket", f"<{EXT}>", f" <user@{V}>"),
    ("subdomain-of-ours", f"<{EXT}>", f"<user@{V}.{OURS}>"),
    ("ours-as-subdomain", f"<{EXT}>", f"<user@{OURS}.{V}>"),
    ("our-hostname", f"<{EXT}>", "<user@mx.gannet.test>"),
    ("localhost", f"<{EXT}>", "<user@localhost>"),
    ("postmaster-external", f"<{EXT}>", f"<postmaster@{V}>"),
    ("null-sender", "<>", f"<user@{V}>"),
    ("local-sender-spoof", f"<user@{OURS}>", f"<user@{V}>"),
    ("local-sender-spoof-alias-domain", "<user@alias-domain.test>", f"<user@{V}>"),
    ("local-sender-spoof-uppercase", f"<USER@{OURS.upper()}>", f"<user@{V}>"),
    ("sender-is-victim", f"<user@{V}>", f"<user@{V}>"),
    ("sender-with-percent-hack", f"<user%{OURS}@{V}>", f"<user@{V}>"),
    ("comment-in-address", f"<{EXT}>", f"<user@{V} (comment)>"),
    ("route-list-domain", f"<{EXT}>", f"<user%{V}@routed.test>"),
    ("percent-to-literal", f"<{EXT}>", f"<user%[127.0.0.50]@{OURS}>"),
]


class Recorder:
    """aiosmtpd handler that records every envelope event and accepts everything (so anything
    relayed would really arrive)."""

    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def _add(self, what):
        with self.lock:
            self.events.append(what)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self._add(("EHLO", hostname))
        session.host_name = hostname
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        self._add(("HELO", hostname))
        session.host_name = hostname
        return "250 fake-mta"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self._add(("RCPT", address))
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self._add(("DATA", envelope.mail_from, tuple(envelope.rcpt_tos)))
        return "250 OK"


@pytest.fixture(scope="module")
def mta():
    from aiosmtpd.controller import Controller
    rec = Recorder()
    port = free_port()
    ctl = Controller(rec, hostname="127.0.0.1", port=port)
    ctl.start()
    rec.port = port
    yield rec
    ctl.stop()


@pytest.fixture(scope="module")
def relay_server(tserver, mta):
    """The shared TLS server with routes to the fake MTA."""
    g = tserver
    g.cli("route", "add", V, "--host", "127.0.0.1", "--port", mta.port)
    # the CLI may refuse an address literal as a route domain; then the queue check covers it
    g.cli("route", "add", "[127.0.0.50]", "--host", "127.0.0.1", "--port", mta.port, check=False)
    g.cli("route", "add", "localhost", "--host", "127.0.0.1", "--port", mta.port, check=False)
    return g


def _attempt(g, sender, rcpt, c=None):
    """MAIL + RCPT; returns the list of replies. Never sends DATA content to a recipient."""
    own = c is None
    if own:
        c = connect(g, "mx", "127.0.0.2")
        c.ehlo()
    try:
        r = c.cmd(f"MAIL FROM:{sender}")
        if r.code != 250:
            assert r.code and 500 <= r.code < 600, f"MAIL {sender}: {r.lines}"
            return [r]
        r2 = c.cmd(f"RCPT TO:{rcpt}")
        assert r2.code and 500 <= r2.code < 600, (
            f"RELAY ACCEPTED: MAIL FROM:{sender} RCPT TO:{rcpt} -> {r2.lines}")
        c.cmd("DATA", "503 Must have sender and recipient first.")
        c.cmd("RSET", "250 OK")
        return [r, r2]
    finally:
        if own:
            c.close()


@pytest.mark.parametrize("sender,rcpt", [t[1:] for t in TRICKS], ids=[t[0] for t in TRICKS])
def test_relay_trick_refused(relay_server, sender, rcpt):
    _attempt(relay_server, sender, rcpt)


def test_plain_external_relay_reply(relay_server):
    """The reference case gets exactly the documented reply."""
    r = _attempt(relay_server, f"<{EXT}>", f"<user@{V}>")
    assert r[-1].lines == [AUTH_REQUIRED]


def test_relay_tricks_in_one_session(relay_server):
    """All tricks in one session after a legitimate local recipient: only that one is accepted and
    the message goes to it alone."""
    tok = token("battery")
    with connect(relay_server, "mx", "127.0.0.2") as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<rcv@example.test>", "250 OK")
        for _, _, rcpt in TRICKS:
            r = c.cmd(f"RCPT TO:{rcpt}")
            assert r.code and 500 <= r.code < 600, f"RELAY ACCEPTED: RCPT TO:{rcpt} -> {r.lines}"
        c.data(make_message(token=tok, to="rcv@example.test"), expect="queued")
    relay_server.wait_for("rcv@example.test", tok)


@pytest.mark.parametrize("listener", ["sub", "smtps", "req"])
def test_relay_over_tls_without_auth_refused(relay_server, listener):
    """TLS is no authorisation."""
    with secure_session(relay_server, listener, "127.0.0.2") as c:
        for _, sender, rcpt in TRICKS:
            _attempt(relay_server, sender, rcpt, c)


def test_relay_after_failed_auth_refused(relay_server):
    from tlsutil import AUTH_FAILED, fresh_ip
    with secure_session(relay_server, "sub", fresh_ip("internet")) as c:
        auth_login(c, password="wrong", expect=AUTH_FAILED)
        for _, sender, rcpt in TRICKS[:10]:
            _attempt(relay_server, sender, rcpt, c)


def test_zz_nothing_relayed(relay_server, mta):
    """Runs last: the fake MTA saw nothing and the queue holds no would-be relay recipient."""
    relay_server.cli("queue", "flush", check=False)
    time.sleep(1.0)
    with mta.lock:
        assert mta.events == [], f"the fake remote MTA received: {mta.events}"
    q = queue_list(relay_server).lower()
    for needle in (V, "127.0.0.50", "ipv6:", "localhost", "mx.gannet.test", "!user",
                   "%", "routed.test"):
        assert needle not in q, f"queue holds a relay attempt ({needle}):\n{q}"
