#!/usr/bin/env node
// Runs ONNX models exported by "spladapt export onnx" in ONNX Runtime
// (onnxruntime-node, CPU) for export/onnx's parity test.
//
//   node run.js JOBS.json
//
// JOBS.json is a list of {"model": "DIR/model.onnx", "batch": B, "seq": T,
// "inputs": {"input_ids": [...], "attention_mask": [...], ...}} with every
// input flattened row-major (B·T int64 values). For each job one JSON line
// is printed: {"dims": [B, V], "splade": [...]} (the output "splade").
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));

async function main() {
  const jobs = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  for (const job of jobs) {
    const session = await ort.InferenceSession.create(job.model, {
      intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all',
    });
    const feeds = {};
    for (const [name, vals] of Object.entries(job.inputs)) {
      feeds[name] = new ort.Tensor('int64', BigInt64Array.from(vals, BigInt), [job.batch, job.seq]);
    }
    const out = (await session.run(feeds)).splade;
    process.stdout.write(JSON.stringify({ dims: out.dims, splade: Array.from(out.data) }) + '\n');
  }
}

main().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
