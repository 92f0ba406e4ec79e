// Item creates per second against one edgenode, in one run from one Node
// process: through its Cosmos DB API with @azure/cosmos, and through its own
// HTTP API with node:http; then, through the SDK one request at a time,
// transactional batches of 100 creates against single creates. Usage:
//
//	node clients/cosmos-test/bench.mjs [--docs 3000] [--concurrency 16] [--durability full]
//
// EDGESYNC_BIN names a directory holding edgenode, else it is built here.
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { CosmosClient } from '@azure/cosmos';

const { values: opt } = parseArgs({ options: {
  docs: { type: 'string', default: '3000' },
  concurrency: { type: 'string', default: '16' },
  durability: { type: 'string', default: 'full' },
} });
const N = Number(opt.docs);
const C = Number(opt.concurrency);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'edgesync-cosmos-bench-'));
const KEY = randomBytes(64).toString('base64');

let bin = process.env.EDGESYNC_BIN;
if (!bin) {
  bin = path.join(TMP, 'bin');
  execFileSync('go', ['build', '-o', bin + path.sep, './cmd/edgenode'], { cwd: ROOT, stdio: 'inherit' });
}
const proc = spawn(path.join(bin, 'edgenode'), ['serve', '--listen', '127.0.0.1:0', '--data', path.join(TMP, 'edge'),
  '--durability', opt.durability, '--cosmos-listen', '127.0.0.1:0', '--cosmos-key', KEY], { stdio: ['ignore', 'pipe', 'pipe'] });
const addrs = await new Promise((resolve, reject) => {
  const found = {};
  const timer = setTimeout(() => reject(new Error('edgenode did not start')), 15_000);
  const onLine = (line) => {
    const m = /\baddr=("?)([^\s"]+)\1/.exec(line);
    if (m && line.includes('edgenode listening')) found.api = `http://${m[2]}`;
    if (m && line.includes('cosmos api listening')) found.cosmos = `http://${m[2]}`;
    if (found.api && found.cosmos) { clearTimeout(timer); resolve(found); }
  };
  readline.createInterface({ input: proc.stdout }).on('line', onLine);
  readline.createInterface({ input: proc.stderr }).on('line', onLine);
});

// serverCPU is the edgenode process's CPU time so far in milliseconds (user
// and system, from /proc; null elsewhere).
function serverCPU() {
  try {
    const f = fs.readFileSync(`/proc/${proc.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // clock ticks of 10 ms
  } catch {
    return null;
  }
}

async function run(name, create, concurrency = C) {
  let next = 0;
  const cpu0 = serverCPU();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < N) {
      const i = next++;
      await create({ id: `${name}-${i}`, region: `r${i % 8}`, price: i, name: 'item ' + i });
    }
  }));
  const s = (performance.now() - t0) / 1000;
  const cpu = cpu0 === null ? null : +((serverCPU() - cpu0) / N).toFixed(3);
  return { name, docs: N, seconds: +s.toFixed(2), createsPerSec: Math.round(N / s), serverCpuMsPerCreate: cpu };
}

const client = new CosmosClient({ endpoint: addrs.cosmos, key: KEY });
const { database } = await client.databases.createIfNotExists({ id: 'bench' });
const { container } = await database.containers.createIfNotExists({ id: 'items', partitionKey: { paths: ['/region'] } });
await fetch(`${addrs.api}/api/v1/containers/native`, { method: 'PUT', headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ partitionKey: '/region' }) });
// The edge's own API through node:http with a keep-alive agent, as the SDK
// sends its requests, so that both paths differ by the server's work and
// the SDK's own (signing, headers, response handling) only.
const agent = new http.Agent({ keepAlive: true, maxSockets: C });
const apiURL = new URL(`${addrs.api}/api/v1/containers/native/docs`);
const native = (doc) => new Promise((resolve, reject) => {
  const body = JSON.stringify(doc);
  const req = http.request(apiURL, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
    res.resume();
    res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`create: ${res.statusCode}`))));
  });
  req.on('error', reject);
  req.end(body);
});
const sdk = async (doc) => { await container.items.create(doc); };

// Warm both paths, then alternate, so that neither runs on a colder node.
await run('warm-sdk', sdk);
await run('warm-api', native);
const results = [];
for (let round = 0; round < 2; round++) {
  results.push(await run(`cosmos-sdk-${round}`, sdk));
  results.push(await run(`edgesync-api-${round}`, native));
}
// One request at a time: batches of 100 creates of one partition key value
// (items.batch, one local transaction each) against single creates.
const BATCH = 100;
const batched = async (name) => {
  const cpu0 = serverCPU();
  const t0 = performance.now();
  for (let b = 0; b * BATCH < N; b++) {
    const ops = Array.from({ length: Math.min(BATCH, N - b * BATCH) }, (_, j) => ({ operationType: 'Create',
      resourceBody: { id: `${name}-${b * BATCH + j}`, region: 'batch', price: j, name: 'item ' + j } }));
    const res = await container.items.batch(ops, 'batch');
    if (res.code !== 200) throw new Error(`batch: ${res.code}`);
  }
  const s = (performance.now() - t0) / 1000;
  const cpu = cpu0 === null ? null : +((serverCPU() - cpu0) / N).toFixed(3);
  return { name, docs: N, seconds: +s.toFixed(2), createsPerSec: Math.round(N / s), serverCpuMsPerCreate: cpu };
};
await batched('warm-batch');
for (let round = 0; round < 2; round++) {
  results.push(await batched(`sdk-batch-of-${BATCH}-${round}`));
  results.push(await run(`sdk-single-one-at-a-time-${round}`, sdk, 1));
}
console.log(JSON.stringify({ docs: N, concurrency: C, durability: opt.durability, node: process.version, results }, null, 1));
proc.kill('SIGTERM');
await new Promise((r) => proc.once('exit', r));
fs.rmSync(TMP, { recursive: true, force: true });
