"""Outbound delivery, black box (issue 4; hmailserver-behaviour.md §8.3-§8.5): target resolution
(MX preference and fallback, implicit MX, routes, smarthost), the local-loop check, the SMTP
client as a fake remote MTA sees it byte by byte (EHLO name, STARTTLS, AUTH, SIZE/BODY only when
advertised, dot-stuffing, CRLF only, one connection per target), external forwarding, aliases and
lists with external members, `gannet queue show/flush`.

Fake MTAs (fakemta.py) listen on port 25 of their own 127.x.y.z address; the session's fake DNS
points MX/A records of per-test domains at them. Bounce contents are tested in test_bounces.py."""
import time
import uuid

import pytest

from fakemta import (alloc_ip, assert_clean_wire, can_bind_25, delivery_conf,
                     mta_factory_fixture, mx_domain, queue_id_for, rcpt_rows, unique_domain,
                     wait_bounce, wait_not_queued)
from gannet import EXT, HOSTNAME, PASSWORD, clone_world, make_message, token

needs_25 = pytest.mark.skipif(not can_bind_25(),
                              reason="cannot listen on port 25 of a loopback address")


@pytest.fixture(scope="module")
def osrv(tmp_root, dns, world):
    """One server for the module: retries = 2, retry_interval = 1s, timeout = 5s."""
    g = clone_world(world, tmp_root / f"outbound-{uuid.uuid4().hex[:8]}", dns,
                    extra_conf=delivery_conf())
    g.start()
    yield g
    problems = g.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(autouse=True)
def _osrv_health(request):
    yield
    if "osrv" in request.fixturenames:
        problems = request.getfixturevalue("osrv").check_health()
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def mtas():
    made, make = mta_factory_fixture()
    yield make
    for m in made:
        m.stop()


_n = [0]


def new_account(g, **opts):
    """A fresh local account (so each test has its own mailbox)."""
    _n[0] += 1
    addr = f"ob{_n[0]}-{uuid.uuid4().hex[:6]}@example.test"
    args = ["account", "add", addr, "--password", PASSWORD]
    for k, v in opts.items():
        args += [f"--{k.replace('_', '-')}", v]
    g.cli(*args)
    return addr


def send_out(g, rcpts, sender="user@example.test", body="Hello.\r\n", headers=(),
             source="127.0.0.1", subject="outbound"):
    """Submit a message from a local sender (127.0.0.1: local -> external needs no AUTH);
    returns (token, message bytes)."""
    tok = token("out")
    msg = make_message(subject=subject, token=tok, sender=sender or "nobody@nowhere.test",
                       to=rcpts[0], body=body, headers=headers)
    g.send(sender, rcpts, msg, source=source)
    return tok, msg


def one_delivery(m, tok, settle=0.4):
    got = m.wait_delivered(tok, settle=settle)
    assert len(got) == 1, f"{len(got)} deliveries of {tok} to {m.ip}: {m.summary()}"
    return got[0]


# -- target resolution


@needs_25
def test_mx_delivery_basics(osrv, dns, mtas):
    """MX -> A -> port 25: envelope, EHLO with our host name, the message with a Received
    header and no Return-Path, CRLF only, and the recipient leaves the queue."""
    m = mtas()
    d = mx_domain(dns, m)
    rcpt = f"Rcpt@{d}"
    tok, msg = send_out(osrv, [rcpt])
    t = one_delivery(m, tok)
    assert t.mail_from == "user@example.test"
    assert t.rcpts == [rcpt]
    sess = next(s for s in m.sessions if t in s.txns)
    assert sess.helo[0] == ("EHLO", HOSTNAME), sess.helo
    head = t.content.split(b"\r\n\r\n", 1)[0]
    assert t.content.endswith(msg), t.content[-300:]
    assert head.startswith(b"Received: ") or b"\r\nReceived: " in head, head
    assert not head.lower().startswith(b"return-path:") and b"\nreturn-path:" not in head.lower()
    m.wait(lambda mm: sess.closed, what="end of the session")
    assert sess.commands[-1].upper() == "QUIT", sess.commands
    assert_clean_wire(m)
    wait_not_queued(osrv, rcpt)


