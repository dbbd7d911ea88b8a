"""SMTP AUTH (replies.md "STARTTLS and AUTH", hmailserver-behaviour.md §3, §14 items 11-14, 38,
issue 3): PLAIN and LOGIN with and without initial response, `*` cancellation, the failure reply
(the same for every cause and about the same delay), authzid, already authenticated, AUTH before
HELO, TLS required for AUTH from the Internet range, relaying after AUTH, Received ESMTPA/ESMTPSA,
the AUTH= MAIL parameter. Over plain text (127.0.0.1 and LocalPlain addresses), STARTTLS and
implicit TLS (127.0.0.1 and 127.0.0.2).

Every test that fails a login does it from a fresh_ip() address (at most two failures per address)
so the default auto-ban (3 failures) never triggers on the shared server."""
import statistics
import time

import pytest

from gannet import EXT, make_message, token
from tlsutil import (AUTH_ALREADY, AUTH_CANCELLED, AUTH_FAILED, AUTH_NEED_TLS, AUTH_NO_TYPE,
                     AUTH_OK, AUTH_REQUIRED, AUTH_UNSUPPORTED, HELO_FIRST, PASSWORD,
                     PROMPT_PASS, PROMPT_USER, USER, _tserver_health, all_ok, auth_login,
                     auth_plain, b64, check_received, connect, fresh_ip, queue_list,
                     run_parallel, secure_session, send_message, tserver)

__all__ = ["tserver", "_tserver_health"]  # fixtures used by name

RCV = "rcv@example.test"
EXT_RCPT = "someone@external.test"

# (listener, source): every way a client can reach AUTH
WAYS = [("mx", "127.0.0.1"), ("sub", "127.0.0.1"), ("sub", "127.0.0.2"), ("smtps", "127.0.0.2"),
        ("req", "127.0.0.1"), ("smtps", "127.0.0.1")]


def ready(g, listener, source):
    """A greeted connection on which AUTH is possible (STARTTLS done where the path needs it)."""
    tls = listener in ("req", "smtps") or (listener == "sub" and source == "127.0.0.2")
    if tls:
        return secure_session(g, listener, source)
    c = connect(g, listener, source)
    c.ehlo()
    return c


def ids(ways):
    return [f"{listener}-{source}" for listener, source in ways]


# --------------------------------------------------------------------------------------------
# Successful dialogues


@pytest.mark.parametrize("listener,source", WAYS, ids=ids(WAYS))
def test_auth_login(tserver, listener, source):
    with ready(tserver, listener, source) as c:
        c.cmd("AUTH LOGIN", PROMPT_USER)
        c.cmd(b64(USER), PROMPT_PASS)
        c.cmd(b64(PASSWORD), AUTH_OK)
        c.cmd("NOOP", "250 OK")


@pytest.mark.parametrize("listener,source", WAYS[:4], ids=ids(WAYS[:4]))
def test_auth_login_initial_response(tserver, listener, source):
    with ready(tserver, listener, source) as c:
        c.cmd(f"AUTH LOGIN {b64(USER)}", PROMPT_PASS)
        c.cmd(b64(PASSWORD), AUTH_OK)


@pytest.mark.parametrize("listener,source", WAYS[:4], ids=ids(WAYS[:4]))
def test_auth_plain_initial_response(tserver, listener, source):
    with ready(tserver, listener, source) as c:
        c.cmd(f"AUTH PLAIN {b64(chr(0) + USER + chr(0) + PASSWORD)}", AUTH_OK)


@pytest.mark.parametrize("listener,source", WAYS[:4], ids=ids(WAYS[:4]))
def test_auth_plain_empty_challenge(tserver, listener, source):
    with ready(tserver, listener, source) as c:
        c.send("AUTH PLAIN")
        r = c.reply()
        assert r.raw == b"334 \r\n", f"expected the empty challenge '334 ', got {r.raw!r}"
        c.cmd(b64(f"\0{USER}\0{PASSWORD}"), AUTH_OK)


def test_auth_plain_authzid_equal_to_user(tserver):
    with ready(tserver, "mx", "127.0.0.1") as c:
        auth_plain(c, authzid=USER)


