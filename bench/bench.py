#!/usr/bin/python3
"""bench/bench.py — the engine behind `make bench`: Gannet against Postfix on this machine.

usage: bench/bench.py --gannet BUILD/gannet --out DIR [--reps R] [--quick] [--results FILE]
       bench/bench.py --render DIR [--results FILE]       (rebuild the table from DIR/*.csv)
       bench/bench.py --gannet BUILD/gannet --out DIR --profile SESSIONS N SIZE   (bench/profile.sh)

Both servers listen on 127.0.0.1 only and deliver into one local mailbox (u@bench.test); each is
measured alone (the other stopped). Repetitions are the outer loop, so noise spreads over every
figure; each figure is the median of the repetitions. Raw rows go to DIR/*.csv, the table to
DIR/results.md and --results (bench/results.md). Environment: GANNET_PORT (25251),
GANNET_TLS_PORT (25252), DNS_PORT (25253, must stay closed), POSTFIX_PORT (25250) and the knobs
documented in bench/README.md (N_4K, N_100K, N_REUSE, NCONN, N_LAT1, N_LAT20, N_CRASH).
"""
import argparse
import csv
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"
SMTP_SOURCE = "/usr/sbin/smtp-source"
SENDER, RCPT = "a@bench.test", "u@bench.test"
TICK = os.sysconf("SC_CLK_TCK")
PORTS = dict(postfix=int(os.environ.get("POSTFIX_PORT", 25250)),
             gannet=int(os.environ.get("GANNET_PORT", 25251)),
             gannet_tls=int(os.environ.get("GANNET_TLS_PORT", 25252)),
             dns=int(os.environ.get("DNS_PORT", 25253)))


def log(msg):
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


# ---------------------------------------------------------------- processes and /proc

def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(root):
    """root and all its descendants."""
    if not root:
        return set()
    kids, out, todo = children_map(), set(), [root]
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo.extend(kids.get(p, []))
    return out


def cpu_seconds(pids):
    """user+sys of the processes, including their reaped children (a child that exited during a
    run moved its time into its parent's cutime/cstime, so a delta over the tree counts it)."""
    t = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                st = f.read()
            v = st[st.rindex(")") + 2:].split()
            t += int(v[11]) + int(v[12]) + int(v[13]) + int(v[14])
        except (OSError, ValueError, IndexError):
            pass
    return t / TICK


def main_thread_seconds(pid):
    """user+sys of the process's main thread (the event loop) alone."""
    try:
        with open("/proc/%d/task/%d/stat" % (pid, pid)) as f:
            st = f.read()
        v = st[st.rindex(")") + 2:].split()
        return (int(v[11]) + int(v[12])) / TICK
    except (OSError, ValueError, IndexError):
        return 0.0


def pss_kib(pids):
    tot = 0
    for p in pids:
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        tot += int(line.split()[1])
        except OSError:
            pass
    return tot


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_port(port, secs=20.0):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if port_open(port):
            return True
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------- the two servers

class Postfix:
    name = "postfix"

    def __init__(self):
        self.port = PORTS["postfix"]
        self.tls_port = None

    def sh(self, *cmd):
        r = subprocess.run([os.path.join(HERE, "postfix.sh"), *cmd], capture_output=True, text=True,
                           env=dict(os.environ, POSTFIX_PORT=str(self.port)))
        if r.returncode != 0:
            raise RuntimeError("postfix.sh %s: %s%s" % (" ".join(cmd), r.stdout, r.stderr))
        return r.stdout.strip()

    def start(self):
        self.sh("start")
        if not wait_port(self.port):
            raise RuntimeError("postfix does not answer on port %d" % self.port)

    def stop(self):
        self.sh("stop")

    def restart(self):
        self.stop()
        self.start()

    def pids(self):
        p = self.sh("pids")
        return tree(int(p)) if p.isdigit() else set()

    def queued(self):
        return int(self.sh("queue") or 0)

    def delivered(self):
        return int(self.sh("count") or 0)

    def clean(self):
        self.sh("clean")

    def version(self):
        r = subprocess.run(["postconf", "-h", "mail_version"], capture_output=True, text=True)
        return "Postfix " + r.stdout.strip()


