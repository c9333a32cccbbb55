"""ui_common.py — what the two browser tests of the web explorer share
(test_ui.py: Chromium through chromedriver; test_ui_firefox.py: Firefox
through WebDriver BiDi), so that neither keeps its own copy: the pass/fail
tally (es_server.Checks), the test model, finding the browser or skipping,
the screenshot folder and temporary folder of a run, and the few page
scripts both send.  A helper module, not a test (tests/ui/meson.build).

    from ui_common import check, session, find_browser, skip, summary
    def main():
        binary = find_browser("ES_FIREFOX", "firefox-esr", "firefox")
        if not binary:
            return skip("the Firefox UI test needs Debian's firefox-esr")
        with session("es_ui_ff_") as (out, tmp, model):
            ...                                # out: screenshots; model: .vec
        return summary("ui (firefox)")
"""
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import es_server  # noqa: E402

check = es_server.Checks()

# how far the page scrolls sideways (> 1 px at 375 px wide is a layout bug)
SIDEWAYS_JS = "return document.documentElement.scrollWidth - window.innerWidth;"


def set_value_js(elid, value):
    """A page script (no arguments, so both drivers can send it) that sets
    a field's value the way a user's edit does: input and change events."""
    return ("const e = document.getElementById(%s); e.value = %s;"
            "e.dispatchEvent(new Event('input', {bubbles: true}));"
            "e.dispatchEvent(new Event('change', {bubbles: true}));"
            % (json.dumps(elid), json.dumps(value)))


def shown_js(css):
    """A page script: 'id: text' of each element matching css that has text
    (the error and hint lines a timed-out wait reports)."""
    return ("return [...document.querySelectorAll(%s)].filter(e => e.textContent)"
            ".map(e => e.id + ': ' + e.textContent);" % json.dumps(css))


def wait_for(probe, what, timeout, shown):
    """Call probe() every 50 ms until it returns something true, and return
    that.  After timeout seconds (times ES_TIMEOUT_SCALE) record a failed
    check naming what and shown() (what the page shows), and return
    probe's last value."""
    deadline = time.time() + timeout * es_server.SLOW
    while True:
        v = probe()
        if v:
            return v
        if time.time() > deadline:
            check(False, "timed out waiting for %s (page shows %r)" % (what, shown()))
            return v
        time.sleep(0.05)


def write_model(path):
    """Word vectors on axes royal, male, female, person, animal, fruit,
    young, misc, with a little fixed noise: king - man + woman = queen."""
    axes = {"royal": 0, "male": 1, "female": 2, "person": 3, "animal": 4, "fruit": 5, "young": 6, "misc": 7}
    words = {
        "the": ["misc"], "a": ["misc"], "and": ["misc"], "on": ["misc"], "sat": ["misc", "animal"],
        "king": ["royal", "male"], "queen": ["royal", "female"],
        "man": ["male", "person"], "woman": ["female", "person"],
        "prince": ["royal", "male", "young"], "princess": ["royal", "female", "young"],
        "boy": ["male", "person", "young"], "girl": ["female", "person", "young"],
        "cat": ["animal"], "dog": ["animal", "male"], "kitten": ["animal", "young"],
        "apple": ["fruit"], "banana": ["fruit", "misc"], "cherry": ["fruit", "young"],
        "throne": ["royal", "misc"], "crown": ["royal"], "palace": ["royal", "misc", "person"],
    }
    seed = 12345
    lines = ["%d %d" % (len(words), len(axes))]
    for w, on in words.items():
        v = []
        for a in range(len(axes)):
            seed = (seed * 1103515245 + 12345) % (1 << 31)
            v.append((1.0 if any(axes[x] == a for x in on) else 0.0) + (seed / (1 << 31) - 0.5) * 0.06)
        lines.append(w + " " + " ".join("%.5f" % x for x in v))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def find_browser(env_var, *names):
    """$env_var if set, else the first of names on PATH; None if none."""
    return os.environ.get(env_var) or next(filter(None, map(shutil.which, names)), None)


def skip(why):
    """Say why the test cannot run; 77, meson's 'skipped'."""
    print("SKIP: %s (sh deploy/install-deps.sh deploy/packages-ui-test.txt)" % why)
    return 77


@contextlib.contextmanager
def session(prefix):
    """(out, tmp, model): the screenshot folder $ES_BUILD_ROOT/ui-screenshots,
    a temporary folder removed afterwards, and the test model written in it."""
    out = os.path.join(os.environ.get("ES_BUILD_ROOT", "build"), "ui-screenshots")
    os.makedirs(out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        model = os.path.join(tmp, "royal-8d.vec")
        write_model(model)
        yield out, tmp, model
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def summary(name):
    """Print the count of problems; the exit status (1 if any)."""
    print("%s: %d passed, %d problems" % (name, check.passed, len(check.failures)))
    return 1 if check.failures else 0
