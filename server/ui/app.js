// embedsrv explorer: plain JavaScript, no framework, no build step, no
// network but this server's own API.  API data (payloads, ids, words,
// messages) is user data: it only ever reaches the page as textContent or
// attribute values through el() below, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

// el("li", {class: "x", onclick: f}, child, "text", ...): a DOM element.
function el(tag, attrs, ...kids) {
  const svg = ["svg", "g", "circle", "line", "text", "title", "path", "marker", "defs", "rect"].includes(tag);
  const e = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = String(v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of kids) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

const fmt = (x, d = 4) => (typeof x === "number" && isFinite(x) ? x.toFixed(d) : String(x));
const pretty = (v) => JSON.stringify(v, null, 2);

function bytes(n) {
  if (typeof n !== "number") return "";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + u[i];
}

// --- the API --------------------------------------------------------------

const state = {
  info: null,
  collections: [],
  last: {},          // action -> {method, path, body}: for "copy as curl"
  pendingAuth: [],   // retries to run once a key is entered
};

function apiKey() {
  try { return sessionStorage.getItem("embedsrv-api-key") || ""; } catch (_) { return ""; }
}

class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// One API call.  Records it under `action` for "copy as curl"; errors are
// thrown as ApiError with the server's own message.
async function api(action, method, path, body) {
  if (action) state.last[action] = { method, path, body };
  const headers = {};
  const key = apiKey();
  if (key) headers["Authorization"] = "Bearer " + key;
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "cannot reach the server: " + e.message, "network");
  }
  const text = await res.text();
  let js = null;
  if ((res.headers.get("Content-Type") || "").includes("json")) {
    try { js = JSON.parse(text); } catch (_) { js = null; }
  }
  if (!res.ok) {
    const e = js && js.error ? js.error : null;
    const msg = e && e.message ? e.message : text || res.statusText;
    const err = new ApiError(res.status, msg, e ? e.code : null);
    if (res.status === 401) askForKey(err.message);
    throw err;
  }
  return js !== null ? js : text;
}

// Run fn, showing any error in the panel's error area `errId`; a 401 is
// retried once the user has entered a key.
async function guarded(errId, fn) {
  const box = $(errId);
  if (box) box.textContent = "";
  try {
    return await fn();
  } catch (e) {
    if (box) box.textContent = (e.status ? "HTTP " + e.status + ": " : "") + e.message;
    if (e.status === 401) state.pendingAuth.push(() => guarded(errId, fn));
    return undefined;
  }
}

function askForKey(message) {
  $("auth").hidden = false;
  $("auth-msg").textContent = message;
  if (document.activeElement !== $("auth-key")) $("auth-key").focus();
}

$("auth").addEventListener("submit", (ev) => {
  ev.preventDefault();
  try { sessionStorage.setItem("embedsrv-api-key", $("auth-key").value); } catch (_) { /* private mode */ }
  $("auth-key").value = "";
  $("auth").hidden = true;
  const retry = state.pendingAuth.splice(0);
  loadBasics();
  for (const f of retry) f();
});

// --- copy as curl ---------------------------------------------------------

function shellQuote(s) {
  return "'" + String(s).replace(/'/g, "'\\''") + "'";
}

function curlOf(call) {
  const parts = ["curl -sS"];
  if (call.method !== "GET") parts.push("-X " + call.method);
  parts.push(shellQuote(location.origin + call.path));
  if (apiKey()) parts.push('-H "Authorization: Bearer $EMBEDSRV_API_KEY"');
  if (call.body !== undefined) {
    parts.push("-H 'Content-Type: application/json'");
    parts.push("-d " + shellQuote(JSON.stringify(call.body)));
  }
  return parts.join(" ");
}

// Each "Copy as curl" button names its action; the command of the last call
// (or of the form as it stands, through `preview`) is shown and copied.
const preview = {};

for (const b of document.querySelectorAll("button.curl")) {
  b.addEventListener("click", async () => {
    const action = b.dataset.for;
    let calls = state.last[action];
    if (preview[action]) {
      try { calls = preview[action](); } catch (e) { calls = null; $("err-" + action).textContent = e.message; }
    }
    const box = $("curl-" + action);
    if (!calls) {
      box.hidden = false;
      box.textContent = "(nothing to copy yet: run the action first)";
      return;
    }
    const list = Array.isArray(calls) ? calls : [calls];
    const text = list.map(curlOf).join("\n");
    box.hidden = false;
    box.textContent = text;
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = "Copied";
    } catch (_) {
      b.textContent = "Copy as curl (select the text below)";
    }
    setTimeout(() => { b.textContent = "Copy as curl"; }, 2000);
  });
}

// --- panels ---------------------------------------------------------------

const PANELS = ["search", "collections", "words", "map", "playground", "status"];

