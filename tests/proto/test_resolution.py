"""Recipient resolution (hmailserver-behaviour.md §4, replies.md RCPT TO): accounts, aliases and
chains, loops, domain aliases, plus addressing, catch-all, lists (public, members, announce,
require-auth, inactive, nested, empty), routes, disabled objects, duplicates, forwarding.
The directory is gannet.WORLD; clients connect from 127.0.0.2 (Internet) unless stated."""
import time

import pytest

from gannet import EXT, make_message, token

MSG_OK = "250 OK"


def rcpt(server, to, expect, sender=EXT, source="127.0.0.2"):
    with server.session(source) as c:
        c.cmd(f"MAIL FROM:<{sender}>", "250 OK")
        c.cmd(f"RCPT TO:<{to}>", expect)


def deliver(server, to, sender=EXT, source="127.0.0.2", rcpts=None):
    """Send one message to `to` (or the list rcpts); returns its token."""
    tok = token()
    server.send(sender, rcpts or [to], make_message(token=tok, sender=sender, to=to),
                source=source)
    return tok


# -- accounts


def test_account(server):
    tok = deliver(server, "user@example.test")
    msgs = server.wait_for("user@example.test", tok, settle=0.3)
    assert len(msgs) == 1


def test_account_case_insensitive(server):
    tok = deliver(server, "User2@EXAMPLE.Test")
    server.wait_for("user2@example.test", tok)


def test_unknown_user(server):
    rcpt(server, "nobody@example.test", "550 Unknown user")


def test_unknown_user_from_my_computer(server):
    rcpt(server, "nobody@example.test", "550 Unknown user", source="127.0.0.1")


def test_account_inactive(server):
    rcpt(server, "inactive@example.test", "550 Account is not active.")


def test_domain_disabled(server):
    rcpt(server, "user@disabled.test", "550 Domain has been disabled.")
    rcpt(server, "nobody@disabled.test", "550 Domain has been disabled.")


# -- aliases


def test_alias_to_account(server):
    tok = deliver(server, "alias@example.test")
    server.wait_for("user@example.test", tok)


def test_alias_chain(server):
    tok = deliver(server, "chain1@example.test")
    server.wait_for("user3@example.test", tok)


def test_alias_chain_of_24_is_allowed(server):
    tok = deliver(server, "a01@example.test")
    server.wait_for("hopdest@example.test", tok)


def test_alias_chain_too_deep(server):
    rcpt(server, "b01@example.test",
         "550 Mail server configuration error. Too many recursive forwards.")


@pytest.mark.parametrize("addr", ["loop1@example.test", "loop2@example.test"])
def test_alias_loop(server, addr):
    rcpt(server, addr, "550 Mail server configuration error. Too many recursive forwards.")


def test_alias_inactive(server):
    rcpt(server, "deadalias@example.test", "550 Alias is not active.")


def test_alias_to_inactive_account(server):
    rcpt(server, "toinactive@example.test", "550 Account is not active.")


def test_alias_to_external_counts_as_local_recipient(server, dns):
    """An alias in a local domain pointing outside is still a local recipient (first hop):
    an Internet client may send to it; the copy waits in the queue for outbound delivery
    (external.test's server refuses connections here, so the copy stays queued)."""
    from fakemta import unreachable
    with unreachable(dns, "external.test"):
        tok = deliver(server, "extalias@example.test")
        out = server.cli("queue", "list").out
    assert "someone@external.test" in out, f"queue list does not show the recipient:\n{out}"
    assert tok  # delivered to the queue, not to a local mailbox


# -- domain aliases and plus addressing


def test_domain_alias(server):
    tok = deliver(server, "user@alias-domain.test")
    server.wait_for("user@example.test", tok)


def test_domain_alias_unknown_user(server):
    rcpt(server, "nobody@alias-domain.test", "550 Unknown user")


def test_plus_addressing(server):
    tok = deliver(server, "plus+tag@example.test")
    server.wait_for("plus@example.test", tok)


def test_plus_addressing_cut_at_first_plus(server):
    tok = deliver(server, "plus+a+b@example.test")
    server.wait_for("plus@example.test", tok)


