// Browser test of the JavaScript client (clients/js/edgesync.js) in
// Chromium: a page served from another origin (a static server on another
// loopback port) uses the client against an edgenode started with
// --cors-origin <that origin> (CRUD and a live event work), and against an
// edgenode without it (the browser is refused).
//
//   node web/uitest/jsclient.test.mjs --bin DIR
//
// DIR holds the built edgenode (env EDGESYNC_BIN). web/uitest/
// jsclient_test.go builds it and runs this. Exit status 0 when every check
// passed.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLIENT_JS = path.join(HERE, '..', '..', 'clients', 'js', 'edgesync.js');
const CHROMIUM = process.env.EDGESYNC_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

function die(msg) {
  console.error(`jsclient.test: ${msg}`);
  process.exit(2);
}
const argv = process.argv.slice(2);
const BIN = (argv[0] === '--bin' ? argv[1] : undefined) || process.env.EDGESYNC_BIN;
if (!BIN || !fs.existsSync(path.join(BIN, 'edgenode'))) die('no edgenode: pass --bin DIR or set EDGESYNC_BIN');
if (!fs.existsSync(CHROMIUM)) die(`${CHROMIUM} is missing (apt-get install -y chromium)`);
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  die(`playwright-core is not installed (cd web/uitest && npm ci): ${e.message}`);
}

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'edgesync-jsclient-'));
const children = [];
let browser = null;
let site = null;

function startEdge(name, extra) {
  const proc = spawn(path.join(BIN, 'edgenode'),
    ['serve', '--listen', '127.0.0.1:0', '--data', path.join(TMP, name), '--durability', 'normal', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  const lines = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: not listening within 15s\n${lines.join('\n')}`)), 15_000);
    const onLine = (line) => {
      lines.push(line);
      const m = line.includes('edgenode listening') && /\baddr=("?)([^\s"]+)\1/.exec(line);
      if (m) { clearTimeout(timer); resolve(`http://${m[2]}`); }
    };
    readline.createInterface({ input: proc.stdout }).on('line', onLine);
    readline.createInterface({ input: proc.stderr }).on('line', onLine);
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited (${code})\n${lines.join('\n')}`)); });
  });
}

async function stopAll() {
  if (browser) await browser.close().catch(() => {});
  site?.close();
  await Promise.all(children.map((p) => new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    const kill = setTimeout(() => p.kill('SIGKILL'), 5000);
    p.once('exit', () => { clearTimeout(kill); resolve(); });
    p.kill('SIGTERM');
  })));
  fs.rmSync(TMP, { recursive: true, force: true });
}
process.on('exit', () => { for (const p of children) { try { p.kill('SIGKILL'); } catch { /* gone */ } } });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => stopAll().finally(() => process.exit(130)));

const results = [];
async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`PASS ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push({ name, ok: false });
    console.log(`FAIL ${name}: ${e.message}`);
  }
}

// The app's page: it loads the client as an ES module from its own origin.
const PAGE = `<!doctype html><meta charset="utf-8"><title>an app of another origin</title>
<script type="module">import * as edgesync from '/edgesync.js'; window.edgesync = edgesync; document.title = 'ready';</script>`;

