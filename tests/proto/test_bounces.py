"""Bounces (non-delivery reports) for outbound failures, black box (issue 4;
hmailserver-behaviour.md §8.2, §8.3 step 6, §8.6, §8.7, §4.5; replies.md "Bounce texts"):
remote 5xx -> bounce at once quoting the remote reply; remote 4xx -> retried, then a bounce with
"Tried n time(s)"; partial success; NXDOMAIN and null MX -> "No mail servers ..."; the format
(From mailer-daemon, null envelope sender, Subject, multipart/report, Auto-Submitted); no bounce
for a null sender, a mailer-daemon sender or an Auto-Submitted original; a bounce to a remote
sender travels like any mail; over quota -> "Inbox is full".

The module's server runs with retries = 2, retry_interval = 1s, timeout = 5s, so a message that
is only temporarily refused is bounced after 3 attempts within a few seconds."""
import re
import time
import uuid

import pytest

from fakemta import (can_bind_25, delivery_conf, find_bounces, mta_factory_fixture, mx_domain,
                     pending, queue_text, unique_domain, wait_bounce, wait_not_queued)
from gannet import HOSTNAME, PASSWORD, clone_world, make_message, token

pytestmark = pytest.mark.skipif(not can_bind_25(),
                                reason="cannot listen on port 25 of a loopback address")


@pytest.fixture(scope="module")
def bsrv(tmp_root, dns, world):
    g = clone_world(world, tmp_root / f"bounces-{uuid.uuid4().hex[:8]}", dns,
                    extra_conf=delivery_conf())
    g.start()
    yield g
    problems = g.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(autouse=True)
def _bsrv_health(request):
    yield
    if "bsrv" in request.fixturenames:
        problems = request.getfixturevalue("bsrv").check_health()
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def mtas():
    made, make = mta_factory_fixture()
    yield make
    for m in made:
        m.stop()


_n = [0]


def new_sender(g, **opts):
    """A fresh local account: its INBOX receives the bounces of one test only."""
    _n[0] += 1
    addr = f"bs{_n[0]}-{uuid.uuid4().hex[:6]}@example.test"
    args = ["account", "add", addr, "--password", PASSWORD]
    for k, v in opts.items():
        args += [f"--{k.replace('_', '-')}", v]
    g.cli(*args)
    return addr


def send(g, sender, rcpts, headers=(), body="Hello.\r\n", source="127.0.0.1", subject="bounce"):
    tok = token("bnc")
    msg = make_message(subject=subject, token=tok, sender=sender or "nobody@nowhere.test",
                       to=rcpts[0], headers=headers, body=body)
    g.send(sender, rcpts, msg, source=source)
    return tok, msg


def header(msg, name):
    v = msg.get(name)
    return re.sub(r"\s+", " ", str(v)).strip() if v is not None else None


def status_fields(status):
    """{final-recipient address (lower): {field: value}} of a delivery-status text."""
    out = {}
    for block in re.split(r"\r?\n\s*\r?\n", status):
        fields = {}
        for line in block.splitlines():
            if ":" in line and not line.startswith((" ", "\t")):
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
        fr = fields.get("final-recipient")
        if fr:
            out[fr.split(";", 1)[-1].strip().lower()] = fields
    return out


def assert_no_bounce(g, sender, tok, rcpt, wait=1.5):
    wait_not_queued(g, rcpt, timeout=15)
    time.sleep(wait)
    assert find_bounces(g, sender, tok) == [], f"unexpected bounce about {tok} to {sender}"


# -- permanent failures


