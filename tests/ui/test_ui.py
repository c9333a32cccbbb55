#!/usr/bin/env python3
"""test_ui.py — the web explorer (/ui/) in a real headless Chromium.

Drives Debian's `chromium` through `chromedriver` (WebDriver, plain HTTP +
JSON, so the standard library is enough) against the real `embedsrv serve`:
load /ui/, create a collection, upsert texts (one payload holds a <script>
tag, which must render as text), search, search by a hit's id, open a hit,
solve king - man + woman (queen first), draw the maps (analogy arrows,
words, points coloured by a payload field), the playground and status
panels, copy as curl, API errors shown as their messages, delete with
confirmation; then a server with --api-key (the 401 message shows before
the key is entered, everything works after) and one with --no-ui.  The DOM
is checked after each step; the browser console must stay free of errors
(a CSP violation would show there).

The model is written by the test: a small word-vector file with a royalty,
gender and person axis, so that king - man + woman is queen by
construction.  When models/default.esm exists, queen is also checked on it.

Screenshots of every panel at 1440 and 375 px wide go to
$ES_BUILD_ROOT/ui-screenshots/ (test artifacts; docs/ui/ holds chosen
ones).  Timings (first paint, search round trip in the page vs curl) are
printed and written to ui-screenshots/timings.json for bench/RESULTS.md.

Exit 77 (meson: skipped) when chromium or chromedriver is not installed;
.ci/run installs them (deploy/packages-ui-test.txt).
"""
import base64
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ui_common import (SIDEWAYS_JS, check, find_browser, session, set_value_js, shown_js,  # noqa: E402
                       skip, summary, wait_for)
from es_server import ROOT, SLOW, Server  # noqa: E402

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]
WIDTHS = {"wide": (1440, 1000), "narrow": (375, 900)}