@needs_25
def test_mx_preference_order(osrv, dns, mtas):
    """The lowest preference wins whatever the order of the DNS answer."""
    m1, m2, m3 = mtas(), mtas(), mtas()
    d = unique_domain("pref")
    for pref, m in ((30, m3), (10, m1), (20, m2)):
        dns.add(d, "MX", f"{pref} mx{pref}.{d}.")
        dns.add(f"mx{pref}.{d}", "A", m.ip)
    tok, _ = send_out(osrv, [f"x@{d}"])
    one_delivery(m1, tok)
    assert m2.sessions == [] and m3.sessions == [], (m2.summary(), m3.summary())


@needs_25
def test_mx_fallback_when_first_refuses_connection(osrv, dns, mtas):
    m2 = mtas()
    d = mx_domain(dns, alloc_ip(), m2)  # nothing listens on the first MX
    tok, _ = send_out(osrv, [f"x@{d}"])
    one_delivery(m2, tok)


@needs_25
@pytest.mark.parametrize("where", ["banner", "rcpt"])
def test_mx_fallback_after_temporary_reply(osrv, dns, mtas, where):
    """A 4xx at the first MX (greeting or RCPT): the recipient is tried on the next MX."""
    m1 = mtas(banner="421 4.3.2 Too busy") if where == "banner" else \
        mtas(rcpt_reply="451 4.3.0 Try again later")
    m2 = mtas()
    d = mx_domain(dns, m1, m2)
    tok, _ = send_out(osrv, [f"x@{d}"])
    one_delivery(m2, tok, settle=1.5)
    assert m1.sessions, "the first MX was not tried"
    assert m1.delivered() == []


@needs_25
def test_implicit_mx_from_a_record(osrv, dns, mtas):
    m = mtas()
    d = unique_domain("amx")
    dns.add(d, "A", m.ip)
    tok, _ = send_out(osrv, [f"x@{d}"])
    one_delivery(m, tok)


@needs_25
def test_recipients_of_two_domains_go_to_their_own_servers(osrv, dns, mtas):
    m1, m2 = mtas(), mtas()
    d1, d2 = mx_domain(dns, m1), mx_domain(dns, m2)
    tok, _ = send_out(osrv, [f"a@{d1}", f"b@{d2}"])
    assert one_delivery(m1, tok).rcpts == [f"a@{d1}"]
    assert one_delivery(m2, tok).rcpts == [f"b@{d2}"]


@needs_25
def test_recipients_of_one_target_share_one_transaction(osrv, dns, mtas):
    m = mtas()
    d = mx_domain(dns, m)
    rcpts = [f"r{i}@{d}" for i in range(5)]
    tok, _ = send_out(osrv, rcpts)
    t = one_delivery(m, tok)
    assert sorted(t.rcpts) == sorted(rcpts)
    assert len(m.sessions) == 1, m.summary()


# -- routes and the local-loop check


@pytest.mark.parametrize("mechs", [("PLAIN", "LOGIN"), ("LOGIN",), ("PLAIN",)],
                         ids=["plain-login", "login-only", "plain-only"])
def test_route_with_auth(osrv, dns, mtas, mechs):
    """A route (IP, port, credentials) wins over the domain's MX; the client logs in with a
    mechanism the server offers."""
    m = mtas(port=0, auth={"routeuser": "route-pw"}, auth_mechs=mechs, require_auth=True)
    d = unique_domain("route")
    if can_bind_25():
        decoy = mtas()
        mx_domain(dns, decoy, domain=d)
    osrv.cli("route", "add", d, "--host", m.ip, "--port", m.port,
             "--auth", "routeuser", "route-pw")
    tok, _ = send_out(osrv, [f"x@{d}"])
    t = one_delivery(m, tok)
    assert t.auth_user == "routeuser"
    sess = next(s for s in m.sessions if t in s.txns)
    assert sess.auth_mech in mechs and sess.auth_password == "route-pw"
    assert sess.helo[0][0] == "EHLO"
    if can_bind_25():
        assert decoy.sessions == [], "the MX was used although a route exists"
    assert_clean_wire(m)


