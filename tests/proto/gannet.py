"""Harness for Gannet's black-box protocol tests.

Starts the real `gannet serve` on free loopback ports with a temporary data dir and config, drives
the admin CLI, runs a fake DNS server (python3-dnslib) and offers a raw SMTP client that asserts
exact reply lines. Used by tests/proto/conftest.py; every test file imports from here.

Environment:
  GANNET_BIN    the gannet binary (make check: build-check/gannet, built with ASan/UBSan)
  GANNET_BUILD  its build dir (unit-test executables live there; not used here)
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOSTNAME = "mx.gannet.test"
PASSWORD = "secret"


def gannet_bin():
    b = os.environ.get("GANNET_BIN")
    if b:
        return b
    for cand in ("build-check/gannet", "build-proto/gannet", "build/gannet"):
        p = REPO / cand
        if p.exists():
            return str(p)
    return str(REPO / "build-check/gannet")


def subprocess_env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    env.pop("GANNET_CONFIG", None)
    return env


SANITIZER_RE = re.compile(
    r"ERROR: AddressSanitizer|runtime error:|LeakSanitizer|ERROR: ThreadSanitizer|"
    r"AddressSanitizer:DEADLYSIGNAL")


def sanitizer_report(text):
    """The sanitizer report in text (from the first matching line on), or None."""
    m = SANITIZER_RE.search(text)
    if not m:
        return None
    start = text.rfind("\n", 0, m.start()) + 1
    return text[start:start + 6000]


def free_port(host="127.0.0.1", udp_too=False):
    """A port that is free on host right now (bind port 0, close, reuse)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(100):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.bind((host, 0))
        port = s.getsockname()[1]
        s.close()
        if not udp_too:
            return port
        u = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            u.bind((host, port))
        except OSError:
            continue
        finally:
            u.close()
        return port
    raise RuntimeError("no free port")


# --------------------------------------------------------------------------------------------
# Fake DNS


class FakeDNS:
    """An authoritative-for-everything DNS server on 127.0.0.1 (UDP and TCP). Answers NXDOMAIN
    unless a record was added with add(); a name with records of other types answers NODATA."""

    def __init__(self):
        from dnslib.server import BaseResolver, DNSLogger, DNSServer

        self.records = {}
        self.queries = []
        self.lock = threading.Lock()
        outer = self

        class Resolver(BaseResolver):
            def resolve(self, request, handler):
                return outer._resolve(request)

        class QuietLogger(DNSLogger):
            def __init__(self):
                super().__init__(log="-request,-reply,-truncated,-error,-recv,-send,-data",
                                 prefix=False)

            def log_error(self, handler, e):
                pass

        self.port = free_port("127.0.0.1", udp_too=True)
        self.udp = DNSServer(Resolver(), port=self.port, address="127.0.0.1", tcp=False,
                             logger=QuietLogger())
        self.tcp = DNSServer(Resolver(), port=self.port, address="127.0.0.1", tcp=True,
                             logger=QuietLogger())
        self.udp.start_thread()
        self.tcp.start_thread()

    def _resolve(self, request):
        from dnslib import QTYPE, RCODE

        reply = request.reply()
        q = request.q
        name = str(q.qname).rstrip(".").lower()
        qtype = QTYPE[q.qtype]
        with self.lock:
            self.queries.append((name, qtype))
            rrs = list(self.records.get((name, qtype), []))
            known = any(k[0] == name for k in self.records)
        for rr in rrs:
            reply.add_answer(rr)
        if not rrs and not known:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply

    def add(self, name, rtype, value, ttl=60):
        from dnslib import RR

        name = name.rstrip(".").lower()
        rr = RR.fromZone(f"{name}. {ttl} IN {rtype} {value}")[0]
        with self.lock:
            self.records.setdefault((name, rtype.upper()), []).append(rr)

    def remove(self, name, rtype=None):
        name = name.rstrip(".").lower()
        with self.lock:
            for k in list(self.records):
                if k[0] == name and (rtype is None or k[1] == rtype.upper()):
                    del self.records[k]

    def stop(self):
        for s in (self.udp, self.tcp):
            try:
                s.stop()
            except Exception:
                pass


# --------------------------------------------------------------------------------------------
# Raw SMTP client


class ConnectionClosed(AssertionError):
    pass


