// Tests of edgesync.js against real processes: a cloudhub and an edgenode
// syncing with it on loopback. Run with `node --test clients/js/`;
// EDGESYNC_BIN names a directory holding both binaries, else they are
// built here with `go build`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

import { Client, EdgesyncError } from './edgesync.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'edgesync-js-'));
const TOKEN = 'js-' + randomBytes(8).toString('hex');
const children = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function binaries() {
  if (process.env.EDGESYNC_BIN) return process.env.EDGESYNC_BIN;
  const dir = path.join(TMP, 'bin');
  execFileSync('go', ['build', '-o', dir + path.sep, './cmd/cloudhub', './cmd/edgenode'], { cwd: ROOT, stdio: 'inherit' });
  return dir;
}

// start runs a binary and resolves with its base URL once it logged
// `marker ... addr=H:P`.
function start(bin, argv, marker) {
  const proc = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  const lines = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${bin}: no "${marker}" within 15s\n${lines.join('\n')}`)), 15_000);
    const onLine = (line) => {
      lines.push(line);
      const m = line.includes(marker) && /\baddr=("?)([^\s"]+)\1/.exec(line);
      if (m) { clearTimeout(timer); resolve(`http://${m[2]}`); }
    };
    readline.createInterface({ input: proc.stdout }).on('line', onLine);
    readline.createInterface({ input: proc.stderr }).on('line', onLine);
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${bin} exited (${code})\n${lines.join('\n')}`)); });
  });
}

async function poll(what, f, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout / 1000}s (${last?.message ?? 'not yet'})`);
    await sleep(50);
  }
}

// proxy forwards requests to target on a loopback port of its own; fail(req,
// res) may answer a request itself (returns true) instead.
async function proxy(target, fail = () => false) {
  const srv = http.createServer((req, res) => {
    if (fail(req, res)) return;
    const up = http.request(target + req.url, { method: req.method, headers: { ...req.headers, host: new URL(target).host } }, (u) => {
      res.writeHead(u.statusCode, u.headers);
      u.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { srv, url: `http://127.0.0.1:${srv.address().port}` };
}

let hub; // Client of the hub (admin token)
let edge; // Client of the edge

before(async () => {
  const bin = binaries();
  const hubURL = await start(path.join(bin, 'cloudhub'),
    ['serve', '--listen', '127.0.0.1:0', '--data', path.join(TMP, 'hub'), '--admin-token', TOKEN, '--durability', 'normal'], 'cloudhub listening');
  hub = new Client(hubURL, { token: TOKEN });
  await hub.putContainer('products', { partitionKey: '/category' });
  const reg = await hub.registerEdge('js-edge');
  const edgeURL = await start(path.join(bin, 'edgenode'),
    ['serve', '--listen', '127.0.0.1:0', '--data', path.join(TMP, 'edge'), '--hub', hubURL, '--token', reg.token, '--durability', 'normal'],
    'edgenode listening');
  edge = new Client(edgeURL, { minBackoffMs: 5, maxBackoffMs: 50 });
  await poll('the edge learns products', () => edge.container('products'));
});

after(async () => {
  await Promise.all(children.map((p) => new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once('exit', resolve);
    p.kill('SIGTERM');
  })));
  fs.rmSync(TMP, { recursive: true, force: true });
});

async function rejects(promise, status, code) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof EdgesyncError, `want an EdgesyncError, got ${err}`);
    assert.equal(err.status, status);
    assert.equal(err.code, code);
    assert.ok(err.detail, 'the error has the server\'s message');
    return true;
  });
}

