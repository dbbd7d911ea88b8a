"""`gannet queue list` after a failed delivery attempt: attempts, next try and the gist of the
last error are shown per recipient (issue 4, item 5)."""
import re
import time

from gannet import make_message, token


def test_queue_list_shows_attempts_next_try_and_error(make_server):
    g = make_server()
    tok = token()
    # extroute.test is routed to 127.0.0.1:9, where nothing listens: a temporary failure.
    g.send("user@example.test", ["far@extroute.test"],
           make_message(token=tok, to="far@extroute.test"), source="127.0.0.1")
    deadline = time.time() + 10
    line = ""
    while time.time() < deadline:
        out = g.cli("queue", "list").out
        line = next((x for x in out.splitlines() if "far@extroute.test" in x), "")
        if "attempt" in line:
            break
        time.sleep(0.2)
    assert re.search(r"far@extroute\.test \(queued, 1 attempt, next try in (59|60)m: "
                     r"Error: Connection refused\)", line), line
