#!/usr/bin/env python3
"""test_openapi.py — openapi.yaml and the code's route table agree.

1. Every (method, path) in server/routes.c's table is in openapi.yaml and
   every (method, path) in openapi.yaml is in the table.
2. Every openapi path is actually served by the real binary: a request to
   it (path parameters filled in) never gets 404 route_not_found or 405.
Standard library only (a small indentation-based reader for the paths
section; openapi.yaml keeps paths at 2 spaces and methods at 4).
"""
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time

ROOT = os.environ.get("ES_SOURCE_ROOT", ".")
BIN = os.path.abspath(os.environ.get("ES_BINARY", "build/embedsrv"))
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
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        model = os.path.join(ROOT, "tests", "data", "lee-10d.vec")
        p = subprocess.Popen([BIN, "serve", "--model", model, "--port", str(port), "--quiet"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.time() + 60
            while time.time() < deadline:
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    c.request("GET", "/healthz")
                    c.getresponse().read()
                    c.close()
                    break
                except OSError:
                    time.sleep(0.05)
            for method, path in sorted(spec):
                url = path.replace("{name}", "openapi_probe").replace("{id}", "1")
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                body = b"{}" if method in ("POST", "PUT") else None
                c.request(method, url, body=body, headers={"Content-Type": "application/json"})
                r = c.getresponse()
                data = r.read()
                c.close()
                code_s = None
                try:
                    code_s = json.loads(data).get("error", {}).get("code")
                except (ValueError, AttributeError):
                    pass
                if r.status == 405 or code_s == "route_not_found":
                    fails.append("openapi path not served: %s %s -> %d" % (method, url, r.status))
            # and an unknown path is a 404 route_not_found (the probe can fail)
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/v1/not-a-route")
            r = c.getresponse()
            if r.status != 404 or json.loads(r.read())["error"]["code"] != "route_not_found":
                fails.append("unknown path is not a 404 route_not_found")
            c.close()
        finally:
            p.terminate()
            p.communicate(timeout=30)
    for f in fails:
        print("FAIL:", f, file=sys.stderr)
    print("openapi: %d routes in code, %d in spec, %d problems" % (len(code), len(spec), len(fails)))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