class Gannet:
    name = "gannet"

    def __init__(self, binary, workdir):
        self.bin = binary
        self.dir = workdir
        self.conf = os.path.join(workdir, "gannet.conf")
        self.data = os.path.join(workdir, "data")
        self.template = os.path.join(workdir, "template")
        self.port, self.tls_port = PORTS["gannet"], PORTS["gannet_tls"]
        self.proc = None
        self.logf = None
        with open(self.conf, "w") as f:
            f.write("; gannet benchmark configuration (bench/bench.py)\n"
                    "[server]\nhostname = mx.bench.test\ndata_dir = %s\nlog_level = warning\n"
                    "[dns]\nnameservers = 127.0.0.1:%d\n"
                    "[smtp]\nmax_message_size = 0\n"
                    "[listener:mx]\naddress = 127.0.0.1:%d\n"
                    "[listener:tls]\naddress = 127.0.0.1:%d\nsecurity = starttls\n"
                    % (self.data, PORTS["dns"], self.port, self.tls_port))
        self.cli("init")
        self.cli("domain", "add", "bench.test")
        self.cli("account", "add", RCPT, "--password", "x")
        shutil.copytree(self.data, self.template, symlinks=True)

    def cli(self, *args):
        r = subprocess.run([self.bin, "-c", self.conf, *args], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
        return r.stdout

    def start(self):
        if self.proc:
            return
        self.logf = open(os.path.join(self.dir, "serve.log"), "a")
        self.proc = subprocess.Popen([self.bin, "-c", self.conf, "serve"], stdout=self.logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if not wait_port(self.port) or not wait_port(self.tls_port):
            self.stop()
            raise RuntimeError("gannet did not start (see %s/serve.log)" % self.dir)

    def stop(self, sig=signal.SIGTERM):
        if not self.proc:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self.logf.close()

    def restart(self):
        self.stop()
        self.start()

    def reset(self):
        """a fresh data directory (domain and account only), like an emptied Maildir"""
        self.stop()
        shutil.rmtree(self.data)
        shutil.copytree(self.template, self.data, symlinks=True)

    def pids(self):
        return tree(self.proc.pid) if self.proc else set()

    def sql(self, q):
        db = sqlite3.connect("file:%s/gannet.db?mode=ro" % self.data, uri=True, timeout=5)
        try:
            return db.execute(q).fetchone()[0]
        finally:
            db.close()

    def queued(self):
        return self.sql("SELECT count(*) FROM queue_rcpt WHERE state = 'queued'")

    def delivered(self):
        return self.sql("SELECT count(*) FROM mail")

    def clean(self):
        pass

    def subjects(self):
        out = self.cli("mailbox", "list", RCPT)
        return [line.split("\t")[-1] for line in out.splitlines()[1:]]

    def version(self):
        return "Gannet (%s, release build)" % os.path.relpath(self.bin, os.path.dirname(HERE))


# ---------------------------------------------------------------- measurements

def wait_drained(srv, secs=300):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if srv.queued() == 0:
            return True
        time.sleep(0.2)
    log("WARN %s: queue not drained after %ds" % (srv.name, secs))
    return False


def write_row(out, name, row):
    path = os.path.join(out, name)
    new = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)


def throughput(srv, a, rep, size, conc, n, reuse):
    """smtp-source: N messages, CONC sessions; accepted = N / time until smtp-source exits (every
    message got its 250), delivered = N / time until N more messages are in the mailbox."""
    wait_drained(srv)
    srv.clean()
    base = srv.delivered()
    os.sync()
    time.sleep(0.5)
    pids = srv.pids()
    c0 = cpu_seconds(pids)
    t0 = time.monotonic()
    cmd = [SMTP_SOURCE] + (["-d"] if reuse else []) + [
        "-s", str(conc), "-m", str(n), "-l", str(size), "-f", SENDER, "-t", RCPT,
        "127.0.0.1:%d" % srv.port]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, err = p.communicate(timeout=a.timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
    t_acc = time.monotonic() - t0
    t_del, got = None, 0
    end = time.monotonic() + a.timeout
    while time.monotonic() < end:
        got = srv.delivered() - base
        if got >= n:
            t_del = time.monotonic() - t0
            break
        time.sleep(0.02)
    cpu = cpu_seconds(srv.pids() | pids) - c0
    row = dict(server=srv.name, rep=rep, mode="reuse" if reuse else "once", size=size, conc=conc, n=n,
               rc=p.returncode, accept_s="%.3f" % t_acc, accept_mps="%.1f" % (n / t_acc),
               deliver_s="%.3f" % t_del if t_del else "", deliver_mps="%.1f" % (n / t_del) if t_del else "",
               delivered=got, cpu_s=round(cpu, 3), cpu_per_1000=round(cpu * 1000.0 / n, 3),
               err=(err or "").strip().replace("\n", " | ")[:200])
    write_row(a.out, "throughput.csv", row)
    log("%-7s %-5s %3d KiB x%-3d N=%-5d rc=%s accepted %7s/s delivered %7s/s cpu %.2fs/1000 %s" % (
        srv.name, row["mode"], size // 1024, conc, n, p.returncode, row["accept_mps"],
        row["deliver_mps"] or "-", row["cpu_per_1000"], row["err"]))


def loadgen(port, sessions, n, size=4096, tag="lat", out=None, reuse=False, timeout=600):
    cmd = [PY, os.path.join(HERE, "loadgen.py"), str(port), "--sessions", str(sessions), "--messages",
           str(n), "--size", str(size), "--tag", tag, "--timeout", str(timeout)]
    if reuse:
        cmd.append("--reuse")
    if out:
        cmd += ["--out", out]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def pct(vals, p):
    v = sorted(vals)
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))] if v else float("nan")


