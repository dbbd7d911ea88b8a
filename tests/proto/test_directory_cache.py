"""The directory cache (docs/smtp.md, "Directory cache"; src/dir/dir_cache.h): lookups are answered
from memory, changes made with the gannet command are seen by the very next SMTP command, changes
made behind its back are seen after SIGHUP."""
import signal
import sqlite3
import time

from gannet import EXT


def _sql(g, q, *args):
    db = sqlite3.connect(str(g.db), timeout=10)
    try:
        db.execute(q, args)
        db.commit()
    finally:
        db.close()


def test_cli_changes_are_seen_by_the_next_command(make_server):
    g = make_server()
    addr = "cached@example.test"
    with g.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        # looked up (and remembered) twice: the second answer comes from the cache
        c.cmd(f"RCPT TO:<{addr}>", "550 Unknown user")
        c.cmd(f"RCPT TO:<{addr}>", "550 Unknown user")
        g.cli("account", "add", addr, "--password", "pw-123456")
        c.cmd(f"RCPT TO:<{addr}>", "250 OK")
        g.cli("account", "set", addr, "--disabled")
        c.cmd(f"RCPT TO:<{addr}>", "550 Account is not active.")
        g.cli("account", "del", addr)
        c.cmd(f"RCPT TO:<{addr}>", "550 Unknown user")


def test_iprange_change_is_seen_by_the_next_connection(make_server):
    g = make_server()
    with g.session(source="127.0.0.12") as c:  # admitted by the default "Internet" range
        c.cmd("NOOP", "250 OK")
    g.cli("iprange", "add", "Blocked", "--from", "127.0.0.12", "--priority", "50",
          "--allow", "none")
    with g.connect("127.0.0.12", banner=False) as c:
        c.assert_closed()


def test_edits_behind_gannets_back_are_seen_after_sighup(make_server):
    g = make_server()
    with g.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<user@example.test>", "250 OK")  # now cached
    # Disable the account with the sqlite3 shell instead of the gannet command: the server is
    # not told, so its cache still answers from memory (this is what proves the cache is used).
    _sql(g, "UPDATE account SET enabled = 0 WHERE address = 'user@example.test'")
    with g.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<user@example.test>", "250 OK")
    g.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while True:
        with g.session() as c:
            c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
            c.send("RCPT TO:<user@example.test>")
            r = c.reply().lines[-1]
        if r == "550 Account is not active." or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r == "550 Account is not active."
    _sql(g, "UPDATE account SET enabled = 1 WHERE address = 'user@example.test'")
    g.proc.send_signal(signal.SIGHUP)


def test_cache_can_be_turned_off(make_server):
    g = make_server(extra_conf="[server]\ndirectory_cache = no")
    with g.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<user@example.test>", "250 OK")
    _sql(g, "UPDATE account SET enabled = 0 WHERE address = 'user@example.test'")
    with g.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<user@example.test>", "550 Account is not active.")


def test_a_cache_miss_is_not_a_lookup_failure(make_server):
    """The loop asks the cache first; a miss goes to a worker quietly: no 451 warning in the log
    for a directory that works."""
    g = make_server()
    with g.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<user@example.test>", "250 OK")      # cold cache: answered by a worker
        c.cmd("RCPT TO:<nobody@example.test>", "550 Unknown user")
    assert "temporary failure" not in g.log()
    assert "answering 451" not in g.log()
