"""Submission rules and real clients (issue 3, replies.md "MAIL FROM"/"RCPT TO",
hmailserver-behaviour.md §2.3, §3.3): a `require_auth = yes` listener (RFC 6409), AUTH satisfies
the range's auth flags but not its delivery flags, re-validation of the login on the second MAIL
(password changed, account or domain disabled with the CLI between two messages), and Python's
smtplib (starttls()+login(), SMTP_SSL) and swaks (--tls / --tlsc with --auth)."""
import re
import smtplib

import pytest

from gannet import EXT, make_message, split_stored, token
from tlsutil import (AUTH_FAILED, AUTH_OK, AUTH_REQUIRED, PASSWORD, REAUTH, RELAY_DENIED, USER,
                     _tserver_health, auth_login, auth_plain, check_received, client_context,
                     connect, fresh_ip, queue_list, secure_session, send_message, swaks,
                     swaks_has_tls, tls_server, tserver)

__all__ = ["tserver", "_tserver_health"]  # fixtures used by name

RCV = "rcv@example.test"
EXT_RCPT = "someone@external.test"


# --------------------------------------------------------------------------------------------
# require_auth = yes


def test_submission_listener_ehlo(tserver):
    with connect(tserver, "submission", "127.0.0.2") as c:
        r = c.ehlo()
        assert "250-STARTTLS" in r.lines and not any("AUTH" in x for x in r.lines), r.lines
        c.starttls()
        r = c.ehlo()
        assert "250-AUTH PLAIN LOGIN" in r.lines and "250-STARTTLS" not in r.lines, r.lines


@pytest.mark.parametrize("sender", [EXT, USER, ""])
@pytest.mark.parametrize("source", ["127.0.0.1", "127.0.0.2"])
def test_submission_mail_needs_auth(tserver, source, sender):
    """Every MAIL needs AUTH there: from My computer, over TLS, for any sender (null too)."""
    if source == "127.0.0.2":
        c = secure_session(tserver, "submission", source)
    else:
        c = connect(tserver, "submission", source)
        c.ehlo()
    with c:
        c.cmd(f"MAIL FROM:<{sender}>", AUTH_REQUIRED)
        c.cmd(f"RCPT TO:<{RCV}>", "503 Must have sender first.")
        c.cmd(f"MAIL FROM:<{sender}> AUTH=<>", AUTH_REQUIRED)
        c.cmd("NOOP", "250 OK")


@pytest.mark.parametrize("source", ["127.0.0.1", "127.0.0.2"])
def test_submission_after_auth(tserver, source):
    tok = token("submit")
    if source == "127.0.0.2":
        c = secure_session(tserver, "submission", source)
    else:
        c = connect(tserver, "submission", source)
        c.ehlo()
    with c:
        auth_login(c)
        send_message(c, USER, [RCV, f"{tok}@external.test"],
                     make_message(token=tok, sender=USER, to=RCV))
        c.cmd("QUIT", "221 goodbye")
    stored = tserver.wait_for(RCV, tok)[0]
    if source == "127.0.0.2":
        check_received(stored, "ESMTPSA", source, c.tls_info())
    else:
        check_received(stored, "ESMTPA", source, None)
    assert f"{tok}@external.test" in queue_list(tserver)


def test_other_listeners_do_not_require_auth(tserver):
    with connect(tserver, "sub", "127.0.0.1") as c:
        c.ehlo()
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd(f"RCPT TO:<{RCV}>", "250 OK")


# --------------------------------------------------------------------------------------------
# IP-range flags with AUTH (127.0.0.4 NoEL, 127.0.0.8 NoEE, 127.0.0.5 AuthEL: gannet.WORLD;
# these ranges do not require TLS for AUTH)


def test_auth_does_not_lift_delivery_flags(tserver):
    with connect(tserver, "mx", "127.0.0.8") as c:  # external -> external not allowed
        c.ehlo()
        auth_plain(c)
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd(f"RCPT TO:<{EXT_RCPT}>", RELAY_DENIED)
        c.cmd(f"RCPT TO:<{RCV}>", "250 OK")
    with connect(tserver, "mx", "127.0.0.4") as c:  # external -> local not allowed
        c.ehlo()
        auth_plain(c)
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd(f"RCPT TO:<{RCV}>", RELAY_DENIED)
        c.cmd("RSET", "250 OK")
        c.cmd(f"MAIL FROM:<{USER}>", "250 OK")  # local -> local: allowed, auth satisfied
        c.cmd(f"RCPT TO:<{RCV}>", "250 OK")


def test_auth_satisfies_every_direction(tserver):
    with connect(tserver, "mx", "127.0.0.5") as c:  # external -> local needs auth here
        c.ehlo()
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd(f"RCPT TO:<{RCV}>", AUTH_REQUIRED)
        auth_login(c)
        c.cmd(f"RCPT TO:<{RCV}>", "250 OK")
    with secure_session(tserver, "sub", "127.0.0.2") as c:  # Internet: ll, le, ee need auth
        auth_plain(c)
        for sender, rcpt in ((USER, RCV), (USER, EXT_RCPT), (EXT, EXT_RCPT), (EXT, RCV)):
            c.cmd(f"MAIL FROM:<{sender}>", "250 OK")
            c.cmd(f"RCPT TO:<{rcpt}>", "250 OK")
            c.cmd("RSET", "250 OK")