function showPanel() {
  let name = location.hash.replace(/^#/, "");
  if (!PANELS.includes(name)) name = "search";
  for (const p of PANELS) {
    $("p-" + p).hidden = p !== name;
    const tab = $("tab-" + p);
    if (p === name) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  if (name === "status") refreshStatus();
  if (name === "collections") refreshCollections();
}

window.addEventListener("hashchange", showPanel);

// The things every panel needs: /v1/info (models, limits, search modes)
// and the collection list.
async function loadBasics() {
  await guarded("err-status", async () => {
    const info = await api(null, "GET", "/v1/info");
    state.info = info;
    $("server-line").textContent = "v" + info.version + " · " + info.default_model +
      " · " + (info.simd && info.simd.selected ? info.simd.selected : "");
    const models = clear($("g-model"));
    for (const m of info.models || []) models.append(el("option", { value: m.name, text: m.name + " (" + m.dim + "-d)" }));
    setupModes(info);
  });
  await loadCollections();
}

async function loadCollections() {
  return guarded("err-collections", async () => {
    const js = await api("collections", "GET", "/v1/collections");
    state.collections = js.result || [];
    for (const id of ["s-coll", "m-coll"]) {
      const sel = $(id);
      const keep = sel.value;
      clear(sel);
      for (const c of state.collections) sel.append(el("option", { value: c.name, text: c.name + " (" + c.count + ")" }));
      if (state.collections.some((c) => c.name === keep)) sel.value = keep;
    }
    renderCollections();
    if (state.info) setupModes(state.info);
  });
}

// --- Search ---------------------------------------------------------------

// The search modes the server offers: the selected collection's
// "search_modes", else /v1/info's ("search_modes" or "search": {"modes"}),
// once hybrid search exists; until then there is no mode field and none is
// sent.
function setupModes(info) {
  const coll = state.collections.find((c) => c.name === $("s-coll").value);
  const modes = (coll && coll.search_modes) || info.search_modes || (info.search && info.search.modes) || null;
  const keep = $("s-mode").value;
  const sel = $("s-mode");
  const on = Array.isArray(modes) && modes.length > 0;
  sel.hidden = !on;
  $("s-mode-label").hidden = !on;
  clear(sel);
  if (on) for (const m of modes) sel.append(el("option", { value: String(m), text: String(m) }));
  if (on && modes.includes(keep)) sel.value = keep;
}

$("s-coll").addEventListener("change", () => { if (state.info) setupModes(state.info); });

function checkFilter() {
  const t = $("s-filter").value.trim();
  const msg = $("s-filter-msg");
  msg.className = "hint";
  if (!t) { msg.textContent = ""; return { ok: true, value: undefined }; }
  try {
    const v = JSON.parse(t);
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error("the filter must be a JSON object");
    msg.textContent = "valid JSON";
    msg.classList.add("good");
    return { ok: true, value: v };
  } catch (e) {
    msg.textContent = "filter: " + e.message;
    msg.classList.add("bad");
    return { ok: false, error: "filter: " + e.message };
  }
}

$("s-filter").addEventListener("input", checkFilter);

const search = { page: 0, body: null, coll: null, hits: [] };

// The request of the form as it stands (page 0), or throws with a message.
function searchRequest() {
  const coll = $("s-coll").value;
  if (!coll) throw new Error("no collection: create one in the Collections panel");
  const kind = $("s-kind").value;
  const q = $("s-query").value;
  const body = {};
  if (kind === "text") body.text = q;
  else if (kind === "vector") {
    let v;
    try { v = JSON.parse(q); } catch (e) { throw new Error("vector: " + e.message); }
    if (!Array.isArray(v)) throw new Error("vector: must be a JSON array of numbers");
    body.vector = v;
  } else {
    const t = q.trim();
    body.id = /^[0-9]+$/.test(t) ? Number(t) : t;
    if (typeof body.id === "number" && !Number.isSafeInteger(body.id)) throw new Error("id: too large for JavaScript; use a smaller id");
  }
  const k = parseInt($("s-k").value, 10);
  if (!(k >= 1)) throw new Error("k must be a positive integer");
  body.k = k;
  const ef = $("s-ef").value.trim();
  if (ef) body.ef = parseInt(ef, 10);
  // the mode picks how a TEXT query is answered; vector and id queries are
  // always dense, and the server refuses a mode that needs words without text
  if (kind === "text" && !$("s-mode").hidden && $("s-mode").value) body.mode = $("s-mode").value;
  const f = checkFilter();
  if (!f.ok) throw new Error(f.error);
  if (f.value) body.filter = f.value;
  return { coll, body };
}

preview.search = () => {
  const r = searchRequest();
  return { method: "POST", path: "/v1/collections/" + encodeURIComponent(r.coll) + "/search", body: r.body };
};

async function runSearch(page) {
  await guarded("err-search", async () => {
    if (page === 0) {
      const r = searchRequest();
      search.coll = r.coll;
      search.body = r.body;
    }
    if (!search.body) return;
    const per = search.body.k;
    const max = state.info && state.info.limits ? state.info.limits.max_k : 1000;
    // Pages are prefixes of one longer ranking: ask for (page+1)*k hits.
    const want = Math.min((page + 1) * per, max);
    const body = Object.assign({}, search.body, { k: want });
    if (body.ef !== undefined && body.ef < want) body.ef = want;
    const t0 = performance.now();
    const js = await api("search", "POST", "/v1/collections/" + encodeURIComponent(search.coll) + "/search", body);
    const ms = performance.now() - t0;
    search.page = page;
    search.hits = js.result || [];
    renderHits(ms, want);
  });
}

function renderHits(ms, want) {
  const per = search.body.k;
  const from = search.page * per;
  const hits = search.hits.slice(from, from + per);
  const list = clear($("s-results"));
  const top = search.hits.length ? Math.max(...search.hits.map((h) => Math.abs(h.score))) : 1;
  hits.forEach((h, i) => {
    const frac = top > 0 ? Math.max(0, Math.min(1, Math.abs(h.score) / top)) : 0;
    const bar = el("span", { class: "bar", title: "score " + fmt(h.score) }, el("span"));
    bar.firstChild.style.width = (frac * 100).toFixed(1) + "%";
    const idBtn = el("button", {
      type: "button", class: "linkish hit-id", text: "id " + JSON.stringify(h.id),
      title: "search by this point's vector",
      onclick: () => searchById(h.id),
    });
    const open = el("button", { type: "button", class: "linkish", text: "open", onclick: () => openPoint(search.coll, h.id) });
    const li = el("li", { class: "hit" },
      el("div", { class: "hit-head" },
        el("span", { class: "rank", text: "#" + (from + i + 1) }), bar,
        el("span", { class: "score", text: fmt(h.score) }), idBtn, open));
    if (h.payload !== undefined) li.append(el("pre", { class: "payload", text: pretty(h.payload) }));
    list.append(li);
  });
  const q = search.body.text !== undefined ? "text " + JSON.stringify(search.body.text)
    : search.body.id !== undefined ? "id " + JSON.stringify(search.body.id) : "a vector";
  $("s-summary").textContent = search.hits.length + " hits for " + q + " in " + search.coll +
    " (" + ms.toFixed(1) + " ms in the page)";
  $("s-page").textContent = hits.length ? "page " + (search.page + 1) : "no hits";
  $("s-prev").disabled = search.page === 0;
  const max = state.info && state.info.limits ? state.info.limits.max_k : 1000;
  $("s-next").disabled = search.hits.length < want || want >= max;
}

function searchById(id) {
  $("s-kind").value = "id";
  $("s-query").value = String(id);
  location.hash = "#search";
  runSearch(0);
}

$("s-form").addEventListener("submit", (ev) => { ev.preventDefault(); runSearch(0); });
$("s-prev").addEventListener("click", () => runSearch(Math.max(0, search.page - 1)));
$("s-next").addEventListener("click", () => runSearch(search.page + 1));

// --- Collections ----------------------------------------------------------

const colls = { current: null, offsets: [0], page: 0, next: null, pendingDelete: null };
const PAGE = 20;

async function refreshCollections() {
  await loadCollections();
}

function renderCollections() {
  const body = clear($("c-list").tBodies[0]);
  if (!state.collections.length) {
    body.append(el("tr", {}, el("td", { colspan: 6, class: "muted", text: "No collections yet: create one below." })));
  }
  for (const c of state.collections) {
    body.append(el("tr", { "data-name": c.name },
      el("th", { scope: "row" }, el("button", { type: "button", class: "linkish", text: c.name, onclick: () => openCollection(c.name) })),
      el("td", { class: "num", text: c.count }),
      el("td", { class: "num", text: c.dim }),
      el("td", { text: c.metric + (c.quantization ? " · " + c.quantization : "") }),
      el("td", { class: "num", text: bytes(c.memory_bytes) }),
      el("td", {},
        el("button", { type: "button", text: "Open", "aria-label": "Open " + c.name, onclick: () => openCollection(c.name) }), " ",
        el("button", { type: "button", class: "danger", text: "Delete", "aria-label": "Delete " + c.name, onclick: () => confirmDelete(c) }))));
  }
}

function confirmDelete(c) {
  colls.pendingDelete = c.name;
  $("c-confirm-text").textContent = "Delete collection '" + c.name + "' and its " + c.count + " points? This cannot be undone.";
  $("c-confirm").hidden = false;
  $("c-confirm-no").focus();
}

$("c-confirm-no").addEventListener("click", () => { $("c-confirm").hidden = true; colls.pendingDelete = null; });
$("c-confirm-yes").addEventListener("click", async () => {
  const name = colls.pendingDelete;
  $("c-confirm").hidden = true;
  colls.pendingDelete = null;
  if (!name) return;
  await guarded("err-collections", async () => {
    await api("collections", "DELETE", "/v1/collections/" + encodeURIComponent(name));
    if (colls.current === name) { colls.current = null; $("c-detail").hidden = true; }
    await loadCollections();
  });
});

$("c-refresh").addEventListener("click", refreshCollections);

function createRequest() {
  const name = $("c-name").value.trim();
  const body = { metric: $("c-metric").value };
  const dim = $("c-dim").value.trim();
  if (dim) body.dim = parseInt(dim, 10);
  if ($("c-quant").value) body.quantization = $("c-quant").value;
  return { method: "PUT", path: "/v1/collections/" + encodeURIComponent(name), body };
}

preview.create = createRequest;

$("c-create").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  await guarded("err-create", async () => {
    const r = createRequest();
    await api("create", r.method, r.path, r.body);
    await loadCollections();
    openCollection($("c-name").value.trim());
  });
});