def latency(srv, a, rep, sessions, n):
    wait_drained(srv)
    js = os.path.join(a.out, "loadgen-%s.json" % srv.name)
    p = loadgen(srv.port, sessions, n, out=js, tag="lat%d" % rep)
    line = p.communicate(timeout=a.timeout)[0].strip()
    res = json.load(open(js))
    lat = res["latencies_ms"]
    row = dict(server=srv.name, rep=rep, sessions=sessions, n=n, acked=res["acked"], errors=res["errors"],
               p50_ms=round(pct(lat, 50), 3), p99_ms=round(pct(lat, 99), 3), max_ms=round(max(lat or [0]), 3),
               msgs_per_s=round(res["acked"] / res["elapsed_s"], 1) if res["elapsed_s"] else "")
    write_row(a.out, "latency.csv", row)
    log("%-7s latency x%-3d %s" % (srv.name, sessions, line))


def idle(srv, a, rep, tls):
    """hold NCONN idle connections; PSS of every server process, minus the idle baseline, per conn"""
    srv.restart()
    time.sleep(2.0)
    pids0 = srv.pids()
    base = pss_kib(pids0)
    c0 = cpu_seconds(pids0)
    port = srv.tls_port if tls else srv.port
    cmd = [PY, os.path.join(HERE, "idle_conns.py"), "hold", str(port), str(a.nconn), "--hold", "300",
           "--timeout", "180"] + (["--starttls"] if tls else [])
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    cpu = cpu_seconds(srv.pids() | pids0) - c0
    time.sleep(3.0)   # let every process and session settle
    pids1 = srv.pids()
    loaded = pss_kib(pids1)
    p.stdin.close()
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    kv = dict(x.split("=", 1) for x in line.split()[1:]) if line.startswith("READY") else {}
    ok = int(kv.get("ok", 0))
    row = dict(server=srv.name, rep=rep, tls=int(tls), nconn=a.nconn, ok=ok, secs=kv.get("secs", ""),
               rate=kv.get("rate", ""), procs_idle=len(pids0), procs_loaded=len(pids1), pss_idle_kib=base,
               pss_loaded_kib=loaded, kib_per_conn=round((loaded - base) / ok, 2) if ok else "",
               cpu_ms_per_conn=round(cpu * 1000.0 / ok, 3) if ok else "")
    write_row(a.out, "idle.csv", row)
    log("%-7s idle%s %d/%d conns in %ss (%s/s): procs %d->%d PSS %d->%d KiB = %s KiB/conn, %s CPU ms/conn" % (
        srv.name, " TLS" if tls else "", ok, a.nconn, row["secs"], row["rate"], len(pids0), len(pids1), base,
        loaded, row["kib_per_conn"], row["cpu_ms_per_conn"]))


def crash_check(g, a, rep):
    """kill -9 Gannet during a 100-session run, restart it, and check that every message that got
    its 250 is in the mailbox (delivered >= acknowledged, and by subject: none missing)."""
    wait_drained(g)
    base = g.delivered()
    tag = "crash%d" % int(time.time())
    js = os.path.join(a.out, "crash-loadgen.json")
    p = loadgen(g.port, 100, a.n_crash, tag=tag, out=js)
    end = time.monotonic() + 120
    while time.monotonic() < end and g.delivered() - base < a.n_crash // 3:
        time.sleep(0.02)
    killed_at = g.delivered() - base
    g.stop(sig=signal.SIGKILL)
    line = p.communicate(timeout=a.timeout)[0].strip()
    res = json.load(open(js))
    g.start()
    wait_drained(g)
    subj = g.subjects()
    got = [s for s in subj if s.startswith("bench %s-" % tag)]
    seqs = {int(s.rsplit("-", 1)[1]) for s in got}
    acked = set(res["acked_seqs"])
    missing = sorted(acked - seqs)
    row = dict(rep=rep, sessions=100, n=a.n_crash, in_mailbox_at_kill=killed_at, sent=res["sent"],
               acknowledged=len(acked), delivered=len(got), delivered_unique=len(seqs),
               unacked_but_delivered=len(seqs - acked), missing=len(missing),
               ok=int(not missing and len(seqs) >= len(acked)))
    write_row(a.out, "crash.csv", row)
    log("gannet  crash check: killed -9 with %d in the mailbox; %s; after restart %d delivered (%d unique) "
        ">= %d acknowledged: %s%s" % (killed_at, line, len(got), len(seqs), len(acked),
                                       "OK" if row["ok"] else "FAILED",
                                       (" missing %s" % missing[:20]) if missing else ""))


