"""The admin CLI as far as the protocol tests rely on it (design.md §5): --help everywhere,
one-line errors and exit codes, check-config, init idempotence, changes while running,
mailbox and queue inspection."""
import time

import pytest

from gannet import EXT, Gannet, gannet_bin, make_message, token

SUBCOMMANDS = [
    ["init"], ["serve"], ["check-config"],
    ["domain"], ["domain", "add"], ["domain", "set"], ["domain", "del"], ["domain", "list"],
    ["domain-alias"], ["domain-alias", "add"], ["domain-alias", "del"],
    ["account"], ["account", "add"], ["account", "set"], ["account", "del"], ["account", "list"],
    ["alias"], ["alias", "add"], ["alias", "set"], ["alias", "del"], ["alias", "list"],
    ["list"], ["list", "add"], ["list", "set"], ["list", "del"], ["list", "list"],
    ["list", "member"], ["list", "member", "add"], ["list", "member", "del"],
    ["route"], ["route", "add"], ["route", "del"], ["route", "list"],
    ["iprange"], ["iprange", "add"], ["iprange", "set"], ["iprange", "del"], ["iprange", "list"],
    ["mailbox"], ["mailbox", "list"], ["mailbox", "cat"],
    ["queue"], ["queue", "list"], ["queue", "show"], ["queue", "del"],
]


@pytest.fixture(scope="module")
def inst(tmp_root, dns, world):
    """An installation (not running) with the standard directory, for CLI-only tests."""
    from gannet import clone_world
    return clone_world(world, tmp_root / "cli-inst", dns)


def test_top_level_help(inst):
    r = inst.cli("--help")
    assert r.returncode == 0 and "domain" in r.out


@pytest.mark.parametrize("cmd", SUBCOMMANDS, ids=[" ".join(c) for c in SUBCOMMANDS])
def test_help_on_every_subcommand(inst, cmd):
    r = inst.cli(*cmd, "--help", check=False)
    assert r.returncode == 0, f"`gannet {' '.join(cmd)} --help` exited {r.returncode}: {r.stderr}"
    assert r.out.strip(), "no usage text on stdout"


def _one_line_error(r):
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, f"expected a one-line error, got: {r.stderr!r}"
    return lines[0]


def test_unknown_command(inst):
    r = inst.cli("frobnicate", check=False)
    assert r.returncode == 64
    _one_line_error(r)


def test_duplicate_domain(inst):
    r = inst.cli("domain", "add", "example.test", check=False)
    assert r.returncode == 1
    _one_line_error(r)
    r = inst.cli("domain", "add", "EXAMPLE.Test", check=False)
    assert r.returncode == 1, "domain names must be case-insensitive"


@pytest.mark.parametrize("args", [
    ["account", "add", "not-an-address", "--password", "x"],
    ["account", "add", "a@b..test", "--password", "x"],
    ["alias", "add", "x@example.test", "bad address@x.test"],
    ["domain", "add", "bad..domain"],
    ["list", "member", "add", "pub@example.test", "no-at-sign"],
    ["iprange", "add", "Bad", "--from", "300.1.1.1", "--to", "300.1.1.2"],
])
def test_invalid_input_clear_error(inst, args):
    r = inst.cli(*args, check=False)
    assert r.returncode in (1, 64), f"exit {r.returncode}"
    _one_line_error(r)


def test_account_in_unknown_domain(inst):
    r = inst.cli("account", "add", "x@nowhere.test", "--password", "x", check=False)
    assert r.returncode == 1
    _one_line_error(r)


def test_missing_argument_is_usage_error(inst):
    r = inst.cli("domain", "add", check=False)
    assert r.returncode == 64
    _one_line_error(r)


def test_init_is_idempotent_and_creates_default_ranges(inst):
    inst.cli("init")
    inst.cli("init")
    out = inst.cli("iprange", "list").out
    names = [line.split("\t")[0].strip() for line in out.splitlines()]
    assert names.count("My computer") == 1, out
    assert names.count("Internet") == 1, out
    # the directory survived
    assert "example.test" in inst.cli("domain", "list").out


def test_lists_show_entries(inst):
    assert "user@example.test" in inst.cli("account", "list").out.lower()
    assert "alias@example.test" in inst.cli("alias", "list").out.lower()
    assert "pub@example.test" in inst.cli("list", "list").out.lower()
    assert "routed.test" in inst.cli("route", "list").out.lower()


def _bad_config(tmp_path, dns, text):
    g = Gannet(tmp_path / "bad", dns)
    g.conf.write_text(text)
    return g


def test_check_config_ok(inst):
    r = inst.cli("check-config", check=False)
    assert r.returncode == 0, r.stderr


