// compat.mjs — the real npm clients against a real embedsrv (issue 20):
// @qdrant/js-client-rest 1.18.0, LangChain JS (@langchain/qdrant,
// @langchain/openai, @langchain/core) and the openai package, unchanged,
// pointed at EMBEDSRV_URL with the key EMBEDSRV_KEY.  run_compat.py starts
// the server (tests/integration/es_server.py) and runs this; versions are
// pinned in package.json / package-lock.json.
//
// The request shapes relied on, read from the clients' own source in
// node_modules (not from memory):
//  - QdrantClient (dist/esm/qdrant-client.js): the constructor sends the
//    key as the `api-key` header and, with checkCompatibility, GET / and
//    compares `version` (major equal, minor within 1) else console.warn;
//    every call unwraps `response.data.result` (so the envelope is needed);
//    upsert/delete/setPayload send wait/ordering/timeout in the query string
//    (openapi-typescript-fetch: declared query params) and the rest as the
//    JSON body; retrieve is POST /collections/{c}/points {ids, with_payload,
//    with_vector}; scroll is POST .../points/scroll {limit, offset, filter,
//    with_payload: true, with_vector: false, order_by}; count is POST
//    .../points/count {filter, exact: true}.  Errors throw ApiError with
//    .status and .data (our {"status": {"error"}}).
//  - QdrantVectorStore (@langchain/qdrant dist/vectorstores.js):
//    ensureCollection = GET /collections, then PUT /collections/{c}
//    {vectors: {size: len(embedQuery("test")), distance: "Cosine"}};
//    addVectors upserts {wait: true, points: [{id: uuid v4, vector, payload:
//    {content, metadata, customPayload: undefined}}]}; similaritySearch =
//    POST .../points/query {query: vector, limit: k, filter, with_payload:
//    ["metadata", "content"], with_vector: false} and reads .points[].payload;
//    maxMarginalRelevanceSearch = the same with query: {nearest: vector,
//    mmr: {diversity: lambda ?? null, candidates_limit: fetchK ?? 20}} and
//    with_vector: true; delete({ids}) = POST .../points/delete {wait: true,
//    ordering: "weak", points: ids, shard_key: undefined}; delete({filter})
//    the same with filter.
//  - OpenAIEmbeddings (@langchain/openai dist/embeddings.js): POST
//    /v1/embeddings {model, input: string | string[], dimensions?} through
//    the openai package, which (resources/embeddings.js) asks for
//    encoding_format "base64" when none is given and decodes it to floats.
import assert from 'node:assert/strict';
import { QdrantClient } from '@qdrant/js-client-rest';
import { QdrantVectorStore } from '@langchain/qdrant';
import { OpenAIEmbeddings } from '@langchain/openai';
import { Document } from '@langchain/core/documents';
import OpenAI from 'openai';

const URL = process.env.EMBEDSRV_URL;
const KEY = process.env.EMBEDSRV_KEY;
const DIM = Number(process.env.EMBEDSRV_DIM);
assert.ok(URL && KEY && DIM, 'EMBEDSRV_URL, EMBEDSRV_KEY and EMBEDSRV_DIM must be set');

let passed = 0;
const failures = [];
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failures.push(name);
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
    if (e && e.data) console.log('     server said: ' + JSON.stringify(e.data));
  }
}

const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const close = (a, b, tol = 1e-5) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) <= tol);

// Every console.warn of the clients (version check, unsecure key) is kept.
const warnings = [];
const origWarn = console.warn;
console.warn = (...args) => { warnings.push(args.join(' ')); };

const DOCS = [
  ['the government said the police were investigating', { source: 'news', year: 2001 }],
  ['fire crews fought bushfires near Sydney', { source: 'news', year: 2002 }],
  ['the Prime Minister spoke to the Australian people', { source: 'speech', year: 2001 }],
  ['Israeli troops and Palestinian gunmen clashed', { source: 'news', year: 2001 }],
  ['the company said its profit fell this year', { source: 'report', year: 2003 }],
  ['Afghanistan and the Taliban were in the news', { source: 'news', year: 2001 }],
];