def test_route_host_name_uses_a_record(osrv, dns, mtas):
    """A route's host is looked up as A (not MX)."""
    m = mtas(port=0)
    d = unique_domain("routeh")
    host = f"relay.{d}"
    dns.add(host, "A", m.ip)
    dns.add(host, "MX", f"10 elsewhere.{d}.")  # must not be followed
    osrv.cli("route", "add", d, "--host", host, "--port", m.port)
    tok, _ = send_out(osrv, [f"x@{d}"])
    one_delivery(m, tok)


def test_local_loop_check(osrv, mtas):
    """A route to this server's own listener is never contacted: the recipient fails
    temporarily with the loop text, and after the retries the sender gets a bounce."""
    d = unique_domain("loop")
    sender = new_account(osrv)
    osrv.cli("route", "add", d, "--host", "127.0.0.1", "--port", osrv.port)
    rcpt = f"x@{d}"
    tok, _ = send_out(osrv, [rcpt], sender=sender)
    # while it is retried, queue show has the loop text as last error
    deadline = time.monotonic() + 8
    last = ""
    while time.monotonic() < deadline:
        qid = queue_id_for(osrv, rcpt)
        if qid is None:
            break
        rows = [r for r in rcpt_rows(osrv, qid) if r.get("address", "").lower() == rcpt]
        last = rows[0].get("last-error", "") if rows else ""
        if last:
            break
        time.sleep(0.1)
    _, msg, human, status, _ = wait_bounce(osrv, sender, tok, timeout=15)
    expected = f"Could not connect to 127.0.0.1 on port {osrv.port} since this would mean " \
               f"connecting to myself."
    assert expected in human, human
    assert "The mail server software tried to deliver e-mail to the local machine" in human, human
    assert "Tried 3 time(s)" in human, human
    if last:
        assert "connecting to myself" in last, last


# -- the client dialogue


@needs_25
def test_dot_stuffing_and_line_ends(osrv, dns, mtas):
    """Lines that start with "." are doubled on the wire, a lone "." inside the body does not
    end it, only CRLF is sent and the data ends with CRLF.CRLF."""
    m = mtas()
    d = mx_domain(dns, m)
    body = (b"first line\r\n.leading dot\r\n..two dots\r\n.\r\nafter a lone dot\r\n"
            b". dot space\r\n...\r\nlast line\r\n")
    tok, msg = send_out(osrv, [f"x@{d}"], body=body)
    t = one_delivery(m, tok)
    raw = t.data_raw
    for want in (b"\r\n..leading dot\r\n", b"\r\n...two dots\r\n", b"\r\n..\r\nafter a lone",
                 b"\r\n.. dot space\r\n", b"\r\n....\r\nlast line\r\n"):
        assert want in raw, f"{want!r} not on the wire: {raw[-400:]!r}"
    assert raw.endswith(b"\r\nlast line\r\n.\r\n"), raw[-60:]
    assert t.content.endswith(msg)
    assert_clean_wire(m)


@needs_25
def test_starttls_when_offered(osrv, dns, mtas):
    """Opportunistic TLS: STARTTLS right after EHLO, EHLO again, then the transaction inside
    TLS (the self-signed certificate is not required to verify)."""
    m = mtas(starttls=True, require_tls=True)
    d = mx_domain(dns, m)
    tok, _ = send_out(osrv, [f"x@{d}"])
    t = one_delivery(m, tok)
    assert t.tls
    sess = next(s for s in m.sessions if t in s.txns)
    verbs = [c.split()[0].upper() for c in sess.commands]
    assert verbs[:3] == ["EHLO", "STARTTLS", "EHLO"], sess.commands
    assert_clean_wire(m)


