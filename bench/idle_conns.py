#!/usr/bin/python3
"""Measure the memory cost of idle SMTP connections held open against a running server.

usage: bench/idle_conns.py PORT PID [N]
       bench/idle_conns.py hold PORT N [--starttls] [--window W] [--hold SECONDS] [--timeout SECONDS]

First form: opens N (default 1000) connections to 127.0.0.1:PORT, waits for each banner, then
reads the server's VmRSS and PSS before and after and prints the per-connection figure. Finally
checks the server still greets a new connection. Nothing is asserted; this is a measurement.

Second form (used by bench/bench.py, which measures every process of the server itself): opens N
connections, at most W (default 50) being set up at a time; each waits for the 220 banner and,
with --starttls, sends EHLO and STARTTLS and completes the TLS handshake (no certificate check:
the benchmark certificate is self-signed). Then prints one line
    READY n=N ok=K failed=F secs=S rate=K/S
and holds every connection idle until stdin is closed or --hold seconds (default 300) pass.
"""
import argparse
import asyncio
import resource
import select
import socket
import ssl
import sys
import time


def mem_kib(pid):
    rss = pss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 100)), hard))


def measure_main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    raise_nofile(n)
    rss0, pss0 = mem_kib(pid)
    conns = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        conns.append(s)
    for s in conns:
        banner = s.recv(512)
        if not banner.startswith(b"220"):
            print("unexpected banner:", banner)
    time.sleep(0.5)
    rss1, pss1 = mem_kib(pid)
    extra = socket.create_connection(("127.0.0.1", port), timeout=10)
    ok = extra.recv(512).startswith(b"220")
    extra.close()
    print(f"{n} idle connections: RSS {rss0} -> {rss1} KiB ({(rss1 - rss0) * 1024 / n:.0f} B/conn), "
          f"PSS {pss0} -> {pss1} KiB ({(pss1 - pss0) * 1024 / n:.0f} B/conn); "
          f"new connection greeted: {ok}")
    for s in conns:
        s.close()


async def read_reply(reader):
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed")
        if len(line) < 4 or line[3:4] != b"-":
            return line


async def open_one(a, ctx, sem, held):
    async with sem:
        reader, writer = await asyncio.open_connection("127.0.0.1", a.port)
        try:
            if not (await read_reply(reader)).startswith(b"220"):
                raise ConnectionError("no 220 banner")
            if a.starttls:
                writer.write(b"EHLO idle.bench.test\r\n")
                if not (await read_reply(reader)).startswith(b"250"):
                    raise ConnectionError("EHLO refused")
                writer.write(b"STARTTLS\r\n")
                if not (await read_reply(reader)).startswith(b"220"):
                    raise ConnectionError("STARTTLS refused")
                await writer.start_tls(ctx)
        except BaseException:
            writer.close()
            raise
        held.append(writer)


async def hold_async(a):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sem = asyncio.Semaphore(a.window)
    held = []
    t0 = time.monotonic()
    tasks = [asyncio.create_task(open_one(a, ctx, sem, held)) for _ in range(a.n)]
    done, pending = await asyncio.wait(tasks, timeout=a.timeout)
    for t in pending:
        t.cancel()
    secs = time.monotonic() - t0
    failed = a.n - len(held)
    print("READY n=%d ok=%d failed=%d secs=%.3f rate=%.1f" % (a.n, len(held), failed, secs,
                                                             len(held) / secs if secs else 0),
          flush=True)
    loop = asyncio.get_running_loop()
    end = time.monotonic() + a.hold
    while time.monotonic() < end:
        r = await loop.run_in_executor(None, select.select, [sys.stdin], [], [],
                                       max(0.0, min(1.0, end - time.monotonic())))
        if r[0] and not sys.stdin.readline():
            break
    for w in held:
        w.close()


def hold_main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd")
    ap.add_argument("port", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("--starttls", action="store_true")
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--hold", type=float, default=300.0)
    ap.add_argument("--timeout", type=float, default=120.0)
    a = ap.parse_args()
    raise_nofile(a.n)
    asyncio.run(hold_async(a))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "hold":
        hold_main()
    else:
        measure_main()