@pytest.mark.parametrize("cmd", ["auth login", "Auth Login", "AUTH login"])
def test_auth_mechanism_case_insensitive(tserver, cmd):
    with ready(tserver, "mx", "127.0.0.1") as c:
        c.cmd(cmd, PROMPT_USER)
        c.cmd(b64(USER), PROMPT_PASS)
        c.cmd(b64(PASSWORD), AUTH_OK)


def test_auth_plain_lowercase(tserver):
    with ready(tserver, "mx", "127.0.0.1") as c:
        c.cmd(f"auth plain {b64(chr(0) + USER + chr(0) + PASSWORD)}", AUTH_OK)


def test_auth_with_domain_alias(tserver):
    """The user name's domain may be a domain alias of the account's domain."""
    with ready(tserver, "sub", "127.0.0.2") as c:
        auth_login(c, user="user@alias-domain.test")
    with ready(tserver, "mx", "127.0.0.1") as c:
        auth_plain(c, user="user@alias-domain.test")


def test_other_accounts_can_log_in(tserver):
    with ready(tserver, "smtps", "127.0.0.2") as c:
        auth_plain(c, user="someone@other.test")


# --------------------------------------------------------------------------------------------
# Replies that are not a verdict


def test_auth_without_mechanism(tserver):
    with ready(tserver, "mx", "127.0.0.1") as c:
        c.cmd("AUTH", AUTH_NO_TYPE)
        auth_plain(c)


@pytest.mark.parametrize("mech", ["CRAM-MD5", "DIGEST-MD5", "XOAUTH2", "GSSAPI", "NTLM",
                                  "SCRAM-SHA-256", "LOGINX", "PLAIN-CLIENTTOKEN"])
def test_auth_unsupported_mechanism(tserver, mech):
    with ready(tserver, "sub", "127.0.0.2") as c:
        c.cmd(f"AUTH {mech}", AUTH_UNSUPPORTED)
        c.cmd(f"AUTH {mech} {b64('x')}", AUTH_UNSUPPORTED)
        auth_login(c)


def test_auth_twice(tserver):
    with ready(tserver, "sub", "127.0.0.2") as c:
        auth_login(c)
        c.cmd("AUTH LOGIN", AUTH_ALREADY)
        c.cmd(f"AUTH PLAIN {b64(chr(0) + USER + chr(0) + PASSWORD)}", AUTH_ALREADY)
        c.cmd("AUTH CRAM-MD5", AUTH_ALREADY)
        c.cmd("NOOP", "250 OK")


@pytest.mark.parametrize("source", ["127.0.0.1", "127.0.0.2"])
def test_auth_before_helo(tserver, source):
    listener = "mx" if source == "127.0.0.1" else "smtps"
    with connect(tserver, listener, source) as c:
        c.cmd("AUTH LOGIN", HELO_FIRST)
        c.cmd(f"AUTH PLAIN {b64(chr(0) + USER + chr(0) + PASSWORD)}", HELO_FIRST)
        c.ehlo()
        auth_plain(c)


@pytest.mark.parametrize("listener", ["mx", "sub"])
def test_auth_needs_tls_from_internet(tserver, listener):
    """The Internet range requires TLS for AUTH: on a plain connection even good credentials get
    530, and nothing is authenticated."""
    with connect(tserver, listener, "127.0.0.2") as c:
        c.ehlo()
        c.cmd("AUTH LOGIN", AUTH_NEED_TLS)
        c.cmd(f"AUTH PLAIN {b64(chr(0) + USER + chr(0) + PASSWORD)}", AUTH_NEED_TLS)
        c.cmd(f"AUTH LOGIN {b64(USER)}", AUTH_NEED_TLS)
        c.cmd("AUTH", AUTH_NEED_TLS)  # checked before the mechanism (§3.2 order)
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd(f"RCPT TO:<{EXT_RCPT}>", AUTH_REQUIRED)


# --------------------------------------------------------------------------------------------
# Cancellation


