"""DATA and end of data (replies.md): 354, 250 Queued, the stored copy (Return-Path, Received,
Message-ID), dot-unstuffing, CRLF.CRLF only, bare LF/CR, long lines, size after DATA,
PIPELINING including commands after the final dot."""
import email.utils
import re
import time
from datetime import datetime, timezone

import pytest

from gannet import EXT, HOSTNAME, QUEUED_RE, make_message, split_stored, token

SIZE_TEXT = "552 Message size exceeds fixed maximum message size. Size: {} KB, Max size: {} KB"

DATE_RE = (r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([1-9]|[12][0-9]|3[01]) "
           r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
           r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d [+-]\d{4}")


def received_re(helo, ptr, ip, rcpt=None):
    """Received header per hmailserver-behaviour.md §9 plus Gannet's id and for clauses.
    Lenient on the folding of id/for, strict on from/by/with and the date format."""
    fold = r"(?:\r\n[ \t]+| )"
    r = (rf"Received: from {re.escape(helo)} \({re.escape(ptr)} \[{re.escape(ip)}\]\)"
         rf"\r\n\tby {re.escape(HOSTNAME)} with ESMTP"
         rf"{fold}id (?P<id>[A-Za-z0-9._-]+)")
    if rcpt:
        r += rf"{fold}for <{re.escape(rcpt)}>"
    r += rf"(?:\r\n[ \t]+)?; (?P<date>{DATE_RE})\r\n$"
    return r


def send_one(server, msg, to="rcv@example.test", sender=EXT, source="127.0.0.2",
             helo="client.test", rcpts=None):
    with server.session(source, helo) as c:
        c.cmd(f"MAIL FROM:<{sender}>", "250 OK")
        for r in rcpts or [to]:
            c.cmd(f"RCPT TO:<{r}>", "250 OK")
        rep = c.data(msg, expect="queued")
        c.cmd("QUIT", "221 goodbye")
    return rep


def test_data_354_and_queued(server):
    tok = token()
    with server.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<rcv@example.test>", "250 OK")
        c.cmd("DATA", "354 OK, send.")
        c.sendraw(make_message(token=tok) + b"\r\n.\r\n")
        c.expect_re(QUEUED_RE)
        # back in the greeted state: a new transaction may follow
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
    server.wait_for("rcv@example.test", tok)


def test_stored_copy_is_byte_exact(server):
    tok = token()
    body = (b"Line one\r\n\r\n  indented\r\n\ttabbed\r\ntrailing spaces   \r\n"
            b"8bit: \xc3\xa9\xc3\xa0\xe2\x82\xac\r\n" + b"x" * 998 + b"\r\n"
            b"..dots stay..\r\n.\r\n\r\n\r\nlast line without newline")
    msg = make_message(token=tok, body=body)
    send_one(server, msg)
    stored = server.wait_for("rcv@example.test", tok)[0]
    rp, dt, received, rest = split_stored(stored)
    assert rp == f"Return-Path: <{EXT}>\r\n".encode()
    assert dt is None or b"rcv@example.test" in dt, dt
    # the final CRLF before the dot belongs to the message
    assert rest == msg + b"\r\n", "stored message differs from what was sent"


def test_received_header(server):
    tok = token()
    send_one(server, make_message(token=tok), helo="helo-name.test")
    stored = server.wait_for("rcv@example.test", tok)[0]
    _, _, received, _ = split_stored(stored)
    m = re.match(received_re("helo-name.test", "Unknown", "127.0.0.2", "rcv@example.test"),
                 received.decode("latin-1"))
    assert m, f"Received header not in the expected form:\n{received.decode('latin-1')}"
    when = email.utils.parsedate_to_datetime(m.group("date"))
    assert abs((datetime.now(timezone.utc) - when).total_seconds()) < 300


def test_received_header_with_ptr(server, dns):
    dns.add("2.0.0.127.in-addr.arpa", "PTR", "client.example.net.")
    dns.add("client.example.net", "A", "127.0.0.2")
    try:
        tok = token()
        send_one(server, make_message(token=tok), helo="whatever.test")
        stored = server.wait_for("rcv@example.test", tok)[0]
        _, _, received, _ = split_stored(stored)
        assert re.match(received_re("whatever.test", "client.example.net", "127.0.0.2",
                                    "rcv@example.test"), received.decode("latin-1")), received
    finally:
        dns.remove("2.0.0.127.in-addr.arpa")
        dns.remove("client.example.net")


def test_received_header_from_my_computer_after_helo(server):
    tok = token()
    with server.connect("127.0.0.1") as c:
        c.helo("plain-helo.test")
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<rcv@example.test>", "250 OK")
        c.data(make_message(token=tok), expect="queued")
    stored = server.wait_for("rcv@example.test", tok)[0]
    _, _, received, _ = split_stored(stored)
    # the protocol word is ESMTP even after plain HELO
    assert re.match(received_re("plain-helo.test", "Unknown", "127.0.0.1", "rcv@example.test"),
                    received.decode("latin-1")), received


def test_received_header_without_for_when_several_recipients(server):
    tok = token()
    send_one(server, make_message(token=tok), rcpts=["rcv@example.test", "user5@example.test"])
    stored = server.wait_for("rcv@example.test", tok)[0]
    _, _, received, _ = split_stored(stored)
    text = received.decode("latin-1")
    assert re.match(received_re("client.test", "Unknown", "127.0.0.2"), text), text
    assert " for <" not in text and "\tfor <" not in text, text
    server.wait_for("user5@example.test", tok)


def test_received_ids_are_unique(server):
    ids = set()
    for _ in range(3):
        tok = token()
        send_one(server, make_message(token=tok))
        _, _, received, _ = split_stored(server.wait_for("rcv@example.test", tok)[0])
        m = re.search(r"\bid ([A-Za-z0-9._-]+)", received.decode("latin-1"))
        assert m, received
        ids.add(m.group(1))
    assert len(ids) == 3


def test_null_sender_return_path(server):
    tok = token()
    send_one(server, make_message(token=tok, sender="mailer-daemon@external.test"), sender="")
    stored = server.wait_for("rcv@example.test", tok)[0]
    assert stored.startswith(b"Return-Path: <>\r\n"), stored[:100]


def test_message_id_added_when_missing(server):
    tok = token()
    msg = make_message(token=tok, message_id=False)
    send_one(server, msg)
    stored = server.wait_for("rcv@example.test", tok)[0]
    head = stored.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    ids = re.findall(r"(?im)^message-id:[^\r\n]*", head)
    assert len(ids) == 1, ids
    assert re.fullmatch(rf"Message-ID: <[^@<>\s]+@{re.escape(HOSTNAME)}>", ids[0]), ids[0]
    # everything the client sent is still there, unchanged
    assert msg.split(b"\r\n\r\n", 1)[0] in stored


@pytest.mark.parametrize("name", ["Message-Id", "MESSAGE-ID", "message-id", "Message-ID"])
def test_message_id_kept_when_present(server, name):
    tok = token()
    msg = make_message(token=tok, message_id=False,
                       headers=[f"{name}: <mine.{tok}@client.test>"])
    send_one(server, msg)
    stored = server.wait_for("rcv@example.test", tok)[0]
    head = stored.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    ids = re.findall(r"(?im)^message-id:[^\r\n]*", head)
    assert ids == [f"{name}: <mine.{tok}@client.test>"], ids


def test_no_date_header_added(server):
    tok = token()
    msg = b"Subject: no date " + tok.encode() + b"\r\nMessage-ID: <" + tok.encode() + \
        b"@c.test>\r\n\r\nbody\r\n"
    send_one(server, msg)
    stored = server.wait_for("rcv@example.test", tok)[0]
    assert not re.search(rb"(?im)^date:", stored.split(b"\r\n\r\n", 1)[0])


def test_dot_unstuffing(server):
    tok = token()
    with server.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<rcv@example.test>", "250 OK")
        c.cmd("DATA", "354 OK, send.")
        c.sendraw(f"Subject: {tok}\r\n\r\n".encode() +
                  b"..leading dot\r\n...\r\n..\r\nmid.dle\r\n.. space\r\n.\r\n")
        c.expect_re(QUEUED_RE)
    stored = server.wait_for("rcv@example.test", tok)[0]
    body = stored.split(b"\r\n\r\n", 1)[1]
    assert body == b".leading dot\r\n..\r\n.\r\nmid.dle\r\n. space\r\n", body


def test_dot_at_start_of_message_body(server):
    """A stuffed dot as the very first byte after 354 (no headers) is unstuffed too."""
    tok = token()
    with server.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<rcv@example.test>", "250 OK")
        c.cmd("DATA", "354 OK, send.")
        c.sendraw(f"..x-first: {tok}\r\n\r\nbody\r\n.\r\n".encode())
        c.expect_re(QUEUED_RE)
    stored = server.wait_for("rcv@example.test", tok)[0]
    assert f"\r\n.x-first: {tok}\r\n".encode() in stored


@pytest.mark.parametrize("fake_end", [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\r"],
                         ids=["LF.LF", "CRLF.LF", "LF.CRLF", "CR.CR", "CRLF.CR"])
def test_end_of_data_only_on_crlf_dot_crlf(server, fake_end):
    tok = token()
    with server.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<rcv@example.test>", "250 OK")
        c.cmd("DATA", "354 OK, send.")
        c.sendraw(f"Subject: {tok}\r\n\r\nbefore".encode() + fake_end + b"after\r\n")
        c.assert_silent(0.5)
        c.sendraw(b".\r\n")
        c.expect_re(QUEUED_RE)
    stored = server.wait_for("rcv@example.test", tok)[0]
    assert b"before" in stored and b"after\r\n" in stored
    # line ends are stored normalised to CRLF (reject_bare_lf = no)
    assert re.search(rb"[^\r]\n", stored) is None, stored
    assert re.search(rb"\r(?!\n)", stored) is None, stored


def test_terminator_split_across_packets(server):
    tok = token()
    with server.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<rcv@example.test>", "250 OK")
        c.cmd("DATA", "354 OK, send.")
        c.sendraw(f"Subject: {tok}\r\n\r\nbody\r".encode())
        time.sleep(0.15)
        c.sendraw(b"\n.")
        time.sleep(0.15)
        c.sendraw(b"\r")
        c.assert_silent(0.3)
        c.sendraw(b"\n")
        c.expect_re(QUEUED_RE)
    server.wait_for("rcv@example.test", tok)


def test_empty_message(server):
    with server.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<rcv@example.test>", "250 OK")
        c.cmd("DATA", "354 OK, send.")
        c.sendraw(b".\r\n")
        c.expect_re(QUEUED_RE)


def test_bare_lf_normalised_by_default(server):
    tok = token()
    with server.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<rcv@example.test>", "250 OK")
        c.cmd("DATA", "354 OK, send.")
        c.sendraw(f"Subject: {tok}\r\n\r\na\nb\rc\r\n.\r\n".encode())
        c.expect_re(QUEUED_RE)
    stored = server.wait_for("rcv@example.test", tok)[0]
    assert stored.split(b"\r\n\r\n", 1)[1] == b"a\r\nb\r\nc\r\n"


@pytest.mark.parametrize("body", [b"a\nb\r\n", b"a\rb\r\n", b"a\r\n\nb\r\n", b"ab\n"],
                         ids=["bare-LF", "bare-CR", "CRLF-LF", "LF-at-end"])
def test_bare_lf_rejected_when_configured(make_server, body):
    g = make_server(smtp={"reject_bare_lf": "yes"})
    tok = token()
    with g.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<rcv@example.test>", "250 OK")
        c.cmd("DATA", "354 OK, send.")
        c.sendraw(f"Subject: {tok}\r\n\r\n".encode() + body + b"\r\n.\r\n")
        c.expect("554 Rejected - Message containing bare LF's.")
        # the transaction is over; a clean message is accepted afterwards
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<rcv@example.test>", "250 OK")
        c.data(make_message(token=tok + "-ok"), expect="queued")
    g.wait_for("rcv@example.test", tok + "-ok")
    assert len(g.find("rcv@example.test", tok)) == 1


def test_long_line_in_data(server):
    tok = token()
    with server.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<rcv@example.test>", "250 OK")
        c.cmd("DATA", "354 OK, send.")
        c.sendraw(f"Subject: {tok}\r\n\r\n".encode() + b"x" * 100001 + b"\r\nmore\r\n.\r\n")
        c.expect("554 Too long line was received. Transmission aborted.", timeout=20)
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<rcv@example.test>", "250 OK")
        c.cmd("DATA", "354 OK, send.")
        c.sendraw(f"Subject: {tok}-ok\r\n\r\n".encode() + b"y" * 99990 + b"\r\n.\r\n")
        c.expect_re(QUEUED_RE, timeout=20)
    stored = server.wait_for("rcv@example.test", tok + "-ok")[0]
    assert b"y" * 99990 + b"\r\n" in stored
    assert len(server.find("rcv@example.test", tok)) == 1  # the long-line one was not stored


def test_size_exceeded_after_data(make_server):
    g = make_server(smtp={"max_message_size": "10"})
    tok = token()
    with g.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<rcv@example.test>", "250 OK")
        c.cmd("DATA", "354 OK, send.")
        head = f"Subject: {tok}\r\n\r\n".encode()
        c.sendraw(head + b"z" * (12 * 1024 + 400 - len(head)) + b"\r\n.\r\n")
        c.expect(SIZE_TEXT.format(12, 10))
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<rcv@example.test>", "250 OK")
        # 10.5 KB: floor(bytes / 1024) = 10, not greater than 10 -> accepted
        c.cmd("DATA", "354 OK, send.")
        head = f"Subject: {tok}-ok\r\n\r\n".encode()
        c.sendraw(head + b"w" * (10 * 1024 + 512 - len(head)) + b"\r\n.\r\n")
        c.expect_re(QUEUED_RE)
    g.wait_for("rcv@example.test", tok + "-ok")
    assert len(g.find("rcv@example.test", tok)) == 1


def test_size_exceeded_with_long_stream(make_server):
    """The rest of an oversized message is read and discarded; the answer comes after the dot
    and the session stays in sync."""
    g = make_server(smtp={"max_message_size": "100"})
    with g.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<rcv@example.test>", "250 OK")
        c.cmd("DATA", "354 OK, send.")
        line = b"q" * 998 + b"\r\n"
        c.sendraw(line * 2000 + b".\r\nNOOP\r\n")
        c.expect(SIZE_TEXT.format(1953, 100), timeout=30)
        c.expect("250 OK")


def test_pipelining_after_final_dot(server):
    """RFC 2920: commands pipelined behind the final dot are answered in order."""
    t1, t2 = token(), token()
    with server.session() as c:
        c.sendraw(f"MAIL FROM:<{EXT}>\r\nRCPT TO:<pipe@example.test>\r\n"
                  "RCPT TO:<nobody@example.test>\r\nDATA\r\n".encode())
        c.expect("250 OK")
        c.expect("250 OK")
        c.expect("550 Unknown user")
        c.expect("354 OK, send.")
        c.sendraw(f"Subject: {t1}\r\n\r\none\r\n.\r\n"
                  f"MAIL FROM:<{EXT}>\r\nRCPT TO:<pipe@example.test>\r\nDATA\r\n".encode())
        c.expect_re(QUEUED_RE)
        c.expect("250 OK")
        c.expect("250 OK")
        c.expect("354 OK, send.")
        c.sendraw(f"Subject: {t2}\r\n\r\ntwo\r\n.\r\nNOOP\r\nRSET\r\nQUIT\r\n".encode())
        c.expect_re(QUEUED_RE)
        c.expect("250 OK")
        c.expect("250 OK")
        c.expect("221 goodbye")
        c.assert_closed()
    server.wait_for("pipe@example.test", t1)
    server.wait_for("pipe@example.test", t2)


def test_pipelining_whole_session_in_one_packet(server):
    t1, t2 = token(), token()
    with server.connect() as c:
        c.sendraw(("EHLO client.test\r\n"
                   f"MAIL FROM:<{EXT}>\r\nRCPT TO:<pipe@example.test>\r\nDATA\r\n"
                   f"Subject: {t1}\r\n\r\n..one\r\n.\r\n"
                   f"MAIL FROM:<{EXT}>\r\nRCPT TO:<pipe@example.test>\r\nDATA\r\n"
                   f"Subject: {t2}\r\n\r\ntwo\r\n.\r\nQUIT\r\n").encode())
        r = c.reply()
        assert r.code == 250 and r.lines[-1] == "250 HELP"
        for _ in range(2):
            c.expect("250 OK")
            c.expect("250 OK")
            c.expect("354 OK, send.")
            c.expect_re(QUEUED_RE)
        c.expect("221 goodbye")
        c.assert_closed()
    assert server.wait_for("pipe@example.test", t1)[0].endswith(b"\r\n.one\r\n")
    server.wait_for("pipe@example.test", t2)


def test_pipelining_many_commands(server):
    with server.session() as c:
        c.sendraw(b"NOOP\r\n" * 500 + b"RSET\r\n" * 500)
        for _ in range(500):
            c.expect("250 OK")
        for _ in range(500):
            c.expect("250 OK")


def test_pipelining_large_volume(server):
    """50,000 pipelined commands sent while replies are read: all answered, in order (the
    connection layer's backpressure must not lose or reorder anything)."""
    import threading
    n = 50000
    with server.session() as c:
        errors = []

        def writer():
            try:
                for i in range(n // 1000):
                    c.sock.sendall(b"NOOP\r\n" * 999 + b"RSET\r\n")
            except OSError as e:
                errors.append(e)
        t = threading.Thread(target=writer)
        t.start()
        for i in range(n):
            line = c.readline(timeout=30)
            assert line == b"250 OK\r\n", (i, line)
        t.join(30)
        assert not errors, errors
        c.log.clear()
        c.cmd("NOOP", "250 OK")


def test_several_messages_one_connection(server):
    toks = [token() for _ in range(5)]
    with server.session() as c:
        for t in toks:
            c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
            c.cmd("RCPT TO:<rcv@example.test>", "250 OK")
            c.data(make_message(token=t), expect="queued")
    for t in toks:
        server.wait_for("rcv@example.test", t)


def test_no_delivered_to_by_default(server):
    tok = token()
    send_one(server, make_message(token=tok), to="rcv@example.test")
    _, dt, _, _ = split_stored(server.wait_for("rcv@example.test", tok)[0])
    assert dt is None, dt


def test_delivered_to_when_configured(make_server):
    """[smtp] add_delivered_to = yes: the original RCPT address (here an alias)."""
    g = make_server(smtp={"add_delivered_to": "yes"})
    tok = token()
    send_one(g, make_message(token=tok), to="alias@example.test")
    rp, dt, _, _ = split_stored(g.wait_for("user@example.test", tok)[0])
    assert rp == f"Return-Path: <{EXT}>\r\n".encode()
    assert dt == b"Delivered-To: alias@example.test\r\n", dt


def test_large_message_byte_exact(server):
    """A 3 MB message with long and short lines, dots and 8-bit bytes arrives unchanged."""
    import random
    rnd = random.Random(5321)
    tok = token()
    lines = []
    size = 0
    while size < 3 * 1024 * 1024:
        n = rnd.choice([0, 1, 5, 76, 998, 4000, 20000])
        line = bytes(rnd.choice(b"abcXYZ .\t\x80\xff0123") for _ in range(n))
        lines.append(line)
        size += n + 2
    body = b"\r\n".join(lines) + b"\r\n"
    msg = make_message(token=tok, body=body)
    send_one(server, msg, to="rcv@example.test")
    stored = server.wait_for("rcv@example.test", tok, timeout=20)[0]
    _, _, _, rest = split_stored(stored)
    assert rest == msg


def test_server_log_lines(server):
    """Logs: one line per event with a session id (Postfix style)."""
    with server.session() as c:
        port = c.sock.getsockname()[1]
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<nobody-logged@example.test>", "550 Unknown user")
        c.cmd("QUIT", "221 goodbye")
    time.sleep(0.3)
    log = server.log()
    m = re.search(rf"^gannet\[{server.pid}\]: (\S+): connect from \[127\.0\.0\.2\]:{port}\b",
                  log, re.M)
    assert m, f"no connect line for port {port}:\n{log[-2000:]}"
    sid = re.escape(m.group(1))
    assert re.search(rf"^gannet\[{server.pid}\]: {sid}: .*550 Unknown user", log, re.M), \
        "the 550 reply is not logged with the session id"
    assert re.search(rf"^gannet\[{server.pid}\]: {sid}: disconnect", log, re.M)