# --------------------------------------------------------------- WebDriver
class Driver:
    def __init__(self, chromium, chromedriver, profile):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.log = open(os.path.join(profile, "chromedriver.log"), "w")
        self.proc = subprocess.Popen([chromedriver, "--port=%d" % self.port],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20 * SLOW
        while True:
            try:
                self._call("GET", "/status")
                break
            except (OSError, urllib.error.URLError):
                if time.time() > deadline or self.proc.poll() is not None:
                    self.proc.kill()  # quit() is never reached for it
                    self.proc.wait()
                    self.log.close()
                    raise RuntimeError("chromedriver did not start")
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium,
                                   "args": FLAGS + ["--user-data-dir=" + os.path.join(profile, "chrome"),
                                                    "--window-size=1440,1000"]},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}}
        self.sid = self._call("POST", "/session", caps)["sessionId"]

    def _call(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout * SLOW) as r:
                js = json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise RuntimeError("webdriver %s %s: %s" % (method, path, e.read()[:500]))
        return js.get("value", js) if "value" in js else js

    def cmd(self, method, path, body=None):
        return self._call(method, "/session/%s%s" % (self.sid, path), body)

    def get(self, url):
        self.cmd("POST", "/url", {"url": url})

    def js(self, script, *args):
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def js_async(self, script, *args):
        return self.cmd("POST", "/execute/async", {"script": script, "args": list(args)})

    def find(self, css):
        return self.cmd("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def click(self, css):
        # a panel may re-render (refresh on show) between find and click
        for attempt in range(5):
            try:
                self.cmd("POST", "/element/%s/click" % self.find(css), {})
                return
            except RuntimeError as e:
                if "stale element" not in str(e) or attempt == 4:
                    raise
                time.sleep(0.1)

    def type(self, css, text, clear=True):
        e = self.find(css)
        if clear:
            self.cmd("POST", "/element/%s/clear" % e, {})
        self.cmd("POST", "/element/%s/value" % e, {"text": text})

    def set(self, elid, value):
        """Set a field's value the way a user's edit would (input event)."""
        self.js(set_value_js(elid, value))

    def text(self, elid):
        return self.js("const e = document.getElementById(arguments[0]); return e ? e.textContent : null;", elid)

    def wait(self, script, what, timeout=10, *args):
        return wait_for(lambda: self.js(script, *args), what, timeout,
                        lambda: self.js(shown_js(".err, .hint, #s-summary")))

    def resize(self, w, h):
        self.cmd("POST", "/window/rect", {"width": w, "height": h})

    def screenshot(self, path):
        png = base64.b64decode(self.cmd("GET", "/screenshot"))
        with open(path, "wb") as f:
            f.write(png)

    def console_errors(self):
        try:
            logs = self.cmd("POST", "/se/log", {"type": "browser"})
        except RuntimeError:
            return []
        return [e["message"] for e in logs if e.get("level") == "SEVERE"]

    def quit(self):
        try:
            self.cmd("DELETE", "")
        except Exception:  # noqa: BLE001 - the browser may be gone already
            pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def ready(d):
    d.wait("return document.body && document.body.dataset.ready === '1';", "the page to load its data")


def errors_in(d, panel):
    return d.text("err-" + panel) or ""


def shots(d, out, name):
    """Screenshots of the current panel at both widths (back to wide)."""
    for tag, (w, h) in WIDTHS.items():
        d.resize(w, h)
        time.sleep(0.1)
        # the whole page: a window as tall as the document (up to 4000 px)
        full = d.js("window.scrollTo(0, 0); return document.documentElement.scrollHeight;")
        d.resize(w, max(h, min(int(full) + 140, 4000)))
        time.sleep(0.15)
        if tag == "narrow":
            over = d.js(SIDEWAYS_JS)
            check(over <= 1, "%s at 375 px scrolls sideways by %s px" % (name, over))
        d.screenshot(os.path.join(out, "%s-%d.png" % (name, w)))
    d.resize(*WIDTHS["wide"])


# --------------------------------------------------------------- the tests
def static_checks():
    js = open(os.path.join(ROOT, "server", "ui", "app.js")).read()
    for bad in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        check(bad not in js, "app.js uses " + bad)
    total = sum(os.path.getsize(os.path.join(ROOT, "server", "ui", f))
                for f in ("index.html", "app.js", "style.css"))
    check(total < 150 * 1024, "UI assets are %d bytes (limit 150 KB)" % total)
    html = open(os.path.join(ROOT, "server", "ui", "index.html")).read()
    check("http://" not in html and "https://" not in html, "index.html refers to another origin")
    return total


def paint_floor(d, runs=7):
    """Median first-contentful-paint of a one-line data: URL page (no
    network at all): what this machine's Chromium needs to paint anything,
    measured in the same run as first_paint() for comparison."""
    vals = []
    for i in range(runs + 1):
        d.get("data:text/html,<title>t</title><p>floor %d</p>" % i)
        d.wait("return document.readyState === 'complete' &&"
               " performance.getEntriesByName('first-contentful-paint').length > 0;", "floor page paint")
        v = d.js("return performance.getEntriesByName('first-contentful-paint')[0].startTime;")
        if i > 0:
            vals.append(v)
    return statistics.median(vals)


def first_paint(d, url, runs=7):
    """Median first-contentful-paint of url over `runs` loads after a
    warm-up, and the median time until the HTML had arrived (responseEnd),
    both from the start of the navigation, in ms."""
    fcps, html = [], []
    for i in range(runs + 1):
        d.get(url + ("?r=%d" % i))
        ready(d)
        t = d.js("const p = performance.getEntriesByName('first-contentful-paint')[0];"
                 "const n = performance.getEntriesByType('navigation')[0];"
                 "return [p ? p.startTime : null, n ? n.responseEnd : null];")
        if i > 0 and t[0] is not None:
            fcps.append(t[0])
            html.append(t[1])
    if not fcps:
        return None, None
    return statistics.median(fcps), statistics.median(html)


def round_trips(d, srv, coll, body, runs=30):
    """Median wall time of the same search: fetch() in the page vs curl."""
    page = d.js_async(
        "const [path, body, n, done] = arguments; const ts = [];"
        "(async () => { for (let i = 0; i < n; i++) { const t0 = performance.now();"
        " const r = await fetch(path, {method: 'POST', headers: {'Content-Type': 'application/json'},"
        " body: JSON.stringify(body)}); await r.json(); ts.push(performance.now() - t0); }"
        " done(ts); })();", "/v1/collections/%s/search" % coll, body, runs)
    curl = shutil.which("curl")
    cl = []
    if curl:
        url = "http://127.0.0.1:%d/v1/collections/%s/search" % (srv.port, coll)
        for _ in range(runs):
            out = subprocess.run([curl, "-sS", "-o", "/dev/null", "-w", "%{time_total}", "-H",
                                  "Content-Type: application/json", "-d", json.dumps(body), url],
                                 capture_output=True, text=True, check=True).stdout
            cl.append(float(out) * 1000)
    return statistics.median(page[3:]), (statistics.median(cl) if cl else None)


def explore(d, srv, out, timings):
    # Long on purpose (~260 lines): one browser session through the explorer
    # page by page, each step reading what the previous one left on screen;
    # the page's state lives in the browser, so splitting it would only pass
    # the driver and that state along.
    base = "http://127.0.0.1:%d/ui/" % srv.port
    d.get(base)
    ready(d)
    check(d.js("return document.title;") == "embedsrv explorer", "page title")
    check("v" in (d.text("server-line") or ""), "header shows the server version")
    check(not d.js("return document.getElementById('s-mode').hidden;") and
          d.js("return document.getElementById('s-mode').options.length;") == 3,
          "a mode selector with the server's search_modes from /v1/info")
    check(d.js("return getComputedStyle(document.getElementById('auth')).display;") == "none",
          "no key prompt on a server without --api-key")
    check(d.js("return getComputedStyle(document.getElementById('s-mode')).display;") != "none", "the mode field is displayed")
    timings["first_paint_ms"], timings["html_received_ms"] = first_paint(d, base)
    timings["blank_page_paint_ms"] = paint_floor(d)
    d.get(base)
    ready(d)
    shots(d, out, "search-empty")

    # --- Collections: create, upsert texts (one with <script>), page, detail
    d.get(base + "#collections")
    ready(d)
    d.type("#c-name", "docs")
    d.click("#c-create-go")
    d.wait("return !!document.querySelector('#c-list tr[data-name=\"docs\"]');", "the new collection's row")
    check(not d.js("return document.getElementById('c-detail').hidden;"), "collection detail opens after create")
    batches = [
        ["the king and the queen | {\"lang\": \"en\", \"topic\": \"royal\"}",
         "a man and a woman | {\"lang\": \"en\", \"topic\": \"people\"}",
         "the cat sat on the mat | {\"lang\": \"en\", \"topic\": \"animal\"}",
         "the dog and the kitten | {\"lang\": \"fr\", \"topic\": \"animal\"}",
         "an apple and a banana | {\"lang\": \"fr\", \"topic\": \"fruit\"}",
         "the prince and the princess | {\"lang\": \"de\", \"topic\": \"royal\"}",
         "the boy and the girl | {\"lang\": \"de\", \"topic\": \"people\"}",
         "the crown <script>window.__xss = 1</script><img src=x onerror=\"window.__xss = 2\"> | {\"topic\": \"royal\"}"],
        ["the throne of the king | {\"lang\": \"en\", \"topic\": \"royal\"}",
         "the woman and the girl | {\"lang\": \"en\", \"topic\": \"people\"}",
         "the kitten sat | {\"lang\": \"en\", \"topic\": \"animal\"}",
         "a cherry and an apple | {\"lang\": \"fr\", \"topic\": \"fruit\"}",
         "the cat and the dog | {\"lang\": \"fr\", \"topic\": \"animal\"}",
         "the palace and the crown | {\"lang\": \"de\", \"topic\": \"royal\"}",
         "the man and the boy | {\"lang\": \"de\", \"topic\": \"people\"}",
         "a banana | {\"lang\": \"en\", \"topic\": \"fruit\"}"],
        ["the queen on the throne | {\"lang\": \"en\", \"topic\": \"royal\"}",
         "the princess in the palace | {\"lang\": \"en\", \"topic\": \"royal\"}",
         "a dog sat on the mat | {\"lang\": \"en\", \"topic\": \"animal\"}",
         "the girl and the kitten | {\"lang\": \"fr\", \"topic\": \"people\"}",
         "a cherry | {\"lang\": \"fr\", \"topic\": \"fruit\"}",
         "the prince and the boy | {\"lang\": \"de\", \"topic\": \"people\"}",
         "the king and the man | {\"lang\": \"de\", \"topic\": \"people\"}",
         "the woman and the queen | {\"lang\": \"en\", \"topic\": \"royal\"}"],
    ]
    for i, texts in enumerate(batches):  # 24 points: more than one page of 20
        d.set("c-texts", "\n".join(texts))
        d.set("c-first-id", str(1 + i * len(texts)))
        d.click("#c-upsert-go")
        d.wait("const n = 8 * (arguments[0] + 1);"
               "return /upserted 8/.test(document.getElementById('c-upsert-msg').textContent) &&"
               " document.querySelectorAll('#c-points tbody tr').length === Math.min(20, n) &&"
               " document.querySelector('#c-list tr[data-name=\"docs\"] td').textContent === String(n);",
               "upsert %d" % i, 10, i)
    check(errors_in(d, "upsert") == "", "upsert error: " + errors_in(d, "upsert"))
    count = d.js("return document.querySelector('#c-list tr[data-name=\"docs\"] td').textContent;")
    check(count == "24", "collection list count is 24 (got %r)" % count)
    # the <script> payload is text, never markup
    xss = d.js("return [...document.querySelectorAll('#c-points pre')].map(p => p.textContent)"
               ".filter(t => t.indexOf('<script>window.__xss') >= 0).length;")
    check(xss >= 1, "the <script> payload shows as text in the points table")
    check(d.js("return document.querySelectorAll('#c-points script, #c-points img').length;") == 0,
          "the payload made no element")
    check(d.js("return window.__xss === undefined;"), "the payload's script did not run")
    check(not d.js("return document.getElementById('c-next').disabled;"), "a next page of points")
    d.click("#c-next")
    d.wait("return document.getElementById('c-page').textContent.indexOf('page 2 · 4 points') === 0;", "page 2 of points")
    check(d.js("return document.getElementById('c-next').disabled;"), "page 2 is the last")
    d.click("#c-points tbody tr:last-child button")
    d.wait("return !document.getElementById('c-point').hidden && /Point/.test(document.getElementById('c-point').textContent);", "point detail")
    check("dimension 8" in d.text("c-point"), "point detail shows its vector's dimension")
    d.js("document.querySelector('#c-point details').open = true;")
    shots(d, out, "collections")

    # --- Search: by text, by a hit's id, open a hit, pages, errors
    d.get(base + "#search")
    ready(d)
    d.js("document.getElementById('s-coll').value = 'docs';")
    d.type("#s-query", "the queen and her crown")
    d.set("s-k", "5")
    d.click("#s-go")
    d.wait("return document.querySelectorAll('#s-results li').length === 5;", "5 search hits")
    first = d.js("return document.querySelector('#s-results li pre').textContent;")
    check("royal" in first, "the best hit for a royal query is royal (got %r)" % first)
    scores = d.js("return [...document.querySelectorAll('#s-results .score')].map(s => parseFloat(s.textContent));")
    check(scores == sorted(scores, reverse=True), "hits best first")
    check(d.js("return document.querySelector('#s-results .bar > span').style.width;") in ("100%", "100.0%"), "score bar of the best hit")
    check(not d.js("return document.getElementById('s-next').disabled;"), "search has a next page")
    d.click("#s-next")
    d.wait("return document.getElementById('s-page').textContent === 'page 2' &&"
           " document.querySelector('#s-results .rank').textContent === '#6';", "search page 2")
    # copy as curl for the search, then the round trip in the page vs curl
    d.click("button.curl[data-for='search']")
    curl = d.wait("const t = document.getElementById('curl-search').textContent; return t.indexOf('curl') === 0 && t;", "curl text")
    check("/v1/collections/docs/search" in (curl or "") and "-d '" in (curl or ""), "curl command: %r" % curl)
    if curl and shutil.which("curl"):
        r = subprocess.run(["sh", "-c", curl], capture_output=True, text=True, timeout=30)
        check(r.returncode == 0 and '"result"' in r.stdout, "the copied curl command runs: %r" % r.stdout[:200])
    shots(d, out, "search")
    # an older server without search_modes gets no mode field; this one
    # lists them, and the chosen mode is sent with a text search (only)
    d.js("setupModes(Object.assign({}, state.info, {search_modes: null}));")
    check(d.js("return document.getElementById('s-mode').hidden;"), "no mode field without search modes")
    d.js("setupModes(state.info);")
    check(d.js("return getComputedStyle(document.getElementById('s-mode')).display !== 'none' &&"
               " document.getElementById('s-mode').options.length === 3;"), "mode field from /v1/info's search_modes")
    d.js("document.getElementById('s-mode').value = 'hybrid';")
    d.click("button.curl[data-for='search']")
    check('"mode":"hybrid"' in (d.text("curl-search") or ""), "the chosen mode is sent: %r" % d.text("curl-search"))
    page_ms, curl_ms = round_trips(d, srv, "docs", {"text": "the queen and her crown", "k": 10})
    timings["search_page_ms"], timings["search_curl_ms"] = page_ms, curl_ms
    # search by a hit's id
    d.js("document.querySelector('#s-results .hit-id').click();")
    d.wait("return /hits for id/.test(document.getElementById('s-summary').textContent);", "search by a hit's id")
    check(d.js("return document.getElementById('s-kind').value;") == "id", "query kind switched to id")
    # open a hit
    d.js("document.querySelector('#s-results .hit-head button:last-child').click();")
    d.wait("return location.hash === '#collections' && !document.getElementById('c-point').hidden;", "open a hit")
    d.get(base + "#search")
    ready(d)
    # errors: a filter with a syntax error is caught before sending; an API
    # error shows the server's message
    d.js("document.getElementById('s-coll').value = 'docs'; document.getElementById('s-kind').value = 'text';")
    d.set("s-query", "king")
    d.set("s-filter", "{\"must\": [")
    check("filter:" in (d.text("s-filter-msg") or ""), "the filter's syntax error shows as it is typed")
    d.click("#s-go")
    d.wait("return /filter:/.test(document.getElementById('err-search').textContent);", "filter error on submit")
    d.set("s-filter", "{\"must\": [{\"key\": \"lang\", \"match\": \"fr\"}]}")
    d.set("s-k", "10")
    d.click("#s-go")
    d.wait("return document.querySelectorAll('#s-results li').length === 6 && document.getElementById('err-search').textContent === '';",
           "filtered search: the 6 French points")
    d.set("s-filter", "{\"must\": [{\"key\": \"lang\"}]}")
    d.click("#s-go")
    msg = d.wait("const t = document.getElementById('err-search').textContent; return /HTTP 400/.test(t) && t;", "API error message")
    check(msg and "match" in msg, "the API's message is shown: %r" % msg)
    d.set("s-filter", "")
    d.set("s-ef", "1000000000")
    d.click("#s-go")
    d.wait("return /HTTP 422/.test(document.getElementById('err-search').textContent);", "ef over the limit: the server's 422")
    d.set("s-ef", "")

    # --- Words: neighbours and the analogy
    d.get(base + "#words")
    ready(d)
    check(d.js("return document.getElementById('w-pos').value;") == "king, woman", "analogy prefilled")
    d.click("#w-an-go")
    d.wait("return document.querySelectorAll('#w-an-results li').length > 0;", "analogy results")
    top = d.js("return document.querySelector('#w-an-results li .word').textContent;")
    check(top == "queen", "king - man + woman: queen first (got %r)" % top)
    check("≈ queen" in (d.text("w-an-expr") or ""), "analogy expression")
    d.js("document.getElementById('w-method').value = '3cosmul';")
    d.click("#w-an-go")
    d.wait("return /3cosmul/.test(document.getElementById('w-an-expr').textContent);", "3CosMul answer")
    check(d.js("return document.querySelector('#w-an-results li .word').textContent;") == "queen", "3CosMul: queen first")
    d.js("document.getElementById('w-method').value = '3cosadd';")
    d.type("#w-word", "cat")
    d.click("#w-nn-go")
    d.wait("return document.querySelectorAll('#w-nn-results li').length > 0;", "neighbours")
    check(d.js("return document.querySelector('#w-nn-results li .word').textContent;") == "kitten", "nearest to cat is kitten")
    d.set("w-pos", "king, notaword")
    d.click("#w-an-go")
    d.wait("return /HTTP 4/.test(document.getElementById('err-analogy').textContent);", "unknown word: the API's error")
    d.set("w-pos", "king, woman")
    d.click("#w-an-go")
    d.wait("return document.getElementById('err-analogy').textContent === '' && /≈ queen/.test(document.getElementById('w-an-expr').textContent);", "analogy again")
    shots(d, out, "words")

    # --- Map: the analogy's parallelogram, words, points coloured by payload
    d.click("#w-an-map")
    d.wait("return document.querySelectorAll('#m-svg g.pt').length >= 4;", "analogy map")
    labels = d.js("return [...document.querySelectorAll('#m-svg g.pt')].map(g => g.dataset.label);")
    for w in ("king", "queen", "man", "woman"):
        check(w in labels, "map shows " + w)
    arrows = d.js("return [...document.querySelectorAll('#m-svg line.arrow')].map(l => l.dataset.from + '>' + l.dataset.to);")
    check(sorted(arrows) == ["king>queen", "man>woman"], "analogy arrows: %r" % arrows)
    check(d.js("return document.querySelector('#m-svg g.pt.answer').dataset.label;") == "queen", "queen is the answer point")
    pos1 = d.js("return [...document.querySelectorAll('#m-svg circle')].map(c => c.getAttribute('cx') + ',' + c.getAttribute('cy')).join(' ');")
    d.js("document.querySelector('#m-svg g.pt').dispatchEvent(new MouseEvent('mouseenter'));")
    check("score" in (d.text("m-info") or "") or "query" in (d.text("m-info") or ""), "hover shows label and score")
    shots(d, out, "map-analogy")
    d.click("#m-go")  # drawn again: the same picture (deterministic PCA)
    d.wait("return document.querySelectorAll('#m-svg g.pt').length >= 4;", "analogy map again")
    pos2 = d.js("return [...document.querySelectorAll('#m-svg circle')].map(c => c.getAttribute('cx') + ',' + c.getAttribute('cy')).join(' ');")
    check(pos1 == pos2, "the map is deterministic")
    d.js("document.getElementById('m-source').value = 'words';")
    d.set("m-query", "king")
    d.set("m-k", "8")
    d.click("#m-go")
    d.wait("return document.querySelectorAll('#m-svg g.pt').length === 9 && document.querySelectorAll('#m-svg line.arrow').length === 0;", "word map")
    d.js("document.getElementById('m-source').value = 'points';"
         "document.getElementById('m-coll').value = 'docs';")
    d.set("m-query", "the royal crown")
    d.set("m-k", "15")
    d.set("m-color", "topic")
    d.click("#m-go")
    d.wait("return document.querySelectorAll('#m-svg g.pt.hit').length === 15;", "point map")
    legend = d.js("return [...document.querySelectorAll('#m-legend li')].map(l => l.textContent);")
    check('"royal"' in legend and len(legend) >= 3, "legend by payload field: %r" % legend)
    fills = d.js("return new Set([...document.querySelectorAll('#m-svg g.pt.hit circle')].map(c => c.getAttribute('fill'))).size;")
    check(fills >= 3, "points coloured by topic (%s colours)" % fills)
    check(d.js("return [...document.querySelectorAll('#m-svg g.pt title')].some(t => t.textContent.indexOf('<script>') >= 0);"),
          "the <script> text is a point's title on the map, as text")
    check(d.js("return document.querySelectorAll('#m-svg script, #m-svg img, #m-svg foreignObject').length;") == 0,
          "the payload made no element on the map")
    check(d.js("return window.__xss === undefined;"), "no script ran from the map")
    check(errors_in(d, "map") == "", "map error: " + errors_in(d, "map"))
    shots(d, out, "map-points")

    # --- Playground
    d.get(base + "#playground")
    ready(d)
    d.set("g-text", "the king and zzzunknown")
    d.click("#g-go")
    d.wait("return document.querySelectorAll('#g-tokens .tok').length >= 4;", "tokens")
    stats = d.text("g-stats") or ""
    check("dimension8" in stats.replace(" ", ""), "playground shows the dimension: %r" % stats)
    check(d.js("return document.querySelectorAll('#g-comps li').length;") == 8, "8 components shown")
    kinds = d.js("return [...document.querySelectorAll('#g-tokens .tok')].map(t => t.className);")
    check(any("unknown" in k for k in kinds) and any("known" in k.split() for k in kinds), "known and unknown tokens flagged: %r" % kinds)
    d.click("#g-cos-go")
    d.wait("return /cosine = /.test(document.getElementById('g-cos-out').textContent);", "cosine of two texts")
    shots(d, out, "playground")

    # --- Status
    d.get(base + "#status")
    ready(d)
    d.wait("return /version/.test(document.getElementById('st-info').textContent) &&"
           " /requests/.test(document.getElementById('st-metrics').textContent);", "status")
    reqs = d.js("const dl = document.getElementById('st-metrics'); const dts = [...dl.querySelectorAll('dt')];"
                "const i = dts.findIndex(t => t.textContent === 'requests'); return Number(dl.querySelectorAll('dd')[i].textContent);")
    check(reqs > 10, "metrics count the requests (%r)" % reqs)
    check(d.js("return document.querySelectorAll('#st-models tbody tr').length;") == 1, "one model listed")
    shots(d, out, "status")

    # --- delete with a confirmation (cancel first)
    d.get(base + "#collections")
    ready(d)
    d.click("#c-list tr[data-name='docs'] button.danger")
    check(not d.js("return document.getElementById('c-confirm').hidden;"), "delete asks first")
    check("24 points" in (d.text("c-confirm-text") or ""), "the confirmation names the points")
    d.click("#c-confirm-no")
    check(d.js("return !!document.querySelector('#c-list tr[data-name=\"docs\"]');"), "cancel keeps it")
    d.click("#c-list tr[data-name='docs'] button.danger")
    d.click("#c-confirm-yes")
    d.wait("return !document.querySelector('#c-list tr[data-name=\"docs\"]');", "the collection is gone")
    st, _ = srv.req("GET", "/v1/collections/docs")
    check(st == 404, "deleted on the server")
    errs = d.console_errors()
    # 4xx answers the test provoked are logged by Chromium as failed loads
    bad = [e for e in errs if "status of 4" not in e]
    check(not bad, "browser console errors: %r" % bad)


def with_api_key(d, model, out):
    with Server("--model", model, "--quiet", "--api-key", "s3cret") as srv:
        base = "http://127.0.0.1:%d/ui/" % srv.port
        d.get(base + "#status")
        d.wait("return !document.getElementById('auth').hidden;", "the key prompt")
        msg = d.text("auth-msg") or ""
        check("API key" in msg, "the 401 message is shown before the key: %r" % msg)
        check("HTTP 401" in (d.text("err-status") or ""), "the status panel shows the 401")
        d.resize(*WIDTHS["narrow"])
        d.screenshot(os.path.join(out, "api-key-375.png"))
        d.resize(*WIDTHS["wide"])
        d.type("#auth-key", "wrong")
        d.click("#auth button[type=submit]")
        d.wait("return !document.getElementById('auth').hidden && /API key/.test(document.getElementById('auth-msg').textContent);",
               "a wrong key asks again")
        d.type("#auth-key", "s3cret")
        d.click("#auth button[type=submit]")
        d.wait("return document.getElementById('auth').hidden && /version/.test(document.getElementById('st-info').textContent);",
               "works after the key")
        check(d.js("return sessionStorage.getItem('embedsrv-api-key');") == "s3cret", "key kept in sessionStorage")
        d.get(base + "#words")  # a reload keeps the key (same tab)
        ready(d)
        d.click("#w-an-go")
        d.wait("return document.querySelectorAll('#w-an-results li').length > 0;", "analogy with the key")
        check(d.js("return document.getElementById('auth').hidden;"), "no prompt after reload")
        d.click("button.curl[data-for='analogy']")
        c = d.text("curl-analogy") or ""
        check("$EMBEDSRV_API_KEY" in c and "s3cret" not in c, "curl names the key's variable, not the key: %r" % c)
        d.js("sessionStorage.clear();")


def no_ui(model):
    with Server("--model", model, "--quiet", "--no-ui") as srv:
        st, js = srv.req("GET", "/ui/")
        check(st == 404 and js["error"]["code"] == "ui_disabled", "--no-ui: /ui/ is 404 (%d)" % st)
        st, _ = srv.req("GET", "/v1/info")
        check(st == 200, "--no-ui: the API still answers")


def default_model_queen(d):
    path = os.path.join(ROOT, "models", "default.esm")
    if not os.path.exists(path):
        print("note: models/default.esm absent: queen on the default model not checked")
        return
    with Server("--model", path, "--quiet", start_timeout=300) as srv:
        d.get("http://127.0.0.1:%d/ui/#words" % srv.port)
        ready(d)
        d.click("#w-an-go")
        d.wait("return document.querySelectorAll('#w-an-results li').length > 0;", "analogy on the default model", 60)
        top = d.js("return document.querySelector('#w-an-results li .word').textContent;")
        check(top == "queen", "default model: king - man + woman = queen first (got %r)" % top)


def main():
    chromium = find_browser("ES_CHROMIUM", "chromium", "chromium-browser")
    chromedriver = find_browser("ES_CHROMEDRIVER", "chromedriver")
    if not chromium or not chromedriver:
        return skip("the UI test needs Debian's chromium and chromium-driver")
    total = static_checks()
    timings = {"assets_bytes": total}
    with session("es_ui_") as (out, tmp, model):
        d = Driver(chromium, chromedriver, tmp)
        try:
            with Server("--model", model, "--quiet") as srv:
                explore(d, srv, out, timings)
            with_api_key(d, model, out)
            no_ui(model)
            default_model_queen(d)
        finally:
            d.quit()
    with open(os.path.join(out, "timings.json"), "w") as f:
        json.dump(timings, f, indent=1)
    print("ui timings: " + json.dumps(timings))
    print("screenshots in " + out)
    return summary("ui")

if __name__ == "__main__":
    sys.exit(main())