try {
  site = http.createServer((req, res) => {
    if (req.url === '/edgesync.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript' });
      res.end(fs.readFileSync(CLIENT_JS));
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(PAGE);
  });
  await new Promise((r) => site.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${site.address().port}`;
  const allowed = await startEdge('edge-cors', ['--cors-origin', origin]);
  const closed = await startEdge('edge-closed', []);
  console.log(`app page at ${origin}; edge with --cors-origin at ${allowed}; edge without at ${closed}`);

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.log(`page error: ${e.message}`));
  await page.goto(origin + '/');
  await page.waitForFunction(() => document.title === 'ready', null, { timeout: 10_000 });

  await check('an edge with --cors-origin: CRUD, listing, a query and the change feed from the page', async () => {
    const out = await page.evaluate(async (url) => {
      const { Client, EdgesyncError } = window.edgesync;
      const c = new Client(url);
      const seen = {};
      seen.created = (await c.putContainer('notes', { partitionKey: '/topic' })).created;
      const doc = await c.create('notes', { id: 'n1', topic: 'app', text: 'from the browser' });
      seen.tentative = doc._tentative;
      seen.read = (await c.get('notes', 'n1')).text;
      try { await c.create('notes', { id: 'n1', topic: 'app' }); } catch (e) { seen.dup = e instanceof EdgesyncError && e.conflict && e.code; }
      try { await c.put('notes', 'n1', { id: 'n1', topic: 'app', text: 'x' }, { ifMatch: '"stale"' }); } catch (e) { seen.stale = e.preconditionFailed && e.code; }
      seen.replaced = (await c.put('notes', 'n1', { id: 'n1', topic: 'app', text: 'edited' }, { ifMatch: doc._etag })).doc.text;
      seen.listed = (await c.list('notes', { pk: 'app' })).documents.map((d) => d.id);
      seen.feed = (await c.changes('notes')).changes.map((ch) => `${ch.op} ${ch.id}`);
      seen.queried = (await c.query('notes', { query: 'SELECT VALUE c.text FROM c WHERE c.topic = @t', parameters: [{ name: '@t', value: 'app' }] })).documents;
      await c.delete('notes', 'n1');
      try { await c.get('notes', 'n1'); } catch (e) { seen.deleted = e.notFound && e.code; }
      return seen;
    }, allowed);
    const want = { created: true, tentative: true, read: 'from the browser', dup: 'conflict', stale: 'precondition_failed', replaced: 'edited',
      listed: ['n1'], feed: ['create n1', 'replace n1'], queried: ['edited'], deleted: 'not_found' };
    if (JSON.stringify(out) !== JSON.stringify(want)) throw new Error(`got ${JSON.stringify(out)}, want ${JSON.stringify(want)}`);
  });

  await check('an edge with --cors-origin: a live event through EventSource', async () => {
    const out = await page.evaluate(async (url) => {
      const { Client } = window.edgesync;
      const c = new Client(url);
      if (typeof EventSource !== 'function') return 'no EventSource';
      const { next } = await c.changes('notes');
      return await new Promise((resolve) => {
        const timer = setTimeout(() => { live.close(); resolve('no event within 10s'); }, 10_000);
        const live = c.live('notes', {
          since: next,
          onOpen: () => { c.create('notes', { id: 'live1', topic: 'app' }).catch((e) => resolve(String(e))); },
          onChange: (ch) => { clearTimeout(timer); live.close(); resolve(`${ch.op} ${ch.id}`); },
        });
      });
    }, allowed);
    if (out !== 'create live1') throw new Error(`live: ${out}, want "create live1"`);
  });

  await check('an edge without --cors-origin refuses the page: reads and writes fail, nothing is written', async () => {
    const out = await page.evaluate(async (url) => {
      const { Client } = window.edgesync;
      const c = new Client(url, { maxAttempts: 1 });
      const attempt = async (f) => { try { await f(); return 'allowed'; } catch (e) { return e.name; } };
      return [
        await attempt(() => c.status()),
        await attempt(() => c.putContainer('notes', { partitionKey: '/topic' })),
        await attempt(() => c.create('notes', { id: 'evil', topic: 'app' })),
      ];
    }, closed);
    if (out.some((r) => r !== 'TypeError')) throw new Error(`from the page: ${out.join(', ')}, want the browser's TypeError for each`);
    // The edge itself says why, and wrote nothing.
    const res = await fetch(`${closed}/api/v1/status`, { headers: { Origin: origin } });
    if (res.status !== 403) throw new Error(`GET /api/v1/status with Origin ${origin}: ${res.status}, want 403`);
    const containers = await (await fetch(`${closed}/api/v1/containers`)).json();
    if (containers.containers.length !== 0) throw new Error(`the edge without --cors-origin has containers ${JSON.stringify(containers)}`);
  });
} catch (e) {
  results.push({ name: 'setup', ok: false });
  console.log(`FAIL setup: ${e.stack || e}`);
} finally {
  await stopAll();
}
const failed = results.filter((r) => !r.ok).length;
console.log(`jsclient: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
