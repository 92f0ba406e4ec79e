// Browser tests of the hub dashboard and the edge page (web/ui/CONTRACT.md)
// against real processes: one cloudhub and three edgenodes on 127.0.0.1,
// driven by playwright-core through Debian's /usr/bin/chromium.
//
//   node web/uitest/ui.test.mjs --bin DIR [--screenshots DIR]
//
// DIR holds the built `cloudhub` and `edgenode` binaries (env EDGESYNC_BIN);
// screenshots go to --screenshots / EDGESYNC_SCREENSHOTS (default
// web/uitest/screenshots/). This script builds nothing; web/uitest/
// browser_test.go builds the binaries and runs it. Exit status 0 when every
// step passed.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.EDGESYNC_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const WAIT = 10_000; // live updates: how long a step waits for the page
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const EDGES = ['east', 'west', 'north'];
const started = Date.now();

// ------------------------------------------------------------ arguments

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--(bin|screenshots)(?:=(.*))?$/.exec(argv[i]);
    if (!m) {
      if (argv[i] === '--help' || argv[i] === '-h') {
        console.log('usage: node ui.test.mjs --bin DIR [--screenshots DIR]');
        process.exit(0);
      }
      die(`unknown argument ${argv[i]} (usage: node ui.test.mjs --bin DIR [--screenshots DIR])`);
    }
    out[m[1]] = m[2] !== undefined ? m[2] : argv[++i];
    if (!out[m[1]]) die(`--${m[1]} needs a value`);
  }
  return out;
}

function die(msg) {
  console.error(`ui.test: ${msg}`);
  process.exit(2);
}

const args = parseArgs(process.argv.slice(2));
const BIN = args.bin || process.env.EDGESYNC_BIN;
if (!BIN) die('no binaries: pass --bin DIR or set EDGESYNC_BIN (a directory with cloudhub and edgenode)');
for (const b of ['cloudhub', 'edgenode']) {
  if (!fs.existsSync(path.join(BIN, b))) die(`${path.join(BIN, b)} does not exist`);
}
const SHOTS = path.resolve(args.screenshots || process.env.EDGESYNC_SCREENSHOTS || path.join(HERE, 'screenshots'));
if (!fs.existsSync(CHROMIUM)) die(`${CHROMIUM} is missing (apt-get install -y chromium)`);

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  die(`playwright-core is not installed (cd web/uitest && npm ci): ${e.message}`);
}

// ------------------------------------------------------------ processes

const children = new Set(); // running processes
const allNodes = []; // every process started, for the logs on failure
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'edgesync-uitest-'));
let browser = null;

function log(...a) {
  const s = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  console.log(`[${s}s]`, ...a);
}

// startNode runs a binary and resolves once it logged `marker ... addr=H:P`.
function startNode(name, bin, argv, marker) {
  const proc = spawn(path.join(BIN, bin), argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const node = { name, proc, addr: null, lines: [], exited: null };
  children.add(node);
  allNodes.push(node);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: no "${marker} ... addr=" log line within 15s\n${node.lines.join('\n')}`)), 15_000);
    const onLine = (line) => {
      node.lines.push(line);
      if (node.lines.length > 400) node.lines.shift();
      if (!node.addr && line.includes(marker)) {
        const m = /\baddr=("?)([^\s"]+)\1/.exec(line);
        if (m) {
          node.addr = m[2];
          clearTimeout(timer);
          resolve(node);
        }
      }
    };
    readline.createInterface({ input: proc.stdout }).on('line', onLine);
    readline.createInterface({ input: proc.stderr }).on('line', onLine);
    proc.on('error', (e) => { clearTimeout(timer); reject(new Error(`${name}: ${e.message}`)); });
    proc.on('exit', (code, sig) => {
      node.exited = sig || code;
      children.delete(node);
      clearTimeout(timer);
      reject(new Error(`${name} exited (${sig || code}) before listening\n${node.lines.join('\n')}`));
    });
  });
}

async function stopAll() {
  if (browser) {
    const b = browser;
    browser = null;
    await Promise.race([b.close().catch(() => {}), sleep(5000)]);
  }
  const waits = [...children].map((n) => new Promise((resolve) => {
    if (n.proc.exitCode !== null || n.proc.signalCode !== null) return resolve();
    const kill = setTimeout(() => n.proc.kill('SIGKILL'), 5000);
    n.proc.once('exit', () => { clearTimeout(kill); resolve(); });
    n.proc.kill('SIGTERM');
  }));
  await Promise.all(waits);
  fs.rmSync(TMP, { recursive: true, force: true });
}

// Last resort when the script dies: nothing may outlive it.
process.on('exit', () => {
  for (const n of children) {
    try { n.proc.kill('SIGKILL'); } catch { /* already gone */ }
  }
  try { fs.rmSync(TMP, { recursive: true, force: true }); } catch { /* best effort */ }
});
let interrupted = null; // the signal that stopped the run
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = sig;
    console.error(`ui.test: ${sig}: stopping the browser and the servers`);
    stopAll().finally(() => {
      console.log(`\nui: interrupted by ${sig}: ${results.filter((r) => r.status === 'pass').length} passed before it`);
      process.exit(130);
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// poll calls f until it returns a truthy value (returned) or throws an
// error that says what was last seen.
async function poll(what, f, timeout = WAIT) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
      last = 'not yet';
    } catch (e) {
      last = e.message.split('\n')[0];
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout / 1000}s (last: ${last})`);
    await sleep(100);
  }
}

// ------------------------------------------------------------ HTTP APIs

const TOKEN = 'uitest-' + randomBytes(12).toString('hex');
let HUB; // "http://127.0.0.1:port"

async function call(base, method, p, body, { token, want } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const res = await fetch(base + p, { method, headers, body: payload });
  const text = await res.text();
  if (want && !want.includes(res.status)) throw new Error(`${method} ${base}${p}: ${res.status} ${text.slice(0, 300)}, want ${want.join('/')}`);
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: res.status, json, text };
}
const hub = (method, p, body, want = [200]) => call(HUB, method, p, body, { token: TOKEN, want }).then((r) => r.json);
const edgeAPI = (e, method, p, body, want = [200]) => call(e.url, method, p, body, { want }).then((r) => r.json);

