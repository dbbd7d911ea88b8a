"""Greeting and sequence (replies.md): HELO/EHLO, the EHLO keywords, commands before HELO,
NOOP/RSET/HELP/VRFY/TURN/EXPN/unknown commands, transaction sequence errors."""
import pytest

from gannet import HOSTNAME


def test_helo(server):
    with server.connect() as c:
        c.cmd("HELO client.test", "250 Hello.")


def test_ehlo_keywords_internet(server):
    """From the Internet range (no TLS, TLS required for AUTH) AUTH is impossible: exactly these."""
    with server.connect() as c:
        c.send("EHLO client.test")
        r = c.reply()
        assert r.lines == [f"250-{HOSTNAME}", "250-PIPELINING", "250-SIZE 20971520",
                           "250-8BITMIME", "250 HELP"]


def test_ehlo_keywords_my_computer(server):
    with server.connect("127.0.0.1") as c:
        c.send("EHLO client.test")
        r = c.reply()
        assert r.lines[0] == f"250-{HOSTNAME}"
        assert r.lines[-1] == "250 HELP"
        body = r.lines[1:-1]
        assert body[:3] == ["250-PIPELINING", "250-SIZE 20971520", "250-8BITMIME"]
        assert all(line in ("250-AUTH PLAIN LOGIN",) for line in body[3:]), body
        assert "250-STARTTLS" not in body  # listener security = none


def test_ehlo_size_follows_setting(make_server):
    g = make_server(smtp={"max_message_size": "10"})
    with g.connect() as c:
        r = c.ehlo()
        assert "250-SIZE 10240" in r.lines


@pytest.mark.parametrize("cmd", ["HELO", "HELO ", "HELO    ", "HELO bad..domain",
                                 "HELO -dash.test", "HELO dash-.test", "HELO a@b.test",
                                 "HELO [1.2.3]", "HELO exa mple.test", "HELO .lead.test",
                                 "HELO trail..", "HELO [300.1.1.1]"])
def test_helo_invalid_domain(server, cmd):
    with server.connect() as c:
        c.cmd(cmd, "501 HELO Invalid domain address.")
        c.cmd("HELO ok.test", "250 Hello.")


@pytest.mark.parametrize("cmd", ["EHLO", "EHLO ", "EHLO bad..domain", "EHLO -x.test",
                                 "EHLO x!y.test"])
def test_ehlo_invalid_domain(server, cmd):
    with server.connect() as c:
        c.cmd(cmd, "501 EHLO Invalid domain address.")
        c.cmd("NOOP", "250 OK")


@pytest.mark.parametrize("name", ["client.test", "localhost", "under_score.example.test",
                                  "[127.0.0.2]", "[IPv6:::1]", "[IPv6:2001:db8::1]",
                                  "CLIENT.Example.TEST", "a-b.c-d.test", "123.test"])
def test_helo_valid_names(server, name):
    with server.connect() as c:
        c.cmd(f"HELO {name}", "250 Hello.")
    with server.connect() as c:
        r = c.ehlo(name)
        assert r.lines[0] == f"250-{HOSTNAME}"


@pytest.mark.parametrize("cmd", ["MAIL FROM:<a@external.test>", "RCPT TO:<user@example.test>",
                                 "DATA"])
def test_use_helo_first(server, cmd):
    with server.connect() as c:
        c.cmd(cmd, "502 Use HELO/EHLO first")


def test_rset_and_noop_before_helo_open_nothing(server):
    with server.connect() as c:
        c.cmd("NOOP", "250 OK")
        c.cmd("RSET", "250 OK")
        c.cmd("MAIL FROM:<a@external.test>", "502 Use HELO/EHLO first")
        c.cmd("HELO client.test", "250 Hello.")
        c.cmd("MAIL FROM:<a@external.test>", "250 OK")


def test_noop_with_argument(server):
    with server.connect() as c:
        c.cmd("NOOP hello there", "250 OK")


@pytest.mark.parametrize("cmd", ["FOO", "EXPN list@example.test", "BDAT 10 LAST", "SAML FROM:<a@b>",
                                 "SEND FROM:<a@b>", "ETRN2", "QUITX"])
def test_unimplemented_command(server, cmd):
    with server.session() as c:
        c.cmd(cmd, "502 Unimplemented command")
        c.cmd("NOOP", "250 OK")


def test_empty_line_is_not_a_command(server):
    with server.session() as c:
        c.send("")
        r = c.reply()
        assert r.code in (500, 502), r.lines
        c.cmd("NOOP", "250 OK")


def test_vrfy_disallowed(server):
    with server.session() as c:
        c.cmd("VRFY user@example.test", "502 VRFY disallowed")
        c.cmd("VRFY", "502 VRFY disallowed")


def test_turn_disallowed(server):
    with server.session() as c:
        c.cmd("TURN", "502 TURN disallowed")


def test_help(server):
    with server.connect() as c:
        c.send("HELP")
        r = c.reply()
        assert r.code == 214, r.lines
        assert all(line.startswith("214-") for line in r.lines[:-1])
        assert r.lines[-1].startswith("214 ")
    with server.session() as c:
        c.send("HELP MAIL")
        r = c.reply()
        assert r.code in (214, 211), r.lines


def test_rset_in_session(server):
    with server.session() as c:
        c.cmd("RSET", "250 OK")
        c.cmd("MAIL FROM:<a@external.test>", "250 OK")
        c.cmd("RSET", "250 OK")
        c.cmd("RCPT TO:<user@example.test>", "503 Must have sender first.")


def test_mail_twice_needs_reset(server):
    with server.session() as c:
        c.cmd("MAIL FROM:<a@external.test>", "250 OK")
        c.cmd("MAIL FROM:<b@external.test>", "503 Issue a reset if you want to start over")
        c.cmd("RCPT TO:<user@example.test>", "250 OK")
        c.cmd("MAIL FROM:<b@external.test>", "503 Issue a reset if you want to start over")
        c.cmd("RSET", "250 OK")
        c.cmd("MAIL FROM:<b@external.test>", "250 OK")


def test_rcpt_before_mail(server):
    with server.session() as c:
        c.cmd("RCPT TO:<user@example.test>", "503 Must have sender first.")


def test_data_without_mail(server):
    with server.session() as c:
        c.cmd("DATA", "503 Must have sender and recipient first.")


def test_data_without_accepted_rcpt(server):
    with server.session() as c:
        c.cmd("MAIL FROM:<a@external.test>", "250 OK")
        c.cmd("DATA", "503 Must have sender and recipient first.")
        c.cmd("RCPT TO:<nobody@example.test>", "550 Unknown user")
        c.cmd("DATA", "503 Must have sender and recipient first.")
        c.cmd("RCPT TO:<user@example.test>", "250 OK")
        c.cmd("DATA", "354 OK, send.")


def test_helo_after_ehlo(server):
    with server.session() as c:
        c.cmd("HELO again.test", "250 Hello.")
        c.cmd("MAIL FROM:<a@external.test>", "250 OK")