# --------------------------------------------------------------------------------------------
# Re-validation on the second MAIL


def _two_messages(g, change, then_auth, listener="sub", source="127.0.0.2",
                  user="user2@example.test"):
    """AUTH as user, one message, `change` via the CLI, then the second MAIL must get 550 and the
    session is no longer authenticated; then_auth(c) tries to log in again."""
    tok1, tok2 = token("first"), token("second")
    if listener == "mx":
        c = connect(g, listener, source)
        c.ehlo()
    else:
        c = secure_session(g, listener, source)
    with c:
        auth_login(c, user=user)
        send_message(c, user, RCV, make_message(token=tok1, sender=user, to=RCV))
        c.cmd(f"MAIL FROM:<{user}>", "250 OK")  # unchanged: the second MAIL is fine
        c.cmd("RSET", "250 OK")
        change()
        c.cmd(f"MAIL FROM:<{user}>", REAUTH)
        # authentication dropped: relaying needs AUTH again
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd(f"RCPT TO:<{EXT_RCPT}>", AUTH_REQUIRED)
        c.cmd("RSET", "250 OK")
        then_auth(c, tok2)
    g.wait_for(RCV, tok1)
    return tok2


@pytest.mark.parametrize("listener,source", [("sub", "127.0.0.2"), ("mx", "127.0.0.1")])
def test_reauth_after_password_change(make_server, listener, source):
    g = tls_server(make_server)
    user = "user2@example.test"

    def again(c, tok):
        auth_login(c, user=user, password=PASSWORD, expect=AUTH_FAILED)
        auth_login(c, user=user, password="n3w-Passw0rd", expect=AUTH_OK)
        send_message(c, user, RCV, make_message(token=tok, sender=user, to=RCV))
    tok = _two_messages(g, lambda: g.cli("account", "set", user, "--password", "n3w-Passw0rd"),
                        again, listener, source, user)
    g.wait_for(RCV, tok)


def test_reauth_after_account_disabled(make_server):
    g = tls_server(make_server)
    user = "user3@example.test"

    def again(c, tok):
        auth_login(c, user=user, expect=AUTH_FAILED)
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd(f"RCPT TO:<{EXT_RCPT}>", AUTH_REQUIRED)
    _two_messages(g, lambda: g.cli("account", "set", user, "--disabled"), again, user=user)


def test_reauth_after_domain_disabled(make_server):
    g = tls_server(make_server)
    user = "user4@example.test"

    def again(c, tok):
        auth_plain(c, user=user, expect=AUTH_FAILED)
        g.cli("domain", "set", "example.test", "--enabled")
        auth_plain(c, user=user, expect=AUTH_OK)
    _two_messages(g, lambda: g.cli("domain", "set", "example.test", "--disabled"), again,
                  user=user)


def test_reauth_via_domain_alias_login(make_server):
    """Logged in through a domain alias: a password change is noticed as well."""
    g = tls_server(make_server)
    with secure_session(g, "smtps", "127.0.0.2") as c:
        auth_plain(c, user="user5@alias-domain.test")
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd(f"RCPT TO:<{EXT_RCPT}>", "250 OK")
        c.cmd("RSET", "250 OK")
        g.cli("account", "set", "user5@example.test", "--password", "changed")
        c.cmd(f"MAIL FROM:<{EXT}>", REAUTH)


# --------------------------------------------------------------------------------------------
# Real clients


def _smtplib_check(g, s, tok, source):
    code, _ = s.ehlo("smtplib.client.test")
    assert code == 250
    assert "starttls" not in s.esmtp_features
    assert s.esmtp_features.get("auth", "").split() == ["PLAIN", "LOGIN"], s.esmtp_features
    s.login(USER, PASSWORD)
    msg = make_message(token=tok, sender=USER, to=RCV)
    assert s.sendmail(USER, [RCV, f"{tok}@external.test"], msg) == {}
    info = "version={} cipher={} bits={}".format(s.sock.version(), s.sock.cipher()[0],
                                                 s.sock.cipher()[2])
    s.quit()
    stored = g.wait_for(RCV, tok)[0]
    check_received(stored, "ESMTPSA", source, info, helo="smtplib.client.test")
    assert split_stored(stored)[3] == msg
    assert f"{tok}@external.test" in queue_list(g)


@pytest.mark.parametrize("listener", ["sub", "req", "submission"])
def test_smtplib_starttls_login(tserver, listener):
    tok = token("smtplib")
    s = smtplib.SMTP("127.0.0.1", tserver.ports[listener], local_hostname="smtplib.client.test",
                     source_address=("127.0.0.2", 0), timeout=15)
    try:
        s.ehlo()
        assert s.has_extn("starttls") and not s.has_extn("auth")
        code, _ = s.starttls(context=client_context())
        assert code == 220
        _smtplib_check(tserver, s, tok, "127.0.0.2")
    finally:
        s.close()


