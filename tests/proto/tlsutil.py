"""Helpers for the secure-submission protocol tests (issue 3): servers with STARTTLS, implicit-TLS
and submission listeners, a raw SMTP client that can switch to TLS, SMTP AUTH dialogues, a fake
remote MTA, source addresses that have not failed a login yet, and the Received-header check.

Builds on gannet.py without changing it. Every TLS server gets these listeners:
  mx          security = none                 (g.port; the harness waits on it at start)
  sub         security = starttls
  req         security = starttls-required
  smtps       security = tls                  (implicit TLS)
  submission  security = starttls, require_auth = yes
and one extra IP range "LocalPlain" (127.0.2.0-127.0.2.255, like "My computer": AUTH allowed
without TLS) so tests can fail logins from fresh addresses without tripping auto-ban. Fresh
"Internet" addresses (TLS required for AUTH) come from 127.0.1.0/24 and up.
"""
import base64
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from gannet import HOSTNAME, ConnectionClosed, SmtpConn, clone_world, free_port, split_stored

USER = "user@example.test"
PASSWORD = "secret"

AUTH_OK = "235 authenticated."
AUTH_FAILED = "535 Authentication failed. Restarting authentication process."
AUTH_BANNED = "535 Authentication failed. Too many invalid logon attempts."
AUTH_NO_TYPE = "504 Authentication type not specified."
AUTH_UNSUPPORTED = "504 Authentication mechanism not supported."
AUTH_ALREADY = "503 Already authenticated."
AUTH_NEED_TLS = "530 A SSL/TLS-connection is required for authentication."
AUTH_CANCELLED = "501 Authentication cancelled."
AUTH_REQUIRED = "530 SMTP authentication is required."
PROMPT_USER = "334 VXNlcm5hbWU6"
PROMPT_PASS = "334 UGFzc3dvcmQ6"
TLS_READY = "220 Ready to start TLS"
TLS_NO_PARAMS = "501 Syntax error (no parameters allowed)"
TLS_FIRST = "530 Must issue STARTTLS first."
UNIMPLEMENTED = "502 Unimplemented command"
HELO_FIRST = "502 Use HELO/EHLO first"
REAUTH = "550 Login credentials no longer valid. Please re-authenticate."
RELAY_DENIED = "550 Delivery is not allowed to this address"

SECURITY = {"mx": "none", "sub": "starttls", "req": "starttls-required", "smtps": "tls",
            "submission": "starttls"}

AUTOBAN_CONF = "[autoban]\nenabled = yes\nmax_attempts = 3\nwindow = 30s\nban = 5s\n"


def b64(s):
    return base64.b64encode(s.encode("utf-8") if isinstance(s, str) else s).decode("ascii")


# --------------------------------------------------------------------------------------------
# Certificates


def make_cert(cert, key, cn=HOSTNAME):
    """A self-signed P-256 certificate for cn (CN and subjectAltName)."""
    Path(cert).parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", f"/CN={cn}",
                    "-addext", f"subjectAltName=DNS:{cn}", "-keyout", str(key), "-out",
                    str(cert)], check=True, capture_output=True, timeout=30)


def ensure_cert(data_dir):
    """The certificate the harness config names (<data>/tls/cert.pem, key.pem); created with
    openssl when `gannet init` did not make one."""
    cert, key = Path(data_dir) / "tls" / "cert.pem", Path(data_dir) / "tls" / "key.pem"
    if not (cert.exists() and key.exists()):
        make_cert(cert, key)
    return cert, key


def cert_der(cert_path):
    return ssl.PEM_cert_to_DER_cert(Path(cert_path).read_text())


def cert_names(cert_path):
    """The subject and subjectAltName text of a PEM certificate (openssl x509)."""
    p = subprocess.run(["openssl", "x509", "-in", str(cert_path), "-noout", "-subject", "-ext",
                        "subjectAltName"], capture_output=True, timeout=30)
    return p.stdout.decode(errors="replace")


def assert_closed_no_smtp(c, timeout=10.0):
    """The server closes the connection; whatever it sent first is no SMTP text (a TLS alert
    record is fine)."""
    data = b""
    deadline = time.monotonic() + timeout
    c.sock.settimeout(1.0)
    try:
        while time.monotonic() < deadline:
            try:
                d = c.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                break
            if not d:
                break
            data += d
        else:
            raise AssertionError(f"connection still open after {timeout}s; got {data!r}")
    finally:
        c.sock.settimeout(c.timeout)
    assert data == b"" or data[:1] == b"\x15", f"unexpected data before close: {data[:200]!r}"


