"""Outbound delivery across a crash (issue 4, "What must be true": the restart test): messages
queued for a remote domain whose MTA is down survive `kill -9`; after a restart, with the MTA up
and `gannet queue flush`, each arrives exactly once, and messages delivered before the crash are
not sent again. The kill happens while the MTA is down, so the documented crash window (between
the remote 250 and the server's record) is never open: no duplicate is acceptable."""
import time

import pytest

from fakemta import (FakeMTA, can_bind_25, delivery_conf, mx_domain, pending, queue_id_for,
                     queue_text, rcpt_rows, wait_not_queued)
from gannet import make_message, token

pytestmark = pytest.mark.skipif(not can_bind_25(),
                                reason="cannot listen on port 25 of a loopback address")


def _send(g, rcpt, tag):
    tok = token(tag)
    g.send("user@example.test", [rcpt], make_message(token=tok, sender="user@example.test",
                                                     to=rcpt), source="127.0.0.1")
    return tok


def _attempts(g, rcpt):
    qid = queue_id_for(g, rcpt)
    if qid is None:
        return None
    for r in rcpt_rows(g, qid):
        if r.get("address", "").lower() == rcpt.lower():
            return int(r.get("attempts", "0") or 0)
    return None


def test_kill9_while_remote_down_then_flush(make_server, dns):
    g = make_server(extra_conf=delivery_conf(retry_interval="1h", retries=4))
    m = FakeMTA()
    try:
        d = mx_domain(dns, m)

        # delivered before the crash
        early = {f"early{i}@{d}": _send(g, f"early{i}@{d}", "early") for i in range(2)}
        for rcpt, tok in early.items():
            m.wait_delivered(tok)
            wait_not_queued(g, rcpt)

        # the remote MTA goes down; new messages fail their first attempt and stay queued
        m.stop()
        late = {f"late{i}@{d}": _send(g, f"late{i}@{d}", "late") for i in range(3)}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if all((_attempts(g, r) or 0) >= 1 for r in late):
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"not every message was attempted:\n{queue_text(g)}")
        assert all(pending(g, r) for r in late), queue_text(g)

        g.kill9()
        g.start()
        assert all(pending(g, r) for r in late), f"lost by the crash:\n{queue_text(g)}"

        m.start()  # same address and port
        g.cli("queue", "flush")
        for rcpt, tok in late.items():
            m.wait_delivered(tok, timeout=15)
        for rcpt in late:
            wait_not_queued(g, rcpt)
        time.sleep(2.0)  # anything sent twice would have arrived by now
        g.cli("queue", "flush")
        time.sleep(1.5)
        for rcpt, tok in list(early.items()) + list(late.items()):
            got = [t for t in m.delivered() if tok.encode() in t.content]
            assert len(got) == 1, f"{rcpt}: delivered {len(got)} times; {m.summary()}"
            assert got[0].rcpts == [rcpt]
    finally:
        m.stop()