async function synced(edges) {
  const hs = await hub('GET', '/api/v1/status');
  const why = [];
  for (const e of edges) {
    const st = await edgeAPI(e, 'GET', '/api/v1/status');
    if (!st.connected || st.pending !== 0 || st.lastLsn !== hs.lsn) {
      why.push(`${e.name}: connected=${st.connected} pending=${st.pending} lastLsn=${st.lastLsn} (hub lsn ${hs.lsn}) ${st.lastError || ''}`);
    }
  }
  if (why.length) throw new Error(why.join('; '));
  return true;
}

// ------------------------------------------------------------ tiny runner

const results = []; // {group, name, status: pass|fail|skip, ms, error}
const mismatches = []; // contract observations, printed at the end
const shots = [];
const layoutNotes = []; // observations from the screenshots, not failures
const failedGroups = new Set();

// step runs fn as one result; after a failure the later steps of its group
// are skipped, unless the step is { independent: true }.
async function step(group, name, fn, { independent = false } = {}) {
  if (interrupted) throw new Error(`interrupted by ${interrupted}`);
  if (!independent && failedGroups.has(group)) {
    results.push({ group, name, status: 'skip', ms: 0, error: 'an earlier step of this group failed' });
    log(`SKIP ${group}: ${name}`);
    return false;
  }
  const t0 = Date.now();
  log(`---- ${group}: ${name}`);
  try {
    await fn();
    results.push({ group, name, status: 'pass', ms: Date.now() - t0 });
    log(`PASS ${group}: ${name} (${Date.now() - t0} ms)`);
    return true;
  } catch (e) {
    if (interrupted) return new Promise(() => {}); // the signal handler ends the process
    if (!independent) failedGroups.add(group);
    results.push({ group, name, status: 'fail', ms: Date.now() - t0, error: e.message });
    log(`FAIL ${group}: ${name}: ${e.message}`);
    await failureShot(`${group}-${name}`);
    return false;
  }
}

function mismatch(msg) {
  if (interrupted) return;
  if (!mismatches.includes(msg)) mismatches.push(msg);
  log(`CONTRACT: ${msg}`);
}

// ------------------------------------------------------------ page helpers

const tid = (page, id) => page.getByTestId(id, { exact: true });

// front brings a page to the front before using it: Chromium hardly renders
// a background tab, so Playwright's "stable" and screenshot waits on it take
// seconds.
let frontPage = null;
async function front(page) {
  if (frontPage !== page) {
    await page.bringToFront();
    frontPage = page;
  }
  return page;
}

async function text(page, id) {
  return (await tid(page, id).first().textContent({ timeout: 1000 })) ?? '';
}

// waitTestId waits for a visible element; a missing id is a contract mismatch.
async function waitTestId(page, id, what = '', timeout = WAIT, state = 'visible') {
  await front(page);
  const t0 = Date.now();
  try {
    await tid(page, id).first().waitFor({ state, timeout });
    if (Date.now() - t0 > 2000) log(`  (waited ${Date.now() - t0} ms for ${id} to be ${state})`);
  } catch (e) {
    const n = await tid(page, id).count().catch(() => 0);
    if (n === 0) {
      const msg = `data-testid="${id}" not found on ${pageName(page)} within ${timeout / 1000}s${what ? ` (${what})` : ''}`;
      mismatch(msg);
      throw new Error(msg);
    }
    throw new Error(`data-testid="${id}" exists on ${pageName(page)} but is not ${state} within ${timeout / 1000}s${what ? ` (${what})` : ''}`);
  }
  return tid(page, id).first();
}

async function waitTextOf(page, id, pred, want, timeout = WAIT) {
  await waitTestId(page, id, want, timeout);
  let last = '';
  try {
    await poll(`${id} ${want}`, async () => pred((last = (await text(page, id)).trim())), timeout);
  } catch {
    throw new Error(`data-testid="${id}" on ${pageName(page)}: text ${JSON.stringify(last)} after ${timeout / 1000}s, want ${want}`);
  }
  return last;
}

const pageNames = new WeakMap();
const pageName = (page) => pageNames.get(page) || page.url();

let hubPage;
const edgePages = {};
const consoleErrors = [];
const pageErrors = []; // uncaught exceptions
const httpErrors = []; // {page, what}: answers >= 400 and failed loads seen by the pages

