"""Auto-ban (replies.md "STARTTLS and AUTH", hmailserver-behaviour.md §3.5, §14 item 15, issue 3)
with short configured times: `[autoban] max_attempts = 3, window = 30s, ban = 5s`. Failures 1-2
answer `535 ... Restarting authentication process.`, the 3rd `535 ... Too many invalid logon
attempts.` and closes; the address then gets no banner (even 127.0.0.1: priority 100 beats My
computer); `gannet iprange list` shows `Auto-ban: <user>` for that single address with priority
100 and nothing allowed; `gannet iprange del` lifts it at once; it expires by itself; other
addresses are unaffected. Covered over plain text from 127.0.0.1 and over STARTTLS and implicit
TLS from 127.0.0.2."""
import time
from datetime import datetime, timezone

import pytest

from tlsutil import (AUTH_BANNED, AUTH_FAILED, AUTOBAN_CONF, USER, auth_login, auth_plain,
                     TlsConn, connect, fresh_ip, poll, secure_session, tls_server)

BAN_S = 5


def banned_rows(g):
    rows = []
    for line in g.cli("iprange", "list").out.splitlines()[1:]:
        f = line.split("\t")
        if f[0].startswith("Auto-ban:"):
            rows.append(f)
    return rows


def assert_no_banner(g, source, listener="mx"):
    """Closed before anything is sent (no banner; on the TLS listener, no handshake either)."""
    c = TlsConn(g.ports[listener], source=source)
    try:
        c.assert_closed(timeout=5)
    finally:
        c.close()


def assert_banner(g, source, listener="mx"):
    with connect(g, listener, source) as c:
        c.cmd("QUIT", "221 goodbye")


