#!/usr/bin/python3
"""Measure the memory cost of idle SMTP connections held open against a running gannet.

usage: bench/idle_conns.py PORT PID [N]

Opens N (default 1000) connections to 127.0.0.1:PORT, waits for each banner, then reads the
server's VmRSS and PSS before and after and prints the per-connection figure. Finally checks the
server still greets a new connection. Nothing is asserted; this is a measurement.
"""
import resource
import socket
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


def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 100)), hard))
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


if __name__ == "__main__":
    main()