def test_plus_addressing_with_domain_alias(server):
    tok = deliver(server, "plus+tag@alias-domain.test")
    server.wait_for("plus@example.test", tok)


def test_plus_addressing_off_for_domain(server):
    rcpt(server, "someone@other.test", "250 OK")
    rcpt(server, "someone+tag@other.test", "550 Unknown user")


# -- catch-all


def test_catch_all(server):
    tok = deliver(server, "whoever@catchall.test")
    server.wait_for("catch@catchall.test", tok)


def test_catch_all_existing_account_wins(server):
    tok = deliver(server, "known@catchall.test")
    server.wait_for("known@catchall.test", tok)
    server.assert_absent("catch@catchall.test", tok, wait=0.5)


# -- distribution lists


def test_list_public(server):
    tok = deliver(server, "pub@example.test")
    server.wait_for("lm1@example.test", tok)
    server.wait_for("lm2@example.test", tok)


def test_list_public_from_my_computer(server):
    tok = deliver(server, "pub@example.test", source="127.0.0.1")
    server.wait_for("lm1@example.test", tok)


def test_list_members_mode_external_member(server):
    tok = deliver(server, "members@example.test", sender="member@external.test")
    server.wait_for("lm1@example.test", tok)


def test_list_members_mode_non_member(server):
    rcpt(server, "members@example.test", "550 Not authorized.", sender="other@external.test")
    rcpt(server, "members@example.test", "550 Not authorized.", sender="other@external.test",
         source="127.0.0.1")


def test_list_members_mode_member_case_insensitive(server):
    rcpt(server, "members@example.test", "250 OK", sender="MEMBER@External.Test")


def test_list_members_mode_local_member(server):
    # from 127.0.0.1 a local sender needs no auth; lm1 is a member
    rcpt(server, "members@example.test", "250 OK", sender="lm1@example.test",
         source="127.0.0.1")
    # the sender's domain alias maps to the member's domain
    rcpt(server, "members@example.test", "250 OK", sender="lm1@alias-domain.test",
         source="127.0.0.1")


def test_list_members_mode_checked_before_relay_rules(server):
    """Resolution (Not authorized) answers before the IP-range auth rule for a local sender."""
    rcpt(server, "members@example.test", "550 Not authorized.", sender="lm2@example.test")
    rcpt(server, "members@example.test", "530 SMTP authentication is required.",
         sender="lm1@example.test")


def test_list_announce_mode(server):
    tok = deliver(server, "announce@example.test", sender="boss@external.test")
    server.wait_for("lm1@example.test", tok)
    rcpt(server, "announce@example.test", "550 Not authorized.", sender="member@external.test")
    rcpt(server, "announce@example.test", "550 Not authorized.", sender="")


def test_list_require_auth(server):
    rcpt(server, "authlist@example.test", "530 SMTP authentication is required.")
    rcpt(server, "authlist@example.test", "530 SMTP authentication is required.",
         source="127.0.0.1")
    rcpt(server, "authlist@example.test", "530 SMTP authentication is required.",
         sender="user@example.test", source="127.0.0.1")


def test_list_inactive(server):
    rcpt(server, "offlist@example.test", "550 Distribution list is not active.")


def test_list_nested_with_self_reference(server):
    """nested = [pub, lm3, nested itself, LM1]; pub = [lm1, lm2]: one copy each."""
    tok = deliver(server, "nested@example.test")
    for a in ("lm1@example.test", "lm2@example.test", "lm3@example.test"):
        msgs = server.wait_for(a, tok, settle=0.5)
        assert len(msgs) == 1, f"{a} got {len(msgs)} copies"


def test_list_empty(server):
    rcpt(server, "emptylist@example.test", "550 Unknown user")


# -- routes


def test_route_listed_address(server):
    rcpt(server, "listed@routed.test", "250 OK")
    rcpt(server, "LISTED@Routed.Test", "250 OK")


def test_route_not_listed(server):
    rcpt(server, "other@routed.test", "550 Recipient not in route list.")


def test_route_all_addresses(server):
    rcpt(server, "anything@routeall.test", "250 OK")


