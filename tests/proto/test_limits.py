"""Limits (replies.md "Connection and transport"): command length, excessive data, idle timeout,
the invalid-command counter, 1,000 idle connections, running out of file descriptors."""
import selectors
import socket
import time

from gannet import EXT, HOSTNAME

BYE = "421 Too many invalid commands. Bye!"


def test_line_too_long(server):
    with server.session() as c:
        c.send("NOOP " + "x" * 506)  # 511 characters
        c.expect("500 Line too long")
        c.cmd("NOOP", "250 OK")


def test_line_of_510_characters_is_fine(server):
    with server.session() as c:
        line = "NOOP " + "x" * 505
        assert len(line) == 510
        c.cmd(line, "250 OK")


def test_line_too_long_in_transaction_keeps_transaction(server):
    with server.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<" + "a" * 600 + "@example.test>", "500 Line too long")
        c.cmd("RCPT TO:<user@example.test>", "250 OK")
        c.cmd("DATA", "354 OK, send.")


def test_very_long_line_below_excessive_limit(server):
    with server.session() as c:
        c.sendraw(b"NOOP " + b"y" * 240000 + b"\r\n")
        c.expect("500 Line too long")
        c.cmd("NOOP", "250 OK")


def test_excessive_data_without_line_end(server):
    with server.session() as c:
        c.sendraw(b"z" * 250000)
        c.expect("421 Excessive amounts of data sent to server.", timeout=15)
        c.assert_closed()


def test_excessive_data_before_helo(server):
    with server.connect() as c:
        c.sendraw(b"\n" * 250000)  # bare LFs are not line ends
        c.expect("421 Excessive amounts of data sent to server.", timeout=15)
        c.assert_closed()


def test_idle_timeout(make_server):
    g = make_server(smtp={"timeout": "2s"})
    with g.connect() as c:
        t0 = time.monotonic()
        c.expect("421 Connection timeout", timeout=8)
        took = time.monotonic() - t0
        c.assert_closed()
    assert 1.5 <= took <= 6, f"timeout after {took:.1f}s, configured 2s"


def test_idle_timer_restarts_on_each_command(make_server):
    g = make_server(smtp={"timeout": "2s"})
    with g.session() as c:
        for _ in range(4):
            time.sleep(1.0)
            c.cmd("NOOP", "250 OK")
        c.expect("421 Connection timeout", timeout=8)
        c.assert_closed()


def test_incomplete_command_does_not_reset_timer(make_server):
    """Only complete commands count as progress: trickling bytes of one line forever times out."""
    g = make_server(smtp={"timeout": "2s"})
    with g.session() as c:
        t0 = time.monotonic()
        import select
        for _ in range(8):
            if select.select([c.sock], [], [], 0.5)[0]:
                break  # the server spoke (its 421)
            c.sendraw(b"N")
        c.expect("421 Connection timeout", timeout=8)
        assert time.monotonic() - t0 < 6


def test_timeout_in_data(make_server):
    g = make_server(smtp={"timeout": "2s"})
    with g.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<user@example.test>", "250 OK")
        c.cmd("DATA", "354 OK, send.")
        c.sendraw(b"Subject: slow\r\n\r\npartial")
        c.expect("421 Connection timeout", timeout=8)
        c.assert_closed()


def test_data_progress_keeps_connection(make_server):
    g = make_server(smtp={"timeout": "2s"})
    with g.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<user@example.test>", "250 OK")
        c.cmd("DATA", "354 OK, send.")
        c.sendraw(b"Subject: slow\r\n\r\n")
        for _ in range(4):
            time.sleep(1.0)
            c.sendraw(b"another line\r\n")
        c.sendraw(b".\r\n")
        c.expect_re(r"250 Queued \(\d+\.\d{3} seconds\)")


def test_invalid_command_limit(make_server):
    g = make_server(smtp={"disconnect_invalid_clients": "yes", "max_invalid_commands": "3"})
    with g.connect() as c:
        c.cmd("HELO", "501 HELO Invalid domain address.")  # 1
        c.cmd("NOOP", "250 OK")  # a success does not reset the count
        assert c.cmd("EHLO client.test").code == 250
        c.cmd("FOO", "502 Unimplemented command")  # 2
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<nobody@example.test>", "550 Unknown user")  # 3
        c.cmd("RSET", "250 OK")
        c.cmd("BAR", BYE)  # 4: replaces the normal error, then close
        c.assert_closed()


def test_invalid_command_limit_not_counted_replies(make_server):
    """500 Line too long, 503 sequence errors, 502 VRFY/TURN and 452 do not count."""
    g = make_server(smtp={"disconnect_invalid_clients": "yes", "max_invalid_commands": "2",
                          "max_recipients": "1"})
    with g.session() as c:
        for _ in range(4):
            c.cmd("NOOP " + "x" * 600, "500 Line too long")
            c.cmd("RCPT TO:<user@example.test>", "503 Must have sender first.")
            c.cmd("DATA", "503 Must have sender and recipient first.")
            c.cmd("VRFY x", "502 VRFY disallowed")
            c.cmd("TURN", "502 TURN disallowed")
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd(f"MAIL FROM:<{EXT}>", "503 Issue a reset if you want to start over")
        c.cmd("RCPT TO:<user@example.test>", "250 OK")
        c.cmd("RCPT TO:<user2@example.test>", "452 Too many recipients.")
        c.cmd("RCPT TO:<user3@example.test>", "452 Too many recipients.")
        c.cmd("RSET", "250 OK")
        c.cmd("FOO", "502 Unimplemented command")  # 1
        c.cmd("MAIL FROM:<a\\b@external.test>", "550 The address is not valid.")  # 2
        c.cmd("MAIL FROM <x>", BYE)  # 3
        c.assert_closed()