@needs_25
def test_failed_tls_handshake_retried_in_clear(osrv, dns, mtas):
    """The server offers STARTTLS but the handshake fails: that server is tried again without
    TLS."""
    m = mtas(starttls=True, tls_broken=True)
    d = mx_domain(dns, m)
    tok, _ = send_out(osrv, [f"x@{d}"])
    t = one_delivery(m, tok)
    assert not t.tls
    sess = next(s for s in m.sessions if t in s.txns)
    assert not any(c.upper().startswith("STARTTLS") for c in sess.commands), sess.commands
    assert any("STARTTLS" in c.upper() for s in m.sessions for c in s.commands)


@needs_25
def test_helo_fallback_when_ehlo_rejected(osrv, dns, mtas):
    m = mtas(ehlo=False)
    d = mx_domain(dns, m)
    tok, _ = send_out(osrv, [f"x@{d}"])
    t = one_delivery(m, tok)
    sess = next(s for s in m.sessions if t in s.txns)
    assert sess.helo[:2] == [("EHLO", HOSTNAME), ("HELO", HOSTNAME)], sess.helo
    assert t.mail_params == [], t.mail_params


@needs_25
def test_mail_parameters_only_when_advertised(osrv, dns, mtas):
    plain = mtas()
    d = mx_domain(dns, plain)
    tok, msg = send_out(osrv, [f"x@{d}"])
    assert one_delivery(plain, tok).mail_params == []

    ext = mtas(size=50_000_000, eightbitmime=True, pipelining=True)
    d2 = mx_domain(dns, ext)
    body = "Gr\u00fc\u00dfe aus Z\u00fcrich.\r\n".encode("utf-8")
    tok2, msg2 = send_out(osrv, [f"x@{d2}"], body=body,
                          headers=("MIME-Version: 1.0",
                                   "Content-Type: text/plain; charset=utf-8",
                                   "Content-Transfer-Encoding: 8bit"))
    t = one_delivery(ext, tok2)
    params = {p.split("=", 1)[0].upper(): p.split("=", 1)[1] if "=" in p else ""
              for p in t.mail_params}
    assert "SIZE" in params, t.mail_params
    assert params["SIZE"].isdigit() and len(msg2) <= int(params["SIZE"]) <= \
        len(t.content) + 4096, (params["SIZE"], len(msg2), len(t.content))
    assert params.get("BODY", "").upper() == "8BITMIME", t.mail_params
    assert t.content.endswith(msg2)


# -- local recipients that lead outside


@needs_25
def test_account_forwarding_to_external_address(osrv, dns, mtas):
    m = mtas()
    d = mx_domain(dns, m)
    acct = new_account(osrv, forward=f"fwd@{d}")
    tok = token("fwd")
    osrv.send(EXT, [acct], make_message(token=tok, to=acct), source="127.0.0.2")
    t = one_delivery(m, tok)
    assert t.rcpts == [f"fwd@{d}"]
    assert t.mail_from == EXT
    assert osrv.find(acct, tok) == [], "forwarded without --keep-copy but also stored"


@needs_25
def test_alias_and_list_with_external_members(osrv, dns, mtas):
    m = mtas()
    d = mx_domain(dns, m)
    alias = f"al-{uuid.uuid4().hex[:6]}@example.test"
    lst = f"ls-{uuid.uuid4().hex[:6]}@example.test"
    osrv.cli("alias", "add", alias, f"viaalias@{d}")
    osrv.cli("list", "add", lst, "--mode", "public")
    osrv.cli("list", "member", "add", lst, f"vialist@{d}")
    osrv.cli("list", "member", "add", lst, "lm2@example.test")
    tok1 = token("alias")
    osrv.send(EXT, [alias], make_message(token=tok1, to=alias), source="127.0.0.2")
    tok2 = token("list")
    osrv.send(EXT, [lst], make_message(token=tok2, to=lst), source="127.0.0.2")
    assert one_delivery(m, tok1).rcpts == [f"viaalias@{d}"]
    assert one_delivery(m, tok2).rcpts == [f"vialist@{d}"]
    osrv.wait_for("lm2@example.test", tok2)


# -- separate configurations


