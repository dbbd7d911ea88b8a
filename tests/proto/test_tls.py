"""STARTTLS and implicit TLS (replies.md "STARTTLS and AUTH", hmailserver-behaviour.md §1.4, §1.5,
§9, §14 item 37, issue 3): EHLO keywords before/after TLS, STARTTLS replies, the
starttls-required listener, pipelined bytes after STARTTLS never executed, state reset by the
handshake, TLS 1.2/1.3 only, the configured certificate (also after SIGHUP), the certificate
`gannet init` creates, Received ESMTPS with the TLS line."""
import os
import signal
import ssl
import time

import pytest

from gannet import EXT, HOSTNAME, make_message, token
from tlsutil import (AUTH_OK, HELO_FIRST, TLS_FIRST, TLS_NO_PARAMS, TLS_READY, UNIMPLEMENTED,
                     TlsConn, _tserver_health, assert_closed_no_smtp, auth_plain, cert_der,
                     cert_names, check_received, client_context, configure, connect,
                     ehlo_keywords, make_cert, poll, secure_session, send_message, tls_server,
                     tserver)

__all__ = ["tserver", "_tserver_health"]  # fixtures used by name

BASE = ["PIPELINING", "SIZE 20971520", "8BITMIME"]
AUTH_KW = "AUTH PLAIN LOGIN"
RCV = "rcv@example.test"


# --------------------------------------------------------------------------------------------
# EHLO keywords (in the order replies.md lists them)


def test_ehlo_starttls_listener_from_internet(tserver):
    """Internet range needs TLS for AUTH: before TLS only STARTTLS is added, no AUTH."""
    with connect(tserver, "sub") as c:
        assert ehlo_keywords(c) == BASE + ["STARTTLS"]


def test_ehlo_starttls_listener_from_my_computer(tserver):
    with connect(tserver, "sub", source="127.0.0.1") as c:
        assert ehlo_keywords(c) == BASE + ["STARTTLS", AUTH_KW]


@pytest.mark.parametrize("source", ["127.0.0.1", "127.0.0.2"])
def test_ehlo_starttls_required_listener_before_tls(tserver, source):
    """Never AUTH on a starttls-required listener before TLS, not even from My computer."""
    with connect(tserver, "req", source=source) as c:
        assert ehlo_keywords(c) == BASE + ["STARTTLS"]


@pytest.mark.parametrize("listener", ["sub", "req", "smtps"])
@pytest.mark.parametrize("source", ["127.0.0.1", "127.0.0.2"])
def test_ehlo_in_tls(tserver, listener, source):
    """In TLS: AUTH offered, STARTTLS no more."""
    with secure_session(tserver, listener, source) as c:
        assert ehlo_keywords(c) == BASE + [AUTH_KW]


def test_ehlo_plain_listener_has_no_starttls(tserver):
    with connect(tserver, "mx", source="127.0.0.1") as c:
        assert "STARTTLS" not in ehlo_keywords(c)


# --------------------------------------------------------------------------------------------
# STARTTLS replies


def test_starttls_with_argument(tserver):
    with connect(tserver, "sub") as c:
        c.ehlo()
        c.cmd("STARTTLS x", TLS_NO_PARAMS)
        c.cmd("STARTTLS now please", TLS_NO_PARAMS)
        c.starttls()
        c.ehlo()
        c.cmd("NOOP", "250 OK")


@pytest.mark.parametrize("source", ["127.0.0.1", "127.0.0.2"])
def test_starttls_on_plain_listener(tserver, source):
    with connect(tserver, "mx", source=source) as c:
        c.ehlo()
        c.cmd("STARTTLS", UNIMPLEMENTED)
        c.cmd("NOOP", "250 OK")


@pytest.mark.parametrize("listener", ["sub", "req", "smtps"])
def test_starttls_inside_tls(tserver, listener):
    with secure_session(tserver, listener) as c:
        c.cmd("STARTTLS", UNIMPLEMENTED)
        c.cmd("NOOP", "250 OK")  # still the same TLS session


def test_starttls_before_ehlo(tserver):
    with connect(tserver, "sub") as c:
        c.cmd("STARTTLS", HELO_FIRST)
        c.ehlo()
        c.starttls()


