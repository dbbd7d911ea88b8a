#!/usr/bin/python3
"""bench/loadgen.py — a small SMTP load generator that times every message (loopback only).

usage: bench/loadgen.py PORT --sessions C --messages N --size BYTES [--reuse] [--tag TAG]
                        [--out FILE.json] [--timeout S]

C concurrent sessions send N messages in all to u@bench.test on 127.0.0.1:PORT. Without --reuse
each message has its own connection (banner, EHLO, MAIL, RCPT, DATA, QUIT) and its latency is
connect .. the reply to the final "."; with --reuse a session keeps its connection and the latency
is MAIL .. that reply. Every message carries "Subject: bench TAG-<seq>", so a check can tell which
acknowledged messages reached the mailbox. A session whose connection fails (e.g. the server was
killed) stops; the run ends when all sessions have stopped.

Prints one summary line and, with --out, writes JSON: sent, acked (count), acked_seqs, errors,
first_error, latencies_ms (of acknowledged messages), elapsed_s.
"""
import argparse
import asyncio
import json
import socket
import sys
import time

SENDER, RCPT = "a@bench.test", "u@bench.test"


class SmtpError(Exception):
    pass


async def reply(reader):
    """Read one (possibly multi-line) reply; return (code, text)."""
    lines = []
    while True:
        line = await reader.readline()
        if not line:
            raise SmtpError("connection closed")
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            break
    return int(lines[-1][:3]), b"".join(lines)


async def command(reader, writer, line, want):
    writer.write(line)
    code, text = await reply(reader)
    if code != want:
        raise SmtpError("%r -> %r" % (line.strip(), text.strip()[:120]))


def payload(size):
    """SIZE bytes of body in 78-byte CRLF lines (no line starts with a dot)."""
    line = b"x" * 76 + b"\r\n"
    n, rest = divmod(size, len(line))
    body = line * n
    if rest >= 2:
        body += b"y" * (rest - 2) + b"\r\n"
    return body


class Run:
    def __init__(self, a):
        self.a = a
        self.next_seq = 0
        self.sent = 0
        self.acked = []
        self.lat = []
        self.errors = 0
        self.first_error = ""
        self.body = payload(a.size)

    def take(self):
        if self.next_seq >= self.a.messages:
            return None
        self.next_seq += 1
        return self.next_seq

    def message(self, seq):
        head = ("From: <%s>\r\nTo: <%s>\r\nSubject: bench %s-%d\r\nMessage-ID: <%s.%d@bench.test>\r\n\r\n"
                % (SENDER, RCPT, self.a.tag, seq, self.a.tag, seq)).encode()
        return head + self.body + b".\r\n"

    def fail(self, e):
        self.errors += 1
        if not self.first_error:
            self.first_error = "%s: %s" % (type(e).__name__, e)

    async def transaction(self, reader, writer, seq):
        await command(reader, writer, b"MAIL FROM:<%s>\r\n" % SENDER.encode(), 250)
        await command(reader, writer, b"RCPT TO:<%s>\r\n" % RCPT.encode(), 250)
        await command(reader, writer, b"DATA\r\n", 354)
        self.sent += 1
        writer.write(self.message(seq))
        await writer.drain()
        code, text = await reply(reader)
        if code != 250:
            raise SmtpError("end of data -> %r" % text.strip()[:120])

    async def open(self):
        reader, writer = await asyncio.open_connection("127.0.0.1", self.a.port, limit=1 << 16)
        code, text = await reply(reader)
        if code != 220:
            raise SmtpError("banner %r" % text[:120])
        await command(reader, writer, b"EHLO loadgen.bench.test\r\n", 250)
        return reader, writer

    async def session(self):
        reader = writer = None
        try:
            while True:
                seq = self.take()
                if seq is None:
                    break
                t0 = time.monotonic()
                if writer is None:
                    reader, writer = await self.open()
                    if self.a.reuse:
                        t0 = time.monotonic()
                await self.transaction(reader, writer, seq)
                self.lat.append((time.monotonic() - t0) * 1000.0)
                self.acked.append(seq)
                if not self.a.reuse:
                    await command(reader, writer, b"QUIT\r\n", 221)
                    writer.close()
                    reader = writer = None
            if writer is not None:
                await command(reader, writer, b"QUIT\r\n", 221)
        except (OSError, SmtpError, asyncio.IncompleteReadError) as e:
            self.fail(e)
        finally:
            if writer is not None:
                writer.close()

    async def main(self):
        t0 = time.monotonic()
        tasks = [asyncio.create_task(self.session()) for _ in range(self.a.sessions)]
        await asyncio.wait_for(asyncio.gather(*tasks), self.a.timeout)
        return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("port", type=int)
    ap.add_argument("--sessions", type=int, default=1)
    ap.add_argument("--messages", type=int, default=100)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--tag", default="run")
    ap.add_argument("--out")
    ap.add_argument("--timeout", type=float, default=600.0)
    a = ap.parse_args()
    run = Run(a)
    try:
        elapsed = asyncio.run(run.main())
    except asyncio.TimeoutError:
        elapsed = a.timeout
        run.fail(TimeoutError("run exceeded %.0f s" % a.timeout))
    lat = sorted(run.lat)

    def pct(p):
        return lat[min(len(lat) - 1, int(p / 100.0 * len(lat)))] if lat else float("nan")

    res = dict(sent=run.sent, acked=len(run.acked), acked_seqs=sorted(run.acked), errors=run.errors,
               first_error=run.first_error, latencies_ms=[round(x, 3) for x in run.lat],
               elapsed_s=round(elapsed, 3))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f)
    print("loadgen sessions=%d sent=%d acked=%d errors=%d elapsed=%.2fs p50=%.2fms p99=%.2fms%s" % (
        a.sessions, run.sent, len(run.acked), run.errors, elapsed, pct(50), pct(99),
        (" first_error=" + run.first_error) if run.first_error else ""), flush=True)


if __name__ == "__main__":
    socket.setdefaulttimeout(60)
    sys.exit(main())