@pytest.mark.parametrize("where", ["login-user", "login-pass", "login-initial", "plain"])
def test_auth_cancel(tserver, where):
    with ready(tserver, "sub", "127.0.0.2") as c:
        if where == "login-user":
            c.cmd("AUTH LOGIN", PROMPT_USER)
        elif where == "login-pass":
            c.cmd("AUTH LOGIN", PROMPT_USER)
            c.cmd(b64(USER), PROMPT_PASS)
        elif where == "login-initial":
            c.cmd(f"AUTH LOGIN {b64(USER)}", PROMPT_PASS)
        else:
            c.cmd("AUTH PLAIN", "334 ")
        c.cmd("*", AUTH_CANCELLED)
        # not authenticated, back in command mode
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd(f"RCPT TO:<{EXT_RCPT}>", AUTH_REQUIRED)
        c.cmd("RSET", "250 OK")
        auth_login(c)
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd(f"RCPT TO:<{EXT_RCPT}>", "250 OK")


# --------------------------------------------------------------------------------------------
# Failures: one text for every cause; the client may try again on the same connection

FAILURES = {
    "wrong-password": lambda c: auth_login(c, password="wrong", expect=AUTH_FAILED),
    "wrong-password-plain": lambda c: auth_plain(c, password="Secret", expect=AUTH_FAILED),
    "unknown-user": lambda c: auth_login(c, user="nobody@example.test", expect=AUTH_FAILED),
    "unknown-domain": lambda c: auth_plain(c, user="user@nowhere.test", expect=AUTH_FAILED),
    "no-domain": lambda c: auth_plain(c, user="user", expect=AUTH_FAILED),
    "disabled-account": lambda c: auth_login(c, user="inactive@example.test",
                                             expect=AUTH_FAILED),
    "disabled-domain": lambda c: auth_plain(c, user="user@disabled.test", expect=AUTH_FAILED),
    "empty-password": lambda c: auth_plain(c, password="", expect=AUTH_FAILED),
    "password-prefix": lambda c: auth_plain(c, password=PASSWORD[:-1], expect=AUTH_FAILED),
    "password-longer": lambda c: auth_plain(c, password=PASSWORD + "x", expect=AUTH_FAILED),
    "authzid-other": lambda c: auth_plain(c, authzid="user2@example.test", expect=AUTH_FAILED),
    "plain-bad-base64": lambda c: c.cmd("AUTH PLAIN !!!not*base64!!!", AUTH_FAILED),
    "plain-no-separator": lambda c: c.cmd(f"AUTH PLAIN {b64(USER + PASSWORD)}", AUTH_FAILED),
    "plain-one-separator": lambda c: c.cmd(f"AUTH PLAIN {b64(USER + chr(0) + PASSWORD)}",
                                           AUTH_FAILED),
    "plain-two-step-bad-base64": lambda c: (c.cmd("AUTH PLAIN", "334 "),
                                            c.cmd("%%%%", AUTH_FAILED)),
    "login-bad-base64-user": lambda c: (c.cmd("AUTH LOGIN", PROMPT_USER),
                                        c.cmd("@@@@", AUTH_FAILED)),
    "login-bad-base64-pass": lambda c: (c.cmd("AUTH LOGIN", PROMPT_USER),
                                        c.cmd(b64(USER), PROMPT_PASS),
                                        c.cmd("@@@@", AUTH_FAILED)),
    "login-initial-bad-base64": lambda c: c.cmd("AUTH LOGIN ####", AUTH_FAILED),
}


def _failure_case(g, case):
    with ready(g, "mx", fresh_ip("local")) as c:
        FAILURES[case](c)
        # not authenticated
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd(f"RCPT TO:<{EXT_RCPT}>", AUTH_REQUIRED)
        c.cmd("RSET", "250 OK")
        # "Restarting authentication process": a new AUTH on the same connection works
        auth_plain(c)
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd(f"RCPT TO:<{EXT_RCPT}>", "250 OK")


@pytest.fixture(scope="module")
def failure_results(tserver):
    """Every failure case at once, each from its own address (each failure is answered after a
    constant delay, so running them one after another would take many seconds)."""
    return run_parallel({case: (lambda case=case: _failure_case(tserver, case))
                         for case in FAILURES})


