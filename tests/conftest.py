"""Top-level pytest configuration for `make check`: prints the very last line
`N passed, M failed` (M counts failures and errors — a test whose fixture breaks in setup or
teardown is a failed test, and a test is counted once)."""


def _counts(stats):
    failed = set()
    for key in ("failed", "error"):
        for r in stats.get(key, []):
            failed.add(getattr(r, "nodeid", None) or repr(r))
    passed = {r.nodeid for r in stats.get("passed", []) if getattr(r, "when", "call") == "call"}
    return len(passed - failed), len(failed)


def pytest_unconfigure(config):
    """After pytest's own summary (pytest_sessionfinish), so this is the final line."""
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is None or not hasattr(tr, "stats"):
        return
    if config.getoption("collectonly", False):
        return
    passed, failed = _counts(tr.stats)
    tr.write_line(f"{passed} passed, {failed} failed")