def test_check_config_reports_file_and_line(tmp_path, dns):
    g = Gannet(tmp_path / "bad", dns)
    text = g.config_text().replace("timeout = 10m", "timeout = banana")
    g.conf.write_text(text)
    line = text.splitlines().index("timeout = banana") + 1
    r = g.cli("check-config", check=False)
    assert r.returncode == 78, f"exit {r.returncode}: {r.stderr}"
    assert f"{g.conf}:{line}: " in r.stderr, r.stderr


def test_check_config_unknown_key_and_bad_listener(tmp_path, dns):
    g = Gannet(tmp_path / "bad", dns)
    text = g.config_text() + "no_such_key = 1\n[listener:broken]\nprotocol = gopher\n"
    g.conf.write_text(text)
    lines = text.splitlines()
    r = g.cli("check-config", check=False)
    assert r.returncode == 78
    assert f"{g.conf}:{lines.index('no_such_key = 1') + 1}: " in r.stderr, r.stderr
    assert f"{g.conf}:{lines.index('protocol = gopher') + 1}: " in r.stderr, r.stderr


def test_serve_refuses_bad_config(tmp_path, dns):
    import subprocess
    from gannet import subprocess_env
    g = Gannet(tmp_path / "bad", dns)
    text = g.config_text().replace("max_message_size = 20480", "max_message_size = lots")
    g.conf.write_text(text)
    line = text.splitlines().index("max_message_size = lots") + 1
    p = subprocess.run([gannet_bin(), "-c", str(g.conf), "serve"], capture_output=True,
                       timeout=20, env=subprocess_env())
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 78, f"exit {p.returncode}: {err}"
    assert f"{g.conf}:{line}: " in err, err


def test_changes_while_running_take_effect(make_server):
    g = make_server()
    with g.session() as c:
        c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
        c.cmd("RCPT TO:<newbie@example.test>", "550 Unknown user")
    g.cli("account", "add", "newbie@example.test", "--password", "pw")
    t0 = time.monotonic()
    while True:
        with g.session() as c:
            c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
            r = c.cmd("RCPT TO:<newbie@example.test>")
        if r.lines == ["250 OK"]:
            break
        assert r.lines == ["550 Unknown user"], r.lines
        assert time.monotonic() - t0 < 1.5, "new account not visible after more than a second"
        time.sleep(0.1)
    g.cli("account", "set", "newbie@example.test", "--disabled")
    t0 = time.monotonic()
    while True:
        with g.session() as c:
            c.cmd(f"MAIL FROM:<{EXT}>", "250 OK")
            r = c.cmd("RCPT TO:<newbie@example.test>")
        if r.lines == ["550 Account is not active."]:
            break
        assert time.monotonic() - t0 < 1.5, f"still {r.lines} after more than a second"
        time.sleep(0.1)


def test_mailbox_list_and_cat(server):
    tok = token()
    msg = make_message(token=tok, to="user4@example.test")
    server.send(EXT, ["user4@example.test"], msg)
    stored = server.wait_for("user4@example.test", tok)[0]
    uids, listing = server.mailbox_uids("user4@example.test")
    assert uids and uids == sorted(uids) and len(set(uids)) == len(uids)
    assert tok in listing, f"mailbox list does not show the Subject:\n{listing}"
    assert stored.endswith(msg)


def test_mailbox_cat_unknown_uid(server):
    r = server.cli("mailbox", "cat", "user4@example.test", "999999", check=False)
    assert r.returncode != 0
    _one_line_error(r)


def test_queue_list_shows_remote_recipient(server, dns):
    from fakemta import unreachable
    tok = token()
    with unreachable(dns, "external.test"):  # a temporary failure: the recipient stays queued
        server.send("user@example.test", ["far@external.test"],
                    make_message(token=tok, to="far@external.test"), source="127.0.0.1")
        out = server.cli("queue", "list").out
    assert "far@external.test" in out, out


def test_queue_show_and_del(make_server, dns):
    from fakemta import unreachable
    g = make_server()
    tok = token()
    with unreachable(dns, "external.test"):  # a temporary failure: the recipient stays queued
        g.send("user@example.test", ["gone@external.test"],
               make_message(token=tok, to="gone@external.test"), source="127.0.0.1")
        out = g.cli("queue", "list").out
    line = next((x for x in out.splitlines() if "gone@external.test" in x), None)
    assert line, out
    qid = line.split()[0]
    shown = g.cli("queue", "show", qid).out
    assert "user@example.test" in shown and "gone@external.test" in shown, shown
    g.cli("queue", "del", qid)
    assert "gone@external.test" not in g.cli("queue", "list").out
    r = g.cli("queue", "show", qid, check=False)
    assert r.returncode != 0
    _one_line_error(r)