def check_ban_row(g, ip, user, before, ban_s=BAN_S):
    rows = banned_rows(g)
    assert len(rows) == 1, rows
    name, frm, to, prio, allow, deliver, _auth, _spam, _tls, expires = rows[0]
    assert name == f"Auto-ban: {user}", name
    assert (frm, to, prio) == (ip, ip, "100"), rows[0]
    assert allow == "none" and deliver == "none", rows[0]
    exp = datetime.strptime(expires, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    assert before + ban_s - 2 <= exp <= time.time() + ban_s + 2, (expires, before, ban_s)
    return name


def fail_three_times(g, c, user=USER, mech=auth_login):
    mech(c, user=user, password="wrong1", expect=AUTH_FAILED)
    mech(c, user=user, password="wrong2", expect=AUTH_FAILED)
    mech(c, user=user, password="wrong3", expect=AUTH_BANNED)
    c.assert_closed()


def test_autoban_plain_from_my_computer(make_server):
    g = tls_server(make_server, extra_conf=AUTOBAN_CONF)
    t0 = time.time()
    with connect(g, "mx", "127.0.0.1") as c:
        c.ehlo()
        fail_three_times(g, c)
    assert_no_banner(g, "127.0.0.1")
    assert_no_banner(g, "127.0.0.1", "smtps")  # every listener
    assert_banner(g, "127.0.0.2")  # others unaffected
    name = check_ban_row(g, "127.0.0.1", USER, t0)
    # removing the range lifts the ban at once
    g.cli("iprange", "del", name)
    poll(lambda: assert_banner(g, "127.0.0.1"), 2.0)
    assert banned_rows(g) == []
    # the failures were cleared with the ban: two more failures do not ban again
    with connect(g, "mx", "127.0.0.1") as c:
        c.ehlo()
        auth_plain(c, password="x", expect=AUTH_FAILED)
        auth_plain(c, password="y", expect=AUTH_FAILED)
        auth_plain(c)


def test_autoban_starttls_from_internet_expires(make_server):
    """Failures count per address across connections and listeners; the ban expires by itself."""
    g = tls_server(make_server, extra_conf=AUTOBAN_CONF)
    t0 = time.time()
    with secure_session(g, "sub", "127.0.0.2") as c:
        auth_login(c, password="bad", expect=AUTH_FAILED)
        auth_plain(c, user="nobody@example.test", expect=AUTH_FAILED)
        c.cmd("QUIT", "221 goodbye")
    with secure_session(g, "smtps", "127.0.0.2") as c:
        auth_plain(c, password="bad", expect=AUTH_BANNED)
        c.assert_closed()
    banned_at = time.time()
    assert_no_banner(g, "127.0.0.2", "sub")
    assert_no_banner(g, "127.0.0.2", "smtps")
    other = fresh_ip("internet")
    with secure_session(g, "sub", other) as c:  # another address: fine, and may log in
        auth_login(c)
    assert_banner(g, "127.0.0.1")
    check_ban_row(g, "127.0.0.2", USER, t0)
    # still banned shortly before the end, free after it
    time.sleep(max(0.0, banned_at + BAN_S - 1.5 - time.time()))
    assert_no_banner(g, "127.0.0.2")
    time.sleep(max(0.0, banned_at + BAN_S + 0.5 - time.time()))
    poll(lambda: assert_banner(g, "127.0.0.2"), 3.0, step=0.3)
    with secure_session(g, "sub", "127.0.0.2") as c:
        auth_login(c)


def test_autoban_session_with_good_login_between(make_server):
    """A successful login does not reset the failure count (hMailServer keeps the records)."""
    g = tls_server(make_server, extra_conf=AUTOBAN_CONF)
    ip = fresh_ip("local")
    with connect(g, "mx", ip) as c:
        c.ehlo()
        auth_login(c, password="bad", expect=AUTH_FAILED)
        auth_login(c, password="bad", expect=AUTH_FAILED)
    with connect(g, "mx", ip) as c:
        c.ehlo()
        auth_login(c, user="user2@example.test")
    with connect(g, "mx", ip) as c:
        c.ehlo()
        auth_login(c, user="user3@example.test", password="bad", expect=AUTH_BANNED)
        c.assert_closed()
    rows = banned_rows(g)
    assert [r[0] for r in rows] == ["Auto-ban: user3@example.test"], rows
    assert_no_banner(g, ip)


def test_failures_outside_the_window_do_not_count(make_server):
    conf = "[autoban]\nenabled = yes\nmax_attempts = 3\nwindow = 2s\nban = 5s\n"
    g = tls_server(make_server, extra_conf=conf)
    with connect(g, "mx", "127.0.0.1") as c:
        c.ehlo()
        auth_plain(c, password="a", expect=AUTH_FAILED)
        auth_plain(c, password="b", expect=AUTH_FAILED)
        time.sleep(3.0)
        auth_plain(c, password="c", expect=AUTH_FAILED)
        auth_plain(c)
    assert banned_rows(g) == []


def test_autoban_disabled(make_server):
    conf = "[autoban]\nenabled = no\nmax_attempts = 3\nwindow = 30s\nban = 5s\n"
    g = tls_server(make_server, extra_conf=conf)
    with connect(g, "mx", "127.0.0.1") as c:
        c.ehlo()
        for i in range(6):
            auth_plain(c, password=f"bad{i}", expect=AUTH_FAILED)
        auth_plain(c)
    assert banned_rows(g) == []
    assert_banner(g, "127.0.0.1")


@pytest.mark.parametrize("attempts", [1, 5])
def test_autoban_max_attempts_setting(make_server, attempts):
    conf = f"[autoban]\nenabled = yes\nmax_attempts = {attempts}\nwindow = 30s\nban = 5s\n"
    g = tls_server(make_server, extra_conf=conf)
    with connect(g, "mx", "127.0.0.1") as c:
        c.ehlo()
        for i in range(attempts - 1):
            auth_plain(c, password=f"bad{i}", expect=AUTH_FAILED)
        auth_plain(c, password="last", expect=AUTH_BANNED)
        c.assert_closed()
    assert_no_banner(g, "127.0.0.1")


def test_autoban_defaults(make_server):
    """Without an [autoban] section: on, 3 attempts, ban of 60 minutes."""
    g = tls_server(make_server)
    t0 = time.time()
    with connect(g, "mx", "127.0.0.1") as c:
        c.ehlo()
        fail_three_times(g, c)
    assert_no_banner(g, "127.0.0.1")
    check_ban_row(g, "127.0.0.1", USER, t0, ban_s=3600)