def client_context(version=None, ciphers=None, cafile=None):
    """A client context. Without cafile it does not verify (the certificate is self-signed);
    version pins both ends of the protocol range (ssl.TLSVersion.*)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile=str(cafile))
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if ciphers:
        ctx.set_ciphers(ciphers)
    if version is not None:
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


# --------------------------------------------------------------------------------------------
# A raw SMTP client that can switch to TLS


class TlsConn(SmtpConn):
    """SmtpConn plus STARTTLS / implicit TLS. After the handshake every read and write goes through
    the TLS layer; a TLS-level close or error counts as the server closing the connection."""

    def __init__(self, port, source="127.0.0.2", host="127.0.0.1", timeout=10.0, implicit=False,
                 context=None):
        super().__init__(port, source=source, host=host, timeout=timeout)
        self.tls = False
        if implicit:
            self.handshake(context)

    def handshake(self, context=None):
        assert self.buf == b"", (f"the server sent bytes before the TLS handshake: {self.buf!r}; "
                                 f"transcript: {self.transcript()}")
        self.sock.settimeout(self.timeout)
        self.sock = (context or client_context()).wrap_socket(self.sock,
                                                              server_hostname=HOSTNAME)
        self.tls = True
        name, _, bits = self.sock.cipher()
        self._tls_info = f"version={self.sock.version()} cipher={name} bits={bits}"
        self.log.append(("C", f"<TLS {self._tls_info}>".encode()))
        return self

    def starttls(self, context=None):
        self.cmd("STARTTLS", TLS_READY)
        return self.handshake(context)

    def _fill(self, deadline):
        try:
            super()._fill(deadline)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ssl.SSLError, BrokenPipeError) as e:
            self.eof = True
            raise ConnectionClosed(f"connection closed by server ({e}); unread {self.buf!r}; "
                                   f"transcript: {self.transcript()}") from None

    def tls_info(self):
        """'version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256' as the client saw it at the
        handshake (still known after close)."""
        return self._tls_info


def connect(g, listener="sub", source="127.0.0.2", banner=True, timeout=10.0, context=None):
    """A connection to one of the server's listeners (implicit TLS done for `smtps`)."""
    c = TlsConn(g.ports[listener], source=source, timeout=timeout,
                implicit=g.security[listener] == "tls", context=context)
    if banner:
        c.banner()
    return c


def secure_session(g, listener="sub", source="127.0.0.2", ehlo="client.test", context=None):
    """Connected, in TLS (STARTTLS unless implicit) and greeted with EHLO after the handshake."""
    c = connect(g, listener, source, context=context)
    if not c.tls:
        c.ehlo(ehlo)
        c.starttls(context)
    c.ehlo(ehlo)
    return c


def ehlo_keywords(c, name="client.test"):
    """EHLO; returns the keyword lines between the host-name line and HELP (asserting those)."""
    r = c.ehlo(name)
    assert r.lines[0] == f"250-{HOSTNAME}", r.lines
    assert r.lines[-1] == "250 HELP", r.lines
    return [line[4:] for line in r.lines[1:-1]]


# --------------------------------------------------------------------------------------------
# SMTP AUTH dialogues (each returns the final reply, or asserts it when `expect` is given)


def auth_plain(c, user=USER, password=PASSWORD, authzid="", expect=AUTH_OK, initial=True):
    cred = b64(f"{authzid}\0{user}\0{password}")
    if initial:
        return c.cmd(f"AUTH PLAIN {cred}", expect)
    c.cmd("AUTH PLAIN", "334 ")
    return c.cmd(cred, expect)


def auth_login(c, user=USER, password=PASSWORD, expect=AUTH_OK, initial=False):
    if initial:
        c.cmd(f"AUTH LOGIN {b64(user)}", PROMPT_PASS)
    else:
        c.cmd("AUTH LOGIN", PROMPT_USER)
        c.cmd(b64(user), PROMPT_PASS)
    return c.cmd(b64(password), expect)


# --------------------------------------------------------------------------------------------
# Fresh client addresses (a login failure counts toward auto-ban per address)

_ip_lock = threading.Lock()
_ip_next = {"local": 0, "internet": 0}


