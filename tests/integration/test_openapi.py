#!/usr/bin/env python3
"""test_openapi.py — openapi.yaml and the code's route table agree.

1. Every (method, path) in server/routes.c's table is in openapi.yaml and
   every (method, path) in openapi.yaml is in the table.
2. Every openapi path is actually served by the real binary: a request to
   it (path parameters filled in) never gets 404 route_not_found or 405.
Standard library only (a small indentation-based reader for the paths
section; openapi.yaml keeps paths at 2 spaces and methods at 4).  The
server is started by es_server.py.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from es_server import BIN, LEE_MODEL, ROOT, Server  # noqa: E402

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def code_routes():
    src = open(os.path.join(ROOT, "server", "routes.c")).read()
    table = src[src.index("route_table[] = {"):]
    table = table[:table.index("};")]
    return set(re.findall(r'\{"([A-Z]+)", "(/[^"]*)"', table))


def spec_routes():
    routes = set()
    in_paths = False
    path = None
    for line in open(os.path.join(ROOT, "openapi.yaml")):
        line = line.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            in_paths = line.startswith("paths:")
            continue
        if not in_paths:
            continue
        m = re.match(r"^  (/\S*):\s*$", line)
        if m:
            path = m.group(1)
            continue
        m = re.match(r"^    ([a-z]+):", line)
        if m and path and m.group(1) in METHODS:
            routes.add((m.group(1).upper(), path))
    return routes


def main():
    code = code_routes()
    spec = spec_routes()
    fails = []
    if len(code) < 15:
        fails.append("route table parse found only %d routes" % len(code))
    for r in sorted(code - spec):
        fails.append("in the code but not in openapi.yaml: %s %s" % r)
    for r in sorted(spec - code):
        fails.append("in openapi.yaml but not in the code: %s %s" % r)

    if os.path.exists(BIN):
        with Server("--model", LEE_MODEL, "--quiet") as srv:
            for method, path in sorted(spec):
                url = path.replace("{name}", "openapi_probe").replace("{id}", "1")
                body = b"{}" if method in ("POST", "PUT") else None
                st, js = srv.req(method, url, raw=body, timeout=10)
                err = js.get("error") if isinstance(js, dict) else None
                code_s = err.get("code") if isinstance(err, dict) else None
                if st == 405 or code_s == "route_not_found":
                    fails.append("openapi path not served: %s %s -> %d" % (method, url, st))
            # and an unknown path is a 404 route_not_found (the probe can fail)
            st, js = srv.req("GET", "/v1/not-a-route", timeout=10)
            err = js.get("error") if isinstance(js, dict) else None
            if st != 404 or not isinstance(err, dict) or err.get("code") != "route_not_found":
                fails.append("unknown path is not a 404 route_not_found")
    for f in fails:
        print("FAIL:", f, file=sys.stderr)
    print("openapi: %d routes in code, %d in spec, %d problems" % (len(code), len(spec), len(fails)))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