test('documents: create, read, conditional replace and delete, errors', async () => {
  const doc = await edge.create('products', { id: 'p1', category: 'tools', price: 12 });
  assert.equal(doc.id, 'p1');
  assert.equal(doc._tentative, true);
  assert.ok(doc._etag);
  await rejects(edge.create('products', { id: 'p1', category: 'tools' }), 409, 'conflict');
  assert.ok((await edge.get('products', 'p1').catch((e) => e)).price === 12);
  const nm = await edge.get('products', 'p1', { ifNoneMatch: doc._etag }).catch((e) => e);
  assert.ok(nm instanceof EdgesyncError && nm.notModified, `If-None-Match: ${nm}`);

  await rejects(edge.put('products', 'p1', { id: 'p1', category: 'tools', price: 13 }, { ifMatch: '"stale"' }), 412, 'precondition_failed');
  const { doc: upd, created } = await edge.put('products', 'p1', { id: 'p1', category: 'tools', price: 13 }, { ifMatch: doc._etag });
  assert.equal(created, false);
  assert.equal(upd.price, 13);
  assert.notEqual(upd._etag, doc._etag);
  assert.equal((await edge.put('products', 'p2', { id: 'p2', category: 'nails' })).created, true);
  await rejects(edge.put('products', 'p2', { id: 'p2', category: 'tools' }), 400, 'partition_key_change');

  await edge.delete('products', 'p2');
  const gone = await edge.get('products', 'p2').catch((e) => e);
  assert.ok(gone instanceof EdgesyncError && gone.notFound && gone.code === 'not_found', `deleted: ${gone}`);
  await rejects(edge.delete('products', 'p2'), 404, 'not_found');
  await rejects(edge.container('nope'), 404, 'container_not_found');
});

test('listing: pages with continuation, one partition, every document', async () => {
  for (let i = 0; i < 12; i++) {
    await edge.put('products', `l${String(i).padStart(2, '0')}`, { id: `l${String(i).padStart(2, '0')}`, category: i % 3 ? 'list' : 'other' });
  }
  const first = await edge.list('products', { pk: 'list', limit: 5 });
  assert.equal(first.documents.length, 5);
  assert.ok(first.continuation);
  const all = [];
  for await (const d of edge.listAll('products', { pk: 'list', limit: 3 })) all.push(d.id);
  assert.deepEqual(all, ['l01', 'l02', 'l04', 'l05', 'l07', 'l08', 'l10', 'l11']);
  const last = await edge.list('products', { pk: 'list', limit: 5, continuation: first.continuation });
  assert.equal(last.continuation, null);
  await rejects(edge.list('products', { limit: 5000 }), 400, 'bad_request');
});

test('queries: parameters, pages, every result, a query that does not parse', async () => {
  for (let i = 0; i < 6; i++) await edge.put('products', `q${i}`, { id: `q${i}`, category: 'query', price: i });
  const q = { query: 'SELECT VALUE c.id FROM c WHERE c.category = @cat AND c.price >= @min ORDER BY c.price DESC',
    parameters: [{ name: '@cat', value: 'query' }, { name: '@min', value: 2 }], limit: 3 };
  const first = await edge.query('products', q);
  assert.deepEqual(first.documents, ['q5', 'q4', 'q3']);
  assert.ok(first.continuation);
  const all = [];
  for await (const v of edge.queryAll('products', q)) all.push(v);
  assert.deepEqual(all, ['q5', 'q4', 'q3', 'q2']);
  await rejects(edge.query('products', { query: 'SELECT * FROM c WHERE c.price >' }), 400, 'bad_query');
});

