// The official Azure Cosmos DB SDK for JavaScript (@azure/cosmos, pinned in
// package-lock.json) against real processes: a cloudhub and two edgenodes
// syncing with it on loopback, each serving the Cosmos DB API. Run with
// `npm ci --prefix clients/cosmos-test && node --test clients/cosmos-test/`;
// EDGESYNC_BIN names a directory holding both binaries, else they are built
// here with `go build`. Without the npm packages the tests skip, unless
// EDGESYNC_REQUIRE_COSMOS_SDK=1 (CI) makes that a failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

let sdk;
try {
  sdk = await import('@azure/cosmos');
} catch (err) {
  if (process.env.EDGESYNC_REQUIRE_COSMOS_SDK === '1') throw new Error(`@azure/cosmos is not installed (npm ci --prefix clients/cosmos-test): ${err.message}`);
}
const skip = sdk ? false : '@azure/cosmos is not installed: run npm ci --prefix clients/cosmos-test';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'edgesync-cosmos-'));
const ADMIN = 'cosmos-' + randomBytes(8).toString('hex');
const KEY = randomBytes(64).toString('base64');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const procs = {}; // name -> { proc, api, cosmos, argv }
let bin;

function binaries() {
  if (process.env.EDGESYNC_BIN) return process.env.EDGESYNC_BIN;
  const dir = path.join(TMP, 'bin');
  execFileSync('go', ['build', '-o', dir + path.sep, './cmd/cloudhub', './cmd/edgenode'], { cwd: ROOT, stdio: 'inherit' });
  return dir;
}