def test_smtplib_smtp_ssl_login(tserver):
    tok = token("smtpssl")
    s = smtplib.SMTP_SSL("127.0.0.1", tserver.ports["smtps"], local_hostname="smtplib.client.test",
                         source_address=("127.0.0.2", 0), timeout=15, context=client_context())
    try:
        _smtplib_check(tserver, s, tok, "127.0.0.2")
    finally:
        s.close()


def test_smtplib_login_mechanism_and_errors(tserver):
    s = smtplib.SMTP_SSL("127.0.0.1", tserver.ports["smtps"], source_address=("127.0.0.2", 0),
                         timeout=15, context=client_context())
    try:
        s.ehlo("client.test")
        # LOGIN explicitly (smtplib sends the user name as initial response)
        s.user, s.password = USER, PASSWORD
        code, text = s.auth("LOGIN", s.auth_login)
        assert (code, text) == (235, b"authenticated.")
        # smtplib's login() hands a 503 back as its result
        assert s.login(USER, PASSWORD) == (503, b"Already authenticated.")
    finally:
        s.close()


def test_smtplib_wrong_password(tserver):
    s = smtplib.SMTP_SSL("127.0.0.1", tserver.ports["smtps"],
                         source_address=(fresh_ip("internet"), 0), timeout=15,
                         context=client_context())
    try:
        s.ehlo("client.test")
        s.user, s.password = USER, "wrong"
        with pytest.raises(smtplib.SMTPAuthenticationError) as ei:
            s.auth("PLAIN", s.auth_plain)  # login() would go on with LOGIN: a second failure
        assert ei.value.smtp_code == 535
        assert ei.value.smtp_error == b"Authentication failed. Restarting authentication process."
    finally:
        s.close()


def _swaks_msg(tmp_path, tok):
    msg = make_message(token=tok, sender=USER, to=RCV, body=b"swaks over TLS\r\n")
    f = tmp_path / f"{tok}.eml"
    f.write_bytes(msg[:-2])  # swaks appends CRLF before the final dot
    return msg, f


def _swaks_check(g, rc, out, tok, msg):
    assert rc == 0, f"swaks failed ({rc}):\n{out}"
    assert re.search(r"<~\s+235 authenticated\.", out), out
    assert re.search(r"<~\s+250 Queued \(\d+\.\d{3} seconds\)", out), out
    stored = g.wait_for(RCV, tok)[0]
    check_received(stored, "ESMTPSA", "127.0.0.2", _tls_line(stored), helo="swaks.client.test")
    assert split_stored(stored)[3] == msg


def _tls_line(stored):
    m = re.search(rb"\r\n\t\((version=TLSv1\.[23] cipher=[A-Z0-9_-]+ bits=\d+)\)\r\n", stored)
    assert m, f"no TLS line in the Received header: {stored[:400]!r}"
    return m.group(1).decode()


@pytest.mark.parametrize("mech", ["LOGIN", "PLAIN"])
def test_swaks_starttls_auth(tserver, tmp_path, mech):
    assert swaks_has_tls(), "swaks lacks TLS support: install libnet-ssleay-perl"
    tok = token("swakstls")
    msg, f = _swaks_msg(tmp_path, tok)
    rc, out = swaks("--server", "127.0.0.1", "--port", tserver.ports["sub"],
                    "--local-interface", "127.0.0.2", "--helo", "swaks.client.test",
                    "--tls", "--auth", mech, "--auth-user", USER, "--auth-password", PASSWORD,
                    "--from", USER, "--to", RCV, "--data", f"@{f}", "--timeout", "20")
    _swaks_check(tserver, rc, out, tok, msg)


def test_swaks_implicit_tls_auth(tserver, tmp_path):
    assert swaks_has_tls(), "swaks lacks TLS support: install libnet-ssleay-perl"
    tok = token("swakstlsc")
    msg, f = _swaks_msg(tmp_path, tok)
    rc, out = swaks("--server", "127.0.0.1", "--port", tserver.ports["smtps"],
                    "--local-interface", "127.0.0.2", "--helo", "swaks.client.test",
                    "--tlsc", "--auth", "LOGIN", "--auth-user", USER, "--auth-password",
                    PASSWORD, "--from", USER, "--to", RCV, "--data", f"@{f}", "--timeout", "20")
    _swaks_check(tserver, rc, out, tok, msg)


def test_swaks_submission_without_auth_refused(tserver, tmp_path):
    assert swaks_has_tls(), "swaks lacks TLS support: install libnet-ssleay-perl"
    rc, out = swaks("--server", "127.0.0.1", "--port", tserver.ports["submission"],
                    "--local-interface", "127.0.0.2", "--tls", "--from", USER, "--to", RCV,
                    "--timeout", "20")
    assert rc != 0
    assert re.search(r"<~?\*+\s+530 SMTP authentication is required\.", out), out