async function openCollection(name) {
  colls.current = name;
  colls.offsets = [0];
  colls.page = 0;
  $("c-detail").hidden = false;
  $("c-detail-title").textContent = "Collection " + name;
  $("c-point").hidden = true;
  await loadPoints();
}

// Lines "text" or "text | {json payload}" -> upsert points.
function upsertRequest() {
  const lines = $("c-texts").value.split("\n").map((l) => l.trim()).filter((l) => l);
  if (!lines.length) throw new Error("write at least one line of text");
  let id = parseInt($("c-first-id").value, 10);
  if (!(id >= 0)) id = 1;
  const points = lines.map((line, i) => {
    let text = line;
    let payload = {};
    const cut = line.lastIndexOf(" | {");
    if (cut >= 0) {
      text = line.slice(0, cut).trim();
      try { payload = JSON.parse(line.slice(cut + 3)); } catch (e) { throw new Error("line " + (i + 1) + ": payload: " + e.message); }
      if (payload === null || typeof payload !== "object" || Array.isArray(payload)) throw new Error("line " + (i + 1) + ": the payload must be a JSON object");
    }
    return { id: id + i, text, payload: Object.assign({ text }, payload) };
  });
  return { method: "PUT", path: "/v1/collections/" + encodeURIComponent(colls.current) + "/points", body: { points } };
}