// ---- OpenAI: the openai package and LangChain's OpenAIEmbeddings ---------
const openai = new OpenAI({ baseURL: `${URL}/v1`, apiKey: KEY, maxRetries: 0 });
const embeddings = new OpenAIEmbeddings({
  model: 'text-embedding-3-small', // resolves through --model-alias
  apiKey: KEY,
  configuration: { baseURL: `${URL}/v1` },
  maxRetries: 0,
});

await check('openai: embeddings.create, base64 by default, equals float', async () => {
  const b64 = await openai.embeddings.create({ model: 'text-embedding-3-small', input: ['the police', 'fire'] });
  const flt = await openai.embeddings.create({ model: 'text-embedding-3-small', input: ['the police', 'fire'], encoding_format: 'float' });
  assert.equal(b64.data.length, 2);
  assert.equal(b64.data[0].embedding.length, DIM);
  assert.ok(close(b64.data[1].embedding, flt.data[1].embedding), 'base64 decodes to the float answer');
  assert.ok(Math.abs(norm(b64.data[0].embedding) - 1) < 1e-4);
});

await check('openai: dimensions truncates and re-normalises', async () => {
  const full = await openai.embeddings.create({ model: 'text-embedding-ada-002', input: 'the government said', encoding_format: 'float' });
  const four = await openai.embeddings.create({ model: 'text-embedding-ada-002', input: 'the government said', dimensions: 4 });
  const v = full.data[0].embedding.slice(0, 4), n = norm(v);
  assert.ok(close(four.data[0].embedding, v.map((x) => x / n), 1e-5));
});

await check('openai: token ids are a 422 that says to send text', async () => {
  await assert.rejects(openai.embeddings.create({ model: 'text-embedding-3-small', input: [[1, 2, 3]] }),
    (e) => e.status === 422 && /send the text/.test(e.message));
});

let qv;
await check('OpenAIEmbeddings: embedQuery / embedDocuments', async () => {
  qv = await embeddings.embedQuery('the police said');
  const docs = await embeddings.embedDocuments(['the police said', 'fire crews']);
  assert.equal(qv.length, DIM);
  assert.equal(docs.length, 2);
  assert.ok(close(qv, docs[0]), 'the same text embeds the same as query and document');
});

// ---- the Qdrant client --------------------------------------------------
const client = new QdrantClient({ url: URL, apiKey: KEY, checkCompatibility: true });

await check('qdrant: versionInfo is a version the client accepts', async () => {
  const info = await client.versionInfo();
  assert.equal(info.version, '1.18.0');
  await new Promise((r) => setTimeout(r, 50)); // the constructor's own check
  assert.ok(!warnings.some((w) => /incompatible|Failed to obtain/.test(w)), warnings.join('\n'));
});

await check('qdrant: wrong api-key is refused', async () => {
  const bad = new QdrantClient({ url: URL, apiKey: 'wrong', checkCompatibility: false });
  await assert.rejects(bad.getCollections(), (e) => e.status === 401);
});

const RAW = 'compat_raw';
const uuids = [];
await check('qdrant: collection create / exists / get / 409', async () => {
  if ((await client.collectionExists(RAW)).exists) await client.deleteCollection(RAW);
  assert.equal(await client.createCollection(RAW, { vectors: { size: DIM, distance: 'Cosine' } }), true);
  assert.equal((await client.collectionExists(RAW)).exists, true);
  await assert.rejects(client.createCollection(RAW, { vectors: { size: DIM, distance: 'Cosine' } }),
    (e) => e.status === 409 && /already exists/.test(e.data.status.error));
  const info = await client.getCollection(RAW);
  assert.equal(info.config.params.vectors.size, DIM);
  assert.equal(info.config.params.vectors.distance, 'Cosine');
  assert.equal(info.status, 'green');
  await assert.rejects(client.getCollection('compat_nope'), (e) => e.status === 404);
  assert.ok((await client.getCollections()).collections.some((c) => c.name === RAW));
});