def fresh_ip(kind="local"):
    """A loopback address not used before in this test run. "local": in LocalPlain (AUTH without
    TLS allowed); "internet": in the default Internet range (TLS required for AUTH)."""
    with _ip_lock:
        n = _ip_next[kind]
        _ip_next[kind] += 1
    if kind == "local":
        assert n < 254, "LocalPlain addresses used up"
        return f"127.0.2.{n + 1}"
    third = (1, 3, 4, 5, 6)[n // 254]
    return f"127.0.{third}.{n % 254 + 1}"


# --------------------------------------------------------------------------------------------
# Servers


def configure(g):
    """Give a (not yet started) installation the TLS listeners, a certificate and LocalPlain."""
    g.ports = {"mx": g.port}
    for name in ("sub", "req", "smtps", "submission"):
        g.ports[name] = free_port()
    g.security = dict(SECURITY)
    listeners = []
    for name, port in g.ports.items():
        kv = {"protocol": "smtp", "address": f"127.0.0.1:{port}", "security": SECURITY[name]}
        if name == "submission":
            kv["require_auth"] = "yes"
        listeners.append((name, kv))
    g.listeners = listeners
    g.write_config()
    ensure_cert(g.data)
    g.cli("iprange", "add", "LocalPlain", "--from", "127.0.2.0", "--to", "127.0.2.255",
          "--priority", "30", "--require-auth", "ee")
    return g


def tls_server(make_server, extra_conf="", setup=(), smtp=None, start=True):
    """A fresh TLS server for one test (uses conftest's make_server for cleanup)."""
    g = make_server(start=False, extra_conf=extra_conf, smtp=smtp)
    configure(g)
    for args in setup:
        g.cli(*args)
    if start:
        g.start()
    return g


@pytest.fixture(scope="module")
def tserver(request, tmp_root, dns, world):
    """One running TLS server shared by a module (auto-ban left at its defaults: tests that fail
    logins use fresh_ip() addresses, at most two failures each)."""
    name = "".join(ch if ch.isalnum() else "_" for ch in request.module.__name__)
    g = clone_world(world, tmp_root / f"tls-{name}-{uuid.uuid4().hex[:8]}", dns)
    configure(g)
    g.start()
    yield g
    problems = g.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(autouse=True)
def _tserver_health(request):
    """After each test on the shared TLS server: still alive, no sanitizer report."""
    yield
    if "tserver" in request.fixturenames:
        problems = request.getfixturevalue("tserver").check_health()
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


def run_parallel(calls):
    """Run {name: callable} at once, one thread each (a failed login takes about a second, so
    independent ones are overlapped). Returns {name: None or the exception it raised}."""
    out = {}

    def run(name, fn):
        try:
            fn()
            out[name] = None
        except BaseException as e:  # noqa: BLE001 - handed to the test that owns the case
            out[name] = e
    threads = [threading.Thread(target=run, args=(n, f), daemon=True) for n, f in calls.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for n in calls:
        out.setdefault(n, AssertionError(f"{n}: did not finish within 120 s"))
    return out


def all_ok(results):
    """Raise the first failure of a run_parallel() result, naming every case that failed."""
    bad = {n: e for n, e in results.items() if e is not None}
    if bad:
        first = next(iter(bad.values()))
        raise AssertionError(f"failed: {', '.join(bad)}; first: {first}") from first


def queue_list(g):
    return g.cli("queue", "list").out


def poll(fn, seconds, step=0.1):
    """Call fn until it stops raising AssertionError (re-raising after `seconds`)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return fn()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(step)


# --------------------------------------------------------------------------------------------
# Received header


DATE_RE = (r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([1-9]|[12][0-9]|3[01]) "
           r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
           r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d [+-]\d{4}")


def check_received(stored, protocol, ip, tls_info=None, helo="client.test"):
    """The stored copy's Received header names `protocol` (ESMTP/ESMTPS/ESMTPA/ESMTPSA) and, on
    TLS, carries exactly `(tls_info)` on its own continuation line (hmailserver-behaviour.md §9).
    Returns the header text."""
    _, _, received, _ = split_stored(stored)
    text = received.decode("latin-1")
    fold = r"(?:\r\n[ \t]+| )"
    r = (rf"Received: from {re.escape(helo)} \(\S+ \[{re.escape(ip)}\]\)"
         rf"\r\n\tby {re.escape(HOSTNAME)} with {protocol}(?=[\s;])"
         rf"(?:{fold}id [A-Za-z0-9._-]+)?")
    if tls_info:
        r += rf"\r\n\t\({re.escape(tls_info)}\)"
    r += rf"(?:{fold}for <[^>]+>)?(?:\r\n[ \t]+)?; {DATE_RE}\r\n$"
    assert re.match(r, text), f"Received header not as expected ({protocol}, {tls_info}):\n{text}"
    if not tls_info:
        assert "version=" not in text, text
    return text


def send_message(c, sender, rcpts, msg):
    """A transaction on an open (greeted) connection that must be accepted."""
    if isinstance(rcpts, str):
        rcpts = [rcpts]
    c.cmd(f"MAIL FROM:<{sender}>", "250 OK")
    for r in rcpts:
        c.cmd(f"RCPT TO:<{r}>", "250 OK")
    return c.data(msg, expect="queued")


def swaks(*args, timeout=60):
    """Run swaks; fails (not skips) when swaks or its TLS support is missing."""
    assert shutil.which("swaks"), "swaks is not installed (tools/install-deps)"
    p = subprocess.run(["swaks", *map(str, args)], capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


def swaks_has_tls():
    p = subprocess.run(["swaks", "--support"], capture_output=True, timeout=30)
    return b"=== TLS supported" in p.stdout + p.stderr

