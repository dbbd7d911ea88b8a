"""RCPT TO (replies.md): syntax, parameters, address validity, the recipient limit, the order of
the checks. Recipient resolution itself is in test_resolution.py, IP-range rules in
test_ipranges.py."""
import pytest

RCPT_SYNTAX = "550 Invalid syntax. Syntax should be RCPT TO:<mailbox@domain>[crlf]"


def open_tx(server, source="127.0.0.2", sender="a@external.test"):
    c = server.session(source)
    c.cmd(f"MAIL FROM:<{sender}>", "250 OK")
    return c


@pytest.mark.parametrize("cmd", [
    "RCPT TO <user@example.test>",
    "RCPT user@example.test",
    "RCPT TO:<user@example.test",
    'RCPT TO:"user@example.test',
    "RCPT",
    "RCPT FROM:<user@example.test>",
])
def test_rcpt_syntax_error(server, cmd):
    with open_tx(server) as c:
        c.cmd(cmd, RCPT_SYNTAX)
        c.cmd("RCPT TO:<user@example.test>", "250 OK")


@pytest.mark.parametrize("cmd", [
    "RCPT TO:<user@example.test>",
    "RCPT TO:user@example.test",
    "RCPT TO:   <user@example.test>  ",
    "rcpt to:<USER@EXAMPLE.TEST>",
    "RCPT TO: user@example.test",
])
def test_rcpt_accepted_forms(server, cmd):
    with open_tx(server) as c:
        c.cmd(cmd, "250 OK")


@pytest.mark.parametrize("param", ["NOTIFY=NEVER", "ORCPT=rfc822;user@example.test", "FOO",
                                   "SIZE=10"])
def test_rcpt_any_parameter_unsupported(server, param):
    with open_tx(server) as c:
        c.cmd(f"RCPT TO:<user@example.test> {param}", f"555 Unsupported ESMTP extension: {param}")
        c.cmd("RCPT TO:<user@example.test>", "250 OK")


@pytest.mark.parametrize("addr", [
    "", "a@b..c", "a@@b.test", "x" * 250 + "@example.test", "user", "@example.test",
    "us\\er@example.test", "user@-example.test", "user@example.test.", "user@exa_mple.test",
])
def test_rcpt_invalid_address(server, addr):
    with open_tx(server) as c:
        c.cmd(f"RCPT TO:<{addr}>", "550 A valid address is required")
        c.cmd("RCPT TO:<user@example.test>", "250 OK")


def test_rcpt_261_char_address(server):
    addr = "a" * (261 - len("@example.test")) + "@example.test"
    assert len(addr) == 261
    with open_tx(server) as c:
        c.cmd(f"RCPT TO:<{addr}>", "550 A valid address is required")


def test_check_order_parameter_before_address_validity(server):
    with open_tx(server) as c:
        c.cmd("RCPT TO:<> NOTIFY=NEVER", "555 Unsupported ESMTP extension: NOTIFY=NEVER")


def test_check_order_syntax_before_parameter(server):
    with open_tx(server) as c:
        c.cmd("RCPT TO <user@example.test> NOTIFY=NEVER", RCPT_SYNTAX)


def test_max_recipients(make_server):
    g = make_server(smtp={"max_recipients": "3"})
    with g.session() as c:
        c.cmd("MAIL FROM:<a@external.test>", "250 OK")
        for a in ("user", "user2", "user3"):
            c.cmd(f"RCPT TO:<{a}@example.test>", "250 OK")
        c.cmd("RCPT TO:<user4@example.test>", "452 Too many recipients.")
        # before recipient resolution: even an unknown user gets 452 now
        c.cmd("RCPT TO:<nobody@example.test>", "452 Too many recipients.")
        c.cmd("DATA", "354 OK, send.")
        c.sendraw(b"Subject: three\r\n\r\nthree\r\n.\r\n")
        c.expect_re(r"250 Queued \(\d+\.\d{3} seconds\)")
        # a new transaction starts counting again
        c.cmd("MAIL FROM:<a@external.test>", "250 OK")
        c.cmd("RCPT TO:<user4@example.test>", "250 OK")


def test_max_recipients_rejected_rcpts_do_not_count(make_server):
    g = make_server(smtp={"max_recipients": "2"})
    with g.session() as c:
        c.cmd("MAIL FROM:<a@external.test>", "250 OK")
        c.cmd("RCPT TO:<nobody@example.test>", "550 Unknown user")
        c.cmd("RCPT TO:<user@example.test>", "250 OK")
        c.cmd("RCPT TO:<user2@example.test>", "250 OK")
        c.cmd("RCPT TO:<user3@example.test>", "452 Too many recipients.")


def test_default_max_recipients_allows_many(server):
    with open_tx(server) as c:
        for i in range(120):
            c.cmd(f"RCPT TO:<user{'' if i % 2 else '2'}@example.test>", "250 OK")
