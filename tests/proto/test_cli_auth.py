"""`gannet account add|set ADDR --password-hash HASH` (issue 3 item 5, docs/admin.md "Moving
accounts from another server"): the accepted forms (yescrypt, $6$, $2b$/$2y$, hMailServer's
salted SHA-256) are stored exactly as given; every other form is refused with a one-line
`gannet: invalid password hash: ...` and exit 1, leaving the account as it was. Then, through
the running server: a user logs in over SMTP AUTH with each imported hash, and the hash is
replaced by yescrypt.

The hashes were made outside Gannet: `openssl passwd -6 -salt abc secret`, the Openwall
crypt_blowfish vector for "U*U", and Python's hashlib for hMailServer's form."""
import base64
import hashlib
import sqlite3

import pytest

SHA512 = ("$6$abc$IdWKNKTJEb8LxY7CGg8YBXlvtfZzFw7Mp/r6niK9YB2mdvgY..TKjv1T..8RadRt2qvUHYRLr/"
          "TsVArtr91iR1")
BCRYPT_B = "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
BCRYPT_Y = "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"


def hmail(salt, password):
    return salt + hashlib.sha256((salt + password).encode()).hexdigest()


HMAIL = hmail("a1b2c3", "secret")
assert HMAIL == "a1b2c3ff913cf667513b753e458709f781b7dbb41db0e77727643cd704f29d9eb27dfb"

# (hash, password that matches it)
ACCEPTED = [
    (SHA512, "secret"),
    (BCRYPT_B, "U*U"),
    (BCRYPT_Y, "U*U"),
    (HMAIL, "secret"),
    (HMAIL.upper()[:6].lower() + HMAIL[6:].upper(), "secret"),
    (hmail("Zx9Qw1", "pässwörd"), "pässwörd"),
]
ACCEPTED_IDS = ["sha512", "bcrypt-2b", "bcrypt-2y", "hmail", "hmail-upper", "hmail-utf8"]

UNSUPPORTED = ("invalid password hash: unsupported password hash (use yescrypt $y$, SHA-512 $6$, "
               "bcrypt $2b$ or $2y$, or hMailServer's 70-character salted SHA-256)")
REJECTED = [
    ("secret", UNSUPPORTED),
    ("5ebe2294ecd0e0f08eab7690d2a6ee69", UNSUPPORTED),  # hMailServer's unsalted MD5
    ("$1$abc$ZMyLnp2bLuZDxBpSRJwRz0", UNSUPPORTED),      # MD5-crypt
    ("$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", UNSUPPORTED),
    ("{SHA512-CRYPT}" + SHA512, UNSUPPORTED),              # Dovecot's scheme prefix left on
    (HMAIL[:-1], UNSUPPORTED),                             # 69 characters
    (HMAIL + "0", UNSUPPORTED),                            # 71 characters
    (HMAIL[:10] + "g" + HMAIL[11:], UNSUPPORTED),          # not hex
    (SHA512[:-1], "invalid password hash: malformed SHA-512 ($6$) password hash"),
    (SHA512 + "x", "invalid password hash: malformed SHA-512 ($6$) password hash"),
    (BCRYPT_B[:-3], "invalid password hash: malformed bcrypt ($2b$) password hash"),
    ("$y$j9T$abc", "invalid password hash: malformed yescrypt ($y$) password hash"),
    ("$2b$20$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
     "invalid password hash: bcrypt cost above 16 (logins would be too slow)"),
    ("$6$ab c$x", "invalid password hash: invalid character in password hash"),
    ("", "invalid password hash: empty password hash"),
]
REJECTED_IDS = ["plain", "md5", "md5crypt", "bcrypt-2a", "dovecot-prefix", "hmail-69",
                "hmail-71", "hmail-nonhex", "sha512-short", "sha512-long", "bcrypt-short",
                "yescrypt-short", "bcrypt-cost", "blank", "empty"]


def stored_hash(g, address):
    c = sqlite3.connect(str(g.db), timeout=10)
    try:
        row = c.execute("SELECT password_hash FROM account WHERE address = ?",
                        (address,)).fetchone()
    finally:
        c.close()
    return row[0] if row else None


def one_line_error(r):
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, f"expected a one-line error, got: {r.stderr!r}"
    return lines[0]


@pytest.fixture(scope="module")
def inst(tmp_root, dns, world):
    """An installation (not running) with the standard directory."""
    from gannet import clone_world
    return clone_world(world, tmp_root / "cli-auth-inst", dns)