async function newPage(context, name) {
  const page = await context.newPage();
  frontPage = page;
  pageNames.set(page, name);
  page.setDefaultTimeout(WAIT);
  page.on('pageerror', (e) => pageErrors.push(`${name}: uncaught ${e.message}${e.stack ? ` (${e.stack.split('\n').slice(1, 3).map((l) => l.trim()).join(' ')})` : ''}`));
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(`${name}: console.error ${m.text().slice(0, 300)}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) httpErrors.push({ page: name, what: `${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}` });
  });
  page.on('requestfailed', (r) => {
    const p = new URL(r.url()).pathname;
    if (p === '/' || p.startsWith('/ui/')) httpErrors.push({ page: name, what: `failed ${r.method()} ${p}: ${r.failure()?.errorText}` });
  });
  return page;
}

async function failureShot(label) {
  const pages = [hubPage, ...Object.values(edgePages)].filter(Boolean);
  for (const p of pages) {
    try {
      fs.mkdirSync(SHOTS, { recursive: true });
      const f = path.join(SHOTS, `FAILED-${label.replace(/[^a-z0-9]+/gi, '-')}-${pageName(p).replace(/[^a-z0-9]+/gi, '-')}.png`);
      await p.screenshot({ path: f, fullPage: true, timeout: 5000 });
      log(`  failure screenshot ${f}`);
    } catch { /* best effort */ }
  }
}

// shoot writes <name>-desktop.png and <name>-phone.png of a page. Toasts
// (transient messages from earlier steps) are hidden unless keepToast.
async function shoot(page, name, { prepare, keepToast = false } = {}) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await front(page);
  for (const [label, size] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(size);
    await sleep(150); // let layout settle (and charts redraw) at the new width
    if (prepare) await prepare(label);
    const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (over > 0) layoutNotes.push(`${name} at ${label} width (${size.width}px): the page scrolls sideways by ${over}px`);
    const f = path.join(SHOTS, `${name}-${label}.png`);
    const t0 = Date.now();
    // (through the CSSOM: the pages' CSP refuses Playwright's injected <style>)
    const setToast = (v) => page.evaluate((vis) => {
      for (const el of document.querySelectorAll('[data-testid="toast"]')) el.style.visibility = vis;
    }, v);
    if (!keepToast) await setToast('hidden');
    await page.screenshot({ path: f, fullPage: true });
    if (!keepToast) await setToast('');
    shots.push(f);
    log(`  screenshot ${path.basename(f)} (${Date.now() - t0} ms)`);
  }
  await page.setViewportSize(DESKTOP);
}

// ensureLoggedIn logs in again if the login form shows (a later group after
// a failed one starts from a known state).
async function ensureLoggedIn() {
  await front(hubPage);
  if (!hubPage.url().startsWith(HUB)) await hubPage.goto(HUB + '/');
  await hubPage.waitForFunction(() => [...document.querySelectorAll('[data-testid=login-form], [data-testid=nav-overview]')]
    .some((n) => n.checkVisibility()), null, { timeout: WAIT });
  if (await tid(hubPage, 'login-form').isVisible()) {
    await tid(hubPage, 'login-token').fill(TOKEN);
    await tid(hubPage, 'login-submit').click();
    await tid(hubPage, 'login-form').waitFor({ state: 'hidden' });
  }
  await waitTestId(hubPage, 'nav-overview', 'logged in');
}

async function nav(view) {
  const link = await waitTestId(hubPage, `nav-${view}`, 'navigation');
  await link.click();
  let cur = null;
  await poll(`nav-${view} aria-current="page"`, async () => (cur = await link.getAttribute('aria-current')) === 'page', 3000)
    .catch(() => mismatch(`nav-${view}: after a click its aria-current is ${JSON.stringify(cur)}, want "page"`));
}

async function selectOptionWhenPresent(page, id, value) {
  const sel = await waitTestId(page, id, `select ${value}`);
  const tag = await sel.evaluate((n) => n.tagName.toLowerCase());
  if (tag === 'select') {
    await poll(`${id} has an option ${value}`, () => sel.evaluate((n, v) => [...n.options].some((o) => o.value === v), value));
    await sel.selectOption(value);
  } else {
    await sel.fill(value);
    await sel.press('Enter');
  }
}

// ------------------------------------------------------------ the run

const cluster = { edges: [] };
let conflictId = null;
let conflict = null;
const MERGED_TEXT = 'merged in the browser: east + west, edited by a person';

async function main() {
  // Processes, edges, containers.
  await step('setup', 'start cloudhub and 3 edgenodes, create containers, sync', async () => {
    const hubNode = await startNode('cloudhub', 'cloudhub',
      ['--listen', '127.0.0.1:0', '--data', path.join(TMP, 'hub'), '--admin-token', TOKEN, '--durability', 'normal'],
      'cloudhub listening');
    HUB = `http://${hubNode.addr}`;
    log(`cloudhub at ${HUB}`);
    for (const name of EDGES) {
      const reg = await hub('POST', '/api/v1/edges', { name }, [201]);
      if (!reg || reg.name !== name || !reg.token) throw new Error(`POST /api/v1/edges ${name}: ${JSON.stringify(reg)}`);
      const n = await startNode(`edgenode ${name}`, 'edgenode',
        ['--listen', '127.0.0.1:0', '--data', path.join(TMP, `edge-${name}`), '--hub', HUB, '--token', reg.token, '--durability', 'normal'],
        'edgenode listening');
      cluster.edges.push({ name, url: `http://${n.addr}`, node: n });
      log(`edgenode ${name} at http://${n.addr}`);
    }
    await hub('PUT', '/api/v1/containers/notes', { partitionKey: '/topic', conflictPolicy: { mode: 'manual' } }, [200, 201]);
    await hub('PUT', '/api/v1/containers/tasks', { partitionKey: '/owner', conflictPolicy: { mode: 'lww' } }, [200, 201]);
    await hub('POST', '/api/v1/containers/notes/docs', { id: 'n1', topic: 'ui', text: 'first draft' }, [201]);
    await hub('POST', '/api/v1/containers/notes/docs', { id: 'n2', topic: 'ops', text: 'an unrelated note' }, [201]);
    for (const [i, owner] of ['ana', 'bo', 'cy'].entries()) {
      await hub('PUT', `/api/v1/containers/tasks/docs/t${i + 1}`, { id: `t${i + 1}`, owner, title: `task ${i + 1}`, done: i === 0 }, [200, 201]);
    }
    await poll('edges in sync with the hub', () => synced(cluster.edges), 30_000);
  });
  if (failedGroups.has('setup')) return;
  const [east, west] = cluster.edges;

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
  const context = await browser.newContext({ viewport: DESKTOP });
  hubPage = await newPage(context, 'hub dashboard');

  // ---------------------------------------------------------- scenario
  const S = 'scenario';
  await step(S, 'hub: a wrong token shows login-error, the right one logs in', async () => {
    await hubPage.goto(HUB + '/');
    await (await waitTestId(hubPage, 'login-token', 'login form')).fill('not-the-token');
    await (await waitTestId(hubPage, 'login-submit')).click();
    const err = await waitTextOf(hubPage, 'login-error', (t) => t.length > 0, 'a message for a wrong token');
    log(`  login-error: ${JSON.stringify(err)}`);
    await tid(hubPage, 'login-token').fill(TOKEN);
    await tid(hubPage, 'login-submit').click();
    await tid(hubPage, 'login-form').waitFor({ state: 'hidden' }).catch(() => {
      throw new Error('login-form still visible after logging in with the right token');
    });
    await waitTestId(hubPage, 'nav-overview', 'after login');
  });

  await step(S, 'hub: every edge is online on the edges view', async () => {
    await nav('edges');
    await waitTestId(hubPage, 'edges-table');
    for (const e of cluster.edges) {
      await waitTestId(hubPage, `edge-row-${e.name}`);
      await waitTextOf(hubPage, `edge-state-${e.name}`, (t) => t === 'online', 'text "online"');
      await waitTestId(hubPage, `edge-lag-${e.name}`, 'edges table', 2000);
      await waitTestId(hubPage, `edge-revoke-${e.name}`, 'edges table', 2000);
      // demo-only controls: a plain hub answers 404 on /demo/edges, the UI hides them
      for (const demo of [`edge-toggle-${e.name}`, `edge-write-${e.name}`]) {
        if (await tid(hubPage, demo).isVisible()) mismatch(`${demo} is visible on a plain hub (demo only: CONTRACT says the UI hides it)`);
      }
    }
    for (const id of ['edge-register-name', 'edge-register-scope', 'edge-register-submit', 'logout']) await waitTestId(hubPage, id, '', 2000);
  });

  await step(S, 'edge page (east): go offline with edge-offline-toggle', async () => {
    for (const e of cluster.edges) {
      edgePages[e.name] = await newPage(context, `edge page ${e.name}`);
      await edgePages[e.name].goto(e.url + '/');
    }
    const p = edgePages[east.name];
    await waitTextOf(p, 'edge-connection', isConnected, 'text containing "connected"');
    const toggle = await waitTestId(p, 'edge-offline-toggle');
    await poll('edge-offline-toggle enabled', () => toggle.isEnabled());
    await toggle.click();
    await waitTextOf(p, 'edge-connection', (t) => /offline/i.test(t), 'text containing "offline"');
    const st = await edgeAPI(east, 'GET', '/api/v1/status');
    if (st.offline !== true) throw new Error(`east GET /api/v1/status offline=${st.offline}, want true`);
    // The hub notices it on its edges view.
    await waitTextOf(hubPage, `edge-state-${east.name}`, (t) => t === 'offline', 'text "offline" after the edge went offline');
  });

  await step(S, 'conflicting writes: east (offline, through its page) and west (HTTP API)', async () => {
    const p = edgePages[east.name];
    const doc = { id: 'n1', topic: 'ui', text: "east's version (written offline)" };
    if (await tid(p, 'edge-write-body').count()) {
      // Not in CONTRACT.md's edge table, but the page has a write form: use it.
      log('  east writes through the page form (edge-write-container/-id/-body/-submit)');
      await selectOptionWhenPresent(p, 'edge-write-container', 'notes');
      await tid(p, 'edge-write-id').fill('n1');
      await tid(p, 'edge-write-body').fill(JSON.stringify(doc, null, 2));
      await tid(p, 'edge-write-submit').click();
      await poll('east stores the tentative write', async () => {
        const d = await edgeAPI(east, 'GET', '/api/v1/containers/notes/docs/n1');
        return d.text === doc.text && d._tentative === true;
      });
    } else {
      log('  the edge page has no write form: east writes through its HTTP API');
      await edgeAPI(east, 'PUT', '/api/v1/containers/notes/docs/n1', doc, [200, 201]);
    }
    await edgeAPI(west, 'PUT', '/api/v1/containers/notes/docs/n1', { id: 'n1', topic: 'ui', text: "west's version" }, [200, 201]);
    await poll("the hub confirms west's write", async () => (await hub('GET', '/api/v1/containers/notes/docs/n1')).text === "west's version");
    await selectOptionWhenPresent(p, 'edge-docs-container', 'notes');
    await waitTextOf(p, 'edge-doc-n1', (t) => t.includes("east's version"), "east's own text while offline");
    await waitTextOf(p, 'edge-doc-badge-n1', (t) => t === 'tentative', 'text "tentative" while offline');
  });

  await step(S, 'edge page (east): back online', async () => {
    const p = edgePages[east.name];
    await tid(p, 'edge-offline-toggle').click();
    await waitTextOf(p, 'edge-connection', isConnected, 'text containing "connected" (back online)');
    await poll('the hub records an unresolved conflict', async () => {
      const r = await hub('GET', '/api/v1/containers/notes/conflicts?status=unresolved');
      if (r.conflicts.length !== 1) throw new Error(`${r.conflicts.length} unresolved conflicts`);
      conflict = r.conflicts[0];
      conflictId = conflict.id;
      return true;
    });
    log(`  conflict ${conflictId}: existing ${JSON.stringify(conflict.existing?.document?.text)} incoming ${JSON.stringify(conflict.incoming?.document?.text)}`);
  });

  await step(S, 'hub: the conflict appears as unresolved and opens', async () => {
    await nav('conflicts');
    await waitTestId(hubPage, 'conflicts-list');
    const id = `conflict-notes-${conflictId}`;
    const entry = await waitTestId(hubPage, id, 'the new conflict');
    const status = await entry.getAttribute('data-status');
    if (status !== 'unresolved') throw new Error(`${id} data-status=${JSON.stringify(status)}, want "unresolved"`);
    await entry.click();
    await waitTextOf(hubPage, 'conflict-existing', (t) => t.includes("west's version"), "west's version (existing)");
    await waitTextOf(hubPage, 'conflict-incoming', (t) => t.includes("east's version"), "east's version (incoming)");
    await waitTextOf(hubPage, 'conflict-base', (t) => t.includes('first draft'), 'the base version "first draft"');
    await waitTestId(hubPage, 'resolve-editor');
    for (const id of ['resolve-keep-existing', 'resolve-keep-incoming', 'resolve-submit-document', 'try-resolver', 'try-run']) {
      await waitTestId(hubPage, id, 'an open conflict', 2000, id.startsWith('try-') ? 'attached' : 'visible');
    }
    const marks = await hubPage.locator('[data-testid="conflict-existing"] mark, [data-testid="conflict-incoming"] mark').count();
    const classed = await hubPage.locator('[data-testid="conflict-existing"] [class], [data-testid="conflict-incoming"] [class]').count();
    if (marks === 0 && classed === 0) mismatch('conflict-existing / conflict-incoming: no <mark> or classed element highlights the differences');
    await sideShot('conflicts', () => shoot(hubPage, 'hub-conflicts-open'));
  });

  await step(S, 'hub: invalid JSON in resolve-editor shows resolve-error and changes nothing', async () => {
    const lsnBefore = (await hub('GET', '/api/v1/status')).lsn;
    await tid(hubPage, 'resolve-editor').fill('{"id": "n1", "topic": "ui", "text": broken');
    await tid(hubPage, 'resolve-submit-document').click();
    const msg = await waitTextOf(hubPage, 'resolve-error', (t) => t.length > 0, 'a message for invalid JSON');
    log(`  resolve-error: ${JSON.stringify(msg)}`);
    await sleep(300);
    const r = await hub('GET', '/api/v1/containers/notes/conflicts?status=unresolved');
    if (!r.conflicts.some((c) => c.id === conflictId)) throw new Error('the conflict is no longer unresolved after an invalid JSON submit');
    const st = await hub('GET', '/api/v1/status');
    if (st.lsn !== lsnBefore) throw new Error(`hub lsn moved ${lsnBefore} -> ${st.lsn} after an invalid JSON submit`);
    const entry = tid(hubPage, `conflict-notes-${conflictId}`);
    if ((await entry.getAttribute('data-status')) !== 'unresolved') throw new Error('the list no longer shows the conflict as unresolved');
  });

  await step(S, 'hub: a merged document with another id shows resolve-error and changes nothing', async () => {
    const lsnBefore = (await hub('GET', '/api/v1/status')).lsn;
    const answers = [];
    const onResponse = (r) => {
      if (r.request().method() === 'POST' && /\/conflicts\/[^/]+\/resolve$/.test(new URL(r.url()).pathname)) answers.push(r);
    };
    hubPage.on('response', onResponse);
    try {
      const prev = (await text(hubPage, 'resolve-error').catch(() => '')).trim(); // the invalid JSON message
      await tid(hubPage, 'resolve-editor').fill(JSON.stringify({ id: 'not-n1', topic: 'ui', text: 'wrong id' }, null, 2));
      await tid(hubPage, 'resolve-submit-document').click();
      const msg = await waitTextOf(hubPage, 'resolve-error', (t) => t.length > 0 && t !== prev, 'a new message for the wrong id');
      log(`  resolve-error: ${JSON.stringify(msg)}`);
      await sleep(200);
      if (answers.length === 0) {
        log('  (the page refused it itself: no request reached the hub)');
      } else {
        const res = answers[0];
        if (res.status() !== 400) throw new Error(`POST .../resolve answered ${res.status()}, want 400`);
        const hubMsg = ((await res.json().catch(() => ({}))).message || '').trim();
        if (hubMsg && !msg.includes(hubMsg.slice(0, 40))) throw new Error(`resolve-error ${JSON.stringify(msg)} does not show the hub's message ${JSON.stringify(hubMsg)}`);
      }
    } finally {
      hubPage.off('response', onResponse);
    }
    const r = await hub('GET', '/api/v1/containers/notes/conflicts?status=unresolved');
    if (!r.conflicts.some((c) => c.id === conflictId)) throw new Error('the conflict is no longer unresolved after a refused document');
    const st = await hub('GET', '/api/v1/status');
    if (st.lsn !== lsnBefore) throw new Error(`hub lsn moved ${lsnBefore} -> ${st.lsn} after a refused document`);
  });

  await step(S, 'hub: resolve with an edited merged document', async () => {
    const doc = { id: 'n1', topic: 'ui', text: MERGED_TEXT };
    await tid(hubPage, 'resolve-editor').fill(JSON.stringify(doc, null, 2));
    await tid(hubPage, 'resolve-submit-document').click();
    await poll('the hub marks the conflict resolved', async () => {
      const r = await hub('GET', '/api/v1/containers/notes/conflicts?status=resolved');
      return r.conflicts.some((c) => c.id === conflictId);
    });
    const d = await hub('GET', '/api/v1/containers/notes/docs/n1');
    if (d.text !== MERGED_TEXT) throw new Error(`hub n1.text = ${JSON.stringify(d.text)}, want the edited document`);
    const id = `conflict-notes-${conflictId}`;
    const seen = await poll(`${id} shows resolved (data-status="resolved") or leaves the list`, async () => {
      const n = await tid(hubPage, id).count();
      if (n === 0) return 'removed from conflicts-list';
      const s = await tid(hubPage, id).getAttribute('data-status', { timeout: 1000 });
      return s === 'resolved' ? 'data-status="resolved"' : false;
    });
    log(`  conflicts view: the entry is ${seen}`);
    const errVisible = await tid(hubPage, 'resolve-error').isVisible().catch(() => false);
    if (errVisible && (await text(hubPage, 'resolve-error')).trim()) {
      mismatch(`resolve-error still shows ${JSON.stringify((await text(hubPage, 'resolve-error')).trim())} after a successful resolve`);
    }
  });

  await step(S, 'every edge page shows the merged document as confirmed', async () => {
    await poll('edges in sync with the hub', () => synced(cluster.edges), 15_000);
    for (const e of cluster.edges) {
      const p = edgePages[e.name];
      await selectOptionWhenPresent(p, 'edge-docs-container', 'notes');
      await waitTextOf(p, 'edge-doc-n1', (t) => t.includes(MERGED_TEXT), 'the edited merged text');
      await waitTextOf(p, 'edge-doc-badge-n1', (t) => t === 'confirmed', 'text "confirmed"');
    }
    // The losing write's outcome on east's page (CONTRACT: outcome-<version>).
    const v = conflict.incoming && conflict.incoming.version;
    if (v) {
      const p = edgePages[east.name];
      await waitTextOf(p, `outcome-${v}`, (t) => /merged/.test(t), `text including "merged" for east's write ${v}`);
    }
    // Every edge page lists the conflict, settled (CONTRACT: edge-conflict-<cid>).
    for (const e of cluster.edges) {
      const p = edgePages[e.name];
      const id = `edge-conflict-${conflictId}`;
      await waitTestId(p, id, 'the conflict in the edge\'s conflicts list');
      await poll(`${id} on ${e.name} has data-status="resolved"`,
        async () => (await tid(p, id).getAttribute('data-status', { timeout: 1000 })) === 'resolved');
    }
  });

  await step(S, 'edge page (west): the live query box follows a write made through the API', async () => {
    const p = edgePages[west.name];
    await selectOptionWhenPresent(p, 'edge-query-container', 'notes');
    await tid(p, 'edge-query-text').fill('SELECT VALUE c.text FROM c WHERE c.topic = "live" ORDER BY c.id');
    await tid(p, 'edge-query-run').click();
    await waitTextOf(p, 'edge-query-result', (t) => t.trim() === '[]', 'an empty result');
    await edgeAPI(west, 'PUT', '/api/v1/containers/notes/docs/q1', { id: 'q1', topic: 'live', text: 'written after the query started' }, [200, 201]);
    await waitTextOf(p, 'edge-query-result', (t) => t.includes('written after the query started'), 'the new document\'s text');
    await tid(p, 'edge-query-text').fill('SELECT FROM');
    await tid(p, 'edge-query-run').click();
    await waitTextOf(p, 'edge-query-error', (t) => /column/.test(t), 'the bad query\'s column');
    await tid(p, 'edge-query-stop').click().catch(() => {});
  });

  // ---------------------------------------------------------- screenshots
  const P = 'screenshots';
  await step(P, 'hub overview', async () => {
    await ensureLoggedIn();
    await nav('overview');
    for (const id of ['overview-lsn', 'overview-edges-online', 'overview-unresolved', 'overview-writes', 'chart-writes', 'chart-lag']) {
      await waitTestId(hubPage, id, 'overview');
    }
    const lsn = (await hub('GET', '/api/v1/status')).lsn;
    await waitTextOf(hubPage, 'overview-lsn', (t) => t.replace(/[^0-9]/g, '') === String(lsn), `the hub's lsn ${lsn}`);
    await waitTextOf(hubPage, 'overview-edges-online', (t) => /\b3\b/.test(t), '3 edges online');
    await shoot(hubPage, 'hub-overview');
  }, { independent: true });
  await step(P, 'hub edges', async () => {
    await nav('edges');
    await waitTestId(hubPage, `edge-row-${EDGES[2]}`);
    await shoot(hubPage, 'hub-edges');
  }, { independent: true });
  await step(P, 'hub containers', async () => {
    await nav('containers');
    await waitTestId(hubPage, 'containers-table');
    await waitTestId(hubPage, 'container-row-notes');
    await waitTextOf(hubPage, 'container-policy-notes', (t) => /manual/i.test(t), 'policy "manual"');
    await waitTestId(hubPage, 'container-policy-edit-notes', 'containers table', 2000);
    await shoot(hubPage, 'hub-containers');
  }, { independent: true });
  await step(P, 'hub documents (n1 with its history)', async () => {
    await nav('documents');
    await selectOptionWhenPresent(hubPage, 'docs-container', 'notes');
    await waitTestId(hubPage, 'docs-list');
    await (await waitTestId(hubPage, 'doc-n1')).click();
    await waitTestId(hubPage, 'doc-history', 'after selecting doc-n1');
    const { versions } = await hub('GET', '/api/v1/containers/notes/docs/n1/versions');
    for (const v of versions) await waitTestId(hubPage, `doc-version-${v.version}`, `a version of n1 (${v.outcome || (v.confirmed ? 'confirmed' : '?')})`);
    await shoot(hubPage, 'hub-documents');
  }, { independent: true });
  if (failedGroups.has(S) || conflictId === null) {
    await step(P, 'hub conflicts (the scenario failed: no open conflict)', async () => {
      await nav('conflicts');
      await waitTestId(hubPage, 'conflicts-list');
      await shoot(hubPage, 'hub-conflicts');
    }, { independent: true });
  }
  await step(P, 'hub feed (a live write shows up)', async () => {
    await nav('feed');
    await waitTestId(hubPage, 'feed-list');
    await hub('PUT', '/api/v1/containers/tasks/docs/t9', { id: 't9', owner: 'ana', title: 'written while the feed is open' }, [200, 201]);
    await waitTextOf(hubPage, 'feed-list', (t) => t.includes('t9'), 'the new change t9 (live)');
    await shoot(hubPage, 'hub-feed');
  }, { independent: true });
  await step(P, 'edge page (west; east with its outcomes)', async () => {
    const p = edgePages[west.name] || await (async () => {
      edgePages[west.name] = await newPage(context, `edge page ${west.name}`);
      await edgePages[west.name].goto(west.url + '/');
      return edgePages[west.name];
    })();
    await selectOptionWhenPresent(p, 'edge-docs-container', 'notes');
    for (const id of ['edge-node-id', 'edge-connection', 'edge-hub', 'edge-outbox', 'edge-last-lsn', 'edge-docs']) await waitTestId(p, id, 'edge status');
    await shoot(p, 'edge-page');
    const pe = edgePages[east.name];
    if (pe) await shoot(pe, 'edge-page-east-outcomes');
  }, { independent: true });

  // ---------------------------------------------------------- resolvers
  const R = 'resolvers';
  await step(R, 'hub: a non-wasm upload shows resolver-error and adds nothing', async () => {
    await ensureLoggedIn();
    await nav('resolvers');
    await (await waitTestId(hubPage, 'resolver-name')).fill('junk');
    // attached is enough: a file input is often hidden behind a styled label
    await (await waitTestId(hubPage, 'resolver-file', 'file input', WAIT, 'attached')).setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('this is not a WebAssembly module\n') });
    await tid(hubPage, 'resolver-upload').click();
    const msg = await waitTextOf(hubPage, 'resolver-error', (t) => t.length > 0, 'a message for a non-wasm file');
    log(`  resolver-error: ${JSON.stringify(msg)}`);
    const r = await hub('GET', '/api/v1/resolvers');
    if (r.resolvers.length !== 0) throw new Error(`GET /api/v1/resolvers lists ${JSON.stringify(r.resolvers.map((x) => x.name))}, want none`);
    if (await tid(hubPage, 'resolver-row-junk-1').count()) throw new Error('resolver-row-junk-1 is shown');
  });

  await step(R, 'hub: a wasm module that is not a resolver shows the hub\'s 400 message in resolver-error', async () => {
    // The smallest valid module: magic and version, no exports. It passes a
    // client-side magic check, so the hub itself must refuse it.
    const empty = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    const before = (await hub('GET', '/api/v1/resolvers')).resolvers.length;
    await tid(hubPage, 'resolver-name').fill('junk');
    await tid(hubPage, 'resolver-file').setInputFiles({ name: 'empty.wasm', mimeType: 'application/wasm', buffer: empty });
    const answer = hubPage.waitForResponse((r) => r.request().method() === 'PUT' && new URL(r.url()).pathname === '/api/v1/resolvers/junk', { timeout: WAIT });
    await tid(hubPage, 'resolver-upload').click();
    const res = await answer;
    if (res.status() !== 400) throw new Error(`PUT /api/v1/resolvers/junk answered ${res.status()}, want 400`);
    const hubMsg = ((await res.json().catch(() => ({}))).message || '').trim();
    const msg = await waitTextOf(hubPage, 'resolver-error', (t) => t.length > 0 && (!hubMsg || t.includes(hubMsg.slice(0, 40))),
      `the hub's message ${JSON.stringify(hubMsg)}`);
    log(`  resolver-error: ${JSON.stringify(msg)}`);
    const r = await hub('GET', '/api/v1/resolvers');
    if (r.resolvers.length !== before || r.resolvers.some((x) => x.name === 'junk')) {
      throw new Error(`GET /api/v1/resolvers lists ${JSON.stringify(r.resolvers.map((x) => x.name))} after a refused upload`);
    }
  });

  const wasm = path.join(HERE, '..', '..', 'testdata', 'resolvers', 'counter.wasm');
  if (fs.existsSync(wasm)) {
    await step(R, 'hub: a real resolver (testdata counter.wasm) uploads and is listed', async () => {
      await tid(hubPage, 'resolver-name').fill('counter');
      await tid(hubPage, 'resolver-file').setInputFiles(wasm);
      await tid(hubPage, 'resolver-upload').click();
      await waitTestId(hubPage, 'resolvers-table');
      await waitTestId(hubPage, 'resolver-row-counter-1', 'after uploading counter.wasm');
      const r = await hub('GET', '/api/v1/resolvers');
      if (!r.resolvers.some((x) => x.name === 'counter' && x.version === 1)) throw new Error(`GET /api/v1/resolvers: ${JSON.stringify(r)}`);
      const errVisible = await tid(hubPage, 'resolver-error').isVisible().catch(() => false);
      if (errVisible && (await text(hubPage, 'resolver-error')).trim()) {
        mismatch(`resolver-error still shows ${JSON.stringify((await text(hubPage, 'resolver-error')).trim())} after a successful upload`);
      }
    });
  }
  await step('screenshots', 'hub resolvers', async () => {
    await ensureLoggedIn();
    await nav('resolvers');
    await waitTestId(hubPage, 'resolvers-table');
    await shoot(hubPage, 'hub-resolvers', { keepToast: true });
  }, { independent: true });

  // ---------------------------------------------------------- page health
  await step('pages', 'no uncaught exception and every page file (/ and /ui/*) loads', async () => {
    const bad = [...new Set(pageErrors)];
    const files = [...new Set(httpErrors.filter((e) => /^(\d+ GET|failed GET) \/(ui\/|$)/.test(e.what)).map((e) => `${e.page}: ${e.what}`))];
    if (bad.length || files.length) throw new Error([...bad, ...files].join('; '));
  });

  // ---------------------------------------------------------- other sites
  // A page of another origin on the same host (127.0.0.1, another port: the
  // same site, so the browser sends the hub's SameSite=Strict cookie with
  // it) tries what a hostile page would: register an edge with the
  // dashboard's session, write a document and flip the airplane switch on
  // an edge. The browser sends these requests; the servers must refuse them.
  const B = 'other sites';
  await step(B, 'a page of another origin cannot drive the hub with the dashboard session, nor an edge', async () => {
    await ensureLoggedIn();
    // The other origin is a real server on loopback, so that the browser
    // treats it as local (a page it thinks public may not call local
    // addresses at all, which would prove nothing).
    const site = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<!doctype html><title>another site</title>');
    });
    await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
    const evil = await newPage(context, 'page of another origin');
    await evil.goto(`http://127.0.0.1:${site.address().port}/`);
    const tries = await evil.evaluate(async ([hubURL, edgeURL]) => {
      const send = async (url, method, body) => {
        try {
          await fetch(url, { method, mode: 'no-cors', credentials: 'include', headers: { 'Content-Type': 'text/plain' }, body });
          return 'sent';
        } catch (e) {
          return String(e);
        }
      };
      return [
        await send(edgeURL + '/healthz', 'GET'), // the control: the browser does send to the edge
        await send(hubURL + '/api/v1/edges', 'POST', JSON.stringify({ name: 'from-evil' })),
        await send(edgeURL + '/api/v1/containers/notes/docs', 'POST', JSON.stringify({ id: 'from-evil', topic: 'ui' })),
        await send(edgeURL + '/api/v1/sync/offline', 'POST'),
      ];
    }, [HUB, east.url]);
    site.close();
    log(`  requests from the other origin: ${tries.join(', ')}`);
    if (tries.some((t) => t !== 'sent')) throw new Error(`the browser did not send the requests (${tries.join(', ')}): the step would prove nothing`);
    await sleep(300);
    const edges = await hub('GET', '/api/v1/edges');
    if (edges.edges.some((e) => e.name === 'from-evil')) throw new Error('an edge was registered from a page of another origin');
    const doc = await call(east.url, 'GET', '/api/v1/containers/notes/docs/from-evil');
    if (doc.status !== 404) throw new Error(`GET from-evil on east: ${doc.status}, want 404 (the write from another origin must not happen)`);
    const st = await edgeAPI(east, 'GET', '/api/v1/status');
    if (st.offline) throw new Error('east went offline on a request from another origin');
    await evil.close();
  });

  await step(B, 'edge page on a node with a local token asks for it once and works', async () => {
    const tok = 'esl_uitest_' + randomBytes(8).toString('hex');
    const n = await startNode('edgenode guarded', 'edgenode',
      ['--listen', '127.0.0.1:0', '--data', path.join(TMP, 'edge-guarded'), '--local-token', tok, '--durability', 'normal'],
      'edgenode listening');
    const url = `http://${n.addr}`;
    const noToken = await call(url, 'GET', '/api/v1/status');
    if (noToken.status !== 401) throw new Error(`GET /api/v1/status without the token: ${noToken.status}, want 401`);
    const guarded = await browser.newContext({ viewport: DESKTOP });
    try {
      const p = await newPage(guarded, 'edge page with a local token');
      let asked = 0;
      p.on('dialog', (d) => { asked++; d.accept(tok); });
      await p.goto(url + '/');
      await waitTextOf(p, 'edge-node-id', (t) => t.trim().length > 3 && !/[…—]/.test(t), 'the node id');
      await waitTextOf(p, 'edge-live', (t) => t.trim() === 'live', 'text "live"');
      if (asked !== 1) throw new Error(`the page asked for the token ${asked} times, want 1`);
    } finally {
      await guarded.close();
    }
  });

  // ---------------------------------------------------------- session
  const X = 'session';
  await step(X, 'hub: a cleared session cookie brings the login form back with a message', async () => {
    await ensureLoggedIn();
    await nav('containers');
    await waitTestId(hubPage, 'containers-table');
    await context.clearCookies();
    await nav('edges'); // a view refresh: its API call answers 401
    await waitTestId(hubPage, 'login-form', 'after the session cookie was cleared');
    const err = await tid(hubPage, 'login-error').isVisible() ? (await text(hubPage, 'login-error')).trim() : '';
    const body = await hubPage.locator('body').innerText();
    if (!err && !/expired|log in again/i.test(body)) {
      throw new Error('the login form came back without login-error or a visible "session expired" message');
    }
    if (!err) mismatch('session expiry: login-error is not used; the message is shown elsewhere');
    log(`  message: ${JSON.stringify(err || body.match(/[^\n]*(expired|log in again)[^\n]*/i)?.[0])}`);
    await tid(hubPage, 'login-token').fill(TOKEN);
    await tid(hubPage, 'login-submit').click();
    await tid(hubPage, 'login-form').waitFor({ state: 'hidden' });
    await waitTestId(hubPage, 'nav-overview', 'after logging in again');
  });
}

