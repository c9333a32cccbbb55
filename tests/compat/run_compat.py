#!/usr/bin/env python3
"""run_compat.py — the real npm clients (compat.mjs) against a real embedsrv.

Starts `embedsrv serve` through tests/integration/es_server.py with the
small Lee model, an API key and the model aliases OpenAI clients send, then
runs `node compat.mjs` with EMBEDSRV_URL / EMBEDSRV_KEY / EMBEDSRV_DIM.

Skips (exit 77) when node is missing or tests/compat/node_modules has not
been installed (`npm ci` in tests/compat; deploy/test.sh does it), unless
ES_REQUIRE_COMPAT=1 (set by .ci/run), which makes that a failure.
"""
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from es_server import LEE_MODEL, SLOW, Server  # noqa: E402

KEY = "compat-key"
DIM = 10  # tests/data/lee-10d.vec


def main():
    node = shutil.which("node")
    missing = None
    if not node:
        missing = "node is not installed (Debian: nodejs npm; see deploy/packages-compat.txt)"
    elif not os.path.isdir(os.path.join(HERE, "node_modules", "@qdrant", "js-client-rest")):
        missing = "tests/compat/node_modules is missing: run `npm ci` in tests/compat"
    if missing:
        print("compat: " + missing, file=sys.stderr)
        return 1 if os.environ.get("ES_REQUIRE_COMPAT") == "1" else 77
    with Server("--model", LEE_MODEL, "--quiet", "--api-key", KEY,
                "--model-alias", "text-embedding-3-small=lee-10d.vec",
                "--model-alias", "text-embedding-ada-002=lee-10d.vec") as s:
        env = dict(os.environ, EMBEDSRV_URL="http://127.0.0.1:%d" % s.port,
                   EMBEDSRV_KEY=KEY, EMBEDSRV_DIM=str(DIM))
        r = subprocess.run([node, os.path.join(HERE, "compat.mjs")], cwd=HERE, env=env,
                           timeout=240 * SLOW)
        return r.returncode


if __name__ == "__main__":
    sys.exit(main())
