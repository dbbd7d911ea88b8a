"""A scriptable fake remote MTA for the outbound-delivery protocol tests (issue 4), plus the
helpers those tests share (remote domains in the fake DNS, the [delivery] config, bounce parsing,
queue polling).

FakeMTA is a plain threaded socket server (no aiosmtpd) so that it sees every byte the client
sends: the whole session is kept in Session.raw and each DATA section in Txn.data_raw exactly as
it crossed the wire (dot-stuffed, with its terminator). It listens on its own loopback address
(127.A.B.C outside 127.0.0-6.x, which other tests use as client sources) on port 25 by default,
so MX records can point at it. What it says is set by attributes that may be changed while it
runs:

    banner        greeting line(s) ("220 ..." by default); None = say nothing, ever
    ehlo          False: EHLO answered "502 ..." (the client must fall back to HELO)
    starttls      offer STARTTLS (certificate: a self-signed one made with openssl)
    tls_broken    after "220 Ready to start TLS" send garbage and close (handshake fails)
    auth          {user: password}: offer AUTH (auth_mechs) and check credentials
    auth_require_tls  AUTH offered/allowed only after STARTTLS
    require_auth  MAIL without a successful AUTH -> 530
    require_tls   MAIL/AUTH before STARTTLS -> 530
    size          advertise "SIZE <n>" (None = no SIZE)
    eightbitmime, pipelining   advertise these keywords
    mail_reply    reply to MAIL (str or callable(session, sender, params) -> str)
    rcpt_reply    reply to RCPT (str, dict addr -> str with default "250 OK", or
                  callable(session, addr) -> str)
    data_reply    reply to DATA ("354 ..."); dot_reply  reply after the final dot (str or
                  callable(session, txn) -> str)

Every reply text given without a code line structure may contain "\n" for a multi-line reply.
Records: mta.sessions (list of Session), mta.delivered() (transactions whose final reply was 2xx).
"""
import os
import random
import re
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path

# --------------------------------------------------------------------------------------------
# Addresses and certificates

_used_ips = set()
_ip_lock = threading.Lock()


def alloc_ip():
    """A loopback address this process has not handed out before (random, so that two test runs
    at the same time rarely pick the same one; FakeMTA retries on a clash)."""
    rnd = random.Random(os.getpid() ^ time.time_ns())
    with _ip_lock:
        while True:
            ip = f"127.{rnd.randint(10, 250)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"
            if ip not in _used_ips:
                _used_ips.add(ip)
                return ip


_cert = {}


def mta_cert():
    """(cert, key) paths of a self-signed certificate for the fake MTAs (made once)."""
    if "paths" not in _cert:
        from tlsutil import make_cert
        d = Path(tempfile.mkdtemp(prefix="fakemta-cert-"))
        cert, key = d / "cert.pem", d / "key.pem"
        make_cert(cert, key, cn="fake-mta.remote.test")
        _cert["paths"] = (cert, key)
    return _cert["paths"]


_can25 = {}


def can_bind_25():
    """Whether this process may listen on port 25 of a loopback address (root, or a kernel that
    lets unprivileged users bind low ports)."""
    if "ok" not in _can25:
        s = socket.socket()
        try:
            s.bind((alloc_ip(), 25))
            _can25["ok"] = True
        except OSError:
            _can25["ok"] = False
        finally:
            s.close()
    return _can25["ok"]


# --------------------------------------------------------------------------------------------
# Records


@dataclass
class Txn:
    """One MAIL transaction."""
    mail_from: str
    mail_params: list
    rcpts_tried: list = field(default_factory=list)  # every RCPT address, in order
    rcpts: list = field(default_factory=list)  # those answered 2xx
    data_raw: bytes = None  # DATA section as on the wire, terminator included
    content: bytes = None  # the same without the terminator, dots unstuffed
    dot_reply: str = None  # our reply after the final dot
    tls: bool = False
    auth_user: str = None

    @property
    def delivered(self):
        return self.dot_reply is not None and self.dot_reply.startswith("2")


