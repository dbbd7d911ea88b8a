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

from tlsutil import (AUTH_BANNED, AUTH_FAILED, AUTOBAN_CONF, USER, TlsConn, all_ok, auth_login,
                     auth_plain, connect, fresh_ip, poll, run_parallel, secure_session,
                     tls_server)

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


def fail_once(g, source, listener="mx", user=USER, mech=auth_plain, password="wrong"):
    """One failed login on its own connection (the connection stays usable)."""
    if g.security[listener] == "none":
        c = connect(g, listener, source)
        c.ehlo()
    else:
        c = secure_session(g, listener, source)
    with c:
        mech(c, user=user, password=password, expect=AUTH_FAILED)
        c.cmd("NOOP", "250 OK")


def fail_at_once(g, source, n, listener="mx", user=USER):
    """n failures from source on n connections at the same time (n below max_attempts)."""
    all_ok(run_parallel({f"fail{i}": (lambda i=i: fail_once(g, source, listener, user,
                                                             password=f"bad{i}"))
                         for i in range(n)}))


def fail_to_ban(g, c, user=USER, mech=auth_login):
    """The failure that reaches the limit: 535 Too many invalid logon attempts, then close."""
    mech(c, user=user, password="wrong-last", expect=AUTH_BANNED)
    c.assert_closed()


def test_autoban_plain_from_my_computer(make_server):
    g = tls_server(make_server, extra_conf=AUTOBAN_CONF)
    t0 = time.time()
    with connect(g, "mx", "127.0.0.1") as c:  # 1, 2, 3 in one session
        c.ehlo()
        auth_login(c, password="wrong1", expect=AUTH_FAILED)
        auth_login(c, password="wrong2", expect=AUTH_FAILED)
        fail_to_ban(g, c)
    assert_no_banner(g, "127.0.0.1")
    assert_no_banner(g, "127.0.0.1", "smtps")  # every listener
    assert_banner(g, "127.0.0.2")  # others unaffected
    name = check_ban_row(g, "127.0.0.1", USER, t0)
    # removing the range lifts the ban at once
    g.cli("iprange", "del", name)
    poll(lambda: assert_banner(g, "127.0.0.1"), 2.0)
    assert banned_rows(g) == []
    # the failures were cleared with the ban: two more failures do not ban again
    fail_at_once(g, "127.0.0.1", 2)
    with connect(g, "mx", "127.0.0.1") as c:
        c.ehlo()
        auth_plain(c)


def test_autoban_starttls_from_internet_expires(make_server):
    """Failures count per address across connections and listeners; the ban expires by itself."""
    g = tls_server(make_server, extra_conf=AUTOBAN_CONF)
    t0 = time.time()
    all_ok(run_parallel({
        "starttls": lambda: fail_once(g, "127.0.0.2", "sub", mech=auth_login),
        "unknown-user": lambda: fail_once(g, "127.0.0.2", "req", user="nobody@example.test"),
    }))
    with secure_session(g, "smtps", "127.0.0.2") as c:
        banned_at = time.time()  # the ban starts when the credentials arrive
        fail_to_ban(g, c, mech=auth_plain)
    assert_no_banner(g, "127.0.0.2", "sub")
    assert_no_banner(g, "127.0.0.2", "smtps")
    with secure_session(g, "sub", fresh_ip("internet")) as c:  # another address: fine
        auth_login(c)
    assert_banner(g, "127.0.0.1")
    check_ban_row(g, "127.0.0.2", USER, t0)
    # still banned halfway (expiry has whole-second precision), free after it
    time.sleep(max(0.0, banned_at + BAN_S / 2 - time.time()))
    assert_no_banner(g, "127.0.0.2")
    time.sleep(max(0.0, banned_at + BAN_S - 1.0 - time.time()))
    poll(lambda: assert_banner(g, "127.0.0.2"), 3.0, step=0.2)
    with secure_session(g, "sub", "127.0.0.2") as c:
        auth_login(c)


def test_autoban_good_login_between(make_server):
    """A successful login does not clear the failures (hMailServer keeps the records until the
    window passes); the range is named after the user of the last attempt."""
    g = tls_server(make_server, extra_conf=AUTOBAN_CONF)
    ip = fresh_ip("local")
    fail_at_once(g, ip, 2)
    with connect(g, "mx", ip) as c:
        c.ehlo()
        auth_login(c, user="user2@example.test")
    with connect(g, "mx", ip) as c:
        c.ehlo()
        fail_to_ban(g, c, user="user3@example.test")
    assert [r[0] for r in banned_rows(g)] == ["Auto-ban: user3@example.test"], banned_rows(g)
    assert_no_banner(g, ip)


def test_failures_outside_the_window_do_not_count(make_server):
    conf = "[autoban]\nenabled = yes\nmax_attempts = 3\nwindow = 1s\nban = 5s\n"
    g = tls_server(make_server, extra_conf=conf)
    fail_at_once(g, "127.0.0.1", 2)  # answered a second after they were counted
    time.sleep(1.2)
    with connect(g, "mx", "127.0.0.1") as c:
        c.ehlo()
        auth_plain(c, password="c", expect=AUTH_FAILED)
        auth_plain(c)
    assert banned_rows(g) == []


def test_autoban_disabled(make_server):
    conf = "[autoban]\nenabled = no\nmax_attempts = 3\nwindow = 30s\nban = 5s\n"
    g = tls_server(make_server, extra_conf=conf)
    all_ok(run_parallel({f"fail{i}": (lambda: fail_once(g, "127.0.0.1")) for i in range(6)}))
    assert banned_rows(g) == []
    assert_banner(g, "127.0.0.1")


def test_autoban_one_attempt_no_ban_range(make_server):
    """max_attempts = 1: the first failure is the limit; ban = 0: the session is closed but no
    range is made, so the address may connect again."""
    conf = "[autoban]\nenabled = yes\nmax_attempts = 1\nwindow = 30s\nban = 0s\n"
    g = tls_server(make_server, extra_conf=conf)
    with connect(g, "mx", "127.0.0.1") as c:
        c.ehlo()
        fail_to_ban(g, c, mech=auth_plain)
    assert banned_rows(g) == []
    with connect(g, "mx", "127.0.0.1") as c:
        c.ehlo()
        auth_plain(c)


def test_autoban_defaults(make_server):
    """Without an [autoban] section: on, 3 attempts, a ban of 60 minutes."""
    g = tls_server(make_server)
    t0 = time.time()
    fail_at_once(g, "127.0.0.1", 2)
    with connect(g, "mx", "127.0.0.1") as c:
        c.ehlo()
        fail_to_ban(g, c)
    assert_no_banner(g, "127.0.0.1")
    check_ban_row(g, "127.0.0.1", USER, t0, ban_s=3600)
