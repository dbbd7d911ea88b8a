"""Real clients: Python smtplib (several messages over one connection) and swaks; each message's
bytes arrive unchanged in `gannet mailbox cat` after the prepended Return-Path and Received."""
import re
import smtplib
import subprocess

from gannet import EXT, make_message, split_stored, token


def test_smtplib_several_messages_one_connection(server):
    toks = [token("smtplib") for _ in range(4)]
    msgs = {}
    with smtplib.SMTP("127.0.0.1", server.port, local_hostname="smtplib.client.test",
                      source_address=("127.0.0.2", 0), timeout=15) as s:
        code, _ = s.ehlo()
        assert code == 250
        assert s.has_extn("pipelining") and s.has_extn("8bitmime") and s.has_extn("size")
        assert s.esmtp_features["size"] == "20971520"
        for i, t in enumerate(toks):
            body = (f"message {i}\r\n.starts with a dot\r\n\r\n"
                    f"{'long ' * 150}\r\nend\r\n").encode()
            msg = make_message(token=t, to="real@example.test", body=body)
            msgs[t] = msg
            refused = s.sendmail(EXT, ["real@example.test"], msg)
            assert refused == {}
        # a refused recipient is reported, the rest delivered
        t = token("smtplib")
        msgs[t] = make_message(token=t, to="real@example.test")
        refused = s.sendmail(EXT, ["nobody@example.test", "real@example.test"], msgs[t])
        assert refused == {"nobody@example.test": (550, b"Unknown user")}
        toks.append(t)
    for t in toks:
        stored = server.wait_for("real@example.test", t)[0]
        rp, _, _, rest = split_stored(stored)
        assert rp == f"Return-Path: <{EXT}>\r\n".encode()
        assert rest == msgs[t], f"message {t} changed in transit"


def test_smtplib_8bit_body(server):
    t = token("smtplib8")
    body = "Grüße, ünïcödé ✓\r\n".encode("utf-8")
    msg = make_message(token=t, to="real@example.test", body=body,
                       headers=["Content-Type: text/plain; charset=utf-8",
                                "Content-Transfer-Encoding: 8bit"])
    with smtplib.SMTP("127.0.0.1", server.port, source_address=("127.0.0.2", 0),
                      timeout=15) as s:
        s.ehlo("client.test")
        s.sendmail(EXT, ["real@example.test"], msg, mail_options=["BODY=8BITMIME"])
    _, _, _, rest = split_stored(server.wait_for("real@example.test", t)[0])
    assert rest == msg


def test_smtplib_errors(server):
    with smtplib.SMTP("127.0.0.1", server.port, source_address=("127.0.0.2", 0),
                      timeout=15) as s:
        s.ehlo("client.test")
        try:
            s.sendmail(EXT, ["nobody@example.test"], b"Subject: x\r\n\r\nx\r\n")
            raise AssertionError("sendmail to an unknown user did not raise")
        except smtplib.SMTPRecipientsRefused as e:
            assert e.recipients == {"nobody@example.test": (550, b"Unknown user")}
        code, msg = s.noop()
        assert (code, msg) == (250, b"OK")


def test_swaks(server, tmp_path):
    t = token("swaks")
    msg = make_message(token=t, to="real@example.test",
                       body=b"Sent by swaks.\r\n\r\n.leading dot\r\n..two dots\r\nbye\r\n")
    f = tmp_path / "msg.eml"
    f.write_bytes(msg[:-2])  # swaks always appends CRLF before the final dot
    p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(server.port),
                        "--local-interface", "127.0.0.2", "--helo", "swaks.client.test",
                        "--from", EXT, "--to", "real@example.test", "--data", f"@{f}",
                        "--timeout", "20"],
                       capture_output=True, timeout=60)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, f"swaks failed ({p.returncode}):\n{out}\n{p.stderr.decode()}"
    assert re.search(r"<-\s+250 Queued \(\d+\.\d{3} seconds\)", out), out
    stored = server.wait_for("real@example.test", t)[0]
    _, _, received, rest = split_stored(stored)
    assert received.startswith(b"Received: from swaks.client.test (Unknown [127.0.0.2])\r\n")
    assert rest == msg


def test_swaks_pipelining(server, tmp_path):
    t = token("swakspipe")
    msg = make_message(token=t, to="real@example.test", body=b"pipelined\r\n")
    f = tmp_path / "msg.eml"
    f.write_bytes(msg[:-2])
    p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(server.port),
                        "--local-interface", "127.0.0.2", "--pipeline",
                        "--from", EXT, "--to", "real@example.test,nobody@example.test",
                        "--data", f"@{f}", "--timeout", "20"],
                       capture_output=True, timeout=60)
    out = p.stdout.decode(errors="replace")
    assert re.search(r"<\*\*\s+550 Unknown user", out), out
    assert re.search(r"<-\s+250 Queued \(\d+\.\d{3} seconds\)", out), out
    _, _, _, rest = split_stored(server.wait_for("real@example.test", t)[0])
    assert rest == msg
