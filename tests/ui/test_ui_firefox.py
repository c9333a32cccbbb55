#!/usr/bin/env python3
"""test_ui_firefox.py — the web explorer (/ui/) in headless Firefox.

The Chromium test (test_ui.py) is the thorough one; this one proves the
page works in the other engine: Debian's firefox-esr, driven through its
built-in WebDriver BiDi (a WebSocket; Debian has no geckodriver), with a
small WebSocket client so only the standard library is needed.  Through the
page: create a collection, add texts (one payload holds a <script> tag that
must stay text), search, solve king - man + woman (queen first), draw the
analogy's map with its arrows, the playground's tokens and the status
panel; no console errors.  A screenshot goes to
$ES_BUILD_ROOT/ui-screenshots/firefox-*.png.

Exit 77 (meson: skipped) when firefox-esr is not installed; .ci/run
installs it (deploy/packages-ui-test.txt).
"""
import base64
import json
import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ui_common import (SIDEWAYS_JS, check, find_browser, session, set_value_js, shown_js,  # noqa: E402
                       skip, summary, wait_for)
from es_server import SLOW, Server, free_port  # noqa: E402


class WebSocket:
    """A text-only RFC 6455 client: enough for WebDriver BiDi."""

    def __init__(self, host, port, path, timeout):
        self.s = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n" % (path, host, port, key)).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(4096)
            if not chunk:
                raise RuntimeError("websocket handshake: connection closed")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError("websocket handshake refused: %r" % head[:200])

    def _exact(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise RuntimeError("websocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _frame(self, opcode, data):
        n = len(data)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def send(self, text):
        self._frame(0x1, text.encode())

    def recv(self):
        msg = b""
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            mask = self._exact(4) if b1 & 0x80 else None
            data = self._exact(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            op = b0 & 0x0F
            if op == 0x9:
                self._frame(0xA, data)
                continue
            if op == 0x8:
                raise RuntimeError("websocket closed by the browser")
            msg += data
            if b0 & 0x80:
                return msg.decode()

    def close(self):
        try:
            self._frame(0x8, b"")
        except OSError:
            pass
        self.s.close()


class Firefox:
    def __init__(self, binary, profile):
        self.port = free_port()
        self.log = open(os.path.join(profile, "firefox.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-remote", "--profile", profile,
             "--remote-debugging-port", str(self.port), "--window-size", "1440,1000", "about:blank"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60 * SLOW
        while True:
            try:
                self.ws = WebSocket("127.0.0.1", self.port, "/session", 60 * SLOW)
                break
            except (OSError, RuntimeError):
                if time.time() > deadline or self.proc.poll() is not None:
                    # quit() is never reached for a browser that did not start:
                    # stop it here, or it outlives the test (seen: an hour)
                    self.proc.kill()
                    self.proc.wait()
                    self.log.close()
                    raise RuntimeError("firefox did not start its WebDriver BiDi server")
                time.sleep(0.2)
        self.next_id = 0
        self.events = []
        self.cmd("session.new", {"capabilities": {}})
        self.cmd("session.subscribe", {"events": ["log.entryAdded"]})
        tree = self.cmd("browsingContext.getTree", {})
        self.ctx = tree["contexts"][0]["context"]
        self.cmd("browsingContext.setViewport", {"context": self.ctx, "viewport": {"width": 1440, "height": 1000}})

    def cmd(self, method, params):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            m = json.loads(self.ws.recv())
            if m.get("type") == "event":
                self.events.append(m)
                continue
            if m.get("id") != mid:
                continue
            if m.get("type") == "error":
                raise RuntimeError("%s: %s %s" % (method, m.get("error"), m.get("message")))
            return m["result"]

    def get(self, url):
        self.cmd("browsingContext.navigate", {"context": self.ctx, "url": url, "wait": "complete"})

    def js(self, body):
        """Run a function body in the page (may await); returns its JSON value."""
        r = self.cmd("script.evaluate", {
            "expression": "(async () => JSON.stringify(await (async () => { %s })()))()" % body,
            "target": {"context": self.ctx}, "awaitPromise": True})
        if r.get("type") == "exception":
            raise RuntimeError("page script: %s" % r.get("exceptionDetails", {}).get("text"))
        v = r["result"].get("value")
        return json.loads(v) if v is not None else None

    def wait(self, cond, what, timeout=15):
        return wait_for(lambda: self.js("return %s;" % cond), "firefox: " + what, timeout,
                        lambda: self.js(shown_js(".err")))

    def screenshot(self, path):
        r = self.cmd("browsingContext.captureScreenshot", {"context": self.ctx, "origin": "document"})
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))

    def console_errors(self):
        return [e["params"].get("text") for e in self.events
                if e.get("method") == "log.entryAdded" and e["params"].get("level") == "error"]

    def quit(self):
        try:
            self.cmd("session.end", {})
        except Exception:  # noqa: BLE001 - the browser may be gone already
            pass
        self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def set_value(f, elid, value):
    f.js(set_value_js(elid, value))


def click(f, css):
    f.js("document.querySelector(%s).click();" % json.dumps(css))


def explore(f, srv, out):
    base = "http://127.0.0.1:%d/ui/" % srv.port
    f.get(base)
    f.wait("document.body.dataset.ready === '1'", "the page to load")
    check(f.js("return getComputedStyle(document.getElementById('auth')).display;") == "none", "firefox: no key prompt")
    f.get(base + "#collections")
    set_value(f, "c-name", "ff")
    click(f, "#c-create-go")
    f.wait("!!document.querySelector('#c-list tr[data-name=\"ff\"]')", "the new collection")
    set_value(f, "c-texts", "\n".join([
        "the king and the queen | {\"topic\": \"royal\"}",
        "a man and a woman | {\"topic\": \"people\"}",
        "the cat and the dog | {\"topic\": \"animal\"}",
        "an apple | {\"topic\": \"fruit\"}",
        "the crown <script>window.__xss = 1</script> | {\"topic\": \"royal\"}"]))
    click(f, "#c-upsert-go")
    f.wait("document.querySelectorAll('#c-points tbody tr').length === 5", "5 points in the table")
    check(f.js("return [...document.querySelectorAll('#c-points pre')].some(p => p.textContent.includes('<script>window.__xss'));"),
          "firefox: the <script> payload shows as text")
    check(f.js("return window.__xss === undefined && document.querySelectorAll('#c-points script').length === 0;"),
          "firefox: the payload made no element and ran nothing")
    f.get(base + "#search")
    f.js("document.getElementById('s-coll').value = 'ff'; document.getElementById('s-kind').value = 'text';")
    set_value(f, "s-query", "the queen")
    set_value(f, "s-k", "3")
    click(f, "#s-go")
    f.wait("document.querySelectorAll('#s-results li').length === 3", "3 hits")
    check("royal" in (f.js("return document.querySelector('#s-results li pre').textContent;") or ""),
          "firefox: the best hit for 'the queen' is royal")
    f.get(base + "#words")
    click(f, "#w-an-go")
    f.wait("document.querySelectorAll('#w-an-results li').length > 0", "analogy")
    check(f.js("return document.querySelector('#w-an-results li .word').textContent;") == "queen",
          "firefox: king - man + woman = queen first")
    click(f, "#w-an-map")
    f.wait("document.querySelectorAll('#m-svg line.arrow').length === 2", "the analogy's arrows")
    check(f.js("return document.querySelector('#m-svg g.pt.answer').dataset.label;") == "queen", "firefox: map answer")
    f.screenshot(os.path.join(out, "firefox-map-1440.png"))
    f.get(base + "#playground")
    click(f, "#g-go")
    f.wait("document.querySelectorAll('#g-tokens .tok').length > 0", "tokens")
    f.get(base + "#status")
    f.wait("/version/.test(document.getElementById('st-info').textContent)", "status")
    f.cmd("browsingContext.setViewport", {"context": f.ctx, "viewport": {"width": 375, "height": 900}})
    time.sleep(0.2)
    over = f.js(SIDEWAYS_JS)
    check(over <= 1, "firefox: the status panel at 375 px scrolls sideways by %s px" % over)
    f.screenshot(os.path.join(out, "firefox-status-375.png"))
    errs = [e for e in f.console_errors() if e]
    check(not errs, "firefox console errors: %r" % errs)


def main():
    binary = find_browser("ES_FIREFOX", "firefox-esr", "firefox")
    if not binary:
        return skip("the Firefox UI test needs Debian's firefox-esr")
    with session("es_ui_ff_") as (out, tmp, model):
        profile = os.path.join(tmp, "profile")
        os.makedirs(profile)
        f = Firefox(binary, profile)
        try:
            with Server("--model", model, "--quiet") as srv:
                explore(f, srv, out)
        finally:
            f.quit()
    return summary("ui (firefox)")

if __name__ == "__main__":
    sys.exit(main())
