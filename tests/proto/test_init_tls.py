"""`gannet init` and TLS (issue 3, item 1): a fresh install gets a development configuration with
the submission listeners and a self-signed certificate for its host name; running init again
keeps the certificate; half a certificate (only the key or only the cert) is left alone with a
warning. Also tools/mkcert, which makes the same kind of certificate without init.

The certificates are checked with the openssl command and with Python's ssl module (a TLS
handshake in memory, verifying the host name against the certificate as its own trust anchor)."""
import configparser
import re
import ssl
import stat
import subprocess
from pathlib import Path

import pytest

from gannet import REPO, CliError, Gannet, gannet_bin, sanitizer_report, subprocess_env

CREATED_RE = (r"created a self-signed TLS certificate for {host} in {path} "
              r"\(replace it with a real one for production\)")


def run_init(cwd, *extra, config="var/gannet.conf"):
    argv = [gannet_bin(), "-c", config, "init", *extra]
    p = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=60, env=subprocess_env())
    out, err = p.stdout.decode(), p.stderr.decode("utf-8", "replace")
    rep = sanitizer_report(err)
    if rep:
        raise CliError(f"sanitizer report from gannet init:\n{rep}")
    return p.returncode, out, err


def openssl(*args):
    p = subprocess.run(["openssl", *args], capture_output=True, timeout=30)
    assert p.returncode == 0, f"openssl {' '.join(args)}: {p.stderr.decode()}"
    return p.stdout.decode()


def mode(path):
    return stat.S_IMODE(Path(path).stat().st_mode)


