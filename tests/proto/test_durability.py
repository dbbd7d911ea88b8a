"""Durability (design.md §4): nothing answered 250 is lost across kill -9; partial spool files are
removed at start; storage failures answer 451 and leave nothing behind."""
import fcntl
import os
import re
import shutil
import subprocess
import threading
import time

import pytest

from gannet import EXT, QUEUED_RE, SmtpConn, make_message, token

DUR = "dur@example.test"


def _tokens_in_mailbox(g, addr, wanted):
    """The subset of `wanted` tokens present in addr's mailbox (from `mailbox list`, falling back
    to reading each message)."""
    uids, listing = g.mailbox_uids(addr)
    present = {t for t in wanted if t in listing}
    if len(present) < len(wanted):
        for u in uids:
            m = g.mailbox_cat(addr, u)
            for t in re.findall(rb"dur-[0-9a-f-]+", m):
                present.add(t.decode())
    return present & set(wanted)


def test_kill9_loses_nothing(make_server):
    g = make_server()
    acked, lock = [], threading.Lock()
    stop = threading.Event()
    errors = []

    def client(n):
        try:
            c = SmtpConn(g.port, source="127.0.0.2", timeout=20)
            c.banner()
            c.ehlo()
            for i in range(10):
                if stop.is_set():
                    return
                t = token("dur")
                c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
                c.cmd(f"RCPT TO:<{DUR}>", "250 OK")
                r = c.data(make_message(token=t, to=DUR, body=f"client {n} msg {i}\r\n" * 50))
                assert re.fullmatch(QUEUED_RE, r.lines[0]), r.lines
                with lock:
                    acked.append(t)
        except (AssertionError, OSError) as e:
            if not stop.is_set():
                errors.append(f"client {n}: {e}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with lock:
            if len(acked) >= 60:
                break
        time.sleep(0.01)
    stop.set()
    g.kill9()
    for t in threads:
        t.join(30)
    with lock:
        acked_now = list(acked)
    assert not errors, "errors before the kill:\n" + "\n".join(errors[:5])
    assert len(acked_now) >= 60, f"only {len(acked_now)} messages accepted in 60 s"
    print(f"\n{len(acked_now)} messages acknowledged before kill -9")

    g.start()
    tmpdir = g.data / "spool" / "tmp"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = os.listdir(tmpdir) if tmpdir.exists() else []
        if not left:
            break
        time.sleep(0.2)
    assert not left, f"partial spool files left after restart: {left[:10]}"

    deadline = time.monotonic() + 60
    missing = set(acked_now)
    while time.monotonic() < deadline:
        missing = set(acked_now) - _tokens_in_mailbox(g, DUR, acked_now)
        if not missing:
            break
        time.sleep(0.5)
    assert not missing, f"{len(missing)} of {len(acked_now)} acknowledged messages lost: " \
                        f"{sorted(missing)[:5]}"


def test_partial_spool_files_removed_at_start(make_server):
    g = make_server(start=False)
    tmpdir = g.data / "spool" / "tmp"
    tmpdir.mkdir(parents=True, exist_ok=True)
    junk = tmpdir / "0123456789ABCDEF.tmp"
    junk.write_bytes(b"Subject: partial\r\n\r\nhalf")
    g.start()
    deadline = time.monotonic() + 5
    while junk.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not junk.exists(), "partial spool file still there after start"
    assert re.search(r"0123456789ABCDEF", g.log()), "removal of the partial file is not logged"


@pytest.mark.parametrize("where,body", [
    # small messages are appended to a segment file (queue_segment.h) ...
    ("blobs/seg", "Hello.\r\n"),
    # ... large ones are written to a spool file of their own as they arrive
    ("spool/tmp", ("x" * 998 + "\r\n") * 400),
], ids=["segment", "spool-file"])
def test_unwritable_spool_answers_451(make_server, where, body):
    g = make_server()
    broken = g.data / where
    if broken.exists():
        shutil.rmtree(broken)
    broken.write_bytes(b"not a directory")  # fails for root too
    tok = token()
    try:
        with g.session() as c:
            c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
            c.cmd("RCPT TO:<user@example.test>", "250 OK")
            c.send("DATA")
            r = c.reply()
            if r.lines != ["451 Rejected - No data saved."]:
                assert r.lines == ["354 OK, send."], r.lines
                c.sendraw(make_message(token=tok, body=body) + b"\r\n.\r\n")
                c.expect("451 Rejected - No data saved.", timeout=20)
            # the session goes on: nothing open, a new transaction may start
            c.cmd("RCPT TO:<user@example.test>", "503 Must have sender first.")
            broken.unlink()
            broken.mkdir()
            c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
            c.cmd("RCPT TO:<user@example.test>", "250 OK")
            c.data(make_message(token=tok + "-ok", body=body), expect="queued")
    finally:
        if broken.is_file():
            broken.unlink()
            broken.mkdir()
    g.wait_for("user@example.test", tok + "-ok")
    assert len(g.find("user@example.test", tok)) == 1


def _count_files(root):
    n = 0
    for _, _, files in os.walk(root):
        n += len(files)
    return n


def test_database_locked_at_commit_answers_451(make_server):
    """A writer holding the database longer than the busy timeout (5 s): the commit fails, the
    client gets 451, the blob is removed; afterwards mail flows again."""
    g = make_server()
    with g.session() as c:  # warm up: one message through, so all tables exist and are cached
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<user@example.test>", "250 OK")
        c.data(make_message(token=token()), expect="queued")
    time.sleep(1.0)  # let local delivery finish
    blobs_before = _count_files(g.data / "blobs") if (g.data / "blobs").exists() else 0
    tok = token()
    locker = subprocess.Popen(
        ["/usr/bin/python3", "-c",
         "import sqlite3,sys\n"
         f"c=sqlite3.connect({str(g.db)!r},isolation_level=None,timeout=10)\n"
         "c.execute('BEGIN EXCLUSIVE')\nprint('locked',flush=True)\nsys.stdin.readline()\n"
         "c.execute('ROLLBACK')\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout.readline().strip() == "locked"
        with g.session() as c:
            c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
            c.send("RCPT TO:<user@example.test>")
            r = c.reply(timeout=30)
            if r.lines == ["451 Temporary lookup failure"]:
                print("\nRCPT answered 451 Temporary lookup failure while the database was locked")
            else:
                assert r.lines == ["250 OK"], r.lines
                c.cmd("DATA", "354 OK, send.")
                c.sendraw(make_message(token=tok) + b"\r\n.\r\n")
                c.expect("451 Your message was received but it could not be saved. "
                         "Please retry later.", timeout=60)
                c.cmd("RCPT TO:<user@example.test>", "503 Must have sender first.")
            locker.stdin.write("\n")
            locker.stdin.flush()
            locker.wait(10)
            c.cmd("RSET", "250 OK", timeout=30)
            c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
            c.cmd("RCPT TO:<user@example.test>", "250 OK")
            c.data(make_message(token=tok + "-ok"), expect="queued", timeout=30)
    finally:
        if locker.poll() is None:
            locker.kill()
    g.wait_for("user@example.test", tok + "-ok")
    time.sleep(1.0)
    assert len(g.find("user@example.test", tok)) == 1, "the failed message was delivered"
    left = os.listdir(g.data / "spool" / "tmp")
    assert not left, f"spool files left behind: {left}"
    blobs_after = _count_files(g.data / "blobs")
    assert blobs_after <= blobs_before + 1, \
        f"blob of the failed message not removed ({blobs_before} -> {blobs_after})"


def test_database_unreadable_at_rcpt_answers_451(make_server):
    """Readers cannot get a WAL read lock (a test process holds every read-mark lock of the
    -shm file): the lookup fails and RCPT answers 451 Temporary lookup failure, never
    550 Unknown user."""
    g = make_server()
    shm = str(g.db) + "-shm"
    with g.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<user@example.test>", "250 OK")  # the database is in use (WAL)
        assert os.path.exists(shm), "database is not in WAL mode (no -shm file)"
        fd = os.open(shm, os.O_RDWR)
        # SQLite's WAL locks are bytes 120.. of the -shm file; the 5 read marks are 123..127.
        # A server thread may hold a read mark for a moment: retry.
        deadline = time.monotonic() + 10
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 5, 123)
                break
            except OSError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise
                time.sleep(0.01)
        try:
            c.send("RCPT TO:<nosuchuser-never-looked-up@example.test>")
            c.expect("451 Temporary lookup failure", timeout=60)
        finally:
            os.close(fd)
        c.cmd("RCPT TO:<nosuchuser-never-looked-up@example.test>", "550 Unknown user",
              timeout=30)
        c.cmd("RCPT TO:<user2@example.test>", "250 OK", timeout=30)
