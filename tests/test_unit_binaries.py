"""Runs every cmocka unit-test executable (`test_*`) of the build dir as one pytest test.

The build dir is $GANNET_BUILD (make check: build-check), else the directory of $GANNET_BIN.
Each binary runs from the repository root (like `meson test`); a non-zero exit fails the test
and shows the output."""
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def build_dir():
    b = os.environ.get("GANNET_BUILD")
    if b:
        return Path(b)
    binary = os.environ.get("GANNET_BIN")
    if binary:
        return Path(binary).parent
    for cand in ("build-check", "build-proto", "build"):
        if (REPO / cand).is_dir():
            return REPO / cand
    return REPO / "build-check"


def unit_binaries():
    d = build_dir()
    if not d.is_dir():
        return []
    return sorted(p for p in d.glob("test_*")
                  if p.is_file() and os.access(p, os.X_OK) and p.suffix == "")


BINARIES = unit_binaries()


@pytest.mark.parametrize("binary", BINARIES or [None],
                         ids=[p.name for p in BINARIES] or ["no-unit-binaries"])
def test_unit(binary):
    assert binary is not None, f"no cmocka test_* executables in {build_dir()}"
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    p = subprocess.run([str(binary)], cwd=REPO, capture_output=True, timeout=300, env=env)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    assert p.returncode == 0, f"{binary.name} exited {p.returncode}:\n{out[-8000:]}"
    for marker in ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer"):
        assert marker not in out, f"{binary.name}: sanitizer report:\n{out[-8000:]}"