def test_rcpt_550_bounces_at_once(bsrv, dns, mtas):
    m = mtas(rcpt_reply="550 5.1.1 <nosuch> No such user here")
    d = mx_domain(dns, m)
    sender = new_sender(bsrv)
    rcpt = f"nosuch@{d}"
    tok, msg = send(bsrv, sender, [rcpt], subject="Quarterly report")
    stored, bmsg, human, status, orig_headers = wait_bounce(bsrv, sender, tok)

    # envelope and headers
    assert stored.startswith(b"Return-Path: <>\r\n"), stored[:200]
    assert f"mailer-daemon@{HOSTNAME}" in header(bmsg, "From").lower(), header(bmsg, "From")
    assert sender in header(bmsg, "To").lower(), header(bmsg, "To")
    assert header(bmsg, "Subject") == f"Message undeliverable: Quarterly report {tok}"
    assert header(bmsg, "Auto-Submitted") == "auto-generated"
    assert bmsg.get_content_type() == "multipart/report"
    assert bmsg.get_param("report-type") == "delivery-status"
    assert header(bmsg, "Message-ID") and header(bmsg, "Date")

    # the human-readable part (hmailserver-behaviour.md §8.6, §8.7)
    assert "Your message did not reach some or all of the intended recipients." in human, human
    assert f"Subject: Quarterly report {tok}" in human, human
    assert rcpt in human, human
    assert f"Remote server ({m.ip}) issued an error." in human, human
    assert f"sent: RCPT TO:<{rcpt}>" in human, human
    assert "Remote server replied: 550 5.1.1 <nosuch> No such user here" in human, human
    assert "Tried" not in human, human

    # the machine-readable part and the original's headers
    assert status, "no message/delivery-status part"
    f = status_fields(status).get(rcpt.lower())
    assert f, status
    assert f.get("action", "").lower() == "failed", f
    assert f.get("status") == "5.1.1", f
    assert orig_headers and f"Subject: Quarterly report {tok}" in orig_headers, orig_headers

    # not retried (a retry would be due after 1 s), gone from the queue
    time.sleep(2.0)
    assert m.rcpt_attempts(rcpt) == 1, m.summary()
    assert not pending(bsrv, rcpt), queue_text(bsrv)


def test_mail_from_550_bounces_every_recipient(bsrv, dns, mtas):
    m = mtas(mail_reply="550 5.7.1 Sender blocked by policy")
    d = mx_domain(dns, m)
    sender = new_sender(bsrv)
    rcpts = [f"one@{d}", f"two@{d}"]
    tok, _ = send(bsrv, sender, rcpts)
    _, _, human, status, _ = wait_bounce(bsrv, sender, tok)
    for r in rcpts:
        assert r in human, human
    assert "Remote server replied: 550 5.7.1 Sender blocked by policy" in human, human
    assert set(status_fields(status)) == set(rcpts), status
    assert m.delivered() == []


def test_rejection_after_data_bounces(bsrv, dns, mtas):
    m = mtas(dot_reply="554 5.6.0 Content rejected")
    d = mx_domain(dns, m)
    sender = new_sender(bsrv)
    tok, _ = send(bsrv, sender, [f"x@{d}"])
    _, _, human, _, _ = wait_bounce(bsrv, sender, tok)
    assert "Remote server replied: 554 5.6.0 Content rejected" in human, human
    time.sleep(2.0)
    assert len(m.txns()) == 1, "retried after a 5xx to the final dot"


def test_multiline_remote_reply_is_quoted(bsrv, dns, mtas):
    m = mtas(rcpt_reply="550-5.1.1 The email account that you tried to reach does not exist.\n"
                        "550 5.1.1 Please try double-checking the recipient's address.")
    d = mx_domain(dns, m)
    sender = new_sender(bsrv)
    tok, _ = send(bsrv, sender, [f"x@{d}"])
    _, _, human, _, _ = wait_bounce(bsrv, sender, tok)
    assert "does not exist." in human and "double-checking the recipient" in human, human


def test_partial_success_bounces_only_the_rejected(bsrv, dns, mtas):
    d = unique_domain("partial")
    m = mtas(rcpt_reply={f"bad@{d}": "550 5.1.1 Unknown mailbox"})
    mx_domain(dns, m, domain=d)
    sender = new_sender(bsrv)
    good1, bad, good2 = f"good1@{d}", f"bad@{d}", f"good2@{d}"
    tok, msg = send(bsrv, sender, [good1, bad, good2])
    t = m.wait_delivered(tok, settle=0.5)
    assert len(t) == 1 and sorted(t[0].rcpts) == sorted([good1, good2]), m.summary()
    _, _, human, status, _ = wait_bounce(bsrv, sender, tok)
    assert bad in human and good1 not in human and good2 not in human, human
    assert set(status_fields(status)) == {bad}, status
    for r in (good1, bad, good2):
        wait_not_queued(bsrv, r)
    time.sleep(1.5)
    assert len(m.delivered()) == 1, "delivered recipients were sent again"
    assert len(find_bounces(bsrv, sender, tok)) == 1