preview.upsert = upsertRequest;

$("c-upsert").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  await guarded("err-upsert", async () => {
    if (!colls.current) throw new Error("open a collection first");
    const r = upsertRequest();
    const js = await api("upsert", r.method, r.path, r.body);
    $("c-upsert-msg").textContent = "upserted " + js.result.upserted + " points";
    $("c-first-id").value = String(r.body.points[r.body.points.length - 1].id + 1);
    await loadCollections();
    await loadPoints();
  });
});

async function loadPoints() {
  await guarded("err-scroll", async () => {
    const name = colls.current;
    const js = await api("scroll", "POST", "/v1/collections/" + encodeURIComponent(name) + "/points/scroll",
      { limit: PAGE, offset: colls.offsets[colls.page] });
    const body = clear($("c-points").tBodies[0]);
    const pts = js.result.points;
    if (!pts.length) body.append(el("tr", {}, el("td", { colspan: 3, class: "muted", text: "No points: add some texts above." })));
    for (const p of pts) {
      body.append(el("tr", {},
        el("td", { text: JSON.stringify(p.id) }),
        el("td", {}, el("pre", { text: p.payload === null ? "null" : pretty(p.payload) })),
        el("td", {},
          el("button", { type: "button", text: "Detail", onclick: () => openPoint(name, p.id) }), " ",
          el("button", { type: "button", text: "Similar", onclick: () => { $("s-coll").value = name; searchById(p.id); } }))));
    }
    colls.next = js.result.next_offset;
    $("c-page").textContent = "page " + (colls.page + 1) + " · " + pts.length + " points";
    $("c-prev").disabled = colls.page === 0;
    $("c-next").disabled = colls.next === null;
  });
}

$("c-prev").addEventListener("click", () => { if (colls.page > 0) { colls.page--; loadPoints(); } });
$("c-next").addEventListener("click", () => {
  if (colls.next === null) return;
  colls.offsets[colls.page + 1] = colls.next;
  colls.page++;
  loadPoints();
});