@needs_25
def test_queue_show_and_flush(make_server, dns, mtas):
    """A 451 leaves the recipient queued with attempts and last error (queue show); with a long
    retry interval nothing happens until `gannet queue flush`."""
    g = make_server(extra_conf=delivery_conf(retry_interval="1h", retries=4))
    m = mtas(rcpt_reply="451 4.7.1 Greylisted, come back later")
    d = mx_domain(dns, m)
    rcpt = f"x@{d}"
    tok, _ = send_out(g, [rcpt])
    m.wait(lambda mm: mm.rcpt_attempts(rcpt) >= 1, what="first attempt")
    deadline = time.monotonic() + 5
    while True:
        qid = queue_id_for(g, rcpt)
        assert qid, f"{rcpt} left the queue after a 451:\n{g.cli('queue', 'list').out}"
        row = next(r for r in rcpt_rows(g, qid) if r["address"].lower() == rcpt.lower())
        if row["attempts"] != "0" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert row["state"] == "queued" and row["attempts"] == "1", row
    assert "451" in row["last-error"] and "Greylisted" in row["last-error"], row
    assert row["next-try"] not in ("now", "-"), row
    time.sleep(2.0)
    assert m.rcpt_attempts(rcpt) == 1, "retried before retry_interval"
    m.rcpt_reply = "250 2.1.5 OK"
    out = g.cli("queue", "flush").out
    assert "scheduled" in out, out
    one_delivery(m, tok)
    wait_not_queued(g, rcpt)


@needs_25
def test_security_none_never_starttls(make_server, dns, mtas):
    g = make_server(extra_conf=delivery_conf(security="none"))
    m = mtas(starttls=True)
    d = mx_domain(dns, m)
    tok, _ = send_out(g, [f"x@{d}"])
    t = one_delivery(m, tok)
    assert not t.tls
    assert not any(c.upper().startswith("STARTTLS") for s in m.sessions for c in s.commands)


@needs_25
def test_security_required_without_starttls_is_not_sent_in_clear(make_server, dns, mtas):
    """security = required and the server does not offer STARTTLS: nothing is sent, the sender
    gets a bounce saying so (§8.5 "Server does not support STARTTLS.")."""
    g = make_server(extra_conf=delivery_conf(security="required"))
    m = mtas()
    d = mx_domain(dns, m)
    tok, _ = send_out(g, [f"x@{d}"], sender="user2@example.test")
    _, _, human, _, _ = wait_bounce(g, "user2@example.test", tok, timeout=15)
    assert "Server does not support STARTTLS." in human, human
    assert m.txns() == [], m.summary()


def test_smarthost_with_auth_over_starttls(make_server, dns, mtas):
    """[delivery] relay_host takes every domain without a route, with STARTTLS and AUTH; a
    route still wins over the smarthost; the MX is not used."""
    relay = mtas(port=0, starttls=True, require_tls=True, auth={"smart": "host-pw"},
                 auth_require_tls=True, require_auth=True)
    routed = mtas(port=0)
    g = make_server(extra_conf=delivery_conf(relay_host=relay.ip, relay_port=relay.port,
                                             relay_user="smart", relay_password="host-pw",
                                             relay_security="opportunistic"))
    d = unique_domain("smart")
    decoy = None
    if can_bind_25():
        decoy = mtas()
        mx_domain(dns, decoy, domain=d)
    dr = unique_domain("smartroute")
    g.cli("route", "add", dr, "--host", routed.ip, "--port", routed.port)
    tok, _ = send_out(g, [f"x@{d}", f"y@{dr}"])
    t = one_delivery(relay, tok)
    assert t.rcpts == [f"x@{d}"] and t.tls and t.auth_user == "smart"
    sess = next(s for s in relay.sessions if t in s.txns)
    assert sess.auth_tls and sess.auth_password == "host-pw"
    assert one_delivery(routed, tok).rcpts == [f"y@{dr}"]
    if decoy:
        assert decoy.sessions == []
    assert_clean_wire(relay, routed)