def test_starttls_after_helo_and_lowercase(tserver):
    with connect(tserver, "sub") as c:
        c.helo()
        c.cmd("starttls", TLS_READY)
        c.handshake()
        c.cmd("HELO client.test", "250 Hello.")


# --------------------------------------------------------------------------------------------
# starttls-required listener


@pytest.mark.parametrize("cmd", ["MAIL FROM:<sender@external.test>", "RCPT TO:<rcv@example.test>",
                                 "DATA", "AUTH LOGIN", "AUTH", "RSET", "HELP",
                                 "AUTH PLAIN AHVzZXJAZXhhbXBsZS50ZXN0AHNlY3JldA=="])
@pytest.mark.parametrize("source", ["127.0.0.1", "127.0.0.2"])
def test_required_listener_before_tls(tserver, cmd, source):
    with connect(tserver, "req", source=source) as c:
        c.ehlo()
        c.cmd(cmd, TLS_FIRST)
        c.cmd("NOOP", "250 OK")


def test_required_listener_allowed_commands(tserver):
    with connect(tserver, "req") as c:
        c.cmd("NOOP", "250 OK")
        c.cmd("HELO client.test", "250 Hello.")
        c.ehlo()
        c.cmd("NOOP", "250 OK")
        c.cmd("QUIT", "221 goodbye")
        c.assert_closed()


def test_required_listener_after_tls(tserver):
    tok = token("req")
    with secure_session(tserver, "req") as c:
        c.cmd("RSET", "250 OK")
        r = c.cmd("HELP")
        assert r.code in (211, 214), r.lines
        send_message(c, EXT, RCV, make_message(token=tok, to=RCV))
        info = c.tls_info()
        c.cmd("QUIT", "221 goodbye")
    check_received(tserver.wait_for(RCV, tok)[0], "ESMTPS", "127.0.0.2", info)


# --------------------------------------------------------------------------------------------
# STARTTLS resets the session; pipelined bytes after STARTTLS are discarded


INJECTIONS = [("sub", "RSET\r\n"), ("req", "RSET\r\n"), ("sub", "NOOP\r\nNOOP\r\n"),
              ("sub", "MAIL FROM:<a@external.test>\r\n"), ("sub", "EHLO evil.test\r\n"),
              ("req", "QUIT\r\n"), ("sub", "NOOP")]


@pytest.mark.parametrize("listener,tail", INJECTIONS,
                         ids=[f"{li}-{t.split()[0]}{t.count(chr(10))}" for li, t in INJECTIONS])
def test_starttls_injection(tserver, listener, tail):
    """STARTTLS + more commands in one packet: only 220, then the handshake; the extra bytes are
    never answered, neither before nor after the handshake (CVE-2011-0411 class)."""
    with connect(tserver, listener) as c:
        c.ehlo()
        c.sendraw("STARTTLS\r\n" + tail)
        c.expect(TLS_READY)
        c.handshake()  # asserts nothing else arrived in plain text
        c.assert_silent(0.3)
        # the session is alive and in its initial state: the injected commands left no trace
        c.cmd("MAIL FROM:<a@external.test>", HELO_FIRST)
        c.ehlo()
        c.cmd("MAIL FROM:<a@external.test>", "250 OK")


def test_starttls_forgets_helo_and_transaction(tserver):
    with connect(tserver, "sub") as c:
        c.ehlo("before.test")
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd(f"RCPT TO:<{RCV}>", "250 OK")
        c.starttls()
        c.cmd(f"MAIL FROM:<{EXT}>", HELO_FIRST)
        c.cmd(f"RCPT TO:<{RCV}>", HELO_FIRST)
        c.cmd("DATA", HELO_FIRST)
        c.cmd("AUTH LOGIN", HELO_FIRST)
        c.ehlo("after.test")
        c.cmd(f"RCPT TO:<{RCV}>", "503 Must have sender first.")
        c.cmd("DATA", "503 Must have sender and recipient first.")
        tok = token("reset")
        send_message(c, EXT, RCV, make_message(token=tok, to=RCV))
    # the HELO name of the message is the one given after TLS
    check_received(tserver.wait_for(RCV, tok)[0], "ESMTPS", "127.0.0.2", c.tls_info(),
                   helo="after.test")