await check('qdrant: upsert 25 points (UUID and integer ids), count, scroll every page', async () => {
  const points = [];
  for (let i = 0; i < 25; i++) {
    const v = Array.from({ length: DIM }, (_, k) => Math.sin(i * 7 + k) + 0.01);
    const id = i % 2 ? i : crypto.randomUUID();
    if (typeof id === 'string') uuids.push(id);
    points.push({ id, vector: v, payload: { i, parity: i % 2 ? 'odd' : 'even' } });
  }
  const r = await client.upsert(RAW, { wait: true, points });
  assert.equal(r.status, 'completed');
  assert.equal((await client.count(RAW, { exact: true })).count, 25);
  const odd = { must: [{ key: 'parity', match: { value: 'odd' } }] };
  assert.equal((await client.count(RAW, { filter: odd, exact: true })).count, 12);
  const mid = { must: [{ key: 'i', range: { gte: 5, lt: 10 } }], must_not: [{ has_id: [7] }] };
  assert.equal((await client.count(RAW, { filter: mid })).count, 4);
  const seen = new Set();
  let offset, pages = 0;
  do {
    const page = await client.scroll(RAW, { limit: 7, offset, with_payload: true });
    for (const p of page.points) {
      assert.ok(!seen.has(String(p.id)), `point ${p.id} twice`);
      seen.add(String(p.id));
      assert.equal(typeof p.payload.i, 'number');
    }
    offset = page.next_page_offset;
    pages++;
  } while (offset !== null && offset !== undefined && pages < 10);
  assert.equal(seen.size, 25);
  assert.equal(pages, 4);
});

await check('qdrant: payload set / overwrite / delete keys / clear, by ids and by filter', async () => {
  // the client sends POST|PUT .../points/payload {payload, points|filter, key?},
  // POST .../payload/delete {keys, points|filter}, POST .../payload/clear
  // {points|filter}, each with ?wait=true, and expects {operation_id, status}
  const id = uuids[0];
  const get = async () => (await client.retrieve(RAW, { ids: [id], with_payload: true }))[0].payload;
  const before = await get();
  let r = await client.setPayload(RAW, { payload: { tag: 'x', nested: { a: 1 } }, points: [id] });
  assert.equal(r.status, 'completed');
  assert.deepEqual(await get(), { ...before, tag: 'x', nested: { a: 1 } });
  await client.setPayload(RAW, { payload: { b: 2 }, points: [id], key: 'nested' });
  assert.deepEqual((await get()).nested, { a: 1, b: 2 });
  await client.overwritePayload(RAW, { payload: { only: 1, drop: true }, points: [id] });
  assert.deepEqual(await get(), { only: 1, drop: true });
  // the client's SetPayload type carries key for overwrite too; Qdrant
  // replaces the whole payload regardless (no payload selector)
  await client.overwritePayload(RAW, { payload: { only: 1, drop: true, under: 0 }, points: [id], key: 'nested' });
  assert.deepEqual(await get(), { only: 1, drop: true, under: 0 });
  await client.deletePayload(RAW, { keys: ['under'], points: [id] });
  await client.deletePayload(RAW, { keys: ['drop'], points: [id] });
  assert.deepEqual(await get(), { only: 1 });
  await client.clearPayload(RAW, { points: [id] });
  assert.ok([null, undefined].includes(await get()) || Object.keys(await get()).length === 0);
  await client.overwritePayload(RAW, { payload: before, points: [id] });
  const odd = { must: [{ key: 'parity', match: { value: 'odd' } }] };
  await client.setPayload(RAW, { payload: { flag: 'o' }, filter: odd });
  const flagged = { must: [{ key: 'flag', match: { value: 'o' } }] };
  assert.equal((await client.count(RAW, { filter: flagged })).count, 12);
  await client.deletePayload(RAW, { keys: ['flag'], filter: flagged });
  assert.equal((await client.count(RAW, { filter: flagged })).count, 0);
  await assert.rejects(client.setPayload(RAW, { payload: 'nope', points: [id] }), (e) => e.status === 400);
  // as Qdrant: a missing id is a 404 "No point with id X found", nothing changed
  await assert.rejects(client.setPayload(RAW, { payload: { gone: 1 }, points: [id, 987654] }),
    (e) => e.status === 404 && /No point with id 987654 found/.test(e.data.status.error));
  assert.equal((await get()).gone, undefined);
});