async function openPoint(coll, id) {
  const errId = $("p-collections").hidden ? "err-search" : "err-point";
  await guarded(errId, async () => {
    const js = await api("point", "GET", "/v1/collections/" + encodeURIComponent(coll) + "/points/" + encodeURIComponent(String(id)));
    const p = js.result;
    if (colls.current !== coll) {
      colls.current = coll;
      colls.offsets = [0];
      colls.page = 0;
      $("c-detail").hidden = false;
      $("c-detail-title").textContent = "Collection " + coll;
      loadPoints();
    }
    const v = p.vector || [];
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    const card = clear($("c-point"));
    card.append(
      el("h4", { text: "Point " + JSON.stringify(p.id) + " in " + coll }),
      el("p", { class: "muted", text: "dimension " + v.length + " · norm " + fmt(norm) }),
      el("pre", { class: "point-payload", text: p.payload === null ? "null" : pretty(p.payload) }),
      el("details", {}, el("summary", { text: "Vector" }), el("pre", { class: "point-vector", text: "[" + v.map((x) => fmt(x, 5)).join(", ") + "]" })),
      el("button", { type: "button", text: "Search by this point", onclick: () => { $("s-coll").value = coll; searchById(p.id); } }));
    card.hidden = false;
    location.hash = "#collections";
    card.scrollIntoView({ block: "nearest" });
  });
}

// --- Words ----------------------------------------------------------------

function wordList(s) {
  return s.split(",").map((w) => w.trim()).filter((w) => w);
}

function renderWords(listId, result, best) {
  const ol = clear($(listId));
  const top = result.length ? Math.max(...result.map((r) => Math.abs(r.score))) : 1;
  result.forEach((r, i) => {
    const bar = el("span", { class: "bar" }, el("span"));
    bar.firstChild.style.width = (top > 0 ? (Math.abs(r.score) / top) * 100 : 0).toFixed(1) + "%";
    ol.append(el("li", { class: i === 0 && best ? "best" : null },
      el("span", { class: "word", text: r.word }), bar, el("span", { class: "score", text: fmt(r.score) })));
  });
}

function neighborsRequest() {
  return { method: "POST", path: "/v1/words/neighbors", body: { word: $("w-word").value.trim(), k: parseInt($("w-nn-k").value, 10) || 10 } };
}

function analogyRequest() {
  const positive = wordList($("w-pos").value);
  const negative = wordList($("w-neg").value);
  if (!positive.length) throw new Error("give at least one positive word");
  return {
    method: "POST", path: "/v1/words/analogy",
    body: { positive, negative, method: $("w-method").value, k: parseInt($("w-an-k").value, 10) || 10 },
  };
}

preview.neighbors = neighborsRequest;
preview.analogy = analogyRequest;

$("w-nn").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  await guarded("err-neighbors", async () => {
    const r = neighborsRequest();
    const js = await api("neighbors", r.method, r.path, r.body);
    renderWords("w-nn-results", js.result, false);
  });
});

$("w-an").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  await guarded("err-analogy", async () => {
    const r = analogyRequest();
    const js = await api("analogy", r.method, r.path, r.body);
    $("w-an-expr").textContent = r.body.positive.join(" + ") + (r.body.negative.length ? " − " + r.body.negative.join(" − ") : "") +
      " ≈ " + (js.result.length ? js.result[0].word : "?") + " (" + r.body.method + ")";
    renderWords("w-an-results", js.result, true);
  });
});

$("w-an-map").addEventListener("click", () => {
  $("m-source").value = "analogy";
  location.hash = "#map";
  drawMap();
});

// --- Map: deterministic PCA to 2-D, drawn as SVG ---------------------------

// Top-2 principal directions of the rows of X (n x d), by power iteration
// on the covariance with a fixed start and sign convention, so the same
// points always give the same picture.  Returns n x 2 coordinates.
function pca2(X) {
  const n = X.length;
  const d = n ? X[0].length : 0;
  const mean = new Array(d).fill(0);
  for (const r of X) for (let j = 0; j < d; j++) mean[j] += r[j] / n;
  const C = X.map((r) => r.map((x, j) => x - mean[j]));
  const comps = [];
  for (let c = 0; c < 2; c++) {
    let v = new Array(d).fill(0).map((_, j) => 1 / (j + 1 + c));
    for (let it = 0; it < 300; it++) {
      const s = C.map((r) => r.reduce((a, x, j) => a + x * v[j], 0));          // C v
      let w = new Array(d).fill(0);
      C.forEach((r, i) => { for (let j = 0; j < d; j++) w[j] += r[j] * s[i]; }); // C^T C v
      for (const u of comps) {                                                  // deflate
        const dot = w.reduce((a, x, j) => a + x * u[j], 0);
        w = w.map((x, j) => x - dot * u[j]);
      }
      const norm = Math.sqrt(w.reduce((a, x) => a + x * x, 0));
      if (norm < 1e-12) break;
      w = w.map((x) => x / norm);
      const delta = w.reduce((a, x, j) => a + Math.abs(x - v[j]), 0);
      v = w;
      if (delta < 1e-10) break;
    }
    let big = 0;
    for (let j = 0; j < d; j++) if (Math.abs(v[j]) > Math.abs(big)) big = v[j];
    if (big < 0) v = v.map((x) => -x);
    comps.push(v);
  }
  return C.map((r) => comps.map((u) => r.reduce((a, x, j) => a + x * u[j], 0)));
}