def test_starttls_forgets_auth(tserver):
    """From My computer AUTH works before TLS; the handshake drops it."""
    with connect(tserver, "sub", source="127.0.0.1") as c:
        c.ehlo()
        auth_plain(c)
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<someone@external.test>", "250 OK")  # external -> external: authenticated
        c.starttls()
        c.ehlo()
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<someone@external.test>", "530 SMTP authentication is required.")
        auth_plain(c, expect=AUTH_OK)  # not "503 Already authenticated."


# --------------------------------------------------------------------------------------------
# Implicit TLS


def test_implicit_tls_banner_after_handshake(tserver):
    with connect(tserver, "smtps", banner=False) as c:
        assert c.tls
        c.expect(f"220 {HOSTNAME} ESMTP")
        c.ehlo()
        c.cmd("NOOP", "250 OK")


def test_implicit_tls_sends_nothing_in_plain_text(tserver):
    """The TLS listener waits for the ClientHello; a plain-text client gets no banner."""
    c = TlsConn(tserver.ports["smtps"], source="127.0.0.2")
    try:
        c.assert_silent(0.5)
        c.sendraw("EHLO client.test\r\n")
        assert_closed_no_smtp(c)
    finally:
        c.close()
    with connect(tserver, "smtps") as c2:  # the server is fine
        c2.cmd("NOOP", "250 OK")


def test_received_esmtps_implicit(tserver):
    tok = token("smtps")
    with secure_session(tserver, "smtps") as c:
        send_message(c, EXT, RCV, make_message(token=tok, to=RCV))
        info = c.tls_info()
    assert info.startswith("version=TLSv1.3 "), info
    check_received(tserver.wait_for(RCV, tok)[0], "ESMTPS", "127.0.0.2", info)


def test_received_esmtps_starttls(tserver):
    tok = token("sub")
    with secure_session(tserver, "sub", source="127.0.0.1") as c:
        send_message(c, EXT, RCV, make_message(token=tok, to=RCV))
        info = c.tls_info()
    check_received(tserver.wait_for(RCV, tok)[0], "ESMTPS", "127.0.0.1", info)


def test_received_plain_has_no_tls_line(tserver):
    tok = token("plain")
    with connect(tserver, "sub") as c:
        c.ehlo()
        send_message(c, EXT, RCV, make_message(token=tok, to=RCV))
    check_received(tserver.wait_for(RCV, tok)[0], "ESMTP", "127.0.0.2", None)


# --------------------------------------------------------------------------------------------
# Protocol versions and certificate


@pytest.mark.parametrize("version,name", [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
                                          (ssl.TLSVersion.TLSv1_3, "TLSv1.3")])
def test_tls_versions_accepted(tserver, version, name):
    tok = token("ver")
    ctx = client_context(version=version)
    with secure_session(tserver, "sub", context=ctx) as c:
        assert c.sock.version() == name
        send_message(c, EXT, RCV, make_message(token=tok, to=RCV))
        info = c.tls_info()
    assert info.startswith(f"version={name} cipher="), info
    check_received(tserver.wait_for(RCV, tok)[0], "ESMTPS", "127.0.0.2", info)


def test_tls12_forward_secret_aead_cipher(tserver):
    ctx = client_context(version=ssl.TLSVersion.TLSv1_2)
    with secure_session(tserver, "sub", context=ctx) as c:
        name = c.sock.cipher()[0]
    assert "ECDHE" in name or "DHE" in name, name
    assert "GCM" in name or "CHACHA20" in name, name


def _old_context(version):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            ctx = client_context(version=version, ciphers="DEFAULT:@SECLEVEL=0")
        except (ValueError, ssl.SSLError) as e:
            pytest.skip(f"this Python/OpenSSL cannot even offer {version.name}: {e}")
    return ctx


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
@pytest.mark.parametrize("listener", ["sub", "smtps"])
def test_old_tls_versions_refused(tserver, version, listener):
    ctx = _old_context(getattr(ssl.TLSVersion, version))
    c = TlsConn(tserver.ports[listener], source="127.0.0.2")
    try:
        if listener == "sub":
            c.banner()
            c.ehlo()
            c.cmd("STARTTLS", TLS_READY)
        with pytest.raises(ssl.SSLError) as ei:
            c.handshake(ctx)
        reason = (ei.value.reason or str(ei.value)).upper()
        if "NO_PROTOCOLS_AVAILABLE" in reason or "NO PROTOCOLS AVAILABLE" in reason:
            pytest.skip(f"the local OpenSSL refuses to offer {version} at all")
    finally:
        c.close()
    with connect(tserver, listener) as c2:  # the server is fine
        c2.cmd("NOOP", "250 OK")


