#!/usr/bin/env node
// ort_peer.js MODEL.onnx OUT_DIR THREADS REPEATS -- the ONNX Runtime CPU peer
// for bench/encoder: the model export_onnx.py traced from torch_peer.py's
// forward, run by onnxruntime-node (CPU execution provider) with
// intraOpNumThreads = THREADS, interOpNumThreads = 1, sequential execution
// and every graph optimisation on.  Inputs are the token ids of
// torch_peer.py's make_ids() (same formula as bench_encoder.c; the peer does
// not tokenize, which favours it); a "mixed" batch is padded to its longest
// text as transformers pads it.  Prints one JSON line per configuration, and
// checks its 32 x 32-token embeddings against OUT_DIR/c_emb.f32 when that
// file exists.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

const NWORDS = 15258;

function makeIds(n, L) {
  const lens = [];
  for (let k = 0; k < n; k++) lens.push(L === 'mixed' ? 8 + Math.floor((120 * k) / 31) : L);
  const Lmax = Math.max(...lens);
  const ids = new BigInt64Array(n * Lmax);
  const mask = new BigInt64Array(n * Lmax);
  for (let k = 0; k < n; k++) {
    const lk = lens[k];
    ids[k * Lmax] = 2n;
    for (let j = 0; j < lk - 2; j++)
      ids[k * Lmax + 1 + j] = BigInt(5 + ((k * 7919 + j * 104729) % NWORDS));
    ids[k * Lmax + lk - 1] = 3n;
    for (let j = 0; j < lk; j++) mask[k * Lmax + j] = 1n;
  }
  return {
    input_ids: new ort.Tensor('int64', ids, [n, Lmax]),
    attention_mask: new ort.Tensor('int64', mask, [n, Lmax]),
  };
}

function median(xs) {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function cpuSeconds() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function main() {
  const [model, outdir, threadsArg, repsArg] = process.argv.slice(2);
  if (!repsArg) {
    process.stderr.write('usage: ort_peer.js MODEL.onnx OUT_DIR THREADS REPEATS\n');
    process.exit(2);
  }
  const threads = Number(threadsArg), reps = Number(repsArg);
  const sess = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  for (const n of [1, 32]) {
    for (const L of [8, 32, 128, 'mixed']) {
      if (n === 1 && L === 'mixed') continue;
      const feeds = makeIds(n, L);
      const r = n === 1 ? reps * 10 : reps;
      const times = [], cpus = [];
      let emb;
      for (let it = 0; it <= r; it++) { // it 0: warm-up
        const t0 = process.hrtime.bigint(), c0 = cpuSeconds();
        const out = await sess.run(feeds);
        const dt = Number(process.hrtime.bigint() - t0) / 1e9, dc = cpuSeconds() - c0;
        emb = out.embeddings;
        if (it) { times.push(dt); cpus.push(dc); }
      }
      const med = median(times);
      const rec = {
        impl: 'onnxruntime', threads, batch: n, tokens: L,
        median_s: +med.toFixed(6), median_cpu_s: +median(cpus).toFixed(6),
        texts_per_s: +(n / med).toFixed(2),
      };
      if (n === 32 && L === 32) {
        const cpath = path.join(outdir, 'c_emb.f32');
        if (fs.existsSync(cpath)) {
          const buf = fs.readFileSync(cpath);
          const c = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
          if (c.length !== emb.data.length) throw new Error('c_emb.f32 has ' + c.length + ' floats');
          let d = 0;
          for (let i = 0; i < c.length; i++) d = Math.max(d, Math.abs(c[i] - emb.data[i]));
          rec.max_abs_diff_vs_embedsrv = d;
        }
      }
      process.stdout.write(JSON.stringify(rec) + '\n');
    }
  }
}

main().catch((e) => { process.stderr.write('ort_peer: ' + (e && e.message ? e.message : e) + '\n'); process.exit(1); });