@dataclass
class Session:
    peer: tuple
    raw: bytearray = field(default_factory=bytearray)  # every byte received (TLS: plaintext)
    commands: list = field(default_factory=list)  # command lines (without CRLF), in order
    helo: list = field(default_factory=list)  # ("EHLO"|"HELO", argument)
    tls: bool = False
    auth_user: str = None
    auth_password: str = None
    auth_mech: str = None
    auth_tls: bool = False  # AUTH happened inside TLS
    txns: list = field(default_factory=list)
    closed: bool = False


def line_end_violations(raw):
    """Bare CR or bare LF in raw bytes (everything that is not part of a CRLF pair)."""
    rest = bytes(raw).replace(b"\r\n", b"")
    return rest.count(b"\r") + rest.count(b"\n")


def unstuff(data_raw):
    """The message of a DATA section (RFC 5321 4.5.2): terminator removed, leading dots halved."""
    assert data_raw.endswith(b"\r\n.\r\n") or data_raw == b".\r\n", data_raw[-20:]
    body = data_raw[:-3]
    lines = body.split(b"\r\n")
    return b"\r\n".join(ln[1:] if ln.startswith(b".") else ln for ln in lines)


# --------------------------------------------------------------------------------------------
# The fake MTA


class _Closed(Exception):
    pass