def test_invalid_command_limit_before_helo(make_server):
    g = make_server(smtp={"disconnect_invalid_clients": "yes", "max_invalid_commands": "2"})
    with g.connect() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "502 Use HELO/EHLO first")
        c.cmd("DATA", "502 Use HELO/EHLO first")
        c.cmd("RCPT TO:<a@b.test>", BYE)
        c.assert_closed()


def test_invalid_commands_unlimited_by_default(server):
    with server.session() as c:
        c.sendraw(b"FOO\r\n" * 150)
        for _ in range(150):
            c.expect("502 Unimplemented command")
        c.cmd("NOOP", "250 OK")


def test_counter_is_per_session(make_server):
    g = make_server(smtp={"disconnect_invalid_clients": "yes", "max_invalid_commands": "2"})
    for _ in range(3):
        with g.session() as c:
            c.cmd("FOO", "502 Unimplemented command")
            c.cmd("FOO", "502 Unimplemented command")
            c.cmd("QUIT", "221 goodbye")


def _open_many(host, port, n, source="127.0.0.2", timeout=60):
    """n connections that each received their banner; returns the sockets."""
    sel = selectors.DefaultSelector()
    socks, got = [], {}
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((source, 0))
        s.setblocking(False)
        s.connect_ex((host, port))
        socks.append(s)
        got[s.fileno()] = b""
        sel.register(s, selectors.EVENT_READ)
    banners = closed = 0
    deadline = time.monotonic() + timeout
    while banners + closed < n and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            try:
                d = s.recv(512)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                d = b""
            if not d:
                closed += 1
                sel.unregister(s)
                continue
            got[s.fileno()] += d
            if b"\n" in got[s.fileno()]:
                if got[s.fileno()] == f"220 {HOSTNAME} ESMTP\r\n".encode():
                    banners += 1
                else:
                    closed += 1
                sel.unregister(s)
    sel.close()
    return socks, banners, closed


def test_thousand_idle_connections(make_server):
    """The server holds 1,000 idle connections (opened 100 at a time) and still serves a new
    client. Prints the RSS per connection (not asserted)."""
    g = make_server()
    time.sleep(0.3)
    rss0 = g.vmrss_kb()
    socks = []
    try:
        for _ in range(10):
            batch, banners, closed = _open_many("127.0.0.1", g.port, 100, timeout=20)
            socks += batch
            assert (banners, closed) == (100, 0), \
                f"{banners} banners, {closed} closed of 100 (after {len(socks) - 100} open)"
        time.sleep(0.5)
        rss1 = g.vmrss_kb()
        print(f"\nRSS before {rss0} KB, with 1000 idle connections {rss1} KB: "
              f"{(rss1 - rss0) / 1000:.2f} KB per connection (sanitizer build)")
        with g.session() as c:  # a new client is still served
            c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
            c.cmd("RCPT TO:<user@example.test>", "250 OK")
            c.cmd("QUIT", "221 goodbye")
        cpu0 = g.cpu_seconds()
        time.sleep(1.0)
        cpu = g.cpu_seconds() - cpu0
        assert cpu < 0.5, f"idle server with 1000 connections used {cpu:.2f}s CPU in 1s"
    finally:
        for s in socks:
            s.close()
    time.sleep(0.5)
    with g.session() as c:
        c.cmd("NOOP", "250 OK")


def test_connection_burst(make_server):
    """500 clients connecting at the same moment all get the banner. SMTP servers speak first,
    so a connection the kernel completed with a SYN cookie while the accept queue was full is
    never seen by the server and the client waits forever: the listen backlog must be large
    (the server asks for 511)."""
    g = make_server()
    socks, banners, closed = _open_many("127.0.0.1", g.port, 500, timeout=20)
    try:
        assert (banners, closed) == (500, 0), f"{banners} banners, {closed} closed of 500"
    finally:
        for s in socks:
            s.close()


def test_out_of_file_descriptors_recovers(make_server):
    """With a low descriptor limit the accept loop must neither spin nor die; once clients go
    away, new ones are served again."""
    g = make_server(start=False)
    g.start(rlimit_nofile=96)
    socks, banners, closed = _open_many("127.0.0.1", g.port, 150, timeout=8)
    try:
        assert banners > 0
        time.sleep(0.5)
        cpu0 = g.cpu_seconds()
        time.sleep(2.0)
        cpu = g.cpu_seconds() - cpu0
        assert cpu < 1.0, f"server used {cpu:.2f}s CPU in 2s while out of descriptors (spinning)"
        assert g.running()
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + 10
    while True:
        try:
            with g.session() as c:
                c.cmd("NOOP", "250 OK")
            break
        except (AssertionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_invalid_command_limit_default_maximum(make_server):
    """disconnect_invalid_clients = yes with the default maximum (100): the 101st error closes."""
    g = make_server(smtp={"disconnect_invalid_clients": "yes"})
    with g.session() as c:
        c.sendraw(b"FOO\r\n" * 101)
        for _ in range(100):
            c.expect("502 Unimplemented command")
        c.expect(BYE)
        c.assert_closed()