@pytest.mark.parametrize("case", list(FAILURES))
def test_auth_failure(failure_results, case):
    if failure_results[case] is not None:
        raise failure_results[case]


def _tls_failure(g, listener, mech, **kw):
    with secure_session(g, listener, fresh_ip("internet")) as c:
        mech(c, expect=AUTH_FAILED, **kw)
        mech(c)


def test_auth_failure_over_tls_from_internet(tserver):
    all_ok(run_parallel({
        "starttls": lambda: _tls_failure(tserver, "sub", auth_login, password="wrong"),
        "implicit": lambda: _tls_failure(tserver, "smtps", auth_plain, user="nobody@example.test"),
    }))


def _time_failure(g, user, out):
    with ready(g, "mx", fresh_ip("local")) as c:
        c.cmd(f"AUTH LOGIN {b64(user)}", PROMPT_PASS)
        t0 = time.monotonic()
        c.cmd(b64("wrong-password"), AUTH_FAILED)
        out.append(time.monotonic() - t0)


def test_failure_delay_does_not_reveal_the_user(tserver):
    """Unknown user and wrong password are answered after about the same delay (three rounds,
    each timing one of both at the same moment)."""
    known, unknown = [], []
    for i in range(3):
        all_ok(run_parallel({
            "known": lambda: _time_failure(tserver, USER, known),
            "unknown": lambda i=i: _time_failure(tserver, f"nobody{i}@example.test", unknown),
        }))
    k, u = statistics.median(known), statistics.median(unknown)
    assert max(known + unknown) < 5.0, (known, unknown)
    assert abs(k - u) <= 0.3 * max(k, u) + 0.05, (
        f"failure delay differs: existing user {known}, unknown user {unknown}")


def test_success_is_not_delayed_like_failure(tserver):
    with ready(tserver, "mx", "127.0.0.1") as c:
        t0 = time.monotonic()
        auth_plain(c)
        assert time.monotonic() - t0 < 5.0


# --------------------------------------------------------------------------------------------
# After AUTH: relaying, the Received header, AUTH=


@pytest.mark.parametrize("listener,source", [("sub", "127.0.0.2"), ("smtps", "127.0.0.2"),
                                             ("mx", "127.0.0.1"), ("req", "127.0.0.1")])
def test_relay_after_auth(tserver, listener, source):
    tok = token("relay")
    rcpt = f"{tok}@external.test"
    with ready(tserver, listener, source) as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd(f"RCPT TO:<{rcpt}>", AUTH_REQUIRED)
        c.cmd("RSET", "250 OK")
        auth_login(c)
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")  # external -> external
        c.cmd(f"RCPT TO:<{rcpt}>", "250 OK")
        c.data(make_message(token=tok, to=rcpt), expect="queued")
        c.cmd(f"MAIL FROM:<{USER}>", "250 OK")  # local -> external
        c.cmd(f"RCPT TO:<{rcpt}>", "250 OK")
        c.cmd(f"RCPT TO:<{RCV}>", "250 OK")
        c.cmd("RSET", "250 OK")
        # RSET keeps the authentication
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd(f"RCPT TO:<{rcpt}>", "250 OK")
    assert rcpt in queue_list(tserver)


def test_tls_alone_does_not_allow_relay(tserver):
    with ready(tserver, "sub", "127.0.0.2") as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd(f"RCPT TO:<{EXT_RCPT}>", AUTH_REQUIRED)
        c.cmd("RSET", "250 OK")
        c.cmd(f"MAIL FROM:<{USER}>", "250 OK")  # spoofed local sender
        c.cmd(f"RCPT TO:<{RCV}>", AUTH_REQUIRED)


def test_received_esmtpa(tserver):
    """Plain text + AUTH (from My computer) -> ESMTPA, no TLS line."""
    tok = token("esmtpa")
    with ready(tserver, "mx", "127.0.0.1") as c:
        auth_login(c)
        send_message(c, USER, RCV, make_message(token=tok, sender=USER, to=RCV))
    check_received(tserver.wait_for(RCV, tok)[0], "ESMTPA", "127.0.0.1", None)


