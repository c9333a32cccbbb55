"""es_server.py — the real `embedsrv serve` for the integration tests.

One way to start, reach and stop the server, shared by every
tests/integration/test_*.py (before, each test had its own copy, and the
copies had drifted: some piped stderr without reading it, which blocks a
chatty server once the pipe fills; one built a Server with __new__ to add a
resource limit).

    from es_server import Server, LEE_MODEL
    with Server("--model", LEE_MODEL, "--quiet") as s:   # waits for /healthz
        st, body = s.req("GET", "/v1/info")
    # leaving the block sends SIGTERM and raises ServerError unless the
    # server exited 0 (when the block itself raised, that error wins)

    s = Server("--model", LEE_MODEL, "--data-dir", d, wait="readyz")
    s.kill()                       # SIGKILL, for crash tests
    rc, log = s.stop()             # SIGTERM; exit status and the server's output

    c = Client(port)               # requests to any HTTP server on 127.0.0.1
    with Nginx(conf, {"upstream:8080": "127.0.0.1:%d" % s.port}) as ng:
        ng.req("GET", "/v1/info")  # nginx with a deploy/nginx file, see Nginx

The server runs as `$ES_BINARY serve --host 127.0.0.1 --port P ARGS...` on a
free port P.  Its stdout and stderr go to a log file (never a pipe, so it can
never block on a full pipe); stop(), wait_exit() and log() read it back.  A
log is deleted once the server stopped with status 0, kept otherwise and its
path printed (ES_KEEP_LOGS=1 keeps every log).

Environment, as meson sets it (tests/meson.build): ES_BINARY (default
build/embedsrv), ES_SOURCE_ROOT (default .), ES_SHARED (default
$ES_SOURCE_ROOT/../shared), ES_TIMEOUT_SCALE (default 1: multiplies every
wait here, for a slow server such as one under valgrind, see
bench/valgrind-server.sh; SLOW, for the tests' own waits).  Standard library only: meson runs the tests with
the first python3 on PATH, which may have nothing else installed.

Threads: a Server is used from one thread at a time except req()/request(),
which open their own connection per call and may run concurrently.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BIN = os.path.abspath(os.environ.get("ES_BINARY", "build/embedsrv"))
ROOT = os.environ.get("ES_SOURCE_ROOT", ".")
SHARED = os.environ.get("ES_SHARED", os.path.join(ROOT, "..", "shared"))
# the small real model most tests use: fastText vectors of the Lee corpus, 10-d
LEE_MODEL = os.path.join(ROOT, "tests", "data", "lee-10d.vec")
HOST = "127.0.0.1"
SLOW = float(os.environ.get("ES_TIMEOUT_SCALE", "1"))


class ServerError(RuntimeError):
    """The server did not come up, or did not exit as expected."""


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Checks:
    """The pass/fail tally each test keeps: check(cond, what) counts a pass,
    or records the failure and prints it to stderr.  passed and failures
    are read for the summary line and the exit status."""

    def __init__(self):
        self.passed = 0
        self.failures = []

    def __call__(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failures.append(what)
            print("FAIL:", what, file=sys.stderr)


def _tail(text, n=2000):
    return text if len(text) <= n else "..." + text[-n:]


class Client:
    """HTTP requests to a server on HOST:port (an embedsrv, or nginx in
    front of some): one fresh connection per request."""

    def __init__(self, port, host=HOST):
        self.host = host
        self.port = port

    def request(self, method, path, body=None, headers=None, raw=None,
                ctype="application/json", timeout=30):
        """One request on a fresh connection.  body: sent as JSON; raw:
        bytes sent as they are; Content-Type ctype when there is a body
        (headers may override it).  Returns (status, parsed, headers):
        parsed is the JSON body, else its text, None when empty; header
        names are lower case."""
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout * SLOW)
        try:
            data = raw
            if body is not None:
                data = json.dumps(body).encode()
            h = {}
            if data is not None and ctype:
                h["Content-Type"] = ctype
            if headers:
                h.update(headers)
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            payload = r.read()
            hdrs = dict((k.lower(), v) for k, v in r.getheaders())
        finally:
            c.close()
        if not payload:
            return r.status, None, hdrs
        try:
            return r.status, json.loads(payload), hdrs
        except ValueError:
            return r.status, payload.decode(errors="replace"), hdrs

    def req(self, method, path, body=None, **kw):
        """request() without the headers: (status, parsed)."""
        st, parsed, _ = self.request(method, path, body, **kw)
        return st, parsed

    def metric(self, name):
        """The value of one Prometheus sample line (name with labels), or None."""
        _, text = self.req("GET", "/metrics")
        for line in (text or "").splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return None


class Server(Client):
    """`embedsrv serve ARGS` on 127.0.0.1 and a free port.

    wait: "healthz" (alive: the socket answers), "readyz" (model loaded and
    data recovered) or None (return at once: for a start that is expected to
    fail; then wait_exit()).  env: the whole environment of the server
    (default: this process's).  preexec_fn: run in the child before exec
    (e.g. resource limits).  Raises ServerError when the server exits or
    does not answer 200 within start_timeout seconds.  port: listen there
    instead of on a free port (a restart at the same address).
    """

    def __init__(self, *args, wait="healthz", env=None, preexec_fn=None,
                 start_timeout=60.0, port=None):
        if wait not in ("healthz", "readyz", None):
            raise ValueError("wait must be 'healthz', 'readyz' or None")
        self.args = [str(a) for a in args]
        self._fixed_port = port  # a restart at the same address (replication)
        self.rc = None
        self._log_text = None
        # a port can be taken between free_port() and the server's bind:
        # then start again on another one
        for attempt in range(3):
            self._start(env, preexec_fn)
            if wait is None:
                return
            try:
                self._wait_ok("/" + wait, start_timeout)
                return
            except ServerError:
                if (self.rc is not None and "cannot listen" in self.log() and attempt < 2
                        and not self._fixed_port):
                    self._cleanup_log()
                    continue
                raise

    def _start(self, env, preexec_fn):
        Client.__init__(self, self._fixed_port or free_port())
        self._log_text = None
        fd, self.log_path = tempfile.mkstemp(prefix="es_server_%d_" % self.port, suffix=".log")
        self._log_file = os.fdopen(fd, "wb")
        self.argv = [BIN, "serve", "--host", HOST, "--port", str(self.port)] + self.args
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self._log_file, stderr=subprocess.STDOUT,
                                     env=env, preexec_fn=preexec_fn)
        self.rc = None

    def _wait_ok(self, path, limit):
        limit *= SLOW
        deadline = time.time() + limit
        while True:
            if self.proc.poll() is not None:
                self._reap()
                raise ServerError("server exited with status %s while starting: %s "
                                  "(log %s)\n%s" % (self.rc, " ".join(self.argv),
                                                     self.log_path, _tail(self.log())))
            try:
                if self.request("GET", path, timeout=2)[0] == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            if time.time() > deadline:
                rc, log = self.stop()
                raise ServerError("server did not answer 200 on %s within %.0f s "
                                  "(stopped: status %s): %s\n%s"
                                  % (path, limit, rc, " ".join(self.argv), _tail(log)))
            time.sleep(0.05)

    # ------------------------------------------------------------ process
    def log(self):
        """Everything the server wrote so far (stdout and stderr)."""
        if self._log_text is not None:
            return self._log_text
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _reap(self):
        self.rc = self.proc.returncode
        if not self._log_file.closed:
            self._log_file.close()

    def _cleanup_log(self):
        self._log_text = self.log()
        try:
            os.unlink(self.log_path)
        except OSError:
            pass

    def _finish(self, ok):
        self._reap()
        if ok and os.environ.get("ES_KEEP_LOGS") != "1":
            self._cleanup_log()
        elif self._log_text is None:
            print("es_server: %s exited with status %s; log kept at %s"
                  % (" ".join(self.argv), self.rc, self.log_path), file=sys.stderr)
        return self.rc, self.log()

    def wait_exit(self, timeout=60, expect=None):
        """Wait for the server to exit by itself.  Returns (status, log).
        The log is kept unless the status is expect."""
        try:
            self.proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self._finish(self.proc.returncode == expect)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Send sig (SIGTERM: the clean shutdown) and wait; SIGKILL after
        timeout seconds (status -9 then).  Returns (status, log).  A second
        call returns the first result."""
        if self.rc is not None:
            return self.rc, self.log()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self._finish(self.proc.returncode == 0)

    def kill(self):
        """SIGKILL (a crash) and wait.  Returns the status (-9)."""
        if self.rc is None:
            self.proc.kill()
            self.proc.wait()
            self._finish(True)
        return self.rc

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        rc, log = self.stop()
        if exc_type is None and rc != 0:
            raise ServerError("server exit status %s after SIGTERM: %s\n%s"
                              % (rc, " ".join(self.argv), _tail(log)))
        return False


def find_nginx():
    """Debian's nginx binary, or None when it is not installed."""
    for p in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if p and os.access(p, os.X_OK):
            return p
    return None


class Nginx(Client):
    """Real nginx in the foreground on HOST and a free port, routing with a
    deploy/nginx/*.conf file as it is, but for the substitutions subst
    (e.g. {"embedsrv-primary:8080": "127.0.0.1:41234"}; each key must occur
    in the file, so a renamed address fails the test instead of being
    silently kept).  The file's "listen 8080;" becomes this port.
    Everything (pid, logs, temp files) lives in a private prefix directory.
    Waits until GET /healthz through it answers 200."""

    def __init__(self, conf, subst, binary=None):
        self.binary = binary or find_nginx()
        if not self.binary:
            raise RuntimeError("nginx is not installed")
        self.dir = tempfile.mkdtemp(prefix="es_nginx_")
        Client.__init__(self, free_port())
        self.proc = None
        with open(conf) as f:
            routing = f.read()
        subst = dict(subst)
        subst["listen 8080;"] = "listen %s:%d;" % (HOST, self.port)
        for k, v in subst.items():
            if k not in routing:
                raise RuntimeError("%s no longer holds '%s'" % (conf, k))
            routing = routing.replace(k, v)
        self.routing = routing
        with open(os.path.join(self.dir, "routing.conf"), "w") as f:
            f.write(routing)
        user = "user root;\n" if os.getuid() == 0 else ""
        main = (user + "worker_processes 1;\ndaemon off;\npid %(d)s/nginx.pid;\n"
                "error_log %(d)s/error.log warn;\n"
                "events { worker_connections 256; }\n"
                "http {\n  access_log %(d)s/access.log;\n"
                "  client_body_temp_path %(d)s/body;\n  proxy_temp_path %(d)s/proxy;\n"
                "  fastcgi_temp_path %(d)s/fcgi;\n  uwsgi_temp_path %(d)s/uwsgi;\n"
                "  scgi_temp_path %(d)s/scgi;\n  include %(d)s/routing.conf;\n}\n"
                % {"d": self.dir})
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(main)
        t = subprocess.run([self.binary, "-t", "-p", self.dir, "-c", self.conf],
                           capture_output=True, text=True)
        if t.returncode != 0:
            self.stop()
            raise RuntimeError("nginx -t refused the generated config:\n" + t.stderr)
        self.proc = subprocess.Popen([self.binary, "-p", self.dir, "-c", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 20 * SLOW
        while True:
            try:
                if self.request("GET", "/healthz", timeout=2)[0] == 200:
                    break
            except (OSError, http.client.HTTPException):
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                err = self.error_log()
                self.stop()
                raise RuntimeError("nginx did not come up: " + err)
            time.sleep(0.05)

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log")) as f:
                return f.read()
        except OSError:
            return ""

    def critical_errors(self):
        """nginx's [emerg], [alert] and [crit] lines so far."""
        return [ln for ln in self.error_log().splitlines()
                if "[emerg]" in ln or "[alert]" in ln or "[crit]" in ln]

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.stop()
        return False