class FakeMTA:
    def __init__(self, ip=None, port=25, start=True, name="fake-mta.remote.test", **settings):
        self.ip = ip
        self.port = port
        self.name = name
        self.banner = f"220 {name} ESMTP fake"
        self.ehlo = True
        self.starttls = False
        self.tls_broken = False
        self.auth = None
        self.auth_mechs = ("PLAIN", "LOGIN")
        self.auth_require_tls = False
        self.require_auth = False
        self.require_tls = False
        self.size = None
        self.eightbitmime = False
        self.pipelining = False
        self.mail_reply = "250 2.1.0 Sender OK"
        self.rcpt_reply = "250 2.1.5 Recipient OK"
        self.data_reply = "354 Start mail input; end with <CRLF>.<CRLF>"
        self.dot_reply = "250 2.0.0 Message accepted"
        for k, v in settings.items():
            if not hasattr(self, k):
                raise TypeError(f"FakeMTA: unknown setting {k}")
            setattr(self, k, v)
        self.sessions = []
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.sock = None
        self.thread = None
        self.stopping = False
        self.conns = set()
        if start:
            self.start()

    # -- life cycle
    def start(self):
        """Listen (again). Without an ip, a fresh loopback address is picked."""
        assert self.sock is None, "already listening"
        for _ in range(50):
            ip = self.ip or alloc_ip()
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((ip, self.port))
            except OSError:
                s.close()
                if self.ip:
                    raise
                continue
            break
        else:
            raise RuntimeError("FakeMTA: no free loopback address")
        self.ip = ip
        self.port = s.getsockname()[1]  # port 0: the one the kernel chose
        s.listen(64)
        s.settimeout(0.1)
        self.sock = s
        self.stopping = False
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        """Stop listening and drop every open connection (the port then refuses)."""
        self.stopping = True
        if self.thread:
            self.thread.join(5)
        self.thread = None
        if self.sock:
            self.sock.close()
        self.sock = None
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()

    def _accept_loop(self):
        while not self.stopping:
            try:
                c, peer = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sess = Session(peer=peer)
            with self.lock:
                self.sessions.append(sess)
                self.conns.add(c)
            threading.Thread(target=self._serve, args=(c, sess), daemon=True).start()

    # -- records
    def txns(self):
        with self.lock:
            return [t for s in self.sessions for t in s.txns]

    def delivered(self):
        """Transactions that ended with a 2xx after the final dot."""
        return [t for t in self.txns() if t.delivered]

    def rcpt_attempts(self, addr):
        """How many times RCPT TO:<addr> was sent (any case)."""
        a = addr.lower()
        return sum(1 for t in self.txns() for r in t.rcpts_tried if r.lower() == a)

    def wait(self, pred, timeout=10.0, what="condition"):
        """Wait until pred(self) is true; returns its value."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                v = pred(self)
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"fake MTA {self.ip}:{self.port}: no {what} within "
                                         f"{timeout}s; sessions: {self.summary()}")
                self.cond.wait(min(left, 0.2))

    def wait_delivered(self, tok, count=1, timeout=10.0, settle=0.0):
        """Wait until `count` delivered transactions carry tok; after settle seconds more,
        return all that do."""
        t = tok.encode()

        def found(m):
            return [x for x in m.delivered() if t in x.content]
        got = self.wait(lambda m: len(found(m)) >= count and found(m), timeout,
                        f"{count} delivered message(s) with {tok}")
        if settle:
            time.sleep(settle)
            got = found(self)
        return got

    def summary(self):
        with self.lock:
            out = []
            for s in self.sessions[-10:]:
                out.append(f"[{s.peer[0]} tls={s.tls} auth={s.auth_user} cmds={s.commands[-12:]}]")
            return " ".join(out) or "(none)"

    # -- the dialogue
    def _serve(self, c, sess):
        io = _Io(c, sess, self)
        try:
            c.settimeout(30)
            if self.banner is None:  # never greet: the client must time out
                while True:
                    io.read_line()
            io.reply(self.banner)
            if not self.banner.startswith("2"):
                io.read_line()  # allow a QUIT
                io.reply("221 bye")
                return
            self._dialogue(io, sess)
        except (_Closed, OSError, ssl.SSLError):
            pass
        finally:
            sess.closed = True
            with self.cond:
                self.conns.discard(io.sock)
                self.cond.notify_all()
            try:
                io.sock.close()
            except OSError:
                pass

    def _ehlo_lines(self, sess, arg):
        lines = [f"{self.name} greets {arg}"]
        if self.pipelining:
            lines.append("PIPELINING")
        if self.size is not None:
            lines.append(f"SIZE {self.size}" if self.size else "SIZE")
        if self.eightbitmime:
            lines.append("8BITMIME")
        if self.starttls and not sess.tls:
            lines.append("STARTTLS")
        if self.auth is not None and (sess.tls or not self.auth_require_tls):
            lines.append("AUTH " + " ".join(self.auth_mechs))
        lines.append("ENHANCEDSTATUSCODES")
        return "\n".join(f"250{'-' if i < len(lines) - 1 else ' '}{x}"
                         for i, x in enumerate(lines))

    def _pick(self, what, *args):
        v = what(*args) if callable(what) else what
        return v

    def _dialogue(self, io, sess):
        txn = None
        greeted = False
        while True:
            line = io.read_line()
            text = line.decode("latin-1")
            with self.cond:
                sess.commands.append(text)
                self.cond.notify_all()
            verb, _, arg = text.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                sess.helo.append(("EHLO", arg))
                if not self.ehlo:
                    io.reply("502 5.5.1 EHLO not supported")
                    continue
                greeted, txn = True, None
                io.reply(self._ehlo_lines(sess, arg))
            elif verb == "HELO":
                sess.helo.append(("HELO", arg))
                greeted, txn = True, None
                io.reply(f"250 {self.name}")
            elif verb == "STARTTLS":
                if not self.starttls or sess.tls:
                    io.reply("502 5.5.1 STARTTLS not available")
                    continue
                if io.pending():
                    io.reply("501 5.5.1 pipelined data after STARTTLS")
                    return
                io.reply("220 2.0.0 Ready to start TLS")
                if self.tls_broken:
                    io.sock.sendall(b"this is not a TLS server hello\r\n")
                    return
                io.start_tls()
                sess.tls = True
                greeted, txn = False, None
            elif verb == "AUTH":
                self._auth(io, sess, arg)
            elif verb == "MAIL":
                m = re.match(r"(?i)FROM:<([^>]*)>(.*)$", arg)
                if not greeted:
                    io.reply("503 5.5.1 EHLO/HELO first")
                elif not m:
                    io.reply("501 5.5.4 Syntax: MAIL FROM:<address>")
                elif self.require_tls and not sess.tls:
                    io.reply("530 5.7.0 Must issue a STARTTLS command first")
                elif self.require_auth and not sess.auth_user:
                    io.reply("530 5.7.0 Authentication required")
                else:
                    params = m.group(2).split()
                    r = self._pick(self.mail_reply, sess, m.group(1), params)
                    if r.startswith("2"):
                        txn = Txn(m.group(1), params, tls=sess.tls, auth_user=sess.auth_user)
                        with self.cond:
                            sess.txns.append(txn)
                            self.cond.notify_all()
                    io.reply(r)
            elif verb == "RCPT":
                m = re.match(r"(?i)TO:<([^>]*)>", arg)
                if txn is None:
                    io.reply("503 5.5.1 MAIL first")
                elif not m:
                    io.reply("501 5.5.4 Syntax: RCPT TO:<address>")
                else:
                    addr = m.group(1)
                    rr = self.rcpt_reply
                    if isinstance(rr, dict):
                        r = rr.get(addr.lower(), rr.get("*", "250 2.1.5 Recipient OK"))
                    else:
                        r = self._pick(rr, sess, addr)
                    with self.cond:
                        txn.rcpts_tried.append(addr)
                        if r.startswith("2"):
                            txn.rcpts.append(addr)
                        self.cond.notify_all()
                    io.reply(r)
            elif verb == "DATA":
                if txn is None or not txn.rcpts:
                    io.reply("503 5.5.1 No valid recipients")
                    continue
                r = self.data_reply
                io.reply(r)
                if not r.startswith("3"):
                    continue
                raw = io.read_data()
                with self.cond:
                    txn.data_raw = raw
                    txn.content = unstuff(raw)
                r = self._pick(self.dot_reply, sess, txn)
                with self.cond:
                    txn.dot_reply = r
                    self.cond.notify_all()
                io.reply(r)
                txn = None
            elif verb == "RSET":
                txn = None
                io.reply("250 2.0.0 OK")
            elif verb == "NOOP":
                io.reply("250 2.0.0 OK")
            elif verb == "QUIT":
                io.reply("221 2.0.0 Bye")
                return
            else:
                io.reply("500 5.5.2 Command not recognized")

    def _auth(self, io, sess, arg):
        import base64
        parts = arg.split()
        mech = parts[0].upper() if parts else ""
        if self.auth is None:
            io.reply("502 5.5.1 AUTH not available")
            return
        if self.auth_require_tls and not sess.tls:
            io.reply("538 5.7.11 Encryption required for requested authentication mechanism")
            return
        if sess.auth_user:
            io.reply("503 5.5.1 Already authenticated")
            return
        if mech not in self.auth_mechs:
            io.reply("504 5.5.4 Unrecognized authentication type")
            return

        def b64in(s):
            if s == "*":
                raise ValueError("cancelled")
            return base64.b64decode(s, validate=True).decode("utf-8")

        try:
            if mech == "PLAIN":
                if len(parts) > 1:
                    resp = parts[1]
                else:
                    io.reply("334 ")
                    resp = io.read_line().decode("latin-1")
                _, user, pw = b64in(resp).split("\0")
            else:  # LOGIN
                if len(parts) > 1:
                    user = b64in(parts[1])
                else:
                    io.reply("334 VXNlcm5hbWU6")
                    user = b64in(io.read_line().decode("latin-1"))
                io.reply("334 UGFzc3dvcmQ6")
                pw = b64in(io.read_line().decode("latin-1"))
        except (ValueError, UnicodeDecodeError):
            io.reply("501 5.5.2 Cannot decode response")
            return
        if self.auth.get(user) == pw:
            with self.cond:
                sess.auth_user, sess.auth_password, sess.auth_mech = user, pw, mech
                sess.auth_tls = sess.tls
                self.cond.notify_all()
            io.reply("235 2.7.0 Authentication successful")
        else:
            io.reply("535 5.7.8 Authentication credentials invalid")


class _Io:
    """Line reader/writer over a socket that may switch to TLS; every byte read is appended to
    the session's raw record."""

    def __init__(self, sock, sess, mta):
        self.sock = sock
        self.sess = sess
        self.mta = mta
        self.buf = b""

    def pending(self):
        return bool(self.buf)

    def _fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise _Closed()
        with self.mta.lock:
            self.sess.raw += d
        self.buf += d

    def read_line(self):
        """One line up to LF (a bare LF ends it too: the raw record shows the violation)."""
        while b"\n" not in self.buf:
            if len(self.buf) > 100000:
                raise _Closed()
            self._fill()
        i = self.buf.index(b"\n")
        line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
        return line.rstrip(b"\r\n")

    def read_data(self):
        """The DATA section up to and including the line ".", exactly as received."""
        out = bytearray()
        while True:
            while b"\n" not in self.buf:
                self._fill()
            i = self.buf.index(b"\n")
            line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
            out += line
            if line in (b".\r\n", b".\n"):
                return bytes(out)

    def reply(self, text):
        """Send a reply; "550 first\nsecond" becomes the multi-line "550-first", "550 second"."""
        lines = text.split("\n")
        if len(lines) > 1 and not all(re.match(r"\d{3}[ -]", x) for x in lines):
            code = lines[0][:3]
            body = [lines[0][4:]] + lines[1:]
            lines = [f"{code}-{x}" for x in body[:-1]] + [f"{code} {body[-1]}"]
        self.sock.sendall("".join(x + "\r\n" for x in lines).encode("latin-1"))

    def start_tls(self):
        cert, key = mta_cert()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        plain = self.sock
        self.sock = ctx.wrap_socket(plain, server_side=True)
        with self.mta.lock:
            self.mta.conns.discard(plain)
            self.mta.conns.add(self.sock)