@pytest.mark.parametrize("listener,source", [("sub", "127.0.0.2"), ("smtps", "127.0.0.2"),
                                             ("req", "127.0.0.1")])
def test_received_esmtpsa(tserver, listener, source):
    tok = token("esmtpsa")
    with ready(tserver, listener, source) as c:
        auth_plain(c)
        send_message(c, USER, RCV, make_message(token=tok, sender=USER, to=RCV))
        info = c.tls_info()
    check_received(tserver.wait_for(RCV, tok)[0], "ESMTPSA", source, info)


@pytest.mark.parametrize("param", ["AUTH=<>", f"AUTH={USER}", "AUTH=<> SIZE=100"])
def test_mail_auth_parameter(tserver, param):
    with ready(tserver, "sub", "127.0.0.2") as c:
        c.cmd(f"MAIL FROM:<{EXT}> {param}", "250 OK")
        c.cmd(f"RCPT TO:<{RCV}>", "250 OK")
        c.cmd("RSET", "250 OK")
        auth_plain(c)
        c.cmd(f"MAIL FROM:<{USER}> {param}", "250 OK")
        c.cmd(f"RCPT TO:<{EXT_RCPT}>", "250 OK")


# --------------------------------------------------------------------------------------------
# Hashes moved from another server (`gannet account add --password-hash`, issue 3 item 5)


def _legacy_hashes(password):
    import hashlib
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # deprecated, still in Python 3.11 (Debian 12)
        return {
            "yescrypt": crypt.crypt(password, "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$"),
            "sha512": crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512)),
            "bcrypt": crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)),
            "hmailserver": "a1b2c3" + hashlib.sha256(b"a1b2c3" + password.encode()).hexdigest(),
        }


def _stored_hash(g, addr):
    import sqlite3
    db = sqlite3.connect(f"file:{g.db}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT password_hash FROM account WHERE address = ?",
                          (addr,)).fetchone()[0]
    finally:
        db.close()


def test_imported_password_hashes(make_server):
    """Each imported scheme logs in with the right password only; a legacy hash is replaced by
    yescrypt at the first successful login."""
    from tlsutil import tls_server
    pw = "Imp0rted-pw"
    hashes = _legacy_hashes(pw)
    assert hashes["yescrypt"].startswith("$y$") and hashes["bcrypt"].startswith("$2b$")
    setup = [["account", "add", f"{k}@example.test", "--password-hash", h]
             for k, h in hashes.items()]
    g = tls_server(make_server, setup=setup)
    for k, h in hashes.items():
        assert _stored_hash(g, f"{k}@example.test") == h

    def one(k):
        with ready(g, "mx", fresh_ip("local")) as c:
            auth_plain(c, user=f"{k}@example.test", password=pw.upper(), expect=AUTH_FAILED)
            auth_login(c, user=f"{k}@example.test", password=pw)
            c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
            c.cmd(f"RCPT TO:<{EXT_RCPT}>", "250 OK")
    all_ok(run_parallel({k: (lambda k=k: one(k)) for k in hashes}))
    for k, h in hashes.items():
        now = _stored_hash(g, f"{k}@example.test")
        if k == "yescrypt":
            assert now == h, "a yescrypt hash was rewritten"
        else:
            assert now.startswith("$y$"), f"{k} hash not replaced by yescrypt: {now}"
    # and the new hash still takes the same password; the session after it too
    with ready(g, "mx", "127.0.0.1") as c:
        auth_plain(c, user="hmailserver@example.test", password=pw)


@pytest.mark.parametrize("bad", ["plaintext", "$1$abc$def", "a1b2c3" + "0" * 63, "$6$"])
def test_password_hash_import_refuses_unknown_forms(tserver, bad):
    r = tserver.cli("account", "add", "badhash@example.test", "--password-hash", bad,
                    check=False)
    assert r.returncode != 0, f"--password-hash accepted {bad!r}"