@pytest.mark.parametrize("hash_,pw", ACCEPTED, ids=ACCEPTED_IDS)
def test_accepted(inst, hash_, pw):
    addr = f"imp-{ACCEPTED_IDS[ACCEPTED.index((hash_, pw))]}@example.test"
    inst.cli("account", "add", addr, "--password-hash", hash_)
    assert stored_hash(inst, addr) == hash_
    # set replaces it, and only it
    inst.cli("account", "set", addr, "--password", "other")
    assert stored_hash(inst, addr).startswith("$y$")
    inst.cli("account", "set", addr, "--password-hash", hash_, "--quota", "7")
    assert stored_hash(inst, addr) == hash_
    listing = inst.cli("account", "list", "example.test").out
    row = [x for x in listing.splitlines() if x.startswith(addr + "\t")]
    assert row and row[0].split("\t")[2] == "7" and row[0].endswith("\tset"), listing


def test_yescrypt_accepted(inst):
    """A yescrypt hash (here: Gannet's own, copied from another account) is taken as is."""
    inst.cli("account", "add", "imp-y-src@example.test", "--password", "pw")
    h = stored_hash(inst, "imp-y-src@example.test")
    assert h.startswith("$y$j9T$")
    inst.cli("account", "add", "imp-y@example.test", "--password-hash", h)
    assert stored_hash(inst, "imp-y@example.test") == h


@pytest.mark.parametrize("hash_,err", REJECTED, ids=REJECTED_IDS)
def test_rejected(inst, hash_, err):
    # add: refused, nothing created
    addr = f"rej-{REJECTED_IDS[REJECTED.index((hash_, err))]}@example.test"
    r = inst.cli("account", "add", addr, "--password-hash", hash_, check=False)
    assert r.returncode == 1, r.stderr
    assert one_line_error(r) == f"gannet: {err}"
    assert stored_hash(inst, addr) is None
    # set: refused, the old hash and the other fields stay
    inst.cli("account", "add", addr, "--password", "keep")
    before = stored_hash(inst, addr)
    r = inst.cli("account", "set", addr, "--password-hash", hash_, "--disabled", check=False)
    assert r.returncode == 1, r.stderr
    assert one_line_error(r) == f"gannet: {err}"
    assert stored_hash(inst, addr) == before
    listing = inst.cli("account", "list", "example.test").out
    assert any(x.startswith(addr + "\tyes\t") for x in listing.splitlines()), listing


def test_usage_errors(inst):
    r = inst.cli("account", "add", "both@example.test", "--password", "x", "--password-hash",
                 HMAIL, check=False)
    assert r.returncode == 64
    assert "exclude each other" in one_line_error(r)
    r = inst.cli("account", "add", "nohash@example.test", "--password-hash", check=False)
    assert r.returncode == 64
    one_line_error(r)
    r = inst.cli("account", "set", "nobody@example.test", "--password-hash", HMAIL, check=False)
    assert r.returncode == 1
    assert one_line_error(r) == "gannet: no such account nobody@example.test"
    r = inst.cli("account", "add", "x@nowhere.test", "--password-hash", HMAIL, check=False)
    assert r.returncode == 1
    assert one_line_error(r) == "gannet: domain nowhere.test does not exist"
    r = inst.cli("account", "--help")
    assert "--password-hash HASH" in r.out


# --------------------------------------------------------------------------------------------
# Through the server: the imported hash logs in and is replaced by yescrypt.

def _b64(s):
    return base64.b64encode(s.encode()).decode()


@pytest.mark.parametrize("hash_,pw", ACCEPTED, ids=ACCEPTED_IDS)
def test_login_upgrades(make_server, hash_, pw):
    from gannet import SmtpConn
    addr = "imported@example.test"
    g = make_server(setup=[["account", "add", addr, "--password-hash", hash_]])
    with SmtpConn(g.port, source="127.0.0.1") as c:
        c.banner()
        code, lines = c.ehlo()
        if not any(x[4:].upper().startswith("AUTH") for x in lines):
            pytest.skip("the server does not offer AUTH on this listener yet")
        # a wrong password fails and leaves the hash alone
        c.cmd(f"AUTH PLAIN {_b64(chr(0) + addr + chr(0) + pw + 'x')}",
              "535 Authentication failed. Restarting authentication process.")
        assert stored_hash(g, addr) == hash_
        c.cmd(f"AUTH PLAIN {_b64(chr(0) + addr + chr(0) + pw)}", "235 authenticated.")
    new = stored_hash(g, addr)
    assert new.startswith("$y$"), new
    # the new hash works, the old form is gone
    with SmtpConn(g.port, source="127.0.0.1") as c:
        c.banner()
        c.ehlo()
        c.cmd(f"AUTH PLAIN {_b64(chr(0) + addr + chr(0) + pw)}", "235 authenticated.")
    assert stored_hash(g, addr) == new
