"""IP ranges (hmailserver-behaviour.md §2.3, replies.md): connection admission, relay direction,
auth requirement, priorities, changes while running. 127.0.0.1 is "My computer", 127.0.0.2 is
"Internet"; 127.0.0.3-9 have their own ranges in gannet.WORLD."""
import time

import pytest

AUTH = "530 SMTP authentication is required."
RELAY = "550 Delivery is not allowed to this address"

EXT_S, EXT_R = "sender@external.test", "rcpt@external.test"
LOC_S, LOC_R = "user@example.test", "user2@example.test"


def rcpt(g, source, sender, to, expect):
    with g.session(source) as c:
        c.cmd(f"MAIL FROM:<{sender}>", "250 OK")
        c.cmd(f"RCPT TO:<{to}>", expect)


# The relay matrix with the default ranges (direction: sender -> recipient)
MATRIX = [
    # source,      sender, rcpt,  expected
    ("127.0.0.2", EXT_S, LOC_R, "250 OK"),  # external -> local: allowed, no auth
    ("127.0.0.2", EXT_S, EXT_R, AUTH),      # open relay attempt
    ("127.0.0.2", LOC_S, LOC_R, AUTH),      # spoofed local sender
    ("127.0.0.2", LOC_S, EXT_R, AUTH),      # local -> external needs auth from the Internet
    ("127.0.0.1", EXT_S, LOC_R, "250 OK"),
    ("127.0.0.1", EXT_S, EXT_R, AUTH),      # My computer: auth only for external -> external
    ("127.0.0.1", LOC_S, LOC_R, "250 OK"),
    ("127.0.0.1", LOC_S, EXT_R, "250 OK"),
]


@pytest.mark.parametrize("source,sender,to,expected", MATRIX,
                         ids=[f"{s}-{a.split('@')[1]}-{b.split('@')[1]}" for s, a, b, _ in MATRIX])
def test_relay_matrix(server, source, sender, to, expected):
    rcpt(server, source, sender, to, expected)


def test_null_sender_is_external(server):
    rcpt(server, "127.0.0.2", "", LOC_R, "250 OK")
    rcpt(server, "127.0.0.2", "", EXT_R, AUTH)


def test_sender_in_alias_domain_is_local(server):
    rcpt(server, "127.0.0.2", "someone@alias-domain.test", LOC_R, AUTH)
    rcpt(server, "127.0.0.1", "someone@alias-domain.test", LOC_R, "250 OK")


def test_sender_of_unknown_account_in_local_domain_is_local(server):
    rcpt(server, "127.0.0.2", "nobody@example.test", LOC_R, AUTH)


def test_recipient_in_alias_domain_is_local(server):
    rcpt(server, "127.0.0.2", EXT_S, "user@alias-domain.test", "250 OK")


def test_resolution_failure_before_relay_rule(server):
    """Unknown user is answered before the relay/auth rules (replies.md check order)."""
    rcpt(server, "127.0.0.2", LOC_S, "nobody@example.test", "550 Unknown user")


def test_range_without_smtp_closes_silently(server):
    with server.connect("127.0.0.3", banner=False) as c:
        c.assert_closed()


def test_lower_priority_range_loses(server):
    """127.0.0.9 has a priority-5 range without SMTP; Internet (10) wins, so SMTP works."""
    with server.connect("127.0.0.9") as c:
        c.cmd("QUIT", "221 goodbye")


def test_delivery_direction_not_allowed(server):
    rcpt(server, "127.0.0.4", EXT_S, LOC_R, RELAY)
    rcpt(server, "127.0.0.4", LOC_S, LOC_R, AUTH)  # ll allowed but needs auth there


def test_auth_required_for_external_to_local(server):
    rcpt(server, "127.0.0.5", EXT_S, LOC_R, AUTH)
    rcpt(server, "127.0.0.5", LOC_S, LOC_R, "250 OK")  # ll: allowed, no auth in this range
    rcpt(server, "127.0.0.5", EXT_S, EXT_R, "250 OK")  # ee: allowed, no auth in this range


def test_relay_check_precedes_auth_check(server):
    rcpt(server, "127.0.0.6", EXT_S, LOC_R, RELAY)


def test_open_relay_range(server):
    rcpt(server, "127.0.0.7", EXT_S, EXT_R, "250 OK")
    rcpt(server, "127.0.0.7", LOC_S, LOC_R, AUTH)


def test_external_to_external_not_allowed(server):
    rcpt(server, "127.0.0.8", EXT_S, EXT_R, RELAY)
    rcpt(server, "127.0.0.8", EXT_S, LOC_R, "250 OK")


def test_internet_without_smtp(make_server):
    g = make_server(setup=[["iprange", "set", "Internet", "--allow", "pop3,imap"]])
    with g.connect("127.0.0.2", banner=False) as c:
        c.assert_closed()
    with g.connect("127.0.0.1") as c:  # My computer still allowed
        c.cmd("QUIT", "221 goodbye")


def test_internet_without_external_to_local(make_server):
    g = make_server(setup=[["iprange", "set", "Internet", "--deliver", "ll,le,ee"]])
    rcpt(g, "127.0.0.2", EXT_S, LOC_R, RELAY)
    rcpt(g, "127.0.0.1", EXT_S, LOC_R, "250 OK")


def test_no_range_matches_closes_silently(make_server):
    g = make_server(setup=[["iprange", "del", "Internet"]])
    with g.connect("127.0.0.2", banner=False) as c:
        c.assert_closed()
    with g.connect("127.0.0.1") as c:
        c.cmd("QUIT", "221 goodbye")


def _poll(fn, seconds):
    deadline = time.monotonic() + seconds
    while True:
        try:
            return fn()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_range_change_while_running_takes_effect(make_server):
    g = make_server()
    rcpt(g, "127.0.0.2", EXT_S, LOC_R, "250 OK")
    g.cli("iprange", "set", "Internet", "--deliver", "ll,le,ee")
    t0 = time.monotonic()
    _poll(lambda: rcpt(g, "127.0.0.2", EXT_S, LOC_R, RELAY), 3.0)
    assert time.monotonic() - t0 < 2.0, "the change took more than a second to take effect"

    g.cli("iprange", "add", "Blocked", "--from", "127.0.0.2", "--to", "127.0.0.2",
          "--priority", "60", "--allow", "pop3", "--deliver", "ll", "--require-auth", "ll")

    def closed():
        with g.connect("127.0.0.2", banner=False) as c:
            c.assert_closed()
    _poll(closed, 3.0)


def test_ipv6_range_for_loopback(make_server):
    """gannet init's "My computer" covers ::1 as well."""
    import socket
    from gannet import SmtpConn
    probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    probe.bind(("::1", 0))
    port6 = probe.getsockname()[1]
    probe.close()
    g = make_server(start=False)
    g.listeners = [("mx", {"protocol": "smtp", "address": f"127.0.0.1:{g.port}",
                           "security": "none"}),
                   ("mx6", {"protocol": "smtp", "address": f"[::1]:{port6}",
                            "security": "none"})]
    g.write_config()
    g.start()
    with SmtpConn(port6, source="::1", host="::1") as c:
        c.banner()
        c.ehlo()
        c.cmd(f"MAIL FROM:<{LOC_S}>", "250 OK")
        c.cmd(f"RCPT TO:<{EXT_R}>", "250 OK")  # local -> external: no auth from My computer
        c.cmd("RSET", "250 OK")
        c.cmd(f"MAIL FROM:<{EXT_S}>", "250 OK")
        c.cmd(f"RCPT TO:<{EXT_R}>", AUTH)