# --------------------------------------------------------------------------------------------
# Helpers for the tests

_dom = [0]


def unique_domain(prefix="remote"):
    """A domain name nobody else uses in this session."""
    with _ip_lock:
        _dom[0] += 1
        n = _dom[0]
    return f"{prefix}{n}-{os.getpid():x}.test"


def mx_domain(dns, *mtas, domain=None, prefix="remote"):
    """A domain whose MX records point at the given FakeMTAs (or IP strings) with preferences
    10, 20, ... in that order; returns the domain."""
    d = domain or unique_domain(prefix)
    for i, m in enumerate(mtas):
        ip = m if isinstance(m, str) else m.ip
        host = f"mx{i + 1}.{d}"
        dns.add(d, "MX", f"{10 * (i + 1)} {host}.")
        dns.add(host, "A", ip)
    return d


def delivery_conf(**kw):
    """The text of a [delivery] section; tests default to fast retries and a short timeout."""
    vals = {"retries": 2, "retry_interval": "1s", "timeout": "5s"}
    vals.update(kw)
    return "[delivery]\n" + "".join(f"{k} = {v}\n" for k, v in vals.items())


def queue_text(g):
    return g.cli("queue", "list").out


def pending(g, addr):
    """Whether `gannet queue list` shows addr as a queued or held recipient."""
    pat = re.compile(re.escape(addr) + r" \((queued|held)[,)]", re.I)
    return bool(pat.search(queue_text(g)))