def test_permanent_failure_not_tried_on_next_mx(bsrv, dns, mtas):
    m1 = mtas(rcpt_reply="550 5.1.1 No such user")
    m2 = mtas()
    d = mx_domain(dns, m1, m2)
    sender = new_sender(bsrv)
    tok, _ = send(bsrv, sender, [f"x@{d}"])
    wait_bounce(bsrv, sender, tok)
    assert m2.txns() == [], m2.summary()


# -- no mail server


def test_nxdomain_bounces_no_mail_servers(bsrv):
    d = unique_domain("nxdomain")  # not in the fake DNS: NXDOMAIN
    sender = new_sender(bsrv)
    rcpt = f"someone@{d}"
    tok, _ = send(bsrv, sender, [rcpt])
    _, _, human, status, _ = wait_bounce(bsrv, sender, tok)
    assert rcpt in human, human
    assert "No mail servers appear to exists for the recipient's address." in human, human
    assert "Please check that you have not misspelled the recipient's email address." in human
    assert "Tried" not in human, human
    assert rcpt.lower() in status_fields(status), status


def test_null_mx_bounces_and_a_record_is_not_used(bsrv, dns, mtas):
    m = mtas()
    d = unique_domain("nullmx")
    dns.add(d, "MX", "0 .")
    dns.add(d, "A", m.ip)  # must not become an implicit MX
    sender = new_sender(bsrv)
    tok, _ = send(bsrv, sender, [f"x@{d}"])
    _, _, human, _, _ = wait_bounce(bsrv, sender, tok)
    assert "No mail servers appear to exists for the recipient's address." in human, human
    time.sleep(1.0)
    assert m.sessions == [], m.summary()


# -- temporary failures


def test_451_retried_then_bounced(bsrv, dns, mtas):
    m = mtas(rcpt_reply="451 4.3.0 Mailbox temporarily unavailable")
    d = mx_domain(dns, m)
    sender = new_sender(bsrv)
    rcpt = f"later@{d}"
    tok, _ = send(bsrv, sender, [rcpt])
    t0 = time.monotonic()
    _, bmsg, human, status, _ = wait_bounce(bsrv, sender, tok, timeout=20)
    elapsed = time.monotonic() - t0
    assert m.rcpt_attempts(rcpt) == 3, m.summary()  # 1 + retries
    # next_try has whole-second resolution: two 1 s intervals last at least ~1 s in all
    assert elapsed >= 0.9, f"3 attempts 1 s apart took only {elapsed:.1f}s"
    assert "Tried 3 time(s)" in human, human
    assert f"Remote server ({m.ip}) issued an error." in human, human
    assert "Remote server replied: 451 4.3.0 Mailbox temporarily unavailable" in human, human
    assert header(bmsg, "Subject").startswith("Message undeliverable: ")
    assert rcpt.lower() in status_fields(status), status
    time.sleep(2.0)
    assert m.rcpt_attempts(rcpt) == 3, "retried after the bounce"
    assert not pending(bsrv, rcpt)


def test_connection_refused_retried_then_bounced(bsrv, dns):
    from fakemta import alloc_ip
    d = mx_domain(dns, alloc_ip())  # nothing listens there
    sender = new_sender(bsrv)
    tok, _ = send(bsrv, sender, [f"x@{d}"])
    _, _, human, _, _ = wait_bounce(bsrv, sender, tok, timeout=20)
    assert "Tried 3 time(s)" in human, human
    assert "Connection to recipients server failed." in human, human


# -- when no bounce is sent


def test_no_bounce_for_null_sender(make_server, dns, mtas):
    g = make_server(extra_conf=delivery_conf())
    m = mtas(rcpt_reply="550 5.1.1 No such user")
    d = mx_domain(dns, m)
    rcpt = f"x@{d}"
    # 127.0.0.7 is the standard directory's open-relay range (external -> external, no AUTH)
    tok, _ = send(g, "", [rcpt], source="127.0.0.7")
    m.wait(lambda mm: mm.rcpt_attempts(rcpt) >= 1, what="RCPT")
    wait_not_queued(g, rcpt)
    time.sleep(2.0)
    lines = [x for x in queue_text(g).splitlines()[1:] if x.strip()]
    assert lines == [], "something was queued after a null-sender failure:\n" + "\n".join(lines)
    assert m.rcpt_attempts(rcpt) == 1 and len(m.sessions) == 1, m.summary()


@pytest.mark.parametrize("value,bounced", [("auto-replied", False), ("auto-generated", False),
                                           ("no", True)])