await check('qdrant: retrieve by UUID in both spellings', async () => {
  const dashed = uuids[0], plain = dashed.replace(/-/g, '').toUpperCase();
  const a = await client.retrieve(RAW, { ids: [dashed], with_vector: true });
  const b = await client.retrieve(RAW, { ids: [plain] });
  assert.equal(a.length, 1);
  assert.equal(b.length, 1);
  assert.equal(a[0].id, dashed);
  assert.equal(b[0].id, dashed, 'answers spell UUIDs lowercase and dashed');
  assert.deepEqual(a[0].payload, b[0].payload);
  assert.equal(a[0].vector.length, DIM);
});

await check('qdrant: payload indexes (keyword, integer) used by filters; scroll order_by', async () => {
  // createPayloadIndex (qdrant-client.js) is PUT .../index?wait= {field_name,
  // field_schema}; deletePayloadIndex is DELETE .../index/{field}; scroll
  // passes order_by (a key or {key, direction, start_from}) in the body
  const odd = { must: [{ key: 'parity', match: { value: 'odd' } }] };
  const probe = (await client.retrieve(RAW, { ids: [3], with_vector: true }))[0].vector;
  const before = await client.query(RAW, { query: probe, limit: 5, filter: odd });
  await assert.rejects(client.scroll(RAW, { limit: 3, order_by: 'i' }),
    (e) => e.status === 400 && /index/.test(e.data.status.error), 'order_by needs a range index');
  let r = await client.createPayloadIndex(RAW, { wait: true, field_name: 'parity', field_schema: 'keyword' });
  assert.equal(r.status, 'completed');
  r = await client.createPayloadIndex(RAW, { wait: true, field_name: 'i', field_schema: 'integer' });
  assert.equal(r.status, 'completed');
  const info = await client.getCollection(RAW);
  assert.deepEqual(info.payload_schema.parity, { data_type: 'keyword', points: 25 });
  assert.deepEqual(info.payload_schema.i, { data_type: 'integer', points: 25 });
  const after = await client.query(RAW, { query: probe, limit: 5, filter: odd });
  assert.deepEqual(after.points.map((p) => p.id), before.points.map((p) => p.id));
  assert.equal((await client.count(RAW, { filter: odd })).count, 12);
  const desc = await client.scroll(RAW, { limit: 4, order_by: { key: 'i', direction: 'desc' } });
  assert.deepEqual(desc.points.map((p) => p.payload.i), [24, 23, 22, 21]);
  assert.ok(desc.next_page_offset === null || desc.next_page_offset === undefined);
  const from = await client.scroll(RAW, { limit: 3, filter: odd, order_by: { key: 'i', start_from: 10 } });
  assert.deepEqual(from.points.map((p) => p.payload.i), [11, 13, 15]);
  r = await client.deletePayloadIndex(RAW, 'i', { wait: true });
  assert.equal(r.status, 'completed');
  assert.equal((await client.getCollection(RAW)).payload_schema.i, undefined);
});

await check('qdrant: query by vector, by id, legacy search, batch', async () => {
  const [p] = await client.retrieve(RAW, { ids: [3], with_vector: true });
  const res = await client.query(RAW, { query: p.vector, limit: 3, with_payload: true });
  assert.equal(res.points[0].id, 3);
  assert.ok(res.points[0].score > 0.999);
  assert.equal(res.points[0].payload.i, 3);
  const byId = await client.query(RAW, { query: 3, limit: 3 });
  assert.ok(byId.points.every((h) => h.id !== 3));
  const legacy = await client.search(RAW, { vector: p.vector, limit: 2 });
  assert.equal(legacy[0].id, 3);
  const batch = await client.queryBatch(RAW, { searches: [{ query: p.vector, limit: 1 }, { query: 3, limit: 2 }] });
  assert.equal(batch.length, 2);
  assert.equal(batch[0].points[0].id, 3);
});