def wait_not_queued(g, addr, timeout=10.0):
    """Poll `gannet queue list` until addr is no longer a queued or held recipient."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pending(g, addr):
            return
        time.sleep(0.2)
    raise AssertionError(f"{addr} still queued after {timeout}s:\n{queue_text(g)}")


def queue_id_for(g, needle):
    """The queue id of the (first) listed message mentioning needle, or None."""
    for line in queue_text(g).splitlines()[1:]:
        if needle.lower() in line.lower():
            return line.split()[0]
    return None


def parse_bounce(stored):
    """(message, text of the human-readable part, delivery-status text, rfc822-headers text)
    of a stored bounce (bytes)."""
    msg = message_from_bytes(stored, policy=policy.compat32)
    human = status = headers = None
    for part in msg.walk():
        ct = part.get_content_type()
        if ct == "text/plain" and human is None:
            human = part.get_payload(decode=True).decode("utf-8", "replace")
        elif ct == "message/delivery-status":
            p = part.get_payload()
            if isinstance(p, list):  # the email package parses it as a list of header blocks
                status = "\n\n".join(str(x) for x in p)
            else:
                status = part.get_payload(decode=True).decode("utf-8", "replace")
        elif ct in ("text/rfc822-headers", "message/rfc822"):
            p = part.get_payload(decode=not part.is_multipart())
            headers = p.decode("utf-8", "replace") if isinstance(p, bytes) else str(p)
    return msg, human, status, headers


def find_bounces(g, addr, tok):
    """The stored messages in addr's INBOX that are bounces mentioning tok."""
    return [m for m in g.find(addr, tok) if b"Message undeliverable" in m]