# ---------------------------------------------------------------- the run

def machine_line(out):
    model = "?"
    mem = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal"):
            mem = "%.0f GiB" % (int(line.split()[1]) / 1048576)
    kv = disk_probe(out, 0)
    with open(os.path.join(out, "machine.json"), "w") as f:
        json.dump(dict(nproc=os.cpu_count(), model=model, mem=mem, kernel=platform.release(), disk=kv), f)
    log("machine: %d CPUs %s, %s" % (os.cpu_count(), model, mem))


def disk_probe(out, rep):
    """bench/disk.py on the disk the servers use; one row of disk.csv per call"""
    r = subprocess.run([PY, os.path.join(HERE, "disk.py"), "/var/tmp"], capture_output=True, text=True)
    kv = dict(x.split("=") for x in r.stdout.split())
    write_row(out, "disk.csv", dict(rep=rep, **kv))
    log("disk (durable 4 KiB ops/s, one thread): %s" % r.stdout.strip())
    return kv


def run(a):
    os.makedirs(a.out, exist_ok=True)
    for p in (PORTS["postfix"], PORTS["gannet"], PORTS["gannet_tls"]):
        if port_open(p):
            sys.exit("port %d is in use on 127.0.0.1: set POSTFIX_PORT/GANNET_PORT/GANNET_TLS_PORT" % p)
    try:   # Gannet's nameserver must be a closed UDP port: nothing may answer its queries
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", PORTS["dns"]))
    except OSError:
        sys.exit("UDP port 127.0.0.1:%d is in use: set DNS_PORT to a closed port" % PORTS["dns"])
    machine_line(a.out)
    work = tempfile.mkdtemp(prefix="gannet-bench.", dir="/var/tmp")
    pf, g = Postfix(), Gannet(a.gannet, work)
    with open(os.path.join(a.out, "versions.json"), "w") as f:
        json.dump(dict(postfix=pf.version(), gannet=g.version(), reps=a.reps, quick=a.quick), f)
    t_start = time.monotonic()
    try:
        pf.stop()
        for rep in range(1, a.reps + 1):
            for srv in (pf, g):
                other = g if srv is pf else pf
                other.stop()
                if srv is g:
                    g.reset()
                srv.start()
                log("== rep %d/%d: %s" % (rep, a.reps, srv.name))
                if srv is pf:
                    disk_probe(a.out, rep)
                # smoke test: one message accepted and delivered
                wait_drained(srv)
                srv.clean()
                p = loadgen(srv.port, 1, 1, tag="smoke")
                p.communicate(timeout=60)
                d0 = time.monotonic()
                while srv.delivered() < 1 and time.monotonic() - d0 < 20:
                    time.sleep(0.05)
                if srv.delivered() < 1:
                    raise RuntimeError("%s: smoke test message not delivered" % srv.name)
                latency(srv, a, rep, 1, a.n_lat1)
                latency(srv, a, rep, 20, a.n_lat20)
                for size, n in ((4096, a.n_4k), (102400, a.n_100k)):
                    for conc in (1, 20, 100):
                        throughput(srv, a, rep, size, conc, n, reuse=False)
                for conc in (1, 20, 100):
                    throughput(srv, a, rep, 4096, conc, a.n_reuse, reuse=True)
                if srv is g and rep == 1:
                    crash_check(g, a, rep)
                idle(srv, a, rep, tls=False)
                if srv is g:
                    idle(srv, a, rep, tls=True)
                wait_drained(srv)
                srv.stop()
    finally:
        g.stop()
        pf.stop()
        log("total %.0f s; gannet work dir %s" % (time.monotonic() - t_start, work))
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    render(a.out, a.results)


# ---------------------------------------------------------------- profile (bench/profile.sh)

