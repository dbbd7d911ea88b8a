"""Connection and transport (replies.md): banner, welcome text, silent close, QUIT, shutdown,
listeners, CRLF-only line ends, split packets."""
import signal
import time

from gannet import HOSTNAME, free_port


def test_banner_is_hostname_esmtp(server):
    with server.connect(banner=False) as c:
        c.expect(f"220 {HOSTNAME} ESMTP")


def test_banner_from_my_computer(server):
    with server.connect("127.0.0.1", banner=False) as c:
        c.expect(f"220 {HOSTNAME} ESMTP")


def test_banner_welcome_setting(make_server):
    g = make_server(smtp={"welcome": "HOWDYHO"})
    with g.connect(banner=False) as c:
        c.expect("220 HOWDYHO ESMTP")


def test_banner_welcome_ending_in_esmtp_not_doubled(make_server):
    g = make_server(smtp={"welcome": "Gannet mail ESMTP"})
    with g.connect(banner=False) as c:
        c.expect("220 Gannet mail ESMTP")


def test_quit_says_goodbye_and_closes(server):
    with server.connect() as c:
        c.cmd("QUIT", "221 goodbye")
        c.assert_closed()


def test_quit_before_helo_and_in_transaction(server):
    with server.connect() as c:
        c.cmd("QUIT", "221 goodbye")
        c.assert_closed()
    with server.session() as c:
        c.cmd("MAIL FROM:<a@external.test>", "250 OK")
        c.cmd("RCPT TO:<user@example.test>", "250 OK")
        c.cmd("QUIT", "221 goodbye")
        c.assert_closed()


def test_bare_lf_does_not_end_a_command(server):
    """A bare LF never ends a command: "QUIT\\nNOOP" is one (unknown) line, so no 221."""
    with server.session() as c:
        c.sendraw(b"QUIT\nNOOP\r\n")
        r = c.reply()
        assert r.code != 221, f"bare LF ended the command: {r.lines}"
        c.cmd("NOOP", "250 OK")


def test_command_split_into_single_bytes(server):
    """The line reader assembles commands from arbitrary fragments, CR and LF apart."""
    with server.connect() as c:
        for b in b"EHLO split.test\r\n":
            c.sendraw(bytes([b]))
            time.sleep(0.002)
        r = c.reply()
        assert r.lines[0] == f"250-{HOSTNAME}"
        c.sendraw(b"NOOP\r")
        time.sleep(0.2)
        c.sendraw(b"\n")
        c.expect("250 OK")


def test_commands_are_case_insensitive(server):
    with server.connect() as c:
        c.cmd("ehlo client.test")
        c.cmd("noop", "250 OK")
        c.cmd("mail from:<a@external.test>", "250 OK")
        c.cmd("rcpt to:<user@example.test>", "250 OK")
        c.cmd("rset", "250 OK")
        c.cmd("quit", "221 goodbye")


def test_client_closing_mid_session_leaves_server_healthy(server):
    for _ in range(5):
        c = server.session()
        c.cmd("MAIL FROM:<a@external.test>", "250 OK")
        c.send("RCPT TO:<user@example.test>")
        c.close()
    c = server.session()
    c.send("MAIL FROM:<a@external.test>")
    c.expect("250 OK")
    c.cmd("RCPT TO:<user@example.test>", "250 OK")
    c.cmd("DATA", "354 OK, send.")
    c.sendraw(b"Subject: half\r\n\r\nhalf a message")
    c.close()
    with server.session() as c:
        c.cmd("NOOP", "250 OK")


def test_sigterm_sends_421_and_exits_cleanly(make_server):
    g = make_server()
    c = g.session()
    c.cmd("MAIL FROM:<a@external.test>", "250 OK")
    g.proc.send_signal(signal.SIGTERM)
    r = c.reply(timeout=10)
    assert r.code == 421 and len(r.lines) == 1, f"expected a 421 line at shutdown, got {r.lines}"
    c.assert_closed()
    g.proc.wait(10)
    assert g.proc.returncode == 0, f"exit status {g.proc.returncode} after SIGTERM"


def test_sigint_shuts_down_cleanly(make_server):
    g = make_server()
    g.proc.send_signal(signal.SIGINT)
    g.proc.wait(10)
    assert g.proc.returncode == 0


def test_two_listeners(make_server):
    g = make_server(start=False)
    p2 = free_port()
    g.listeners = [("mx", {"protocol": "smtp", "address": f"127.0.0.1:{g.port}",
                           "security": "none"}),
                   ("submission", {"protocol": "smtp", "address": f"127.0.0.1:{p2}",
                                   "security": "none"})]
    g.write_config()
    g.start()
    with g.connect() as c:
        c.cmd("QUIT", "221 goodbye")
    with g.connect(port=p2) as c:
        c.cmd("QUIT", "221 goodbye")


def test_max_connections_closes_silently(make_server):
    g = make_server(smtp={"max_connections": "2"})
    time.sleep(0.5)  # the readiness probe's connection is gone
    a = g.connect()
    b = g.connect()
    with g.connect(banner=False) as c:
        c.assert_closed()
    a.cmd("QUIT", "221 goodbye")
    a.assert_closed()
    a.close()
    time.sleep(0.5)
    with g.connect() as c:
        c.cmd("NOOP", "250 OK")
    b.close()
