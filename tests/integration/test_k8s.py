#!/usr/bin/env python3
"""test_k8s.py — the Kubernetes manifests of deploy/k8s/ hold together.

There is no cluster (and no kubectl) here, so this parses every manifest
with PyYAML and checks what kubectl would only find out at run time, in
each arrangement (deploy/k8s/*.yaml: one instance; deploy/k8s/replicated/:
a primary and its followers):
  - every workload's selector matches its pod template's labels, and its
    serviceName is a headless Service of the same arrangement;
  - the container's args are `serve` and flags that `embedsrv serve --help`
    lists (a flag's value is the next arg), its EMBEDSRV_* variables name
    such flags too, and the port it serves on (--port or EMBEDSRV_PORT) is
    the container port named http;
  - readiness is GET /readyz, liveness GET /healthz, on a declared port;
    resources have requests and limits; every volume mount has a volume;
  - every Service selects the pods of exactly the workloads meant (by
    labels), and its targetPort is a port those pods declare;
  - replicated: the primary runs one pod and does not follow; the followers
    run --follow with a URL that names the write Service and its port, and
    that Service selects the primary and only it; the read Service selects
    the followers and only them.
Needs python3-yaml (deploy/packages-build.txt); skips (exit 77) without it.
"""
import glob
import os
import re
import subprocess
import sys
from urllib.parse import urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import es_server  # noqa: E402
from es_server import BIN, ROOT  # noqa: E402

check = es_server.Checks()


def serve_flags():
    """{flag: takes_value} from `embedsrv serve --help`."""
    out = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True)
    text = out.stdout + out.stderr
    flags = {}
    for m in re.finditer(r"^\s+(--[a-z][a-z0-9-]*)( [A-Z][A-Z_]*)?", text, re.M):
        flags[m.group(1)] = bool(m.group(2))
    return flags


def load(files):
    import yaml
    docs = []
    for f in files:
        with open(f) as fh:
            for d in yaml.safe_load_all(fh):
                if d:
                    d["_file"] = os.path.relpath(f, ROOT)
                    docs.append(d)
    return docs


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_workload(w, services, flags):
    """Checks on one StatefulSet/Deployment; returns its parsed args."""
    name = "%s %s (%s)" % (w["kind"], w["metadata"]["name"], w["_file"])
    spec = w["spec"]
    tmpl = spec["template"]
    labels = tmpl["metadata"]["labels"]
    check(selects(spec["selector"]["matchLabels"], labels),
          "%s: selector %s matches its pod labels %s" % (name, spec["selector"]["matchLabels"],
                                                         labels))
    if w["kind"] == "StatefulSet":
        hs = [s for s in services if s["metadata"]["name"] == spec.get("serviceName")]
        check(len(hs) == 1 and hs[0]["spec"].get("clusterIP") == "None" and
              selects(hs[0]["spec"]["selector"], labels),
              "%s: serviceName %s is a headless Service selecting its pods"
              % (name, spec.get("serviceName")))
    pod = tmpl["spec"]
    (c,) = pod["containers"]
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    check("http" in ports, "%s: a container port named http (%s)" % (name, ports))
    args = [str(a) for a in c.get("args", [])]
    check(not args or args[0] == "serve", "%s: runs `embedsrv serve` (%s)" % (name, args[:1]))
    parsed = {}
    i = 1
    while i < len(args):
        a = args[i]
        ok = a in flags
        check(ok, "%s: %s is a flag `embedsrv serve --help` knows" % (name, a))
        if ok and flags[a]:
            check(i + 1 < len(args), "%s: %s has its value" % (name, a))
            parsed[a] = args[i + 1] if i + 1 < len(args) else None
            i += 2
        else:
            parsed[a] = True
            i += 1
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    for k in env:
        if k.startswith("EMBEDSRV_"):
            flag = "--" + k[len("EMBEDSRV_"):].lower().replace("_", "-")
            check(flag in flags, "%s: %s names the flag %s, which serve knows" % (name, k, flag))
    port = parsed.get("--port") or env.get("EMBEDSRV_PORT")
    check(port is not None and int(port) == ports.get("http"),
          "%s: serves on the port it declares (--port %s, containerPort %s)"
          % (name, port, ports.get("http")))
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        g = c.get(probe, {}).get("httpGet", {})
        check(g.get("path") == path and (g.get("port") in ports or g.get("port") in ports.values()),
              "%s: %s is GET %s on a declared port (%s)" % (name, probe, path, g))
    res = c.get("resources", {})
    check(res.get("requests", {}).get("cpu") and res.get("requests", {}).get("memory") and
          res.get("limits", {}).get("cpu") and res.get("limits", {}).get("memory"),
          "%s: cpu and memory requests and limits (%s)" % (name, res))
    vols = {v["name"] for v in pod.get("volumes", [])}
    vols |= {v["metadata"]["name"] for v in spec.get("volumeClaimTemplates", [])}
    for m in c.get("volumeMounts", []):
        check(m["name"] in vols, "%s: volume mount %s has a volume" % (name, m["name"]))
    return {"labels": labels, "args": parsed, "ports": ports, "replicas": spec.get("replicas", 1),
            "name": name}