def smtp_source(port, conc, n, size):
    subprocess.run([SMTP_SOURCE, "-s", str(conc), "-m", str(n), "-l", str(size), "-f", SENDER, "-t", RCPT,
                    "127.0.0.1:%d" % port], check=True, stdout=subprocess.DEVNULL, timeout=600)


def perf_trace_summary(path, main_pid):
    """perf trace -s output -> {thread kind: {syscall: [calls, msec]}} (main thread vs workers)"""
    out, who = {}, None
    for line in open(path):
        m = re.match(r"\s*\S+ \((\d+)\), \d+ events", line)
        if m:
            who = "main thread" if int(m.group(1)) == main_pid else "worker threads (summed)"
            continue
        f = line.split()
        if who and len(f) >= 5 and re.match(r"^[a-z_0-9]+$", f[0]) and f[1].isdigit():
            s = out.setdefault(who, {}).setdefault(f[0], [0, 0.0])
            s[0] += int(f[1])
            s[1] += float(f[3])
    return out


def profile(a):
    os.makedirs(a.out, exist_ok=True)
    conc, n, size = a.profile
    work = tempfile.mkdtemp(prefix="gannet-profile.", dir="/var/tmp")
    g = Gannet(a.gannet, work)
    L = ["gannet profile: smtp-source -s %d -m %d -l %d, one message per connection (%s)" % (
        conc, n, size, time.strftime("%Y-%m-%d %H:%M")), ""]
    try:
        g.start()
        smtp_source(g.port, conc, 300, size)   # warm up
        pid = g.proc.pid
        # 1. plain: rate, machine CPU, gannet CPU
        with open("/proc/stat") as f:
            s0 = [int(x) for x in f.readline().split()[1:]]
        c0, m0, t0 = cpu_seconds({pid}), main_thread_seconds(pid), time.monotonic()
        smtp_source(g.port, conc, n, size)
        mc = main_thread_seconds(pid) - m0
        el = time.monotonic() - t0
        with open("/proc/stat") as f:
            s1 = [int(x) for x in f.readline().split()[1:]]
        d = [y - x for x, y in zip(s0, s1)]
        tot = sum(d)
        gc = cpu_seconds({pid}) - c0
        L += ["untraced: %.0f msg/s; machine %.0f%% busy, %.0f%% idle, %.0f%% iowait (%d CPUs); gannet %.2f CPU-s "
              "= %.0f%% of one core, %.2f ms CPU per message; event-loop thread %.0f%% of one core "
              "(%.2f ms per message)" % (
                  n / el, 100.0 * (tot - d[3] - d[4]) / tot, 100.0 * d[3] / tot, 100.0 * d[4] / tot,
                  os.cpu_count(), gc, 100.0 * gc / el, 1000.0 * gc / n, 100.0 * mc / el, 1000.0 * mc / n), ""]
        # 2. perf record: where the CPU goes
        data = os.path.join(a.out, "perf.data")
        rec = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-g", "-p", str(pid),
                                "-o", data], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        smtp_source(g.port, conc, n, size)
        rec.send_signal(signal.SIGINT)
        rec.wait(timeout=60)

        def report(*args):
            r = subprocess.run(["perf", "report", "-i", data, "--stdio", *args], capture_output=True, text=True)
            return [x for x in r.stdout.splitlines() if x.strip() and not x.startswith("#")]

        L += ["CPU samples by object (perf record -e cpu-clock):"] + report(
            "--no-children", "--sort", "dso", "-g", "none")[:8] + [""]
        L += ["CPU samples by system call (children included):"] + [
            x for x in report("--children", "--sort", "sym", "-g", "none") if "__x64_sys_" in x][:12] + [""]
        L += ["hottest symbols (self):"] + report("--no-children", "--sort", "dso,sym", "-g", "none")[:25] + [""]
        # 3. perf trace: time per system call, main thread vs workers (includes sleeping/waiting)
        tr = os.path.join(a.out, "perf-trace.txt")
        pt = subprocess.Popen(["perf", "trace", "-s", "-p", str(pid), "-o", tr],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        t0 = time.monotonic()
        smtp_source(g.port, conc, n, size)
        el = time.monotonic() - t0
        time.sleep(0.5)
        pt.send_signal(signal.SIGINT)
        pt.wait(timeout=60)
        L += ["system calls under perf trace (run slowed to %.0f msg/s), per message:" % (n / el)]
        for who, calls in sorted(perf_trace_summary(tr, pid).items()):
            L.append("  %s:" % who)
            for name, (c, ms) in sorted(calls.items(), key=lambda kv: -kv[1][1])[:12]:
                L.append("    %-16s %7.2f calls %8.3f ms" % (name, c / n, ms / n))
        L.append("")
    finally:
        g.stop()
        shutil.rmtree(work, ignore_errors=True)
    text = "\n".join(L)
    with open(os.path.join(a.out, "profile.txt"), "w") as f:
        f.write(text + "\n")
    print(text)


# ---------------------------------------------------------------- the table

def rows(out, name):
    p = os.path.join(out, name)
    return list(csv.DictReader(open(p))) if os.path.exists(p) else []


def med(vals):
    v = [float(x) for x in vals if x not in ("", None)]
    return statistics.median(v) if v else None


def fmt(v, nd=0):
    if v is None:
        return "–"
    return ("%." + str(nd) + "f") % v if nd else "{:,.0f}".format(v)


def ratio(gv, pv, nd=2):
    if gv is None or pv is None or pv == 0:
        return "–"
    return "%.*f×" % (nd, gv / pv)


def render(out, results):
    tp, lat, idl, crash = rows(out, "throughput.csv"), rows(out, "latency.csv"), rows(out, "idle.csv"), \
        rows(out, "crash.csv")
    mach = json.load(open(os.path.join(out, "machine.json")))
    ver = json.load(open(os.path.join(out, "versions.json")))
    reps = max([int(r["rep"]) for r in tp] or [0])

    def pick(rs, **kw):
        return [r for r in rs if all(str(r[k]) == str(v) for k, v in kw.items())]

    def span(vals):
        v = [float(x) for x in vals if x not in ("", None)]
        return " (%s..%s)" % (fmt(min(v)), fmt(max(v))) if len(v) > 1 else ""

    L = []
    date = datetime.datetime.fromtimestamp(os.path.getmtime(os.path.join(out, "machine.json"))) \
        .strftime("%Y-%m-%d %H:%M")
    dks = rows(out, "disk.csv") or [mach["disk"]]
    dk = {k: med(r.get(k) for r in dks) or 0 for k in ("file", "file_dir", "log1", "log32")}
    if len(dks) > 1:
        dkspan = lambda k: span(r.get(k) for r in dks)
    else:
        dkspan = lambda k: ""
    L += ["# Gannet vs Postfix — benchmark results", "",
          "Generated by `make bench` (bench/bench.py) on %s%s. Do not edit: rerun `make bench`." % (
              date, " — **QUICK smoke run, small N: not a measurement**" if ver.get("quick") else ""), "",
          "- Machine: %d CPUs (%s), %s RAM, kernel %s; disk (`bench/disk.py`: one thread, 4 KiB, durable "
          "ops/s, %s): write+fsync+rename %s%s, + directory fsync %s%s, append+fdatasync per "
          "record %s%s, per group of 32 %s%s." % (
              mach["nproc"], mach["model"], mach["mem"], mach["kernel"],
              "median of %d probes spread over the run" % len(dks) if len(dks) > 1 else "one probe",
              fmt(dk["file"]),
              dkspan("file"), fmt(dk["file_dir"]), dkspan("file_dir"), fmt(dk["log1"]), dkspan("log1"),
              fmt(dk["log32"]), dkspan("log32")),
          "- Servers: %s (virtual(8) into a Maildir, with its own fsyncs); %s (`250` only once the message "
          "bytes are durable — appended to a segment file, one fdatasync per group-commit batch — and the "
          "SQLite transaction with its queue rows is committed; a local recipient's mailbox row is written "
          "in that same transaction). Both on 127.0.0.1, "
          "each measured alone; every figure is the median of %d run(s) (min..max where several)." % (
              ver["postfix"], ver["gannet"], reps),
          "- Accepted msg/s = N / time until `smtp-source` exits (every message got its `250`); delivered "
          "msg/s = N / time until all N are in the mailbox; CPU = user+sys of every server process "
          "(accept and delivery), per 1,000 messages.", ""]

    L += ["## Summary (Gannet / Postfix)", "",
          "| figure | Gannet | Postfix | Gannet/Postfix | target |", "|---|---|---|---|---|"]

    def tpv(srv, mode, size, conc, col):
        return med(r[col] for r in pick(tp, server=srv, mode=mode, size=size, conc=conc))

    for conc in (20, 100):
        g, p = tpv("gannet", "once", 4096, conc, "accept_mps"), tpv("postfix", "once", 4096, conc, "accept_mps")
        L.append("| accepted msg/s, 4 KiB, %d sessions | %s | %s | %s | ≥ 5× %s |" % (
            conc, fmt(g), fmt(p), ratio(g, p), mark(g, p, 5)))
    for conc in (20, 100):
        g, p = tpv("gannet", "once", 4096, conc, "deliver_mps"), tpv("postfix", "once", 4096, conc, "deliver_mps")
        L.append("| delivered msg/s, 4 KiB, %d sessions | %s | %s | %s | ≥ 3× %s |" % (
            conc, fmt(g), fmt(p), ratio(g, p), mark(g, p, 3)))
    gi = med(r["kib_per_conn"] for r in pick(idl, server="gannet", tls=0))
    pi = med(r["kib_per_conn"] for r in pick(idl, server="postfix", tls=0))
    L.append("| memory per idle connection, KiB (PSS, %s held) | %s | %s | %s | ≤ 32 KiB %s |" % (
        fmt(med(r["nconn"] for r in idl)), fmt(gi, 1), fmt(pi, 1), ratio(gi, pi, 3),
        "" if gi is None else ("✅" if gi <= 32 else "❌")))
    g = med(r["p99_ms"] for r in pick(lat, server="gannet", sessions=20))
    p = med(r["p99_ms"] for r in pick(lat, server="postfix", sessions=20))
    L.append("| p99 latency connect→250, 20 sessions, ms | %s | %s | %s | ≤ 1× %s |" % (
        fmt(g, 1), fmt(p, 1), ratio(g, p), "" if g is None or p is None else ("✅" if g <= p else "❌")))
    g, p = tpv("gannet", "once", 4096, 20, "cpu_per_1000"), tpv("postfix", "once", 4096, 20, "cpu_per_1000")
    L.append("| CPU s per 1,000 messages, 4 KiB, 20 sessions | %s | %s | %s | |" % (
        fmt(g, 2), fmt(p, 2), ratio(g, p)))
    gt = pick(idl, server="gannet", tls=1)
    if gt:
        L.append("| STARTTLS: handshakes/s (50 at a time, Python client) | %s | – | | |" % fmt(
            med(r["rate"] for r in gt)))
        L.append("| STARTTLS: server CPU ms per handshake | %s | – | | |" % fmt(
            med(r["cpu_ms_per_conn"] for r in gt), 2))
        L.append("| STARTTLS: memory per idle TLS connection, KiB | %s | – | | |" % fmt(
            med(r["kib_per_conn"] for r in gt), 1))
    for c in crash:
        L.append("| crash check: `kill -9` during 100 sessions, then restart | %s acknowledged, %s "
                 "delivered (%s unacknowledged also kept), %s missing | | | delivered ≥ acknowledged %s |" % (
                     c["acknowledged"], c["delivered_unique"], c["unacked_but_delivered"], c["missing"],
                     "✅" if c["ok"] == "1" else "❌"))

    L += ["", "## Throughput", "",
          "| mode | size | sessions | N | Gannet accepted/s | Postfix accepted/s | ratio | Gannet delivered/s "
          "| Postfix delivered/s | ratio | Gannet CPU s/1000 | Postfix CPU s/1000 | errors (G/P) |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for mode, size in (("once", 4096), ("once", 102400), ("reuse", 4096)):
        for conc in (1, 20, 100):
            gr, pr = pick(tp, server="gannet", mode=mode, size=size, conc=conc), \
                pick(tp, server="postfix", mode=mode, size=size, conc=conc)
            if not gr and not pr:
                continue
            ga, pa = med(r["accept_mps"] for r in gr), med(r["accept_mps"] for r in pr)
            gd, pd = med(r["deliver_mps"] for r in gr), med(r["deliver_mps"] for r in pr)
            bad = lambda rs: sum(1 for r in rs if r["rc"] != "0" or int(r["delivered"]) < int(r["n"]))
            L.append("| %s | %d KiB | %d | %s | %s%s | %s%s | %s | %s | %s | %s | %s | %s | %d/%d |" % (
                "1 msg/conn" if mode == "once" else "all msgs on one conn (`-d`)", size // 1024, conc,
                "/".join(sorted({r["n"] for r in gr + pr})), fmt(ga), span(r["accept_mps"] for r in gr),
                fmt(pa), span(r["accept_mps"] for r in pr), ratio(ga, pa), fmt(gd), fmt(pd), ratio(gd, pd),
                fmt(med(r["cpu_per_1000"] for r in gr), 2), fmt(med(r["cpu_per_1000"] for r in pr), 2),
                bad(gr), bad(pr)))

    L += ["", "## Latency, connect → `250` after DATA (bench/loadgen.py, 4 KiB, one message per connection)", "",
          "| sessions | N | Gannet p50 ms | Postfix p50 ms | Gannet p99 ms | Postfix p99 ms | p99 ratio |",
          "|---|---|---|---|---|---|---|"]
    for s in (1, 20):
        gr, pr = pick(lat, server="gannet", sessions=s), pick(lat, server="postfix", sessions=s)
        if not gr and not pr:
            continue
        g99, p99 = med(r["p99_ms"] for r in gr), med(r["p99_ms"] for r in pr)
        L.append("| %d | %s | %s | %s | %s | %s | %s |" % (
            s, "/".join(sorted({r["n"] for r in gr + pr})), fmt(med(r["p50_ms"] for r in gr), 2),
            fmt(med(r["p50_ms"] for r in pr), 2), fmt(g99, 2), fmt(p99, 2), ratio(g99, p99)))

    L += ["", "## Idle connections (PSS of all server processes, loaded − idle, per connection)", "",
          "| server | TLS | held | processes idle → loaded | PSS idle MiB | PSS loaded MiB | KiB/conn | "
          "set-up rate conn/s | server CPU ms/conn |", "|---|---|---|---|---|---|---|---|---|"]
    for srv in ("gannet", "postfix"):
        for tls in (0, 1):
            rs = pick(idl, server=srv, tls=tls)
            if not rs:
                continue
            L.append("| %s | %s | %s | %s → %s | %s | %s | %s | %s | %s |" % (
                srv, "STARTTLS" if tls else "no", fmt(med(r["ok"] for r in rs)),
                fmt(med(r["procs_idle"] for r in rs)), fmt(med(r["procs_loaded"] for r in rs)),
                fmt(med(r["pss_idle_kib"] for r in rs) / 1024, 1), fmt(med(r["pss_loaded_kib"] for r in rs) / 1024, 1),
                fmt(med(r["kib_per_conn"] for r in rs), 1), fmt(med(r["rate"] for r in rs)),
                fmt(med(r["cpu_ms_per_conn"] for r in rs), 2)))

    g1 = tpv("gannet", "once", 4096, 1, "accept_mps")
    L += ["", "## Reading the numbers", "",
          "- Disk ceilings from the machine line: one durable file per message (write+fsync+rename+"
          "directory fsync, one thread) %s/s; an append log with one fdatasync per group of 32 records "
          "%s/s. Gannet appends messages to segment files and shares each fdatasync and each SQLite "
          "commit among the sessions that finish DATA together, so it is not bound by the first figure "
          "(at 1 session, %s/s: two fdatasyncs per message, segment and WAL, in sequence). At 20 and 100 "
          "sessions the limit is CPU: the load generator (`smtp-source`) and Gannet share the same 2 "
          "cores. `bench/profile.sh` shows where Gannet's time goes." % (
              fmt(dk["file_dir"]), fmt(dk["log32"]), fmt(g1)),
          "- This machine varies by ±30 % between runs: compare the two servers within this run, as ratios.",
          ""]
    text = "\n".join(L)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(text)
    if results:
        with open(results, "w") as f:
            f.write(text)
    print(text)


def mark(g, p, target):
    if g is None or p is None or p == 0:
        return ""
    return "✅" if g / p >= target else "❌"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gannet")
    ap.add_argument("--out")
    ap.add_argument("--reps", type=int, default=int(os.environ.get("REPS", 3)))
    ap.add_argument("--quick", action="store_true", default=os.environ.get("QUICK", "") not in ("", "0"))
    ap.add_argument("--results", help="also write the table here (bench/results.md)")
    ap.add_argument("--render", metavar="DIR", help="only rebuild the table from DIR/*.csv")
    ap.add_argument("--keep", action="store_true", help="keep Gannet's temporary work directory")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--profile", nargs=3, type=int, metavar=("SESSIONS", "N", "SIZE"),
                    help="profile gannet alone (bench/profile.sh) instead of the benchmark")
    a = ap.parse_args()
    if a.render:
        render(a.render, a.results)
        return
    if a.profile:
        if not a.gannet or not a.out:
            ap.error("--gannet and --out are required")
        profile(a)
        return
    if not a.gannet or not a.out:
        ap.error("--gannet and --out are required")
    env = lambda k, full, quick: int(os.environ.get(k, quick if a.quick else full))
    a.n_4k, a.n_100k = env("N_4K", 4000, 300), env("N_100K", 2000, 150)
    a.n_reuse, a.nconn = env("N_REUSE", 4000, 300), env("NCONN", 1000, 200)
    a.n_lat1, a.n_lat20 = env("N_LAT1", 300, 50), env("N_LAT20", 2000, 300)
    a.n_crash = env("N_CRASH", 3000, 600)
    if a.quick and "REPS" not in os.environ:
        a.reps = 1
    run(a)


if __name__ == "__main__":
    main()