test('change feed pages and the outcome of each write from the hub', async () => {
  const doc = await edge.create('products', { id: 'o1', category: 'outcomes' });
  let since = 0;
  const feed = [];
  for (let i = 0; i < 100; i++) {
    const p = await edge.changes('products', { since, limit: 4 });
    if (!p.changes.length) break;
    feed.push(...p.changes);
    since = p.next;
  }
  assert.ok(feed.some((c) => c.id === 'o1' && c.op === 'create'), 'the feed has the create of o1');
  for (let i = 1; i < feed.length; i++) assert.ok(feed[i].seq > feed[i - 1].seq, 'positions increase');

  const outcome = await poll('the hub confirms o1', async () => {
    const { outcomes } = await edge.outcomes('products');
    return outcomes.find((o) => o.id === 'o1' && o.version === doc._etag.replace(/"/g, ''));
  });
  assert.equal(outcome.outcome, 'confirmed');
  assert.ok(outcome.lsn > 0);
  const confirmed = await hub.get('products', 'o1');
  assert.equal(confirmed._lsn, outcome.lsn);
});

test('live: the fetch stream delivers new writes and resumes after a cut connection', async () => {
  const start = (await edge.changes('products', { since: 0, limit: 1000 })).next;
  const p = await proxy(edge.url);
  const c = new Client(p.url, { minBackoffMs: 5, maxBackoffMs: 50 });
  const got = [];
  const errors = [];
  let opened = 0;
  const live = c.live('products', { since: start, transport: 'fetch', onChange: (ch) => got.push(ch), onError: (e) => errors.push(e), onOpen: () => opened++ });
  try {
    await poll('the stream opens', () => opened === 1);
    await edge.create('products', { id: 'live1', category: 'live' });
    await poll('live1 arrives', () => got.some((ch) => ch.id === 'live1'));
    p.srv.closeAllConnections(); // cut the stream
    await poll('the stream notices the cut', () => errors.length > 0);
    await edge.create('products', { id: 'live2', category: 'live' });
    await poll('live2 arrives after reconnecting', () => got.some((ch) => ch.id === 'live2'));
    assert.ok(opened >= 2, `opened ${opened} times, want a reconnection`);
    assert.deepEqual(got.map((ch) => ch.id), ['live1', 'live2'], 'each record once, in order');
  } finally {
    live.close();
    p.srv.close();
    p.srv.closeAllConnections();
  }
  // A stream against an unknown container is refused at once.
  const refused = await new Promise((resolve) => {
    const l = edge.live('nope', { transport: 'fetch', onChange: () => {}, onError: (e) => { l.close(); resolve(e); } });
  });
  assert.ok(refused instanceof EdgesyncError && refused.status === 404, `live on nope: ${refused}`);
});

test('retries: a GET through a server that fails twice succeeds, a POST is sent once', async () => {
  let requests = 0;
  let failures = 2;
  const p = await proxy(edge.url, (req, res) => {
    requests++;
    if (failures <= 0) return false;
    failures--;
    res.writeHead(503, { 'Content-Type': 'application/json' });
    res.end('{"code":"unavailable","message":"shutting down"}');
    return true;
  });
  try {
    const c = new Client(p.url, { minBackoffMs: 5, maxBackoffMs: 20 });
    const st = await c.status();
    assert.ok(st.nodeId);
    assert.equal(requests, 3);

    requests = 0;
    failures = 2;
    await rejects(c.create('products', { id: 'r1', category: 'tools' }), 503, 'unavailable');
    assert.equal(requests, 1, 'a POST is not sent again');
    await rejects(edge.get('products', 'r1'), 404, 'not_found');

    // A refused connection sent nothing: even a POST is tried again.
    const gone = http.createServer();
    await new Promise((r) => gone.listen(0, '127.0.0.1', r));
    const goneURL = `http://127.0.0.1:${gone.address().port}`;
    await new Promise((r) => gone.close(r)); // nothing listens there now
    const closed = new Client(goneURL);
    let calls = 0;
    const counting = new Client(goneURL, {
      maxAttempts: 3, minBackoffMs: 1, maxBackoffMs: 2,
      fetch: (...a) => { calls++; return closed.fetch(...a); },
    });
    await assert.rejects(counting.create('products', { id: 'r2', category: 'tools' }), (e) => e?.cause?.code === 'ECONNREFUSED');
    assert.equal(calls, 3);
  } finally {
    p.srv.close();
  }
});

test('hub: edges, conflicts feed', async () => {
  const edges = await hub.edges();
  assert.ok(edges.some((e) => e.name === 'js-edge' && e.online));
  await rejects(hub.registerEdge('js-edge'), 409, 'conflict');
  const reg = await hub.registerEdge('temp');
  assert.ok(reg.token);
  await hub.revokeEdge('temp');
  await rejects(hub.revokeEdge('temp'), 404, 'not_found');
  const { conflicts, next } = await hub.conflicts('products', { status: 'unresolved' });
  assert.deepEqual(conflicts, []);
  assert.equal(next, 0);
  await rejects(new Client(hub.url, { token: 'wrong' }).status(), 401, 'unauthorized');
});