const PALETTE = ["#1a5fb4", "#c01c28", "#26a269", "#e66100", "#813d9c", "#986a44", "#0e7c86", "#a51d2d", "#5e5c64", "#b5835a"];

function payloadField(payload, path) {
  let v = payload;
  for (const part of path.split(".")) {
    if (v === null || typeof v !== "object") return undefined;
    v = v[part];
  }
  return v;
}

// items: [{label, vector, score, kind: "query"|"hit"|"answer", payload}]
// arrows: [[fromLabel, toLabel, "arrow"|"side"]]
function renderMap(items, arrows, colorBy, caption) {
  const svg = clear($("m-svg"));
  const W = 800, H = 560, pad = 60;
  const xy = pca2(items.map((it) => it.vector));
  const xs = xy.map((p) => p[0]), ys = xy.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (x) => pad + ((x - x0) / (x1 - x0 || 1)) * (W - 2 * pad);
  const sy = (y) => H - pad - ((y - y0) / (y1 - y0 || 1)) * (H - 2 * pad);
  svg.append(el("defs", {}, el("marker", { id: "head", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    el("path", { d: "M0,0 L10,5 L0,10 z", fill: "#c01c28" }))));
  svg.append(el("line", { class: "axis", x1: pad / 2, y1: H - pad / 2, x2: W - pad / 2, y2: H - pad / 2 }),
    el("text", { x: W - pad / 2, y: H - pad / 2 - 6, "text-anchor": "end", text: "PC1" }),
    el("line", { class: "axis", x1: pad / 2, y1: pad / 2, x2: pad / 2, y2: H - pad / 2 }),
    el("text", { x: pad / 2 + 6, y: pad / 2 + 4, text: "PC2" }));
  const at = new Map(items.map((it, i) => [it.label, [sx(xy[i][0]), sy(xy[i][1])]]));
  for (const [a, b, kind] of arrows) {
    if (!at.has(a) || !at.has(b)) continue;
    const [ax, ay] = at.get(a), [bx, by] = at.get(b);
    const len = Math.hypot(bx - ax, by - ay) || 1;
    const shrink = Math.min(9, len / 3);
    svg.append(el("line", {
      class: kind, "data-from": a, "data-to": b,
      x1: ax, y1: ay, x2: bx - ((bx - ax) / len) * shrink, y2: by - ((by - ay) / len) * shrink,
      "marker-end": kind === "arrow" ? "url(#head)" : null,
    }));
  }
  const colors = new Map();
  const legend = clear($("m-legend"));
  $("m-info").textContent = "Hover or focus a point to see its label and score.";
  // Points at the same spot (equal vectors) get one label with a count.
  const spot = (i) => Math.round(sx(xy[i][0]) / 4) + "," + Math.round(sy(xy[i][1]) / 4);
  const same = new Map();
  items.forEach((_, i) => same.set(spot(i), (same.get(spot(i)) || 0) + 1));
  const owner = new Map(); // the item labelled at each spot: the query first
  items.forEach((it, i) => {
    const o = owner.get(spot(i));
    if (o === undefined || (items[o].kind === "hit" && it.kind !== "hit")) owner.set(spot(i), i);
  });
  // hits first, so the query and the answer are drawn on top
  const order = items.map((_, i) => i).sort((i, j) => (items[i].kind === "hit" ? 0 : 1) - (items[j].kind === "hit" ? 0 : 1));
  order.forEach((i) => {
    const it = items[i];
    let fill = it.kind === "query" ? "#e66100" : it.kind === "answer" ? "#c01c28" : "#1a5fb4";
    if (colorBy && it.kind === "hit") {
      const v = payloadField(it.payload, colorBy);
      const key = v === undefined ? "(none)" : JSON.stringify(v);
      if (!colors.has(key)) {
        colors.set(key, PALETTE[colors.size % PALETTE.length]);
        legend.append(el("li", {}, el("i", { class: "sw", "data-color": colors.get(key) }), key));
      }
      fill = colors.get(key);
    }
    const [x, y] = [sx(xy[i][0]), sy(xy[i][1])];
    const tip = it.label + (it.score !== undefined ? " · score " + fmt(it.score) : it.kind === "query" ? " · the query" : "");
    const g = el("g", { class: "pt " + it.kind, tabindex: 0, "data-label": it.label, role: "img", "aria-label": tip },
      el("title", { text: tip }),
      el("circle", { cx: x, cy: y, r: it.kind === "hit" ? 6 : 8, fill }));
    const n = same.get(spot(i));
    if (owner.get(spot(i)) === i) {
      let label = it.label.length > 40 ? it.label.slice(0, 39) + "…" : it.label;
      if (n > 1) label += it.kind === "hit" ? " (×" + n + ")" : " (+" + (n - 1) + ")";
      const left = x > W * 0.62; // near the right edge: label on the left
      g.append(el("text", { x: left ? x - 12 : x + 12, y: y + 4, "text-anchor": left ? "end" : "start", text: label }));
    }
    const show = () => { $("m-info").textContent = tip; };
    g.addEventListener("mouseenter", show);
    g.addEventListener("focus", show);
    svg.append(g);
  });
  for (const sw of legend.querySelectorAll("i.sw")) sw.style.background = sw.dataset.color;
  $("m-caption").textContent = caption;
}

async function drawMap() {
  await guarded("err-map", async () => {
    const src = $("m-source").value;
    const k = Math.max(1, Math.min(200, parseInt($("m-k").value, 10) || 15));
    const model = $("g-model").value || undefined;
    const calls = [];
    if (src === "words" || src === "analogy") {
      let words, scores = new Map(), arrows = [], query, caption;
      if (src === "words") {
        query = $("m-query").value.trim();
        const r = { method: "POST", path: "/v1/words/neighbors", body: { word: query, k } };
        calls.push(r);
        const js = await api(null, r.method, r.path, r.body);
        for (const w of js.result) scores.set(w.word, w.score);
        words = [query, ...js.result.map((w) => w.word)];
        caption = "PCA of '" + query + "' and its " + js.result.length + " nearest words";
      } else {
        const r = analogyRequest();
        r.body.k = k;
        calls.push(r);
        const js = await api(null, r.method, r.path, r.body);
        if (!js.result.length) throw new Error("the analogy has no answer");
        for (const w of js.result) scores.set(w.word, w.score);
        const answer = js.result[0].word;
        const [a, b] = r.body.positive, [c] = r.body.negative;
        words = [...new Set([...r.body.positive, ...r.body.negative, ...js.result.map((w) => w.word)])];
        query = answer;
        // king - man + woman = queen: the gender arrows man->woman and
        // king->queen, the parallelogram's other sides man->king, woman->queen.
        if (a && b && c) arrows = [[c, b, "arrow"], [a, answer, "arrow"], [c, a, "side"], [b, answer, "side"]];
        caption = "PCA of the analogy " + r.body.positive.join(" + ") + " − " + r.body.negative.join(" − ") + " ≈ " + answer;
      }
      const e = { method: "POST", path: "/v1/embeddings", body: { input: words, model } };
      calls.push(e);
      const emb = await api(null, e.method, e.path, e.body);
      const analogyWords = src === "analogy" ? new Set(analogyRequest().body.positive.concat(analogyRequest().body.negative)) : new Set([query]);
      const items = emb.data.map((d, i) => ({
        label: words[i], vector: d.embedding, score: scores.get(words[i]),
        kind: words[i] === query && src === "analogy" ? "answer" : analogyWords.has(words[i]) ? "query" : "hit",
      }));
      state.last.map = calls;
      renderMap(items, arrows, "", caption);
    } else {
      const coll = $("m-coll").value;
      if (!coll) throw new Error("no collection: create one in the Collections panel");
      const q = $("m-query").value;
      const col = state.collections.find((c) => c.name === coll);
      const e = { method: "POST", path: "/v1/embeddings", body: { input: q, model: col && col.model ? col.model : model } };
      const s = { method: "POST", path: "/v1/collections/" + encodeURIComponent(coll) + "/search", body: { text: q, k, with_vector: true } };
      calls.push(e, s);
      const [emb, js] = await Promise.all([api(null, e.method, e.path, e.body), api(null, s.method, s.path, s.body)]);
      const items = [{ label: q, vector: emb.data[0].embedding, kind: "query", payload: null }];
      for (const h of js.result) {
        const label = h.payload && typeof h.payload.text === "string" ? h.payload.text : "id " + JSON.stringify(h.id);
        items.push({ label, vector: h.vector, score: h.score, kind: "hit", payload: h.payload });
      }
      state.last.map = calls;
      renderMap(items, [], $("m-color").value.trim(), "PCA of the query and its " + js.result.length + " hits in " + coll);
    }
  });
}

preview.map = null;
$("m-form").addEventListener("submit", (ev) => { ev.preventDefault(); drawMap(); });

// --- Playground -----------------------------------------------------------

function embedRequest() {
  const model = $("g-model").value || undefined;
  return [
    { method: "POST", path: "/v1/embeddings", body: { input: $("g-text").value, model } },
    { method: "POST", path: "/v1/tokenize", body: { input: $("g-text").value, model } },
  ];
}

preview.embed = embedRequest;

$("g-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const [e, t] = embedRequest();
  await guarded("err-embed", async () => {
    const js = await api("embed", e.method, e.path, e.body);
    const v = js.data[0].embedding;
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    const dl = clear($("g-stats"));
    for (const [k, val] of [["model", js.model], ["dimension", v.length], ["norm", fmt(norm, 6)], ["tokens", js.usage ? js.usage.prompt_tokens : ""]])
      dl.append(el("dt", { text: k }), el("dd", { text: val }));
    const ol = clear($("g-comps"));
    v.slice(0, 16).forEach((x, i) => ol.append(el("li", { title: "component " + i, text: i + ": " + fmt(x) })));
    if (v.length > 16) ol.append(el("li", { class: "muted", text: "… " + (v.length - 16) + " more" }));
  });
  await guarded("err-tokenize", async () => {
    const js = await api(null, t.method, t.path, t.body);
    const box = clear($("g-tokens"));
    for (const tok of js.result.tokens) {
      const kind = tok.special ? "special" : tok.unknown ? "unknown" : tok.subword ? "subword" : "known";
      box.append(el("span", { class: "tok " + kind, title: kind + ", id " + tok.id }, tok.token, el("small", { text: tok.id })));
    }
  });
});

