#!/usr/bin/python3
"""bench/ingest/client.py — REST ingestion rate of embedsrv against hnswlib.

  client.py URL TEXTS N BATCH CLIENTS MODE

MODE "ingest": creates collection `ingest` (cosine, M 16, ef_construction
200), then CLIENTS processes PUT the first N lines of TEXTS as text points
(ids 0..N-1) in batches of BATCH, batch b going to client b % CLIENTS, each
on one keep-alive connection.  Prints points/s from the first request to the
last answer (the server encodes, logs, fsyncs and indexes: everything a
client waits for).

MODE "hnswlib": fetches the same N texts' vectors from POST /v1/embeddings
(the vectors the collection indexed; texts whose words the model does not
know have none and are left out, as the collection leaves them out of its
graph), then times hnswlib's add_items on CLIENTS threads with the same
parameters (cosine, M 16, ef_construction 200).  Prints points/s.
"""
import http.client
import json
import multiprocessing
import sys
import time
import urllib.parse


def conn_for(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=600)


def call(c, method, path, body):
    c.request(method, path, body=json.dumps(body).encode(),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    if r.status not in (200, 201):
        raise SystemExit(f"{method} {path}: {r.status} {data[:300]!r}")
    return json.loads(data)


def read_texts(path, n):
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(line[:1000])
                if len(out) == n:
                    break
    if len(out) < n:
        raise SystemExit(f"{path}: only {len(out)} lines")
    return out


def worker(args):
    url, batches, start = args
    c = conn_for(url)
    while time.time() < start:
        time.sleep(0.001)
    for b in batches:
        call(c, "PUT", "/v1/collections/ingest/points", {"points": b})
    return time.time()


def ingest(url, texts, batch, clients):
    c = conn_for(url)
    call(c, "PUT", "/v1/collections/ingest",
         {"metric": "cosine", "m": 16, "ef_construction": 200})
    batches = [[{"id": i, "text": texts[i]} for i in range(s, min(s + batch, len(texts)))]
               for s in range(0, len(texts), batch)]
    start = time.time() + 1.0
    jobs = [(url, batches[k::clients], start) for k in range(clients)]
    with multiprocessing.Pool(clients) as p:
        ends = p.map(worker, jobs)
    secs = max(ends) - start
    c = conn_for(url)  # the first one idled past the server's timeout
    c.request("GET", "/v1/collections/ingest")
    info = json.loads(c.getresponse().read())["result"]
    print(f"embedsrv REST ingest: {len(texts)} points in {secs:.2f} s = "
          f"{len(texts) / secs:.0f} points/s ({clients} clients, batches of {batch}; "
          f"count {info['count']})")


def hnsw(url, texts, clients):
    import numpy as np
    import hnswlib
    c = conn_for(url)
    vecs, keep = [], []
    for s in range(0, len(texts), 1000):
        part = texts[s:s + 1000]
        try:
            r = call(c, "POST", "/v1/embeddings", {"input": part})
            vecs.extend(d["embedding"] for d in r["data"])
            keep.extend(range(s, s + len(part)))
        except SystemExit:
            # a text the model cannot encode fails the request: one by one
            for i, t in enumerate(part):
                c = conn_for(url)
                c.request("POST", "/v1/embeddings", body=json.dumps({"input": [t]}).encode(),
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                d = r.read()
                if r.status == 200:
                    vecs.append(json.loads(d)["data"][0]["embedding"])
                    keep.append(s + i)
    x = np.asarray(vecs, dtype=np.float32)
    ok = np.linalg.norm(x, axis=1) > 0
    x, ids = x[ok], np.asarray(keep)[ok]
    idx = hnswlib.Index(space="cosine", dim=x.shape[1])
    idx.init_index(max_elements=len(x), M=16, ef_construction=200, random_seed=1)
    t0 = time.time()
    idx.add_items(x, ids, num_threads=clients)
    secs = time.time() - t0
    print(f"hnswlib add_items: {len(x)} vectors (d={x.shape[1]}) in {secs:.2f} s = "
          f"{len(x) / secs:.0f} points/s ({clients} threads)")


def main():
    url, path, n, batch, clients, mode = sys.argv[1:7]
    texts = read_texts(path, int(n))
    if mode == "ingest":
        ingest(url, texts, int(batch), int(clients))
    else:
        hnsw(url, texts, int(clients))


if __name__ == "__main__":
    main()