def check_arrangement(files, flags, replicated):
    docs = load(files)
    check(docs, "manifests found: %s" % [os.path.relpath(f, ROOT) for f in files])
    services = [d for d in docs if d["kind"] == "Service"]
    workloads = [d for d in docs if d["kind"] in ("StatefulSet", "Deployment")]
    ws = {w["metadata"]["name"]: check_workload(w, services, flags) for w in workloads}
    for s in services:
        sel = s["spec"]["selector"]
        hit = [w for w in ws.values() if selects(sel, w["labels"])]
        check(hit, "Service %s selects some pods (%s)" % (s["metadata"]["name"], sel))
        for p in s["spec"]["ports"]:
            for w in hit:
                tp = p.get("targetPort", p["port"])
                check(tp in w["ports"] or tp in w["ports"].values(),
                      "Service %s: targetPort %s is a port of %s" % (s["metadata"]["name"], tp,
                                                                     w["name"]))
    if not replicated:
        return
    svc = {s["metadata"]["name"]: s for s in services}
    prim = [w for w in ws.values() if "--follow" not in w["args"]]
    foll = [w for w in ws.values() if "--follow" in w["args"]]
    check(len(prim) == 1 and prim[0]["replicas"] == 1,
          "one primary workload with one pod (%s)" % [(w["name"], w["replicas"]) for w in prim])
    check(len(foll) >= 1, "a follower workload (%s)" % [w["name"] for w in foll])
    for w in foll:
        u = urlparse(w["args"]["--follow"])
        s = svc.get(u.hostname)
        check(u.scheme == "http" and s is not None,
              "%s follows a Service of this arrangement (%s)" % (w["name"], w["args"]["--follow"]))
        if not s:
            continue
        check(any(p["port"] == (u.port or 80) for p in s["spec"]["ports"]),
              "%s: the follow URL's port is the Service's (%s)" % (w["name"], u.port))
        hit = [x["name"] for x in ws.values() if selects(s["spec"]["selector"], x["labels"])]
        check(prim and hit == [prim[0]["name"]],
              "the Service %s that followers follow selects the primary only (%s)"
              % (u.hostname, hit))
        check(u.hostname == "embedsrv-write", "the follow URL names the write Service (%s)"
              % u.hostname)
    for sname, want in (("embedsrv-write", prim), ("embedsrv-read", foll)):
        s = svc.get(sname)
        hit = sorted(x["name"] for x in ws.values()
                     if s and selects(s["spec"]["selector"], x["labels"]))
        check(s is not None and hit == sorted(w["name"] for w in want),
              "Service %s selects %s (%s)" % (sname, [w["name"] for w in want], hit))


def main():
    try:
        import yaml  # noqa: F401
    except ImportError:
        print("SKIP: python3-yaml is not installed (it is in deploy/packages-build.txt)")
        return 77
    flags = serve_flags()
    check(len(flags) > 20 and "--follow" in flags and flags["--port"],
          "flags read from `embedsrv serve --help` (%d)" % len(flags))
    k8s = os.path.join(ROOT, "deploy", "k8s")
    check_arrangement(sorted(glob.glob(os.path.join(k8s, "*.yaml"))), flags, False)
    check_arrangement(sorted(glob.glob(os.path.join(k8s, "replicated", "*.yaml"))), flags, True)
    print("k8s: %d passed, %d failed" % (check.passed, len(check.failures)))
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