await check('qdrant: get one point, legacy search batch, every filter condition', async () => {
  // GET .../points/{id} through the client's generated API (no wrapper method)
  const one = (await client.api().getPoint({ collection_name: RAW, id: 3 })).data.result;
  assert.equal(one.id, 3);
  assert.equal(one.payload.i, 3);
  const byUuid = (await client.api().getPoint({ collection_name: RAW, id: uuids[2] })).data.result;
  assert.equal(byUuid.id, uuids[2]);
  await assert.rejects(client.api().getPoint({ collection_name: RAW, id: 987654 }), (e) => e.status === 404);
  // POST .../points/search/batch (searchBatch): one list of hits per search
  const [p] = await client.retrieve(RAW, { ids: [3], with_vector: true });
  const odd = { must: [{ key: 'parity', match: { value: 'odd' } }] };
  const sb = await client.searchBatch(RAW, { searches: [
    { vector: p.vector, limit: 1 }, { vector: p.vector, limit: 4, filter: odd, with_payload: true }] });
  assert.equal(sb.length, 2);
  assert.equal(sb[0][0].id, 3);
  assert.equal(sb[1].length, 4);
  assert.ok(sb[1].every((h) => h.payload.parity === 'odd'));
  // the conditions and clauses of issue 20's list, on i = 0..24 (odd ids are i)
  const n = async (filter) => (await client.count(RAW, { filter, exact: true })).count;
  assert.equal(await n({ should: [{ key: 'i', range: { lt: 3 } }, { key: 'i', range: { gte: 22 } }] }), 6);
  assert.equal(await n({ min_should: { conditions: [odd.must[0], { key: 'i', range: { lt: 5 } },
    { has_id: [3, 5] }], min_count: 2 } }), 3); // 1, 3 (odd, < 5; 3 also listed), 5 (odd, listed)
  assert.equal(await n({ must: { key: 'parity', match: { except: ['odd'] } } }), 13);
  assert.equal(await n({ must: { key: 'i', match: { any: [1, 2, 3] } } }), 3);
  assert.equal(await n({ must: { key: 'parity', match: { text: 'dd' } } }), 12);
  assert.equal(await n({ must: [{ is_empty: { key: 'nothing' } }] }), 25);
  assert.equal(await n({ must: [{ is_null: { key: 'i' } }] }), 0);
  assert.equal(await n({ must: [{ should: [{ key: 'i', match: { value: 4 } }, { key: 'i', match: { value: 6 } }] }] }), 2);
  await client.setPayload(RAW, { payload: { items: [{ k: 'a', v: 1 }, { k: 'b', v: 2 }], meta: { src: 'web' } }, points: [3] });
  const nested = (v) => ({ must: [{ nested: { key: 'items', filter: { must: [
    { key: 'k', match: { value: 'a' } }, { key: 'v', match: { value: v } }] } } }] });
  assert.equal(await n(nested(1)), 1);
  assert.equal(await n(nested(2)), 0); // a and 2 are in different elements
  assert.equal(await n({ must: { key: 'meta.src', match: { value: 'web' } } }), 1);
  assert.equal(await n({ must: { key: 'items[].k', match: { value: 'b' } } }), 1);
  await client.deletePayload(RAW, { keys: ['items', 'meta'], points: [3] });
  assert.equal(await n({ must: { key: 'meta.src', match: { value: 'web' } } }), 0);
});

await check('qdrant: our extension, a {"text"} query the server embeds', async () => {
  await client.upsert(RAW, { wait: true, points: [{ id: 1000, vector: { text: 'the police said' }, payload: { i: 1000 } }] });
  const res = await client.query(RAW, { query: { text: 'the police said' }, limit: 1 });
  assert.equal(res.points[0].id, 1000);
});