def test_route_wildcard(server):
    rcpt(server, "x@mx.wild.test", "250 OK")
    rcpt(server, "x@a.b.wild.test", "250 OK")
    rcpt(server, "x@wild.test", "530 SMTP authentication is required.")  # no route: external


def test_route_recipient_not_local_is_relay(server):
    """Without --local-recipient a routed domain is external: Internet client -> 530."""
    rcpt(server, "x@extroute.test", "530 SMTP authentication is required.")
    rcpt(server, "x@extroute.test", "250 OK", sender="user@example.test", source="127.0.0.1")


def test_route_message_stays_queued(server):
    tok = deliver(server, "anything@routeall.test")
    out = server.cli("queue", "list").out
    assert "anything@routeall.test" in out, out
    assert tok


def test_route_local_sender(server):
    """lsender.test has a route with --local-sender: its senders are local, so an Internet
    client needs auth for local->local."""
    rcpt(server, "user@example.test", "530 SMTP authentication is required.",
         sender="x@lsender.test")
    rcpt(server, "user@example.test", "250 OK", sender="x@notlsender.test")


# -- duplicates


def test_duplicates_collapsed(server):
    tok = token()
    rcpts = ["dup@example.test", "DUP@example.test", "dup+x@example.test",
             "dup@alias-domain.test", "dup@example.test"]
    server.send(EXT, rcpts, make_message(token=tok, to="dup@example.test"))
    msgs = server.wait_for("dup@example.test", tok, settle=1.0)
    assert len(msgs) == 1, f"{len(msgs)} copies stored"


def test_duplicates_via_list_and_direct(server):
    tok = token()
    server.send(EXT, ["pub@example.test", "lm2@example.test", "nested@example.test"],
                make_message(token=tok, to="pub@example.test"))
    for a in ("lm1@example.test", "lm2@example.test", "lm3@example.test"):
        msgs = server.wait_for(a, tok, settle=0.5)
        assert len(msgs) == 1, f"{a}: {len(msgs)} copies"


def test_case_variants_collapse(server):
    tok = token()
    server.send(EXT, ["user5@example.test", "User5@Example.test"], make_message(token=tok))
    msgs = server.wait_for("user5@example.test", tok, settle=1.0)
    assert len(msgs) == 1


# -- forwarding (delivery time)


def test_forward_without_copy(server):
    tok = deliver(server, "fwd@example.test")
    server.wait_for("fwdtarget@example.test", tok)
    server.assert_absent("fwd@example.test", tok)


def test_forward_keep_copy(server):
    tok = deliver(server, "fwdkeep@example.test")
    server.wait_for("fwdtarget2@example.test", tok)
    server.wait_for("fwdkeep@example.test", tok)


# -- mixed transaction


def test_rejected_recipient_does_not_spoil_the_transaction(server):
    tok = token()
    with server.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<nobody@example.test>", "550 Unknown user")
        c.cmd("RCPT TO:<rcv@example.test>", "250 OK")
        c.cmd("RCPT TO:<inactive@example.test>", "550 Account is not active.")
        c.data(make_message(token=tok), expect="queued")
    server.wait_for("rcv@example.test", tok)


def test_forward_loop_terminates(make_server):
    """Two accounts forwarding to each other: delivery must end (hop limit), the server stays
    idle afterwards and the number of stored copies is bounded."""
    g = make_server(setup=[
        ["account", "add", "floopa@example.test", "--password", "x",
         "--forward", "floopb@example.test", "--keep-copy"],
        ["account", "add", "floopb@example.test", "--password", "x",
         "--forward", "floopa@example.test", "--keep-copy"],
    ])
    tok = deliver(g, "floopa@example.test")
    g.wait_for("floopa@example.test", tok)
    time.sleep(2.0)
    cpu0 = g.cpu_seconds()
    time.sleep(1.0)
    assert g.cpu_seconds() - cpu0 < 0.5, "server still busy after a forwarding loop"
    n = len(g.find("floopa@example.test", tok)) + len(g.find("floopb@example.test", tok))
    assert 1 <= n <= 26, f"{n} copies stored for a forwarding loop"