def wait_bounce(g, addr, tok, timeout=10.0):
    """Wait for exactly one bounce about tok in addr's INBOX; returns it parsed
    (stored bytes, message, human text, status text, headers text)."""
    deadline = time.monotonic() + timeout
    found = []
    while time.monotonic() < deadline:
        found = find_bounces(g, addr, tok)
        if found:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"no bounce about {tok} in {addr} within {timeout}s; queue:\n"
                             f"{queue_text(g)}\nlog tail:\n{g.log()[-2500:]}")
    assert len(found) == 1, f"{len(found)} bounces about {tok} in {addr}"
    return (found[0],) + parse_bounce(found[0])


def mta_factory_fixture():
    """The body of the `mtas` fixture: mtas(**settings) -> a started FakeMTA, all stopped at the
    end of the test."""
    made = []

    def make(**kw):
        m = FakeMTA(**kw)
        made.append(m)
        return m
    return made, make


def assert_clean_wire(*mtas):
    """No session any of these MTAs saw had a bare CR or LF."""
    for m in mtas:
        with m.lock:
            for s in m.sessions:
                n = line_end_violations(s.raw)
                assert n == 0, (f"{n} bare CR/LF in what the client sent to {m.ip}: "
                                f"{bytes(s.raw)[:3000]!r}")


def rcpt_rows(g, qid):
    """The recipient table of `gannet queue show ID` as a list of dicts keyed by the (lower-case)
    column names of its header line (address, original, kind, state, attempts, next-try,
    last-error)."""
    out = g.cli("queue", "show", qid).out
    rows, cols = [], None
    for line in out.splitlines():
        cells = line.split("\t")
        if cols is None:
            if len(cells) > 3 and cells[0].strip().upper() == "ADDRESS":
                cols = [c.strip().lower() for c in cells]
            continue
        if len(cells) < 3:
            break
        rows.append(dict(zip(cols, (c.strip() for c in cells))))
    assert cols, f"no recipient table in `gannet queue show {qid}`:\n{out}"
    return rows


class unreachable:
    """Context manager: `domain` gets an A record (implicit MX) at a loopback address where
    nothing listens, so mail for it fails temporarily (connection refused) and stays queued for
    the next retry instead of bouncing at once on NXDOMAIN. The record is removed afterwards."""

    def __init__(self, dns, domain):
        self.dns, self.domain = dns, domain

    def __enter__(self):
        self.dns.add(self.domain, "A", alloc_ip())
        return self

    def __exit__(self, *a):
        self.dns.remove(self.domain, "A")