function similarityRequest() {
  return { method: "POST", path: "/v1/similarity", body: { a: $("g-a").value, b: $("g-b").value, model: $("g-model").value || undefined } };
}

preview.similarity = similarityRequest;

$("g-cos").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  await guarded("err-similarity", async () => {
    const r = similarityRequest();
    const js = await api("similarity", r.method, r.path, r.body);
    $("g-cos-out").textContent = "cosine = " + fmt(js.result.score);
  });
});

// --- Status ---------------------------------------------------------------

// Prometheus text -> [{name, labels: {k: v}, value}].
function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const lm of m[3].matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

function kv(dl, rows) {
  clear(dl);
  for (const [k, v] of rows) dl.append(el("dt", { text: k }), el("dd", { text: v }));
}

async function refreshStatus() {
  await guarded("err-status", async () => {
    const [info, metrics] = await Promise.all([api("status", "GET", "/v1/info"), api(null, "GET", "/metrics")]);
    state.last.status = [{ method: "GET", path: "/v1/info" }, { method: "GET", path: "/metrics" }];
    state.info = info;
    kv($("st-info"), [
      ["version", info.version], ["commit", info.commit], ["default model", info.default_model],
      ["SIMD", (info.simd ? info.simd.selected + " (built: " + info.simd.compiled + ")" : "")],
      ["threads", info.threads], ["API key", info.auth ? "required" : "off"],
      ["data dir", info.data_dir === null ? "none (in memory)" : info.data_dir],
      ["uptime", fmt(info.uptime_seconds, 1) + " s"],
    ]);
    const mb = clear($("st-models").tBodies[0]);
    for (const m of info.models || [])
      mb.append(el("tr", {}, el("td", { text: m.name }), el("td", { text: m.kind }), el("td", { class: "num", text: m.dim }),
        el("td", { class: "num", text: m.max_seq_length }), el("td", { class: "num", text: m.vocab_size })));
    kv($("st-limits"), Object.entries(info.limits || {}).map(([k, v]) => [k.replace(/_/g, " "), v]));
    const ms = parseMetrics(metrics);
    const sum = (name, pred) => ms.filter((m) => m.name === name && (!pred || pred(m.labels))).reduce((a, m) => a + m.value, 0);
    const reqs = sum("embedsrv_http_requests_total");
    const errs = sum("embedsrv_http_requests_total", (l) => Number(l.status) >= 400);
    const dsum = sum("embedsrv_http_request_duration_seconds_sum");
    const dcount = sum("embedsrv_http_request_duration_seconds_count");
    kv($("st-metrics"), [
      ["requests", reqs], ["error answers (4xx/5xx)", errs],
      ["mean latency", dcount ? (1000 * dsum / dcount).toFixed(2) + " ms" : "–"],
      ["texts encoded", sum("embedsrv_encoded_texts_total")], ["tokens encoded", sum("embedsrv_encoded_tokens_total")],
      ["open connections", sum("embedsrv_http_connections")], ["timeouts", sum("embedsrv_http_timeouts_total")],
      ["collections", ms.filter((m) => m.name === "embedsrv_collection_points").length],
      ["points", sum("embedsrv_collection_points")], ["collection memory", bytes(sum("embedsrv_collection_memory_bytes"))],
    ]);
  });
}

$("st-refresh").addEventListener("click", refreshStatus);
setInterval(() => {
  if (!$("p-status").hidden && $("st-auto").checked && document.visibilityState === "visible") refreshStatus();
}, 5000);

// --- start ----------------------------------------------------------------

showPanel();
loadBasics().then(() => {
  // the first paint with data: tests and the RESULTS measurement wait for it
  document.body.dataset.ready = "1";
});