function isConnected(t) {
  return /\bconnected\b/i.test(t) && !/offline|disconnected|not connected/i.test(t);
}

// sideShot records a screenshot taken inside a scenario step as a result of
// the screenshots group, so that a failed screenshot does not fail the
// scenario.
async function sideShot(name, fn) {
  try {
    await fn();
  } catch (e) {
    log(`  screenshot ${name} failed: ${e.message}`);
    results.push({ group: 'screenshots', name: `hub ${name} (open conflict)`, status: 'fail', ms: 0, error: e.message });
    return;
  }
  results.push({ group: 'screenshots', name: `hub ${name} (open conflict)`, status: 'pass', ms: 0 });
}

let crashed = null;
try {
  await main();
} catch (e) {
  crashed = e;
  console.error(`ui.test: ${e.stack || e}`);
} finally {
  const failed = results.some((r) => r.status === 'fail') || crashed;
  if (failed) {
    for (const n of allNodes) {
      console.log(`\n---- last log lines of ${n.name}${n.exited !== null ? ` (exited: ${n.exited})` : ''}`);
      console.log(n.lines.slice(-30).join('\n'));
    }
  }
  await stopAll();
}

console.log('\n==== results');
for (const r of results) {
  console.log(`${r.status.toUpperCase().padEnd(4)} ${r.group}: ${r.name}${r.ms ? ` (${r.ms} ms)` : ''}${r.error ? `\n       ${r.error}` : ''}`);
}
if (mismatches.length) {
  console.log('\n==== contract mismatches');
  for (const m of mismatches) console.log(`- ${m}`);
}
if (layoutNotes.length) {
  console.log('\n==== layout notes');
  for (const m of layoutNotes) console.log(`- ${m}`);
}
if (pageErrors.length || consoleErrors.length) {
  console.log('\n==== uncaught exceptions and console errors in the pages');
  for (const m of [...new Set([...pageErrors, ...consoleErrors])]) console.log(`- ${m}`);
}
if (httpErrors.length) {
  console.log('\n==== HTTP errors seen by the pages (401/400 are expected from the bad-input steps)');
  for (const m of [...new Set(httpErrors.map((e) => `${e.page}: ${e.what}`))]) console.log(`- ${m}`);
}
console.log(`\n==== screenshots (${shots.length}) in ${SHOTS}`);
for (const f of shots) console.log(path.relative(SHOTS, f));
const n = (s) => results.filter((r) => r.status === s).length;
console.log(`\nui: ${n('pass')} passed, ${n('fail')} failed, ${n('skip')} skipped (${((Date.now() - started) / 1000).toFixed(1)}s)`);
process.exit(n('fail') || crashed ? 1 : 0);