def test_auto_submitted(bsrv, dns, mtas, value, bounced):
    m = mtas(rcpt_reply="550 5.1.1 No such user")
    d = mx_domain(dns, m)
    sender = new_sender(bsrv)
    rcpt = f"x@{d}"
    tok, _ = send(bsrv, sender, [rcpt], headers=(f"Auto-Submitted: {value}",))
    if bounced:
        wait_bounce(bsrv, sender, tok)
    else:
        m.wait(lambda mm: mm.rcpt_attempts(rcpt) >= 1, what="RCPT")
        assert_no_bounce(bsrv, sender, tok, rcpt)


def test_bounce_to_remote_sender_is_delivered_outbound(bsrv, dns, mtas):
    """The original came from outside; its bounce is queued like any mail and sent with a null
    envelope sender to the sender's own MX."""
    m = mtas(rcpt_reply="550 5.1.1 No such user")
    home = mtas()
    d, ds = mx_domain(dns, m), mx_domain(dns, home, prefix="senderhome")
    sender = f"writer@{ds}"
    tok, _ = send(bsrv, sender, [f"x@{d}"], source="127.0.0.7")
    t = home.wait_delivered(tok, timeout=15, settle=1.5)
    assert len(t) == 1, home.summary()
    assert t[0].mail_from == "" and t[0].rcpts == [sender]
    head = t[0].content.split(b"\r\n\r\n", 1)[0]
    assert re.search(rb"(?im)^Subject: Message undeliverable: bounce " + tok.encode(), head)
    assert re.search(rb"(?im)^Auto-Submitted: auto-generated", head)
    assert re.search(rb"(?im)^Content-Type: multipart/report;", head)


def test_no_bounce_for_mailer_daemon_sender(bsrv, dns, mtas):
    m = mtas(rcpt_reply="550 5.1.1 No such user")
    home = mtas()
    d, ds = mx_domain(dns, m), mx_domain(dns, home, prefix="daemonhome")
    rcpt = f"x@{d}"
    tok, _ = send(bsrv, f"MAILER-DAEMON@{ds}", [rcpt], source="127.0.0.7")
    m.wait(lambda mm: mm.rcpt_attempts(rcpt) >= 1, what="RCPT")
    wait_not_queued(bsrv, rcpt)
    time.sleep(2.0)
    assert home.sessions == [], home.summary()


# -- quota


def test_over_quota_bounces_inbox_full(bsrv):
    sender = new_sender(bsrv)
    full = new_sender(bsrv, quota="1")
    body = ("x" * 76 + "\r\n").encode() * 16000  # about 1.25 MB
    tok, _ = send(bsrv, sender, [full], body=body)
    _, _, human, _, _ = wait_bounce(bsrv, sender, tok, timeout=8)
    assert full in human, human
    assert "Inbox is full" in human, human
    assert "The recipients inbox is full." in human, human
    assert bsrv.find(full, tok) == [], "stored although over quota"


# -- hostile or silent servers


def test_overlong_reply_gives_up_and_bounces(bsrv, dns, mtas):
    """A greeting line of 200 000 bytes: the client stops reading (bounded buffer), the attempt
    fails temporarily, and after the retries the sender gets "Unexpected response from server
    (too long)."."""
    m = mtas(banner="220 " + "x" * 200_000)
    d = mx_domain(dns, m)
    sender = new_sender(bsrv)
    tok, _ = send(bsrv, sender, [f"x@{d}"])
    _, _, human, _, _ = wait_bounce(bsrv, sender, tok, timeout=20)
    assert "Unexpected response from server (too long)." in human, human
    assert "Tried 3 time(s)" in human, human
    assert m.txns() == []


def test_silent_server_times_out(make_server, dns, mtas):
    """A server that never greets: [delivery] timeout ends each attempt; the bounce says so."""
    g = make_server(extra_conf=delivery_conf(timeout="1s", retries=1))
    m = mtas(banner=None)
    d = mx_domain(dns, m)
    tok, _ = send(g, "user3@example.test", [f"x@{d}"])
    t0 = time.monotonic()
    _, _, human, _, _ = wait_bounce(g, "user3@example.test", tok, timeout=15)
    assert "There was a timeout while talking to the remote server." in human, human
    assert "Tried 2 time(s)" in human, human
    assert len(m.sessions) == 2, m.summary()
    assert time.monotonic() - t0 >= 1.5
