"""Top-level pytest configuration for `make check`: prints the final summary line
`N passed, M failed` (M counts failures and errors, so a broken fixture is a failure too)."""


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    stats = terminalreporter.stats
    passed = len([r for r in stats.get("passed", []) if getattr(r, "when", "call") == "call"])
    failed_ids = set()
    for key in ("failed", "error"):
        for r in stats.get(key, []):
            failed_ids.add((getattr(r, "nodeid", repr(r)), key if key == "failed" else
                            getattr(r, "when", "error")))
    # A test that passed its call but failed in teardown counts as failed, not passed.
    teardown_failed = {nid for nid, when in failed_ids if when == "teardown"}
    passed -= len([r for r in stats.get("passed", []) if getattr(r, "when", "call") == "call"
                   and r.nodeid in teardown_failed])
    failed = len({nid for nid, _ in failed_ids})
    terminalreporter.write_line(f"{passed} passed, {failed} failed")