await check('qdrant: delete points, delete collection', async () => {
  await client.delete(RAW, { wait: true, points: [uuids[1], 1] });
  assert.equal((await client.count(RAW)).count, 24);
  // by filter: POST .../points/delete {"filter": ...}
  await client.delete(RAW, { wait: true, filter: { must: [{ key: 'i', range: { gte: 20 } }] } });
  assert.equal((await client.count(RAW)).count, 18); // 20..24 and the text point 1000
  assert.equal((await client.count(RAW, { filter: { must: { key: 'i', range: { gte: 20 } } } })).count, 0);
  assert.equal(await client.deleteCollection(RAW), true);
  assert.equal((await client.collectionExists(RAW)).exists, false);
});

// ---- LangChain's Qdrant vector store --------------------------------------
const LC = 'compat_langchain';
let store;
await check('langchain: fromDocuments creates the collection and adds documents with metadata', async () => {
  if ((await client.collectionExists(LC)).exists) await client.deleteCollection(LC);
  const docs = DOCS.map(([pageContent, metadata]) => new Document({ pageContent, metadata }));
  store = await QdrantVectorStore.fromDocuments(docs, embeddings, { client, collectionName: LC });
  const info = await client.getCollection(LC);
  assert.equal(info.points_count, DOCS.length);
  assert.equal(info.config.params.vectors.size, DIM);
});

await check('langchain: similaritySearch without and with a metadata filter', async () => {
  const hits = await store.similaritySearch(DOCS[1][0], 2);
  assert.equal(hits.length, 2);
  assert.equal(hits[0].pageContent, DOCS[1][0]);
  assert.deepEqual(hits[0].metadata, DOCS[1][1]);
  const filter = { must: [{ key: 'metadata.source', match: { value: 'speech' } }] };
  const only = await store.similaritySearch(DOCS[1][0], 3, filter);
  assert.equal(only.length, 1);
  assert.equal(only[0].metadata.source, 'speech');
  const scored = await store.similaritySearchWithScore(DOCS[3][0], 1);
  assert.equal(scored[0][0].pageContent, DOCS[3][0]);
  assert.ok(scored[0][1] > 0.999);
});

await check('langchain: maxMarginalRelevanceSearch (Qdrant query {nearest, mmr})', async () => {
  // the client sends {query: {nearest, mmr: {diversity: lambda ?? null,
  // candidates_limit: fetchK}}, limit: k, with_payload: [keys], with_vector: true}
  const plain = await store.similaritySearch(DOCS[1][0], 3);
  const mmr = await store.maxMarginalRelevanceSearch(DOCS[1][0], { k: 3, fetchK: DOCS.length, lambda: 0.5 });
  assert.equal(mmr.length, 3);
  assert.equal(mmr[0].pageContent, DOCS[1][0]); // the best match stays first
  assert.equal(new Set(mmr.map((d) => d.pageContent)).size, 3);
  for (const d of mmr) assert.ok(DOCS.some(([t, m]) => t === d.pageContent && JSON.stringify(m) === JSON.stringify(d.metadata)));
  const none = await store.maxMarginalRelevanceSearch(DOCS[1][0], { k: 3, fetchK: DOCS.length, lambda: 0 });
  assert.deepEqual(none.map((d) => d.pageContent), plain.map((d) => d.pageContent)); // diversity 0 = plain order
});

await check('langchain: delete by ids', async () => {
  const [p] = (await client.scroll(LC, { limit: 1 })).points;
  await store.delete({ ids: [p.id] });
  assert.equal((await client.count(LC)).count, DOCS.length - 1);
  await client.deleteCollection(LC);
});

console.warn = origWarn;
console.log(`compat: ${passed} passed, ${failures.length} failed${failures.length ? ': ' + failures.join('; ') : ''}`);
process.exit(failures.length ? 1 : 0);
