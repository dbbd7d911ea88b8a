"""MAIL FROM (replies.md): syntax, accepted forms, null sender, address validity, parameters,
SIZE=, insufficient storage."""
import subprocess

import pytest

MAIL_SYNTAX = "550 Invalid syntax. Syntax should be MAIL FROM:<mailbox@domain>[crlf]"
SIZE_TEXT = "552 Message size exceeds fixed maximum message size. Size: {} KB, Max size: {} KB"


@pytest.mark.parametrize("cmd", [
    "MAIL FROM <a@external.test>",
    "MAIL FROM: <a@external.test",
    'MAIL FROM: "',
    'MAIL FROM:<"a@external.test>',
    "MAIL FROM: <John Smith@external.test>",
    "MAIL",
    "MAIL FROM",
    "MAIL TO:<a@external.test>",
])
def test_mail_syntax_error(server, cmd):
    with server.session() as c:
        c.cmd(cmd, MAIL_SYNTAX)
        c.cmd("MAIL FROM:<a@external.test>", "250 OK")


@pytest.mark.parametrize("cmd", [
    "MAIL FROM:<a@external.test>",
    "MAIL FROM:a@external.test",
    "MAIL FROM:   a@external.test  ",
    "MAIL FROM: <a@external.test>",
    "mail from:<a@external.test>",
    'MAIL FROM: <"John Smith"@external.test>',
    "MAIL FROM:<> AUTH=<>",
    "MAIL FROM:<a@external.test> SIZE=1000",
    "MAIL FROM:<a@external.test> size=1000",
    "MAIL FROM:<a@external.test> BODY=8BITMIME",
    "MAIL FROM:<a@external.test> BODY=7BIT",
    "MAIL FROM:<a@external.test> BODY=8BITMIME SIZE=20",
    "MAIL FROM:<a@[192.0.2.1]>",
    "MAIL FROM:<user+tag@external.test>",
    "MAIL FROM:<!#$%&'*+-/=?^_`.{|}~@external.test>",
    "MAIL FROM:<a/b@external.test>",
    "MAIL FROM:<a@localhost>",
    "MAIL FROM:<A@EXTERNAL.TEST>",
])
def test_mail_accepted_forms(server, cmd):
    with server.session() as c:
        c.cmd(cmd, "250 OK")
        c.cmd("RCPT TO:<user@example.test>", "250 OK")


def test_null_sender_allowed_by_default(server):
    with server.session() as c:
        c.cmd("MAIL FROM:<>", "250 OK")
        c.cmd("RCPT TO:<user@example.test>", "250 OK")


def test_null_sender_refused_when_disallowed(make_server):
    g = make_server(smtp={"allow_null_sender": "no"})
    with g.session() as c:
        c.cmd("MAIL FROM:<>", "550 Sender address must be specified.")
        c.cmd("MAIL FROM:<a@external.test>", "250 OK")


@pytest.mark.parametrize("addr", [
    "a\\b@external.test", "a@-x.test", "a@x-.test", "a@b..test", "a@.b.test", "a@b.test.",
    "a@@b.test", "a", "@external.test", "a@", "a@under_score.test", "a@b!c.test",
    "x" * 250 + "@b.test", "a@" + "b" * 64 + ".test",
])
def test_mail_invalid_address(server, addr):
    with server.session() as c:
        c.cmd(f"MAIL FROM:<{addr}>", "550 The address is not valid.")
        c.cmd("MAIL FROM:<a@external.test>", "250 OK")


@pytest.mark.parametrize("param", ["RET=FULL", "ENVID=abc", "SMTPUTF8", "XFOO=1", "NOTIFY=NEVER"])
def test_mail_unsupported_parameter(server, param):
    with server.session() as c:
        c.cmd(f"MAIL FROM:<a@external.test> {param}", f"555 Unsupported ESMTP extension: {param}")
        c.cmd("MAIL FROM:<a@external.test>", "250 OK")


def test_mail_unsupported_parameter_echoes_first_offender(server):
    with server.session() as c:
        c.cmd("MAIL FROM:<a@external.test> SIZE=10 RET=HDRS ENVID=x",
              "555 Unsupported ESMTP extension: RET=HDRS")


def test_size_over_limit(server):
    with server.session() as c:
        c.cmd("MAIL FROM:<a@external.test> SIZE=20972544", SIZE_TEXT.format(20481, 20480))
        c.cmd("MAIL FROM:<a@external.test> SIZE=20971520", "250 OK")


def test_size_rounding_is_in_whole_kb(server):
    """KB = bytes / 1024 rounded down; reject only when strictly greater than the limit."""
    with server.session() as c:
        c.cmd("MAIL FROM:<a@external.test> SIZE=20972543", "250 OK")
    with server.session() as c:
        c.cmd("MAIL FROM:<a@external.test> SIZE=99999999999", SIZE_TEXT.format(97656249, 20480))


def test_size_limit_small(make_server):
    g = make_server(smtp={"max_message_size": "10"})
    with g.session() as c:
        c.cmd("MAIL FROM:<a@external.test> SIZE=11264", SIZE_TEXT.format(11, 10))
        c.cmd("MAIL FROM:<a@external.test> SIZE=11263", "250 OK")


def test_size_unlimited(make_server):
    g = make_server(smtp={"max_message_size": "0"})
    with g.session() as c:
        c.cmd("MAIL FROM:<a@external.test> SIZE=999999999", "250 OK")


def test_size_per_domain_limit_of_local_sender(server):
    """small.test has --max-message-size 5: its senders get min(global, 5 KB)."""
    with server.session("127.0.0.1") as c:
        c.cmd("MAIL FROM:<sender@small.test> SIZE=6144", SIZE_TEXT.format(6, 5))
        c.cmd("MAIL FROM:<sender@small.test> SIZE=5120", "250 OK")


def test_insufficient_storage(make_server, tmp_path):
    """Free spool space below 1.5 x the maximum message size -> 452 at MAIL."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], check=True)
    try:
        g = make_server(start=False, use_world=True, smtp={"max_message_size": "20480"})
        # move the data dir onto the 4 MB file system: 4 MB < 1.5 x 20 MB
        import shutil
        newdata = mnt / "data"
        shutil.copytree(g.data, newdata, symlinks=True)
        g.data = newdata
        g.db = newdata / "gannet.db"
        g.write_config()
        g.start()
        with g.session() as c:
            c.cmd("MAIL FROM:<a@external.test>", "452 Insufficient system storage")
        g.stop()
        # the same file system is enough for 1 MB messages (1.5 MB needed)
        g.smtp["max_message_size"] = "1024"
        g.write_config()
        g.start()
        with g.session() as c:
            c.cmd("MAIL FROM:<a@external.test>", "250 OK")
        problems = g.stop()
        assert not problems, problems
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