// start runs a binary until it logged both its API's and its Cosmos API's
// addresses, and records it under name.
function start(name, exe, argv, marker) {
  const proc = spawn(path.join(bin, exe), argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  const p = { proc, argv, exe };
  procs[name] = p;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: not listening within 15s\n${lines.join('\n')}`)), 15_000);
    const onLine = (line) => {
      lines.push(line);
      const m = /\baddr=("?)([^\s"]+)\1/.exec(line);
      if (m && line.includes(marker)) p.api = `http://${m[2]}`;
      if (m && line.includes('cosmos api listening')) p.cosmos = `http://${m[2]}`;
      if (p.api && p.cosmos) { clearTimeout(timer); resolve(p); }
    };
    readline.createInterface({ input: proc.stdout }).on('line', onLine);
    readline.createInterface({ input: proc.stderr }).on('line', onLine);
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited (${code})\n${lines.join('\n')}`)); });
  });
}

function stop(name) {
  const { proc } = procs[name];
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', resolve);
    proc.kill('SIGTERM');
  });
}

function startHub(listen = '127.0.0.1:0', cosmosListen = '127.0.0.1:0') {
  return start('hub', 'cloudhub', ['serve', '--listen', listen, '--data', path.join(TMP, 'hub'), '--admin-token', ADMIN,
    '--durability', 'normal', '--cosmos-listen', cosmosListen, '--cosmos-key', KEY], 'cloudhub listening');
}

async function registerEdge(name) {
  const res = await fetch(procs.hub.api + '/api/v1/edges', {
    method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ name }),
  });
  const body = await res.text();
  assert.equal(res.status, 201, `register ${name}: ${body}`);
  return JSON.parse(body).token;
}

async function startEdge(name) {
  const token = await registerEdge(name);
  return start(name, 'edgenode', ['serve', '--listen', '127.0.0.1:0', '--data', path.join(TMP, name), '--hub', procs.hub.api,
    '--token', token, '--durability', 'normal', '--cosmos-listen', '127.0.0.1:0', '--cosmos-key', KEY], 'edgenode listening');
}

function client(name, key = KEY) {
  return new sdk.CosmosClient({ endpoint: procs[name].cosmos, key, connectionPolicy: { enableEndpointDiscovery: true, requestTimeout: 10_000 } });
}

async function poll(what, f, timeout = 20_000) {
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

async function rejects(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code, `want ${code}, got ${err.code}: ${err.message}`);
    return true;
  });
}

before(async () => {
  if (skip) return;
  bin = binaries();
  await startHub();
  await Promise.all([startEdge('east'), startEdge('west')]);
});

after(async () => {
  await Promise.all(Object.keys(procs).map(stop));
  fs.rmSync(TMP, { recursive: true, force: true });
});

// products returns the products container of database shop through the
// client of node name, creating both if they do not exist.
async function products(name) {
  const { database } = await client(name).databases.createIfNotExists({ id: 'shop' });
  const { container } = await database.containers.createIfNotExists({
    id: 'products', partitionKey: { paths: ['/region'] },
    conflictResolutionPolicy: { mode: 'LastWriterWins', conflictResolutionPath: '/_ts' },
  });
  return container;
}

test('a wrong key is 401 in Cosmos DB\'s error shape', { skip }, async () => {
  const bad = client('east', randomBytes(64).toString('base64'));
  await assert.rejects(bad.databases.readAll().fetchAll(), (err) => {
    assert.equal(err.code, 401);
    assert.equal(err.body?.code, 'Unauthorized');
    assert.match(err.body?.message ?? '', /signature/);
    return true;
  });
});

test('databases and containers: create, createIfNotExists, read, list; the policy maps onto edgesync\'s', { skip }, async () => {
  const c = client('east');
  const { database, statusCode } = await c.databases.create({ id: 'catalog' });
  assert.equal(statusCode, 201);
  await rejects(c.databases.create({ id: 'catalog' }), 409);
  const again = await c.databases.createIfNotExists({ id: 'catalog' });
  assert.equal(again.database.id, 'catalog');
  const { resources: dbs } = await c.databases.readAll().fetchAll();
  assert.ok(dbs.some((d) => d.id === 'catalog'), JSON.stringify(dbs));

  const lww = await database.containers.create({ id: 'books', partitionKey: { paths: ['/genre'] },
    conflictResolutionPolicy: { mode: 'LastWriterWins', conflictResolutionPath: '/rev' } });
  assert.equal(lww.statusCode, 201);
  assert.deepEqual(lww.resource.partitionKey.paths, ['/genre']);
  assert.deepEqual(lww.resource.conflictPolicy, { mode: 'lww', path: '/rev' });
  const custom = await database.containers.create({ id: 'carts', partitionKey: { paths: ['/user'] },
    conflictResolutionPolicy: { mode: 'Custom', conflictResolutionProcedure: 'dbs/catalog/colls/carts/sprocs/cart-merge' } });
  assert.deepEqual(custom.resource.conflictPolicy, { mode: 'custom', resolver: 'cart-merge' });
  const manual = await database.containers.createIfNotExists({ id: 'scores', partitionKey: { paths: ['/team'] },
    conflictResolutionPolicy: { mode: 'Custom' } });
  assert.deepEqual(manual.resource.conflictPolicy, { mode: 'manual' });
  assert.equal(manual.resource.edgesyncName, 'catalog.scores');
  await rejects(database.containers.create({ id: 'books', partitionKey: { paths: ['/genre'] } }), 409);
  const { resources: colls } = await database.containers.readAll().fetchAll();
  assert.deepEqual(colls.map((x) => x.id).sort(), ['books', 'carts', 'scores']);
  const { resource: read } = await database.container('books').read();
  assert.equal(read.conflictResolutionPolicy.mode, 'LastWriterWins');
  assert.equal(read.conflictResolutionPolicy.conflictResolutionPath, '/rev');
  await rejects(database.container('nope').read(), 404);
  await rejects(c.database('nodb').read(), 404);

  // The container is an edgesync container, seen through the node's own API.
  const res = await fetch(procs.east.api + '/api/v1/containers/catalog.books');
  assert.equal(res.status, 200);
  assert.deepEqual((await res.json()).conflictPolicy, { mode: 'lww', path: '/rev' });
});

test('items: create 201 and 409, read 200 and 404, replace, upsert, delete, If-Match 412, partition key', { skip }, async () => {
  const c = await products('east');
  const { resource: made, statusCode, etag } = await c.items.create({ id: 'crud-1', region: 'east', price: 10 });
  assert.equal(statusCode, 201);
  assert.equal(made._tentative, true);
  assert.equal(etag, made._etag);
  assert.ok(made._ts > 0 && made._rid && made._self, JSON.stringify(made));
  await rejects(c.items.create({ id: 'crud-1', region: 'east' }), 409);

  const { resource: got } = await c.item('crud-1', 'east').read();
  assert.equal(got.price, 10);
  const missing = await c.item('nope', 'east').read();
  assert.equal(missing.statusCode, 404);
  assert.equal(missing.resource, undefined);
  const other = await c.item('crud-1', 'west').read();
  assert.equal(other.statusCode, 404, 'an item is found in its own partition only');

  const rep = await c.item('crud-1', 'east').replace({ ...got, price: 11 });
  assert.equal(rep.statusCode, 200);
  assert.equal(rep.resource.price, 11);
  assert.notEqual(rep.etag, etag);
  await rejects(c.item('crud-1', 'east').replace({ ...got, price: 12 }, { accessCondition: { type: 'IfMatch', condition: etag } }), 412);
  const cond = await c.item('crud-1', 'east').replace({ id: 'crud-1', region: 'east', price: 12 },
    { accessCondition: { type: 'IfMatch', condition: rep.etag } });
  assert.equal(cond.resource.price, 12);
  assert.equal(cond.resource._rid, got._rid, '_rid is the item\'s, not the version\'s');
  await rejects(c.item('crud-2', 'east').replace({ id: 'crud-2', region: 'east' }), 404);

  const up1 = await c.items.upsert({ id: 'crud-2', region: 'east', n: 1 });
  assert.equal(up1.statusCode, 201);
  const up2 = await c.items.upsert({ id: 'crud-2', region: 'east', n: 2 });
  assert.equal(up2.statusCode, 200);
  assert.equal(up2.resource.n, 2);

  await rejects(c.item('crud-2', 'east').delete({ accessCondition: { type: 'IfMatch', condition: up1.etag } }), 412);
  const del = await c.item('crud-2', 'east').delete();
  assert.equal(del.statusCode, 204);
  assert.equal((await c.item('crud-2', 'east').read()).statusCode, 404);
  await rejects(c.item('crud-2', 'east').delete(), 404);
});

test('patch: set, add, replace, remove, incr; If-Match 412; the id cannot change', { skip }, async () => {
  const c = await products('east');
  const { etag } = await c.items.create({ id: 'patch-1', region: 'east', price: 10, stock: 3, tags: ['a', 'c'], old: true });
  const { resource, statusCode } = await c.item('patch-1', 'east').patch([
    { op: 'set', path: '/price', value: 12.5 },
    { op: 'add', path: '/tags/1', value: 'b' },
    { op: 'add', path: '/color', value: 'red' },
    { op: 'replace', path: '/stock', value: 7 },
    { op: 'remove', path: '/old' },
    { op: 'incr', path: '/stock', value: -2 },
    { op: 'incr', path: '/sold', value: 1 },
  ]);
  assert.equal(statusCode, 200);
  assert.equal(resource.price, 12.5);
  assert.deepEqual(resource.tags, ['a', 'b', 'c']);
  assert.equal(resource.color, 'red');
  assert.equal(resource.stock, 5);
  assert.equal(resource.sold, 1);
  assert.equal('old' in resource, false);
  await rejects(c.item('patch-1', 'east').patch({ operations: [{ op: 'set', path: '/price', value: 1 }] },
    { accessCondition: { type: 'IfMatch', condition: etag } }), 412);
  await rejects(c.item('patch-1', 'east').patch([{ op: 'replace', path: '/nothing', value: 1 }]), 400);
  await rejects(c.item('patch-1', 'east').patch([{ op: 'set', path: '/id', value: 'x' }]), 400);
  await rejects(c.item('patch-9', 'east').patch([{ op: 'set', path: '/a', value: 1 }]), 404);
  const { resource: read } = await c.item('patch-1', 'east').read();
  assert.equal(read.stock, 5);
});

test('queries: parameters, ORDER BY, paging to the end with continuations', { skip }, async () => {
  const c = await products('east');
  const want = [];
  for (let i = 0; i < 23; i++) {
    const doc = { id: `q-${String(i).padStart(2, '0')}`, region: i % 2 ? 'east' : 'north', price: (i * 7) % 23, kind: 'query-test' };
    await c.items.create(doc);
    if (doc.price >= 5) want.push(doc);
  }
  want.sort((a, b) => b.price - a.price || (a.id < b.id ? -1 : 1));
  const spec = { query: 'SELECT c.id, c.price FROM c WHERE c.kind = @kind AND c.price >= @min ORDER BY c.price DESC, c.id ASC',
    parameters: [{ name: '@kind', value: 'query-test' }, { name: '@min', value: 5 }] };
  const it = c.items.query(spec, { maxItemCount: 4 });
  const got = [];
  let pages = 0;
  while (it.hasMoreResults()) {
    const page = await it.fetchNext();
    assert.ok(page.resources.length <= 4, `page of ${page.resources.length}`);
    got.push(...page.resources);
    pages++;
    assert.ok(pages < 50, 'paging ends');
  }
  assert.ok(pages >= 5, `${pages} pages`);
  assert.deepEqual(got.map((d) => d.id), want.map((d) => d.id));
  const all = await c.items.query(spec, { maxItemCount: 3 }).fetchAll();
  assert.deepEqual(all.resources.map((d) => d.price), want.map((d) => d.price));
  const one = await c.items.query({ query: 'SELECT VALUE COUNT(1) FROM c WHERE c.kind = "query-test" AND c.region = @r',
    parameters: [{ name: '@r', value: 'east' }] }).fetchAll();
  assert.deepEqual(one.resources, [11]);
  const scoped = await c.items.query('SELECT * FROM c WHERE c.kind = "query-test"', { partitionKey: 'north' }).fetchAll();
  assert.equal(scoped.resources.length, 12);
  await rejects(c.items.query('SELECT * FROM c WHERE').fetchAll(), 400);
  // Every item, a page at a time.
  const feed = await c.items.readAll({ maxItemCount: 5 }).fetchAll();
  assert.ok(feed.resources.filter((d) => d.kind === 'query-test').length === 23);
});

test('change feed: latest version and all versions and deletes, from the beginning and from now', { skip }, async () => {
  const { database } = await client('east').databases.createIfNotExists({ id: 'feeds' });
  const { container: c } = await database.containers.createIfNotExists({ id: 'events', partitionKey: { paths: ['/pk'] } });
  const { ChangeFeedStartFrom, ChangeFeedMode } = sdk;
  const nowLV = c.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Now() });
  const nowAll = c.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Now(), changeFeedMode: ChangeFeedMode.AllVersionsAndDeletes });
  assert.equal((await nowLV.readNext()).statusCode, 304);
  assert.equal((await nowAll.readNext()).statusCode, 304);

  await c.items.create({ id: 'e1', pk: 'a', v: 1 });
  await c.items.create({ id: 'e2', pk: 'a', v: 1 });
  await c.item('e1', 'a').replace({ id: 'e1', pk: 'a', v: 2 });
  await c.item('e2', 'a').delete();

  const lv = await nowLV.readNext();
  assert.equal(lv.statusCode, 200);
  assert.deepEqual(lv.result.map((d) => [d.id, d.v]), [['e1', 2]], 'latest version: one per item, deletes left out');
  assert.equal((await nowLV.readNext()).statusCode, 304, 'then nothing new');

  const all = await nowAll.readNext();
  assert.deepEqual(all.result.map((r) => [r.metadata.operationType, r.metadata.id]),
    [['create', 'e1'], ['create', 'e2'], ['replace', 'e1'], ['delete', 'e2']]);
  const rep = all.result[2];
  assert.equal(rep.current.v, 2);
  assert.equal(rep.previous.v, 1, 'the previous image of a replace');
  assert.equal(all.result[3].current, undefined);
  assert.equal(all.result[3].previous.id, 'e2');
  for (const r of all.result) {
    assert.ok('lsn' in r.metadata && 'crts' in r.metadata, JSON.stringify(r.metadata));
  }

  const begin = c.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning(), maxItemCount: 1 });
  const seen = [];
  for (let i = 0; i < 10; i++) {
    const page = await begin.readNext();
    if (page.statusCode === 304) break;
    seen.push(...page.result.map((d) => d.id));
  }
  assert.deepEqual([...new Set(seen)].sort(), ['e1', 'e2']);
  const beginAll = c.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning(), changeFeedMode: ChangeFeedMode.AllVersionsAndDeletes });
  const avad = await beginAll.readNext();
  assert.equal(avad.result.filter((r) => r.metadata.operationType === 'delete').length, 1);

  // Once the hub confirmed the writes, the feed carries their lsn and crts.
  await poll('the hub confirms the writes', async () => {
    const page = await c.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning(),
      changeFeedMode: ChangeFeedMode.AllVersionsAndDeletes }).readNext();
    return page.result.some((r) => r.metadata.lsn > 0 && r.metadata.crts > 0);
  });
});

// The seed's product example through the SDK: two edges, the hub down, East
// sets the price to 21.99 and West to 20.99; the hub comes back; both read
// the winner and the loser is in the conflicts feed. Meanwhile the apps keep
// working through the SDK without a hub.
test('two edges offline, a real conflict: both read the winner, the loser is in the conflicts feed', { skip }, async () => {
  const east = await products('east');
  const { resource: seed } = await east.items.create({ id: 'price-1', region: 'east', name: 'lamp', price: 19.99 });
  const west = client('west').database('shop').container('products');
  await poll('west has the item, confirmed', async () => {
    const r = await west.item('price-1', 'east').read();
    return r.statusCode === 200 && !r.resource._tentative && r.resource._lsn > 0;
  });

  const hubAddr = new URL(procs.hub.api).host;
  const hubCosmos = new URL(procs.hub.cosmos).host;
  await stop('hub');

  // Without a hub, the apps keep working through the SDK.
  const e = await east.item('price-1', 'east').read();
  await east.item('price-1', 'east').replace({ ...e.resource, price: 21.99 });
  await sleep(1100); // West writes a later _ts: last writer wins on /_ts
  const w = await west.item('price-1', 'east').read();
  await west.item('price-1', 'east').replace({ ...w.resource, price: 20.99 });
  await west.items.create({ id: 'offline-1', region: 'west', note: 'written with no hub' });
  assert.equal((await west.item('offline-1', 'west').read()).resource._tentative, true);
  const q = await west.items.query('SELECT VALUE c.price FROM c WHERE c.id = "price-1"').fetchAll();
  assert.deepEqual(q.resources, [20.99]);
  assert.equal((await east.item('price-1', 'east').read()).resource.price, 21.99, 'each edge reads its own write while apart');

  await startHub(hubAddr, hubCosmos);
  for (const [name, c] of [['east', east], ['west', west]]) {
    await poll(`${name} reads the winner, confirmed`, async () => {
      const r = await c.item('price-1', 'east').read();
      return r.resource.price === 20.99 && !r.resource._tentative;
    }, 30_000);
  }
  for (const name of ['east', 'west', 'hub']) {
    const conflicts = client(name).database('shop').container('products').conflicts;
    const list = await poll(`${name} has the conflict`, async () => {
      const { resources } = await conflicts.readAll().fetchAll();
      const mine = resources.filter((x) => x.docId === 'price-1');
      return mine.length > 0 && mine;
    }, 30_000);
    assert.equal(list.length, 1, JSON.stringify(list));
    const cf = list[0];
    assert.equal(cf.operationType, 'replace');
    assert.equal(cf.resourceType, 'document');
    assert.equal(JSON.parse(cf.content).price, 21.99, 'the loser is East\'s write');
    assert.equal(cf.status, 'resolved');
    // (container.conflict(id).read() of @azure/cosmos 4.10.1 requests
    // .../conflicts/{id}/conflicts: the SDK cannot read one conflict.)
  }
  assert.ok(seed._etag);
});

test('the hub\'s Cosmos endpoint: confirmed state, writes confirmed at once and synced to the edges', { skip }, async () => {
  const hub = client('hub').database('shop').container('products');
  const { resource, statusCode } = await hub.items.create({ id: 'from-hub', region: 'north', v: 1 });
  assert.equal(statusCode, 201);
  assert.ok(resource._lsn > 0 && resource._crts > 0, JSON.stringify(resource));
  assert.equal(resource._tentative, undefined);
  const east = client('east').database('shop').container('products');
  await poll('east has the hub\'s write', async () => (await east.item('from-hub', 'north').read()).statusCode === 200);
  const { resources } = await client('hub').databases.readAll().fetchAll();
  assert.ok(resources.some((d) => d.id === 'shop'));
  const feed = await hub.items.getChangeFeedIterator({ changeFeedStartFrom: sdk.ChangeFeedStartFrom.Beginning(),
    changeFeedMode: sdk.ChangeFeedMode.AllVersionsAndDeletes, maxItemCount: 1000 }).readNext();
  assert.ok(feed.result.every((r) => r.metadata.lsn > 0 && r.metadata.crts > 0));
});

test('queries over databases and containers; what edgesync does not do fails with 400 and says so', { skip }, async () => {
  const c = client('east');
  const { resources: dbs } = await c.databases.query({ query: 'SELECT VALUE d.id FROM d WHERE d.id = @id', parameters: [{ name: '@id', value: 'shop' }] }).fetchAll();
  assert.deepEqual(dbs, ['shop']);
  const db = c.database('shop');
  const { resources: colls } = await db.containers.query('SELECT VALUE c.id FROM c').fetchAll();
  assert.ok(colls.includes('products'), JSON.stringify(colls));
  const products = db.container('products');
  for (const [what, f] of [
    ['stored procedures', () => products.scripts.storedProcedures.create({ id: 's', body: 'function () {}' })],
    ['offers', () => products.readOffer()],
    ['hierarchical partition keys', () => db.containers.create({ id: 'h', partitionKey: { paths: ['/a', '/b'], kind: 'MultiHash', version: 2 } })],
  ]) {
    await assert.rejects(f(), (err) => {
      assert.equal(err.code, 400, `${what}: ${err.code} ${err.message}`);
      assert.match(err.message, /not supported/, what);
      return true;
    });
  }
});

test('patch with a condition: applied when it holds for the current version, 412 when not, 400 when it is no FROM clause', { skip }, async () => {
  for (const node of ['east', 'hub']) {
    const c = await products(node);
    const id = `cond-${node}`;
    await c.items.create({ id, region: 'east', stock: 2 });
    const item = c.item(id, 'east');
    const dec = (condition) => item.patch({ condition, operations: [{ op: 'incr', path: '/stock', value: -1 }] });
    const { statusCode, resource } = await dec('from c where c.stock > 1');
    assert.equal(statusCode, 200, node);
    assert.equal(resource.stock, 1, node);
    await rejects(dec('from c where c.stock > 1'), 412);
    await rejects(dec('SELECT * FROM c'), 400);
    await rejects(dec('from c where c.stock >'), 400);
    const { resource: read } = await item.read();
    assert.equal(read.stock, 1, `${node}: a failed condition changes nothing`);
  }
});

test('bulk: each operation on its own, with its own status, on an edge and on the hub', { skip }, async () => {
  for (const node of ['east', 'hub']) {
    const c = await products(node);
    const p = `bulk-${node}`;
    await c.items.create({ id: `${p}-old`, region: 'east', n: 1 });
    const ops = [
      { operationType: 'Create', partitionKey: 'east', resourceBody: { id: `${p}-1`, region: 'east', n: 1 } },
      { operationType: 'Create', partitionKey: 'east', resourceBody: { id: `${p}-old`, region: 'east' } },
      { operationType: 'Upsert', partitionKey: 'west', resourceBody: { id: `${p}-2`, region: 'west', n: 2 } },
      { operationType: 'Read', id: `${p}-old`, partitionKey: 'east' },
      { operationType: 'Replace', id: `${p}-old`, partitionKey: 'east', resourceBody: { id: `${p}-old`, region: 'east', n: 9 } },
      { operationType: 'Patch', id: `${p}-1`, partitionKey: 'east', resourceBody: { operations: [{ op: 'incr', path: '/n', value: 1 }] } },
      { operationType: 'Delete', id: `${p}-missing`, partitionKey: 'east' },
      { operationType: 'Delete', id: `${p}-2`, partitionKey: 'west' },
    ];
    const res = await c.items.executeBulkOperations(ops);
    const codes = res.map((r) => r.response?.statusCode ?? r.error?.code);
    assert.deepEqual(codes, [201, 409, 201, 200, 200, 200, 404, 204], `${node}: ${JSON.stringify(res.map((r) => r.error?.message))}`);
    assert.equal(res[3].response.resourceBody.n, 1);
    assert.equal(res[5].response.resourceBody.n, 2);
    assert.equal((await c.item(`${p}-old`, 'east').read()).resource.n, 9);
    assert.equal((await c.item(`${p}-2`, 'west').read()).statusCode, 404);

    // The older items.bulk: the same request, results in order.
    const old = await c.items.bulk([
      { operationType: 'Create', resourceBody: { id: `${p}-3`, region: 'east' } },
      { operationType: 'Create', resourceBody: { id: `${p}-3`, region: 'east' } },
    ]);
    assert.deepEqual(old.map((r) => r.statusCode), [201, 409]);
  }
});

test('transactional batch: all or nothing in one transaction on an edge, 424 for the operations not applied; a hub refuses more than one operation', { skip }, async () => {
  const c = await products('east');
  await c.items.create({ id: 'tx-lamp', region: 'east', stock: 2 });
  const ok = await c.items.batch([
    { operationType: 'Create', resourceBody: { id: 'tx-desk', region: 'east', price: 150 } },
    { operationType: 'Patch', id: 'tx-lamp', resourceBody: { operations: [{ op: 'incr', path: '/stock', value: 5 }] } },
    { operationType: 'Upsert', resourceBody: { id: 'tx-chair', region: 'east' } },
    { operationType: 'Read', id: 'tx-desk' },
    { operationType: 'Delete', id: 'tx-chair' },
  ], 'east');
  assert.equal(ok.code, 200);
  assert.deepEqual(ok.result.map((r) => r.statusCode), [201, 200, 201, 200, 204]);
  assert.equal(ok.result[1].resourceBody.stock, 7);
  assert.equal(ok.result[3].resourceBody.price, 150);

  const failed = await c.items.batch([
    { operationType: 'Create', resourceBody: { id: 'tx-shelf', region: 'east' } },
    { operationType: 'Delete', id: 'tx-lamp' },
    { operationType: 'Replace', id: 'tx-nothing', resourceBody: { id: 'tx-nothing', region: 'east' } },
  ], 'east');
  assert.equal(failed.code, 207);
  assert.deepEqual(failed.result.map((r) => r.statusCode), [424, 424, 404]);
  assert.equal((await c.item('tx-shelf', 'east').read()).statusCode, 404);
  assert.equal((await c.item('tx-lamp', 'east').read()).resource.stock, 7);

  // Each write of the batch syncs to the hub as any other.
  const hub = client('hub').database('shop').container('products');
  await poll('the hub has the batch\'s writes', async () => (await hub.item('tx-desk', 'east').read()).statusCode === 200 &&
    (await hub.item('tx-lamp', 'east').read()).resource?.stock === 7);

  await assert.rejects(hub.items.batch([
    { operationType: 'Create', resourceBody: { id: 'tx-hub', region: 'east' } },
    { operationType: 'Read', id: 'tx-hub' },
  ], 'east'), (err) => {
    assert.equal(err.cause?.code, 400, err.message);
    assert.match(err.message, /not supported/);
    return true;
  });
});

test('container delete deletes its items as ordinary deletes, synced to the hub; the container stays; so does database delete', { skip }, async () => {
  const { database } = await client('east').databases.createIfNotExists({ id: 'scratch' });
  const { container } = await database.containers.createIfNotExists({ id: 'notes', partitionKey: { paths: ['/owner'] } });
  for (let i = 0; i < 30; i++) await container.items.create({ id: `note-${i}`, owner: `o${i % 3}` });
  const hub = client('hub').database('scratch').container('notes');
  const count = async (c) => (await c.items.query('SELECT VALUE COUNT(1) FROM c').fetchAll()).resources[0];
  await poll('the hub has the notes', async () => (await count(hub)) === 30);

  const { statusCode } = await container.delete();
  assert.equal(statusCode, 204);
  assert.equal(await count(container), 0);
  await poll('the hub has the deletes', async () => (await count(hub)) === 0);
  const { resource } = await container.read();
  assert.equal(resource.id, 'notes', 'the container stays');
  const again = await database.containers.createIfNotExists({ id: 'notes', partitionKey: { paths: ['/owner'] } });
  await again.container.items.create({ id: 'after', owner: 'o1' });

  await database.delete();
  assert.equal(await count(container), 0);
});
