"""Fixtures for the protocol tests: a fake DNS per session, the standard directory built once,
a shared server per test module (`server`) and fresh servers per test (`make_server`).

A server is stopped with SIGTERM at teardown; the test fails if it does not exit cleanly within
10 s or if its stderr holds an AddressSanitizer/UBSan/LeakSanitizer report."""
import resource
import shutil
import tempfile
from pathlib import Path

import pytest

from gannet import FakeDNS, Gannet, build_world, clone_world

try:  # 1,000 idle connections need more than the default 1,024 descriptors
    _soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(_hard, 8192) if _hard > 0 else 8192, _hard))
except (ValueError, OSError):
    pass


@pytest.fixture(scope="session")
def tmp_root():
    d = Path(tempfile.mkdtemp(prefix="gannet-proto-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def dns():
    d = FakeDNS()
    yield d
    d.stop()


_world = {}


@pytest.fixture(scope="session")
def world(tmp_root, dns):
    """The standard directory (gannet.WORLD), built once with the CLI."""
    if "err" in _world:
        pytest.fail(_world["err"], pytrace=False)
    if "g" not in _world:
        try:
            _world["g"] = build_world(tmp_root / "world-template", dns)
        except Exception as e:  # noqa: BLE001 - reported on every test that needs it
            _world["err"] = f"cannot build the standard directory: {e}"
        if "err" in _world:
            pytest.fail(_world["err"], pytrace=False)
    return _world["g"]


_counter = [0]


def _workdir(tmp_root, name):
    _counter[0] += 1
    safe = "".join(ch if ch.isalnum() else "_" for ch in name)[:60]
    return tmp_root / f"{_counter[0]:04d}-{safe}"


@pytest.fixture(scope="module")
def server(request, tmp_root, dns, world):
    """One running server with the standard directory and default settings, shared by a module.
    Tests using it work with their own tokens/addresses so they do not disturb each other."""
    g = clone_world(world, _workdir(tmp_root, request.module.__name__), dns)
    g.start()
    yield g
    problems = g.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(autouse=True)
def _shared_server_health(request):
    """After each test on the shared server: it is still alive and has no sanitizer report."""
    yield
    if "server" in request.fixturenames:
        g = request.getfixturevalue("server")
        problems = g.check_health()
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def make_server(request, tmp_root, dns, world):
    """Factory for a fresh server: make_server(smtp={...}, setup=[[cli args], ...],
    start=True, world=True, listeners=None, extra_conf='')."""
    made = []

    def make(smtp=None, setup=(), start=True, use_world=True, listeners=None, extra_conf="",
             **start_kw):
        wd = _workdir(tmp_root, request.node.name)
        if use_world:
            g = clone_world(world, wd, dns, smtp=smtp, listeners=listeners,
                            extra_conf=extra_conf)
        else:
            g = Gannet(wd, dns, smtp=smtp, listeners=listeners, extra_conf=extra_conf)
            g.init()
        made.append(g)
        for args in setup:
            g.cli(*args)
        if start:
            g.start(**start_kw)
        return g

    yield make
    problems = []
    for g in made:
        problems += g.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