def test_server_presents_configured_certificate(tserver):
    cert = tserver.data / "tls" / "cert.pem"
    for listener in ("sub", "req", "smtps"):
        with secure_session(tserver, listener) as c:
            assert c.sock.getpeercert(binary_form=True) == cert_der(cert)


def test_broken_handshake_does_not_hurt(tserver):
    c = connect(tserver, "sub")
    c.ehlo()
    c.cmd("STARTTLS", TLS_READY)
    c.sendraw(b"this is not a ClientHello\r\n" * 4)
    assert_closed_no_smtp(c)
    c.close()
    c = connect(tserver, "sub")
    c.ehlo()
    c.cmd("STARTTLS", TLS_READY)
    c.close()  # gone without a handshake
    with secure_session(tserver, "sub") as c3:
        c3.cmd("NOOP", "250 OK")


# --------------------------------------------------------------------------------------------
# Certificate management: gannet init, SIGHUP


def test_init_creates_self_signed_certificate(make_server):
    g = make_server(use_world=False, start=False)  # make_server ran `gannet init` already
    cert, key = g.data / "tls" / "cert.pem", g.data / "tls" / "key.pem"
    assert cert.exists() and key.exists(), "gannet init did not create data/tls/cert.pem, key.pem"
    assert os.stat(key).st_mode & 0o007 == 0, f"private key mode {oct(os.stat(key).st_mode)}"
    before = cert.read_bytes(), key.read_bytes()
    g.cli("init")
    assert (cert.read_bytes(), key.read_bytes()) == before, "a second init replaced the certificate"
    # init says so when it creates one
    cert.unlink()
    key.unlink()
    out = g.cli("init")
    assert "cert" in (out.out + out.stderr).lower(), (
        f"gannet init created a certificate without saying so: {out.out!r} {out.stderr!r}")
    assert cert.exists() and key.exists()
    assert HOSTNAME in cert_names(cert), f"certificate not for {HOSTNAME}: {cert_names(cert)}"
    # a TLS server starts with it
    configure(g)
    g.start()
    with secure_session(g, "smtps") as c:
        assert c.sock.getpeercert(binary_form=True) == cert_der(cert)
        c.cmd("NOOP", "250 OK")


def test_sighup_reloads_certificate_without_dropping_sessions(make_server, tmp_path):
    g = tls_server(make_server)
    cert, key = g.data / "tls" / "cert.pem", g.data / "tls" / "key.pem"
    old = cert_der(cert)
    live = secure_session(g, "sub")
    make_cert(tmp_path / "new.pem", tmp_path / "new.key", cn=HOSTNAME)
    os.replace(tmp_path / "new.key", key)
    os.replace(tmp_path / "new.pem", cert)
    new = cert_der(cert)
    assert new != old
    g.proc.send_signal(signal.SIGHUP)

    def sees_new():
        with secure_session(g, "smtps") as c:
            assert c.sock.getpeercert(binary_form=True) == new
    poll(sees_new, 5.0, step=0.2)
    # the session begun before the reload goes on
    tok = token("hup")
    send_message(live, EXT, RCV, make_message(token=tok, to=RCV))
    live.cmd("QUIT", "221 goodbye")
    live.close()
    g.wait_for(RCV, tok)
    assert g.running()


def test_sighup_with_broken_certificate_keeps_the_old_one(make_server):
    g = tls_server(make_server)
    cert = g.data / "tls" / "cert.pem"
    old = cert_der(cert)
    cert.write_text("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
    g.proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    assert g.running(), "SIGHUP with a broken certificate stopped the server"
    with secure_session(g, "smtps") as c:
        assert c.sock.getpeercert(binary_form=True) == old
        c.cmd("NOOP", "250 OK")