def handshake(cert, key, hostname):
    """A TLS handshake in memory: a server with cert+key, a client trusting cert and checking
    hostname (strict X.509 checks when this Python has them). Returns the negotiated version."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(cert), str(key))  # fails when the key does not match
    client = ssl.create_default_context(cafile=str(cert))
    client.verify_flags |= getattr(ssl, "VERIFY_X509_STRICT", 0)
    assert client.check_hostname and client.verify_mode == ssl.CERT_REQUIRED
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    cs = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    ss = server.wrap_bio(s_in, s_out, server_side=True)
    done = [False, False]
    for _ in range(20):
        for i, (obj, out, peer_in) in enumerate(((cs, c_out, s_in), (ss, s_out, c_in))):
            if not done[i]:
                try:
                    obj.do_handshake()
                    done[i] = True
                except ssl.SSLWantReadError:
                    pass
            data = out.read()
            if data:
                peer_in.write(data)
        if all(done):
            return cs.version()
    raise AssertionError("TLS handshake did not complete")


def subject(cert):
    return openssl("x509", "-noout", "-subject", "-in", str(cert)).strip()


def san(cert):
    return openssl("x509", "-noout", "-ext", "subjectAltName", "-in", str(cert))


def assert_pair(cert, key, host):
    assert mode(key) == 0o600, oct(mode(key))
    assert mode(cert) == 0o644, oct(mode(cert))
    assert re.fullmatch(rf"subject=\s*CN\s*=\s*{re.escape(host)}", subject(cert)), subject(cert)
    # the key belongs to the certificate
    assert openssl("x509", "-noout", "-pubkey", "-in", str(cert)) == \
        openssl("pkey", "-pubout", "-in", str(key))
    assert handshake(cert, key, host) in ("TLSv1.2", "TLSv1.3")


def test_fresh_init_writes_listeners_and_certificate(tmp_path):
    rc, out, err = run_init(tmp_path)
    assert rc == 0, err
    assert "wrote a development configuration to var/gannet.conf" in out
    lines = [x for x in out.splitlines() if "self-signed" in x]
    assert len(lines) == 1, out
    assert re.fullmatch(CREATED_RE.format(host="localhost", path=re.escape("./var/tls/cert.pem")),
                        lines[0]), lines[0]

    conf = configparser.ConfigParser()
    conf.read(tmp_path / "var/gannet.conf")
    want = {
        "listener:mx": {"protocol": "smtp", "address": "127.0.0.1:2525", "security": "none"},
        "listener:submission": {"protocol": "smtp", "address": "127.0.0.1:2587",
                                "security": "starttls", "require_auth": "yes"},
        "listener:submissions": {"protocol": "smtp", "address": "127.0.0.1:2465",
                                 "security": "tls", "require_auth": "yes"},
    }
    got = {s: dict(conf[s]) for s in conf.sections() if s.startswith("listener:")}
    assert got == want
    assert conf["tls"]["certificate"] == "./var/tls/cert.pem"
    assert conf["tls"]["private_key"] == "./var/tls/key.pem"
    p = subprocess.run([gannet_bin(), "-c", "var/gannet.conf", "check-config"], cwd=tmp_path,
                       capture_output=True, timeout=60, env=subprocess_env())
    assert p.returncode == 0 and b"ok (3 listeners)" in p.stdout, p.stdout + p.stderr

    cert, key = tmp_path / "var/tls/cert.pem", tmp_path / "var/tls/key.pem"
    assert_pair(cert, key, "localhost")
    s = san(cert)
    assert "DNS:localhost" in s and "IP Address:127.0.0.1" in s, s
    assert handshake(cert, key, "127.0.0.1")  # clients that connect by address
    text = openssl("x509", "-noout", "-text", "-in", str(cert))
    assert "CA:FALSE" in text and "TLS Web Server Authentication" in text, text
    assert "ecdsa-with-SHA256" in text, text
    # valid for 825 days
    dates = openssl("x509", "-noout", "-startdate", "-enddate", "-in", str(cert))
    assert openssl("x509", "-noout", "-checkend", str(824 * 86400), "-in", str(cert))
    p = subprocess.run(["openssl", "x509", "-noout", "-checkend", str(826 * 86400), "-in",
                        str(cert)], capture_output=True)
    assert p.returncode == 1, f"valid for more than 825 days: {dates}"


def test_init_again_keeps_the_certificate(tmp_path):
    rc, out, err = run_init(tmp_path)
    assert rc == 0, err
    cert, key = tmp_path / "var/tls/cert.pem", tmp_path / "var/tls/key.pem"
    before = cert.read_bytes(), key.read_bytes()
    rc, out, err = run_init(tmp_path)
    assert rc == 0, err
    assert "self-signed" not in out and "wrote a development configuration" not in out, out
    assert err == "", err
    assert (cert.read_bytes(), key.read_bytes()) == before
    assert sorted(p.name for p in (tmp_path / "var/tls").iterdir()) == ["cert.pem", "key.pem"]


def test_demo_prints_a_login_example(tmp_path):
    rc, out, err = run_init(tmp_path, "--demo")
    assert rc == 0, err
    assert re.search(r"swaks --server 127\.0\.0\.1 --port 2587 --tls --auth-user "
                     r"demo@example\.test --auth-password demo ", out), out


def test_existing_config_uses_its_hostname_and_paths(tmp_path):
    g = Gannet(tmp_path / "inst", None)
    r = g.init()
    cert, key = g.data / "tls/cert.pem", g.data / "tls/key.pem"
    lines = [x for x in r.out.splitlines() if "self-signed" in x]
    assert len(lines) == 1 and re.fullmatch(
        CREATED_RE.format(host=re.escape("mx.gannet.test"), path=re.escape(str(cert))),
        lines[0]), r.out
    assert_pair(cert, key, "mx.gannet.test")
    s = san(cert)
    assert "DNS:mx.gannet.test" in s and "IP Address" not in s, s
    assert "wrote a development configuration" not in r.out


def test_explicit_paths_in_other_directories(tmp_path):
    g = Gannet(tmp_path / "inst", None)
    cert, key = tmp_path / "pki/certs/mail.pem", tmp_path / "pki/private/mail.key"
    g.conf.write_text(g.config_text().replace(f"{g.data}/tls/cert.pem", str(cert))
                      .replace(f"{g.data}/tls/key.pem", str(key)))
    g.init()
    assert_pair(cert, key, "mx.gannet.test")
    assert mode(key.parent) == 0o700
    assert not (g.data / "tls/cert.pem").exists()


@pytest.mark.parametrize("present", ["cert", "key"])
def test_half_a_certificate_is_left_alone(tmp_path, present):
    g = Gannet(tmp_path / "inst", None)
    cert, key = g.data / "tls/cert.pem", g.data / "tls/key.pem"
    have, missing = (cert, key) if present == "cert" else (key, cert)
    have.parent.mkdir(parents=True)
    have.write_text("placeholder\n")
    r = g.init()  # exit 0: the rest of init is done
    assert "self-signed" not in r.out, r.out
    warn = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(warn) == 1 and "warning" in warn[0], r.stderr
    assert str(have) in warn[0] and str(missing) in warn[0], warn[0]
    assert have.read_text() == "placeholder\n"
    assert not missing.exists()
    assert sorted(p.name for p in cert.parent.iterdir()) == [have.name]


def test_certificate_that_cannot_be_created_is_an_error(tmp_path):
    g = Gannet(tmp_path / "inst", None)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory\n")
    g.conf.write_text(g.config_text().replace(f"{g.data}/tls/cert.pem",
                                              str(blocker / "cert.pem")))
    r = g.cli("init", check=False)
    assert r.returncode == 1, r
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("gannet: "), r.stderr
    assert not (g.data / "tls/key.pem").exists()
    # the database was still created; a fixed config then completes init
    assert g.db.exists()
    g.write_config()
    g.init()
    assert_pair(g.data / "tls/cert.pem", g.data / "tls/key.pem", "mx.gannet.test")


# -- tools/mkcert

MKCERT = REPO / "tools/mkcert"


def mkcert(*args):
    return subprocess.run(["sh", str(MKCERT), *map(str, args)], capture_output=True, timeout=60,
                          text=True)


def test_mkcert_makes_a_working_pair(tmp_path):
    cert, key = tmp_path / "c/cert.pem", tmp_path / "k/key.pem"
    p = mkcert("mail.example.test", cert, key)
    assert p.returncode == 0, p.stderr
    assert_pair(cert, key, "mail.example.test")
    text = openssl("x509", "-noout", "-text", "-in", str(cert))
    assert "CA:FALSE" in text and "TLS Web Server Authentication" in text, text
    assert "DNS:mail.example.test" in san(cert)
    # an init with these paths keeps them
    g = Gannet(tmp_path / "inst", None)
    g.conf.write_text(g.config_text().replace(f"{g.data}/tls/cert.pem", str(cert))
                      .replace(f"{g.data}/tls/key.pem", str(key)))
    before = cert.read_bytes()
    r = g.init()
    assert "self-signed" not in r.out and cert.read_bytes() == before


def test_mkcert_localhost_and_days(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    p = mkcert("localhost", cert, key, 10)
    assert p.returncode == 0, p.stderr
    assert_pair(cert, key, "localhost")
    assert "IP Address:127.0.0.1" in san(cert)
    r = subprocess.run(["openssl", "x509", "-noout", "-checkend", str(11 * 86400), "-in",
                        str(cert)], capture_output=True)
    assert r.returncode == 1


def test_mkcert_refuses(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    assert mkcert("a.test", cert).returncode == 64
    assert mkcert("a,DNS:evil.test", cert, key).returncode == 1
    assert mkcert("a.test/CN=x", cert, key).returncode == 1
    assert mkcert("a.test", cert, cert).returncode == 1
    assert not cert.exists() and not key.exists()
    key.write_text("mine\n")
    p = mkcert("a.test", cert, key)
    assert p.returncode == 1 and "already exists" in p.stderr
    assert key.read_text() == "mine\n" and not cert.exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["key.pem"]