@dataclass
class Reply:
    code: int  # None when the line has no reply code
    lines: list  # full lines without CRLF, e.g. ["250-mx.gannet.test", "250 HELP"]
    raw: bytes = b""

    @property
    def line(self):
        return self.lines[0] if len(self.lines) == 1 else "\n".join(self.lines)

    def __iter__(self):  # code, lines = conn.reply()
        return iter((self.code, self.lines))


class SmtpConn:
    """One SMTP client connection from `source` to the server. Every read has a timeout so a hung
    server fails the test in seconds. Reply lines must end in CRLF."""

    def __init__(self, port, source="127.0.0.2", host="127.0.0.1", timeout=10.0):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if source:
            self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.log = []  # transcript, for failure messages

    # -- low level
    def sendraw(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.log.append(("C", data[:200] + (b"..." if len(data) > 200 else b"")))
        self.sock.sendall(data)

    def send(self, line):
        self.sendraw((line.encode("latin-1") if isinstance(line, str) else line) + b"\r\n")

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timeout waiting for the server; transcript: {self.transcript()}")
        self.sock.settimeout(remaining)
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError(
                f"timeout waiting for the server; transcript: {self.transcript()}") from None
        except ConnectionResetError:
            d = b""
        if not d:
            self.eof = True
            raise ConnectionClosed(
                f"connection closed by server; unread {self.buf!r}; transcript: {self.transcript()}")
        self.buf += d

    def readline(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self.buf:
            self._fill(deadline)
        i = self.buf.index(b"\n")
        line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
        self.log.append(("S", line))
        assert line.endswith(b"\r\n"), f"reply line not ended by CRLF: {line!r}"
        assert b"\r" not in line[:-2], f"bare CR in reply line: {line!r}"
        return line

    def reply(self, timeout=None):
        """One complete (possibly multi-line) reply."""
        lines, raw = [], b""
        while True:
            b = self.readline(timeout)
            raw += b
            s = b[:-2].decode("latin-1")
            lines.append(s)
            m = re.match(r"^(\d{3})([ -])", s)
            if not m and re.fullmatch(r"\d{3}", s):
                return Reply(int(s), lines, raw)
            if not m:
                return Reply(None, lines, raw)
            if m.group(2) == " ":
                return Reply(int(m.group(1)), lines, raw)

    def expect(self, line, timeout=None):
        """Read one reply and assert it is exactly the single line `line`."""
        r = self.reply(timeout)
        assert r.lines == [line], (f"expected {line!r}, got {r.lines!r}; "
                                   f"transcript: {self.transcript()}")
        return r

    def expect_re(self, pattern, timeout=None):
        r = self.reply(timeout)
        assert len(r.lines) == 1 and re.fullmatch(pattern, r.lines[0]), (
            f"expected /{pattern}/, got {r.lines!r}; transcript: {self.transcript()}")
        return r

    def cmd(self, line, expect=None, timeout=None):
        self.send(line)
        if expect is None:
            return self.reply(timeout)
        return self.expect(expect, timeout)

    def banner(self):
        return self.expect(f"220 {HOSTNAME} ESMTP")

    def ehlo(self, name="client.test"):
        self.send(f"EHLO {name}")
        r = self.reply()
        assert r.code == 250, f"EHLO failed: {r.lines}"
        return r

    def helo(self, name="client.test"):
        return self.cmd(f"HELO {name}", "250 Hello.")

    def data(self, payload, expect=None, timeout=None, stuff=True):
        """DATA, 354, payload (+CRLF if missing), the final dot; returns (or asserts) the reply."""
        self.cmd("DATA", "354 OK, send.")
        if isinstance(payload, str):
            payload = payload.encode("latin-1")
        if stuff:
            payload = dot_stuff(payload)
        if not payload.endswith(b"\r\n"):
            payload += b"\r\n"
        self.sendraw(payload + b".\r\n")
        if expect is None:
            return self.reply(timeout)
        if expect == "queued":
            return self.expect_re(QUEUED_RE, timeout)
        return self.expect(expect, timeout)

    def assert_closed(self, timeout=5.0):
        """The server closes the connection within timeout without sending anything more."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(deadline)
                raise AssertionError(f"expected close, got data {self.buf!r}; "
                                     f"transcript: {self.transcript()}")
        except ConnectionClosed:
            assert self.buf == b"", f"unread data before close: {self.buf!r}"

    def assert_silent(self, seconds):
        """Nothing arrives for `seconds` (and the connection stays open)."""
        self.sock.settimeout(seconds)
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            return
        finally:
            self.sock.settimeout(self.timeout)
        raise AssertionError(f"unexpected data {d!r}; transcript: {self.transcript()}")

    def transcript(self):
        out = []
        for who, data in self.log[-30:]:
            out.append(f"{who}: {data!r}")
        return "\n  ".join([""] + out)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


QUEUED_RE = r"250 Queued \(\d+\.\d{3} seconds\)"


def dot_stuff(payload):
    """Client-side dot stuffing (RFC 5321 4.5.2) of a CRLF message."""
    if payload.startswith(b"."):
        payload = b"." + payload
    return payload.replace(b"\r\n.", b"\r\n..")


def make_message(subject="test", body="Hello.\r\n", sender="sender@external.test",
                 to="user@example.test", headers=(), message_id=True, token=None):
    """A CRLF message (bytes) with a Subject carrying `token` when given."""
    if token:
        subject = f"{subject} {token}"
    h = [f"From: <{sender}>", f"To: <{to}>", f"Subject: {subject}",
         "Date: Tue, 4 Sep 2024 21:53:33 +0200"]
    if message_id:
        h.append(f"Message-ID: <{token or 'x'}.{time.time_ns()}@client.test>")
    h.extend(headers)
    if isinstance(body, str):
        body = body.encode("latin-1")
    return ("\r\n".join(h) + "\r\n\r\n").encode("latin-1") + body


_tok = [0]
_tok_lock = threading.Lock()


def token(prefix="tok"):
    with _tok_lock:
        _tok[0] += 1
        n = _tok[0]
    return f"{prefix}-{os.getpid():x}-{n:x}-{time.time_ns() % 10**9:x}"


def split_stored(msg):
    """Split a stored message into (Return-Path line, Delivered-To line or None, Received header,
    rest). Asserts the prepended headers are in the documented order."""
    m = re.match(rb"(Return-Path: [^\r\n]*\r\n)(Delivered-To: [^\r\n]*\r\n)?"
                 rb"(Received: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)", msg)
    assert m, f"stored message does not start with Return-Path/[Delivered-To]/Received: {msg[:400]!r}"
    return m.group(1), m.group(2), m.group(3), msg[m.end():]


# --------------------------------------------------------------------------------------------
# The server


@dataclass
class CliResult:
    args: list
    returncode: int
    stdout: bytes
    stderr: str

    @property
    def out(self):
        return self.stdout.decode("utf-8", "replace")


class CliError(AssertionError):
    pass


class Gannet:
    """One gannet installation: a temp dir with config, data dir, database; optionally running."""

    def __init__(self, workdir, dns, smtp=None, listeners=None, extra_conf="", data_dir=None):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dns = dns
        self.data = Path(data_dir) if data_dir else self.dir / "data"
        self.db = self.data / "gannet.db"
        self.conf = self.dir / "gannet.conf"
        self.port = free_port()
        self.smtp = {"timeout": "10m", "max_message_size": "20480"}
        self.smtp.update({k: str(v) for k, v in (smtp or {}).items()})
        self.listeners = listeners  # list of (name, dict) or None = one smtp listener
        self.extra_conf = extra_conf
        self.proc = None
        self.log_path = self.dir / "server.log"
        self.log_offset = 0
        self.cat_cache = {}
        self.write_config()

    # -- config
    def config_text(self):
        t = [
            "[server]",
            f"hostname = {HOSTNAME}",
            f"data_dir = {self.data}",
            f"database = {self.db}",
            "[dns]",
            f"nameservers = 127.0.0.1:{self.dns.port}" if self.dns else "",
            "[tls]",
            f"certificate = {self.data}/tls/cert.pem",
            f"private_key = {self.data}/tls/key.pem",
        ]
        listeners = self.listeners or [("mx", {"protocol": "smtp",
                                               "address": f"127.0.0.1:{self.port}",
                                               "security": "none"})]
        for name, kv in listeners:
            t.append(f"[listener:{name}]")
            t.extend(f"{k} = {v}" for k, v in kv.items())
        t.append("[smtp]")
        t.extend(f"{k} = {v}" for k, v in self.smtp.items())
        if self.extra_conf:
            t.append(self.extra_conf)
        return "\n".join(t) + "\n"

    def write_config(self):
        self.conf.write_text(self.config_text())

    # -- CLI
    def cli(self, *args, check=True, timeout=60, input=None):
        argv = [gannet_bin(), "-c", str(self.conf)] + [str(a) for a in args]
        p = subprocess.run(argv, capture_output=True, timeout=timeout, env=subprocess_env(),
                           input=input)
        res = CliResult(argv, p.returncode, p.stdout, p.stderr.decode("utf-8", "replace"))
        rep = sanitizer_report(res.stderr)
        if rep:
            raise CliError(f"sanitizer report from `gannet {' '.join(map(str, args))}`:\n{rep}")
        if check and p.returncode != 0:
            raise CliError(f"`gannet {' '.join(map(str, args))}` exited {p.returncode}: "
                           f"{res.stderr.strip()[:2000]}")
        return res

    def init(self):
        return self.cli("init")

    # -- process
    def start(self, wait=True, rlimit_nofile=None, port=None):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        logf = open(self.log_path, "ab")
        preexec = None
        if rlimit_nofile:
            def preexec():
                import resource
                resource.setrlimit(resource.RLIMIT_NOFILE, (rlimit_nofile, rlimit_nofile))
        self.proc = subprocess.Popen([gannet_bin(), "-c", str(self.conf), "serve"],
                                     stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                     env=subprocess_env(), preexec_fn=preexec)
        logf.close()
        if wait:
            self.wait_ready(port=port)
        return self

    def wait_ready(self, timeout=20.0, port=None, host="127.0.0.1"):
        """Wait until the listener accepts and sends its banner."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gannet serve exited with {self.proc.returncode} at start:\n"
                                     f"{self.log()[-3000:]}")
            try:
                with socket.create_connection((host, port or self.port), timeout=2) as s:
                    s.settimeout(5)
                    if s.recv(512).startswith(b"220"):
                        return
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise AssertionError(f"gannet serve not answering on port {port or self.port} after "
                             f"{timeout}s ({last}):\n{self.log()[-3000:]}")

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def new_log(self):
        """Log text written since the last call."""
        t = self.log()
        new, self.log_offset = t[self.log_offset:], len(t)
        return new

    def stop(self, timeout=10.0):
        """SIGTERM, wait; returns a list of problems (empty when the shutdown was clean)."""
        problems = []
        if self.proc is None:
            return problems
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
                if self.proc.returncode != 0:
                    problems.append(f"gannet serve exited {self.proc.returncode} after SIGTERM")
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problems.append(f"gannet serve did not exit within {timeout}s of SIGTERM")
        elif self.proc.returncode not in (0, -signal.SIGKILL):
            problems.append(f"gannet serve had exited by itself with {self.proc.returncode}")
        rep = sanitizer_report(self.log())
        if rep:
            problems.append("sanitizer report in server stderr:\n" + rep)
        return problems

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def check_health(self):
        """Problems so far: process died, or a sanitizer report in the log."""
        problems = []
        if self.proc is not None and self.proc.poll() is not None and \
                self.proc.returncode != -signal.SIGKILL:
            problems.append(f"gannet serve died (exit {self.proc.returncode}):\n"
                            f"{self.log()[-3000:]}")
        rep = sanitizer_report(self.log())
        if rep:
            problems.append("sanitizer report in server stderr:\n" + rep)
        return problems

    def vmrss_kb(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def cpu_seconds(self):
        with open(f"/proc/{self.pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")

    # -- clients
    def connect(self, source="127.0.0.2", banner=True, timeout=10.0, port=None,
                host="127.0.0.1"):
        c = SmtpConn(port or self.port, source=source, host=host, timeout=timeout)
        if banner:
            c.banner()
        return c

    def session(self, source="127.0.0.2", helo="client.test", ehlo=True):
        c = self.connect(source)
        if ehlo:
            c.ehlo(helo)
        else:
            c.helo(helo)
        return c

    def send(self, sender, rcpts, msg, source="127.0.0.2", helo="client.test"):
        """A whole transaction that must succeed; returns the final reply."""
        if isinstance(rcpts, str):
            rcpts = [rcpts]
        with self.session(source, helo) as c:
            c.cmd(f"MAIL FROM:<{sender}>", "250 OK")
            for r in rcpts:
                c.cmd(f"RCPT TO:<{r}>", "250 OK")
            rep = c.data(msg, expect="queued")
            c.cmd("QUIT", "221 goodbye")
            return rep

    # -- mailboxes
    def mailbox_uids(self, addr):
        res = self.cli("mailbox", "list", addr)
        uids = []
        for line in res.out.splitlines():
            m = re.match(r"\s*(\d+)\s", line + " ")
            if m:
                uids.append(int(m.group(1)))
        return uids, res.out

    def mailbox_cat(self, addr, uid):
        key = (addr.lower(), uid)
        if key not in self.cat_cache:
            self.cat_cache[key] = self.cli("mailbox", "cat", addr, uid).stdout
        return self.cat_cache[key]

    def messages(self, addr):
        uids, _ = self.mailbox_uids(addr)
        return {u: self.mailbox_cat(addr, u) for u in uids}

    def find(self, addr, tok):
        return [m for m in self.messages(addr).values() if tok.encode() in m]

    def wait_for(self, addr, tok, count=1, timeout=8.0, settle=0.0):
        """Poll until `addr` holds at least `count` messages containing tok; after `settle`
        seconds more, return them all (so a test can assert the exact number)."""
        deadline = time.monotonic() + timeout
        found = []
        while time.monotonic() < deadline:
            found = self.find(addr, tok)
            if len(found) >= count:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"{addr}: {len(found)} message(s) with {tok}, expected {count} "
                                 f"within {timeout}s")
        if settle:
            time.sleep(settle)
            found = self.find(addr, tok)
        return found

    def assert_absent(self, addr, tok, wait=1.0):
        time.sleep(wait)
        try:
            found = self.find(addr, tok)
        except CliError:
            return
        assert not found, f"{addr} unexpectedly holds a message with {tok}"


# --------------------------------------------------------------------------------------------
# The standard directory every server starts with (built once per session, copied per server)

EXT = "sender@external.test"  # an external sender
LOCAL = "user@example.test"  # an existing local account

WORLD = [
    ["domain", "add", "example.test", "--plus", "+"],
    ["domain", "add", "other.test"],
    ["domain", "add", "catchall.test", "--catch-all", "catch@catchall.test"],
    ["domain", "add", "disabled.test", "--disabled"],
    ["domain", "add", "small.test", "--max-message-size", "5"],
    ["domain-alias", "add", "alias-domain.test", "example.test"],
]
for _a in ["user", "user2", "user3", "user4", "user5", "lm1", "lm2", "lm3", "hopdest",
           "fwdtarget", "fwdtarget2", "dup", "plus", "pipe", "real", "rcv", "dur"]:
    WORLD.append(["account", "add", f"{_a}@example.test", "--password", PASSWORD])
WORLD += [
    ["account", "add", "inactive@example.test", "--password", PASSWORD, "--disabled"],
    ["account", "add", "fwd@example.test", "--password", PASSWORD,
     "--forward", "fwdtarget@example.test"],
    ["account", "add", "fwdkeep@example.test", "--password", PASSWORD,
     "--forward", "fwdtarget2@example.test", "--keep-copy"],
    ["account", "add", "catch@catchall.test", "--password", PASSWORD],
    ["account", "add", "known@catchall.test", "--password", PASSWORD],
    ["account", "add", "user@disabled.test", "--password", PASSWORD],
    ["account", "add", "someone@other.test", "--password", PASSWORD],
    ["account", "add", "sender@small.test", "--password", PASSWORD],
    ["alias", "add", "alias@example.test", "user@example.test"],
    ["alias", "add", "chain1@example.test", "chain2@example.test"],
    ["alias", "add", "chain2@example.test", "chain3@example.test"],
    ["alias", "add", "chain3@example.test", "user3@example.test"],
    ["alias", "add", "loop1@example.test", "loop2@example.test"],
    ["alias", "add", "loop2@example.test", "loop1@example.test"],
    ["alias", "add", "deadalias@example.test", "user@example.test", "--disabled"],
    ["alias", "add", "extalias@example.test", "someone@external.test"],
    ["alias", "add", "toinactive@example.test", "inactive@example.test"],
]
# 24 aliases a01 -> ... -> a24 -> hopdest: the account is reached at hop 25 (allowed);
# 26 aliases b01 -> ... -> b26 -> hopdest: hop 27 (more than 25 under any reading).
for _p, _n in (("a", 24), ("b", 26)):
    for _i in range(1, _n + 1):
        _t = f"{_p}{_i + 1:02d}@example.test" if _i < _n else "hopdest@example.test"
        WORLD.append(["alias", "add", f"{_p}{_i:02d}@example.test", _t])
WORLD += [
    ["list", "add", "pub@example.test", "--mode", "public"],
    ["list", "member", "add", "pub@example.test", "lm1@example.test"],
    ["list", "member", "add", "pub@example.test", "lm2@example.test"],
    ["list", "add", "members@example.test", "--mode", "members"],
    ["list", "member", "add", "members@example.test", "lm1@example.test"],
    ["list", "member", "add", "members@example.test", "member@external.test"],
    ["list", "add", "announce@example.test", "--mode", "announce",
     "--announcer", "boss@external.test"],
    ["list", "member", "add", "announce@example.test", "lm1@example.test"],
    ["list", "add", "authlist@example.test", "--mode", "public", "--require-auth"],
    ["list", "member", "add", "authlist@example.test", "lm1@example.test"],
    ["list", "add", "offlist@example.test", "--mode", "public", "--disabled"],
    ["list", "member", "add", "offlist@example.test", "lm1@example.test"],
    ["list", "add", "nested@example.test", "--mode", "public"],
    ["list", "member", "add", "nested@example.test", "pub@example.test"],
    ["list", "member", "add", "nested@example.test", "lm3@example.test"],
    ["list", "member", "add", "nested@example.test", "nested@example.test"],
    ["list", "member", "add", "nested@example.test", "LM1@example.test"],
    ["list", "add", "emptylist@example.test", "--mode", "public"],
    ["route", "add", "routed.test", "--host", "127.0.0.1", "--port", "9",
     "--address", "listed@routed.test", "--local-recipient"],
    ["route", "add", "routeall.test", "--host", "127.0.0.1", "--port", "9",
     "--local-recipient"],
    ["route", "add", "extroute.test", "--host", "127.0.0.1", "--port", "9"],
    # Mail relayed to external.test goes to a closed port: the attempt fails temporarily, so the
    # message stays visible in `gannet queue list` (retry_interval defaults to 60 minutes).
    ["route", "add", "external.test", "--host", "127.0.0.1", "--port", "9"],
    ["route", "add", "lsender.test", "--host", "127.0.0.1", "--port", "9", "--local-sender"],
    ["route", "add", "*.wild.test", "--host", "127.0.0.1", "--port", "9",
     "--local-recipient"],
    # IP ranges for single loopback addresses (the defaults cover .1 and the rest)
    ["iprange", "add", "NoSMTP", "--from", "127.0.0.3", "--to", "127.0.0.3", "--priority", "50",
     "--allow", "pop3,imap", "--deliver", "ll,le,el,ee", "--require-auth", "ll,le,ee"],
    ["iprange", "add", "NoEL", "--from", "127.0.0.4", "--to", "127.0.0.4", "--priority", "50",
     "--allow", "smtp", "--deliver", "ll,le,ee", "--require-auth", "ll,le,ee"],
    ["iprange", "add", "AuthEL", "--from", "127.0.0.5", "--to", "127.0.0.5", "--priority", "50",
     "--allow", "smtp", "--deliver", "ll,le,el,ee", "--require-auth", "el"],
    ["iprange", "add", "NoELAuthEL", "--from", "127.0.0.6", "--to", "127.0.0.6",
     "--priority", "50", "--allow", "smtp", "--deliver", "ll,le,ee", "--require-auth", "el"],
    ["iprange", "add", "OpenRelay", "--from", "127.0.0.7", "--to", "127.0.0.7",
     "--priority", "50", "--allow", "smtp", "--deliver", "ll,le,el,ee", "--require-auth", "ll"],
    ["iprange", "add", "NoEE", "--from", "127.0.0.8", "--to", "127.0.0.8", "--priority", "50",
     "--allow", "smtp", "--deliver", "ll,le,el", "--require-auth", "ll"],
    ["iprange", "add", "LowNoSMTP", "--from", "127.0.0.9", "--to", "127.0.0.9",
     "--priority", "5", "--allow", "pop3", "--deliver", "ll,le,el,ee", "--require-auth", "ll"],
]


def build_world(workdir, dns):
    """Create an installation with the standard directory; returns the Gannet (not running)."""
    g = Gannet(workdir, dns)
    g.init()
    for args in WORLD:
        g.cli(*args)
    return g


def clone_world(template, workdir, dns, smtp=None, listeners=None, extra_conf=""):
    """A new installation whose data dir is a copy of the template's (fast: no CLI calls)."""
    g = Gannet(workdir, dns, smtp=smtp, listeners=listeners, extra_conf=extra_conf)
    shutil.copytree(template.data, g.data, symlinks=True)
    return g
