// The edge node's status page (web/ui/CONTRACT.md, "Edge page").
//
// Plain ES module, no framework, nothing from the network: the page talks
// only to the edge node that serves it. Live updates come from one
// EventSource on /api/v1/events (events "status" and "change"); the page
// never polls. Everything the node sends is rendered with textContent.

const API = '/api/v1';
const seg = encodeURIComponent;

const OUTCOMES_KEPT = 50; // recent outcomes shown
const OUTCOME_BACKFILL = 2000; // local feed positions scanned for outcomes on (re)load
const DOCS_PAGE = 100;
const DOCS_MAX_RELOAD = 1000; // replica.MaxPageSize
const PER_ID_REFRESH_MAX = 20; // more changed ids than this in one window: reload the list
const WATCHDOG_MS = 10000; // the node sends a status event at least every 2 s
const SYSTEM_PROPS = ['_ts', '_etag', '_lsn', '_crts', '_tentative'];
const MAX_DOC_BYTES = 2 << 20; // docs/architecture.md, Items
const MAX_DEPTH = 128;
const STORE_KEY = 'edgesync.edge.container';

const $ = (id) => document.getElementById(id);

const el = {
  nodeId: $('node-id'),
  live: $('live'),
  toggle: $('offline-toggle'),
  notice: $('notice'),
  connection: $('connection'),
  hub: $('hub'),
  hubDetail: $('hub-detail'),
  outbox: $('outbox'),
  lastLsn: $('last-lsn'),
  headLsn: $('head-lsn'),
  clock: $('clock'),
  statusCard: $('status-heading').closest('section'),
  statusError: $('status-error'),
  statusMismatch: $('status-mismatch'),
  statusExtra: $('status-extra'),
  outcomes: $('outcomes'),
  outcomesEmpty: $('outcomes-empty'),
  conflicts: $('conflicts'),
  conflictsState: $('conflicts-state'),
  conflictsContainer: $('conflicts-container'),
  docsContainer: $('docs-container'),
  docs: $('docs'),
  docsState: $('docs-state'),
  docsMore: $('docs-more'),
  form: $('write-form'),
  writeContainer: $('write-container'),
  writeId: $('write-id'),
  writeBody: $('write-body'),
  writeCreate: $('write-create'),
  writeSubmit: $('write-submit'),
  writeFormat: $('write-format'),
  writeError: $('write-error'),
  writeOk: $('write-ok'),
  queryForm: $('query-form'),
  queryContainer: $('query-container'),
  queryText: $('query-text'),
  queryStop: $('query-stop'),
  queryError: $('query-error'),
  queryState: $('query-state'),
  queryResult: $('query-result'),
};

const state = {
  status: null,
  containers: new Map(), // name -> definition
  selected: '',
  // documents of the selected container, in id order
  docs: new Map(), // id -> {li, parts, doc}
  docsContinuation: null,
  docsLastId: null, // last id of the loaded pages (null: none loaded)
  docsGen: 0, // bumped on container switch; stale answers are dropped
  outcomes: new Map(), // version -> {rec, li}
  conflictsGen: 0, // bumped per load; stale answers are dropped
  conflictSeq: -1, // the node's position in the hub's conflicts stream
  toggleBusy: false,
};

// ---------------------------------------------------------------- helpers

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// A node that listens beyond loopback wants its local token on every API
// call. The page asks for it once and keeps it in a cookie of this origin
// (SameSite=Strict, for this browser session), which the node accepts and
// EventSource sends too.
const TOKEN_COOKIE = 'edgesync_local';
let tokenAsked = null; // the pending question, so that parallel calls ask once
let tokenDeclined = false; // asked and cancelled: not again until a reload

function askToken() {
  if (tokenDeclined) return Promise.resolve(false);
  if (!tokenAsked) {
    tokenAsked = Promise.resolve().then(() => {
      const t = window.prompt('This edge node asks for its local token (printed at its first start; saved in its data directory as local-token):');
      if (!t || !t.trim()) {
        tokenDeclined = true;
        return false;
      }
      document.cookie = `${TOKEN_COOKIE}=${encodeURIComponent(t.trim())}; Path=/; SameSite=Strict`;
      if (live.es) reconnectLater();
      return true;
    }).finally(() => { setTimeout(() => { tokenAsked = null; }, 0); });
  }
  return tokenAsked;
}

async function api(method, path, body, retried) {
  const init = { method, headers: { Accept: 'application/json' }, cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = body;
  }
  let res;
  try {
    res = await fetch(API + path, init);
  } catch (e) {
    throw new ApiError(0, 'network', `cannot reach this edge node (${e.message})`);
  }
  if (res.status === 401 && !retried && await askToken()) return api(method, path, body, true);
  let data = null;
  if (res.status !== 204 && res.status !== 304) {
    const text = await res.text();
    if (text) {
      try { data = JSON.parse(text); } catch { data = null; }
    }
  }
  if (!res.ok) {
    const code = data && typeof data.code === 'string' ? data.code : `http_${res.status}`;
    const msg = data && typeof data.message === 'string' && data.message
      ? data.message : `${res.status} ${res.statusText || 'error'}`.trim();
    throw new ApiError(res.status, code, msg);
  }
  return { status: res.status, data };
}

function setText(node, text) {
  const t = String(text);
  if (node.textContent !== t) node.textContent = t; // no churn for aria-live regions
}

function show(node, text) {
  if (text) {
    setText(node, text);
    node.hidden = false;
  } else {
    node.hidden = true;
    setText(node, '');
  }
}

function h(tag, attrs, ...children) {
  const n = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === 'class') n.className = v;
      else if (k === 'text') n.textContent = v;
      else n.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children) {
    if (c == null) continue;
    n.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return n;
}

function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => { t = null; fn(...args); }, ms);
  };
}

// cmpIds orders ids as the node does (SQLite text order: UTF-8 bytes, i.e.
// code points), not by UTF-16 units.
function cmpIds(a, b) {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done === y.done ? 0 : (x.done ? -1 : 1);
    const cx = x.value.codePointAt(0);
    const cy = y.value.codePointAt(0);
    if (cx !== cy) return cx < cy ? -1 : 1;
  }
}

// reconcile makes parent's children exactly nodes, in order, moving as few
// as it can (keeps focus and scroll position in unchanged entries).
function reconcile(parent, nodes) {
  let cur = parent.firstChild;
  for (const n of nodes) {
    if (n === cur) {
      cur = cur.nextSibling;
      continue;
    }
    parent.insertBefore(n, cur);
  }
  while (cur) {
    const next = cur.nextSibling;
    cur.remove();
    cur = next;
  }
}

function parseJSON(text) {
  try { return JSON.parse(text); } catch { return null; }
}

function isNum(v) {
  return typeof v === 'number' && Number.isFinite(v);
}

function fmtTime(sec) {
  if (!isNum(sec) || sec <= 0) return '';
  try { return new Date(sec * 1000).toLocaleString(); } catch { return ''; }
}

// valueAt reads a partition key path such as "/territory" or "/a/b".
function valueAt(doc, path) {
  if (typeof path !== 'string' || !path.startsWith('/')) return undefined;
  let v = doc;
  for (const raw of path.slice(1).split('/')) {
    const k = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (v === null || typeof v !== 'object' || !Object.prototype.hasOwnProperty.call(v, k)) return undefined;
    v = v[k];
  }
  return v;
}

let noticeTimer = null;
function notice(msg) {
  clearTimeout(noticeTimer);
  show(el.notice, msg);
  if (msg) noticeTimer = setTimeout(() => show(el.notice, ''), 8000);
}

// ---------------------------------------------------------------- status

function connectionOf(st) {
  const hubs = Array.isArray(st.hubs) ? st.hubs.filter((x) => typeof x === 'string' && x) : [];
  // The text must contain "connected" or "offline" (CONTRACT) and never
  // both: so no "disconnected" / "not connected" wording.
  if (st.offline === true) return { state: 'airplane', text: 'offline (airplane mode)', hubs };
  if (st.connected === true) return { state: 'connected', text: 'connected', hubs };
  if (hubs.length === 0) return { state: 'nohub', text: 'offline: no hub configured', hubs };
  return { state: 'unreachable', text: 'offline: trying to reach the hub', hubs };
}

/** "1h 0m behind the hub (±2 ms, measured 12:00:03)" */
function clockText(st) {
  if (!isNum(st.clockMeasuredAt) || st.clockMeasuredAt === 0) return 'not measured: never in contact with a hub';
  const off = isNum(st.clockOffset) ? st.clockOffset : 0; // hub minus this node, ms
  const a = Math.abs(off);
  let amount;
  if (a < 60000) amount = `${(a / 1000).toFixed(1)} s`;
  else if (a < 3600000) amount = `${Math.floor(a / 60000)}m ${Math.round((a % 60000) / 1000)}s`;
  else amount = `${Math.floor(a / 3600000)}h ${Math.floor((a % 3600000) / 60000)}m`;
  const where = off > 0 ? 'behind the hub' : off < 0 ? 'ahead of the hub' : 'in step with the hub';
  const err = isNum(st.clockRtt) ? ` (±${Math.ceil(st.clockRtt / 2)} ms` : ' (';
  return `${amount} ${where}${err}, measured ${new Date(st.clockMeasuredAt).toLocaleTimeString()})`;
}

/** "since 12:00:03, moved between hubs 2 times" */
function hubDetailText(st) {
  const parts = [];
  if (st.connected && typeof st.connectedAt === 'string') {
    const at = new Date(st.connectedAt);
    if (!Number.isNaN(at.getTime())) parts.push(`since ${at.toLocaleTimeString()}`);
  }
  if (isNum(st.rehomes) && st.rehomes > 0) parts.push(`moved between hubs ${st.rehomes} time${st.rehomes === 1 ? '' : 's'}`);
  return parts.join(', ');
}

function renderStatus(st) {
  if (!st || typeof st !== 'object') return;
  const prev = state.status;
  state.status = st;
  setText(el.nodeId, st.nodeId || '—');

  const conn = connectionOf(st);
  setText(el.connection, conn.text);
  el.connection.dataset.state = conn.state;

  if (st.connected && st.hub) setText(el.hub, typeof st.hubName === 'string' && st.hubName ? `${st.hubName} (${st.hub})` : st.hub);
  else if (conn.hubs.length) setText(el.hub, conn.hubs.join(', '));
  else setText(el.hub, 'none configured');
  setText(el.hubDetail, hubDetailText(st));

  setText(el.outbox, isNum(st.pending) ? st.pending : 0);
  const last = isNum(st.lastLsn) ? st.lastLsn : 0;
  setText(el.lastLsn, last);
  setText(el.headLsn, isNum(st.headLsn) && st.headLsn > last ? `(hub at ${st.headLsn})` : '');

  setText(el.clock, clockText(st));

  show(el.statusError, st.lastError ? `Last sync error: ${st.lastError}` : '');
  const mism = st.sync && Array.isArray(st.sync.mismatched) ? st.sync.mismatched : [];
  show(el.statusMismatch, mism.length
    ? `Writes held: the definition of ${mism.join(', ')} differs from the hub's. They stay in the outbox.`
    : '');
  const extra = [];
  if (st.durability) extra.push(`durability ${st.durability}`);
  if (isNum(st.lastSeq)) extra.push(`local feed at ${st.lastSeq}`);
  if (st.version) extra.push(`version ${st.version}`);
  setText(el.statusExtra, extra.join(' · '));

  if (!state.toggleBusy) renderToggle();

  // A conflict in scope recorded or settled at the hub: read the list again.
  if (isNum(st.conflictSeq) && st.conflictSeq !== state.conflictSeq) {
    state.conflictSeq = st.conflictSeq;
    scheduleConflicts();
  }

  // A container learnt from the hub (status counts them) shows up at once.
  if (isNum(st.containers) && (!prev || prev.containers !== st.containers) && st.containers !== state.containers.size) {
    scheduleContainers();
  }
}

// renderToggle shows what the airplane-mode button will do. A node without
// a hub has nothing to stop: the button is disabled (the API says 400).
function renderToggle() {
  const st = state.status;
  if (!st) return;
  const offline = st.offline === true;
  const noHub = connectionOf(st).state === 'nohub';
  setText(el.toggle, offline ? 'Back online' : 'Go offline');
  el.toggle.dataset.offline = offline ? 'true' : 'false';
  el.toggle.disabled = noHub && !offline;
  el.toggle.title = el.toggle.disabled ? 'This node has no hub to sync with (start it with --hub).' : '';
}

async function refreshStatus() {
  try {
    const { data } = await api('GET', '/status');
    renderStatus(data);
  } catch (e) {
    notice(`Could not read the node's status: ${e.message}`);
  }
}

async function toggleOffline() {
  if (state.toggleBusy) return;
  const goOffline = !(state.status && state.status.offline === true);
  state.toggleBusy = true;
  el.toggle.disabled = true;
  el.toggle.setAttribute('aria-busy', 'true');
  try {
    await api('POST', goOffline ? '/sync/offline' : '/sync/online');
    if (state.status) {
      // Show the new mode at once; the node's status event confirms it.
      state.toggleBusy = false;
      renderStatus({ ...state.status, offline: goOffline, connected: goOffline ? false : state.status.connected });
    }
    refreshStatus();
  } catch (e) {
    notice(`Could not ${goOffline ? 'go offline' : 'go back online'}: ${e.message}`);
  } finally {
    state.toggleBusy = false;
    el.toggle.disabled = false;
    el.toggle.removeAttribute('aria-busy');
    renderToggle();
  }
}

// ---------------------------------------------------------------- containers

function storedContainer() {
  try { return localStorage.getItem(STORE_KEY) || ''; } catch { return ''; }
}

function storeContainer(name) {
  try { localStorage.setItem(STORE_KEY, name); } catch { /* private mode */ }
}

function fillSelect(select, names, want) {
  const opts = names.map((n) => {
    let o = [...select.options].find((x) => x.value === n);
    if (!o) o = h('option', { value: n, text: n });
    return o;
  });
  reconcile(select, opts);
  select.disabled = names.length === 0;
  if (names.includes(want)) select.value = want;
  else if (names.length) select.value = names[0];
}

async function loadContainers({ withDocs = false } = {}) {
  let list;
  try {
    const { data } = await api('GET', '/containers');
    list = data && Array.isArray(data.containers) ? data.containers : [];
  } catch (e) {
    notice(`Could not list containers: ${e.message}`);
    return;
  }
  const defs = new Map();
  for (const c of list) if (c && typeof c.name === 'string') defs.set(c.name, c);
  state.containers = defs;
  const names = [...defs.keys()].sort(cmpIds);

  let want = state.selected;
  if (!names.includes(want)) want = names.includes(storedContainer()) ? storedContainer() : (names[0] || '');
  fillSelect(el.docsContainer, names, want);
  const writeWant = el.writeContainer.value && names.includes(el.writeContainer.value) ? el.writeContainer.value : want;
  fillSelect(el.writeContainer, names, writeWant);
  fillSelect(el.queryContainer, names, el.queryContainer.value && names.includes(el.queryContainer.value) ? el.queryContainer.value : want);

  if (want !== state.selected) selectContainer(want, { store: false });
  else if (withDocs) reloadDocs();
}

const scheduleContainers = debounce(() => loadContainers(), 300);

function selectContainer(name, { store = true } = {}) {
  state.selected = name;
  if (store && name) storeContainer(name);
  if (el.docsContainer.value !== name) el.docsContainer.value = name;
  state.docsGen++;
  state.docs.clear();
  state.docsContinuation = null;
  state.docsLastId = null;
  pendingIds.clear();
  el.docs.replaceChildren();
  el.docsMore.hidden = true;
  loadDocs({ reset: true });
  loadConflicts();
}

// ---------------------------------------------------------------- documents

// Document list operations run one at a time, so that an older answer never
// overwrites a newer one.
let docsChain = Promise.resolve();
function runDocs(fn) {
  docsChain = docsChain.then(fn).catch((e) => console.error(e));
  return docsChain;
}

function docsPath(c, extra) {
  return `/containers/${seg(c)}/docs${extra}`;
}

function renderDocsState(msg) {
  if (msg !== undefined) {
    setText(el.docsState, msg);
    return;
  }
  const c = state.selected;
  if (!c) {
    setText(el.docsState, state.containers.size === 0
      ? 'This node has no containers yet: they arrive from the hub on the first sync (or define one with PUT /api/v1/containers/{name}).'
      : '');
    return;
  }
  const n = state.docs.size;
  if (n === 0) setText(el.docsState, `No documents in ${c}.`);
  else {
    const tentative = [...state.docs.values()].filter((d) => d.doc._tentative === true).length;
    const more = state.docsContinuation ? ' (more below)' : '';
    setText(el.docsState, `${n} document${n === 1 ? '' : 's'} in ${c}${more}, ${tentative} tentative.`);
  }
  el.docsMore.hidden = !state.docsContinuation;
}

function loadDocs({ reset = false, more = false } = {}) {
  const gen = state.docsGen;
  const c = state.selected;
  return runDocs(async () => {
    if (gen !== state.docsGen) return;
    if (!c) {
      renderDocsState();
      el.docsMore.hidden = true;
      return;
    }
    if (reset) renderDocsState(`Loading documents of ${c}…`);
    let q;
    if (more) {
      if (!state.docsContinuation) return;
      q = `?limit=${DOCS_PAGE}&continuation=${seg(state.docsContinuation)}`;
    } else {
      const n = Math.min(DOCS_MAX_RELOAD, Math.max(DOCS_PAGE, state.docs.size));
      q = `?limit=${n}`;
    }
    let data;
    try {
      ({ data } = await api('GET', docsPath(c, q)));
    } catch (e) {
      if (gen === state.docsGen) renderDocsState(`Could not load the documents of ${c}: ${e.message}`);
      return;
    }
    if (gen !== state.docsGen) return;
    const docs = data && Array.isArray(data.documents) ? data.documents : [];
    const cont = data && typeof data.continuation === 'string' && data.continuation ? data.continuation : null;
    const lis = more ? [...el.docs.children] : [];
    const seen = new Set();
    for (const d of docs) {
      if (!d || typeof d !== 'object' || typeof d.id !== 'string') continue;
      seen.add(d.id);
      lis.push(upsertDocEntry(d).li);
    }
    if (!more) {
      for (const id of [...state.docs.keys()]) if (!seen.has(id)) state.docs.delete(id);
    }
    reconcile(el.docs, lis);
    state.docsContinuation = cont;
    const lastDoc = docs.length ? docs[docs.length - 1] : null;
    if (lastDoc && typeof lastDoc.id === 'string') state.docsLastId = lastDoc.id;
    else if (!more) state.docsLastId = null;
    renderDocsState();
  });
}

function reloadDocs() {
  return loadDocs();
}

// Changes to single documents: fetch just those, in one debounced batch.
const pendingIds = new Set();
const flushChanged = debounce(() => {
  const ids = [...pendingIds];
  pendingIds.clear();
  if (ids.length === 0) return;
  if (ids.length > PER_ID_REFRESH_MAX) {
    reloadDocs();
    return;
  }
  const gen = state.docsGen;
  const c = state.selected;
  runDocs(async () => {
    if (gen !== state.docsGen || !c) return;
    const got = await Promise.all(ids.map(async (id) => {
      try {
        const { data } = await api('GET', docsPath(c, `/${seg(id)}`));
        return { id, doc: data };
      } catch (e) {
        if (e.status === 404) return { id, doc: null };
        return { id, error: e };
      }
    }));
    if (gen !== state.docsGen) return;
    if (got.some((g) => g.error)) {
      // Fall back to reading the list again (queued after this one).
      reloadDocs();
      return;
    }
    for (const { id, doc } of got) applyDoc(id, doc);
    renderDocsState();
  });
}, 150);

function docChanged(id) {
  if (typeof id !== 'string' || !id) return;
  pendingIds.add(id);
  flushChanged();
}

// applyDoc puts one document's new state into the loaded list: null removes it.
function applyDoc(id, doc) {
  const entry = state.docs.get(id);
  if (!doc || typeof doc !== 'object') {
    if (entry) {
      entry.li.remove();
      state.docs.delete(id);
    }
    return;
  }
  if (entry) {
    upsertDocEntry(doc);
    return;
  }
  // A new id: show it if it falls inside the loaded pages.
  if (state.docsContinuation && state.docsLastId !== null && cmpIds(id, state.docsLastId) > 0) return;
  const li = upsertDocEntry(doc).li;
  let before = null;
  for (const [other, e] of state.docs) {
    if (other !== id && cmpIds(other, id) > 0 && e.li.parentNode === el.docs) {
      if (!before || cmpIds(other, before.id) < 0) before = { id: other, li: e.li };
    }
  }
  el.docs.insertBefore(li, before ? before.li : null);
}

function upsertDocEntry(doc) {
  let entry = state.docs.get(doc.id);
  if (!entry) {
    entry = buildDocEntry(doc.id);
    state.docs.set(doc.id, entry);
  }
  if (!entry.doc || entry.doc._etag !== doc._etag || entry.doc._tentative !== doc._tentative ||
      entry.doc._lsn !== doc._lsn || doc._etag === undefined) {
    fillDocEntry(entry, doc);
  }
  entry.doc = doc;
  return entry;
}

function buildDocEntry(id) {
  const idCode = h('code', { text: id });
  const badge = h('span', { class: 'badge', 'data-testid': `edge-doc-badge-${id}` });
  const lsn = h('span', { class: 'doc-lsn' });
  const edit = h('button', { type: 'button', class: 'btn small', 'aria-label': `Edit ${id}` }, 'Edit');
  const meta = h('p', { class: 'doc-meta' });
  const pre = h('pre', { class: 'json', tabindex: '0', 'aria-label': `Document ${id} as JSON` });
  const li = h('li', { class: 'doc', 'data-testid': `edge-doc-${id}` },
    h('div', { class: 'doc-head' }, h('h3', { class: 'doc-id' }, idCode), badge, lsn, edit),
    meta, pre);
  const entry = { id, li, badge, lsn, meta, pre, doc: null };
  edit.addEventListener('click', () => editDoc(entry.doc));
  return entry;
}

function fillDocEntry(entry, doc) {
  const tentative = doc._tentative === true;
  setText(entry.badge, tentative ? 'tentative' : 'confirmed');
  entry.badge.className = `badge ${tentative ? 'tentative' : 'confirmed'}`;
  entry.li.dataset.tentative = tentative ? 'true' : 'false';
  setText(entry.lsn, !tentative && isNum(doc._lsn) ? `LSN ${doc._lsn}` : (tentative ? 'waiting for the hub' : ''));
  const bits = [];
  const def = state.containers.get(state.selected);
  if (def && def.partitionKey) {
    const pk = valueAt(doc, def.partitionKey);
    if (pk !== undefined) bits.push(`${def.partitionKey} = ${typeof pk === 'string' ? pk : JSON.stringify(pk)}`);
  }
  const written = fmtTime(doc._ts);
  if (written) bits.push(`written ${written}`);
  const confirmedAt = fmtTime(doc._crts);
  if (!tentative && confirmedAt) bits.push(`confirmed ${confirmedAt}`);
  setText(entry.meta, bits.join(' · '));
  setText(entry.pre, JSON.stringify(doc, null, 2));
}

// ---------------------------------------------------------------- outcomes

// ---------------------------------------------------------------- conflicts

const CONFLICTS_SHOWN = 50;

// loadConflicts reads the conflicts feed of the selected container as this
// node has it from the hub (its scope only) and shows the unresolved ones
// first, then the newest.
async function loadConflicts() {
  const gen = ++state.conflictsGen;
  const c = state.selected;
  setText(el.conflictsContainer, c || '—');
  if (!c) {
    el.conflicts.replaceChildren();
    setText(el.conflictsState, '');
    return;
  }
  const all = [];
  try {
    let cont = '';
    for (let page = 0; page < 20; page++) { // at most 20,000 records
      const { data } = await api('GET', `/containers/${seg(c)}/conflicts?limit=1000${cont ? `&continuation=${seg(cont)}` : ''}`);
      if (gen !== state.conflictsGen) return;
      const list = data && Array.isArray(data.conflicts) ? data.conflicts : [];
      all.push(...list);
      if (list.length < 1000 || !data.continuation) break;
      cont = data.continuation;
    }
  } catch (e) {
    if (gen === state.conflictsGen) setText(el.conflictsState, `Cannot read the conflicts: ${e.message}`);
    return;
  }
  const unresolved = all.filter((x) => x.status === 'unresolved').length;
  all.sort((a, b) => (a.status === b.status ? b.id - a.id : a.status === 'unresolved' ? -1 : 1));
  reconcile(el.conflicts, all.slice(0, CONFLICTS_SHOWN).map(buildConflict));
  setText(el.conflictsState, all.length === 0
    ? `No conflicts in ${c} that this node knows of (the hub sends those in its scope when it syncs).`
    : `${all.length} conflict${all.length === 1 ? '' : 's'} in ${c}, ${unresolved} unresolved${all.length > CONFLICTS_SHOWN ? ` (the first ${CONFLICTS_SHOWN} shown)` : ''}.`);
}

const scheduleConflicts = debounce(() => loadConflicts(), 200);

function conflictSide(label, v) {
  if (!v) return null;
  return h('p', { class: 'o-version' }, `${label}: `, h('code', { text: v.version || '?' }),
    ` from ${v.origin || '?'}${v.deleted ? ' (delete)' : ''}`);
}

function buildConflict(c) {
  const status = c.status === 'resolved' ? 'resolved' : 'unresolved';
  const loser = c.loser === 'existing' ? c.existing : c.incoming;
  const detail = status === 'unresolved'
    ? 'awaiting a decision at the hub; the existing version stays'
    : `decided by ${c.policy || '?'}${c.resolver ? ` (${c.resolver})` : ''}${isNum(c.winnerLsn) && c.winnerLsn > 0 ? `; the winner is at LSN ${c.winnerLsn}` : ''}`;
  return h('li', { class: 'outcome', 'data-testid': `edge-conflict-${c.id}`, 'data-status': status },
    h('div', { class: 'o-head' },
      h('span', { class: `badge ${status === 'resolved' ? 'o-confirmed' : 'o-lost'}`, text: status }),
      h('span', { class: 'o-doc' }, h('code', { text: c.docId || '?' }), ` · ${c.kind || '?'} conflict #${c.id}`)),
    h('p', { class: 'o-detail', text: detail }),
    loser ? conflictSide(`lost (${c.loser})`, loser) : null,
    c.reason ? h('p', { class: 'o-reason' }, 'Reason: ', h('span', { text: c.reason })) : null);
}

const OUTCOME_TEXT = {
  confirmed: (r) => (r.lsn ? `confirmed at LSN ${r.lsn}` : 'confirmed by the hub'),
  merged: (r) => (r.lsn ? `merged with a concurrent write into LSN ${r.lsn}` : 'merged with a concurrent write'),
  lost: (r) => (r.lsn ? `lost to a concurrent write: the winner is at LSN ${r.lsn}` : 'lost in a conflict: awaiting resolution at the hub'),
  rejected: () => 'refused by the hub',
};

function addOutcome(rec) {
  if (!rec || rec.op !== 'outcome' || typeof rec.version !== 'string' || !rec.version) return false;
  const prev = state.outcomes.get(rec.version);
  const seq = isNum(rec.seq) ? rec.seq : 0;
  if (prev && (prev.rec.seq || 0) >= seq && seq !== 0) return false; // already have this or newer
  const entry = prev || { li: null, rec: null };
  entry.rec = { ...rec, seq: seq || (prev ? prev.rec.seq : 0) || Number.MAX_SAFE_INTEGER };
  entry.li = buildOutcome(entry.rec, entry.li);
  state.outcomes.set(rec.version, entry);
  return true;
}

function buildOutcome(r, old) {
  const outcome = typeof r.outcome === 'string' && r.outcome ? r.outcome : 'unknown';
  const lsn = isNum(r.lsn) && r.lsn > 0 ? r.lsn : 0;
  const detail = (OUTCOME_TEXT[outcome] || (() => outcome))({ ...r, lsn });
  const li = h('li', { class: 'outcome', 'data-testid': `outcome-${r.version}`, 'data-outcome': outcome },
    h('div', { class: 'o-head' },
      h('span', { class: `badge o-${outcome}`, text: outcome }),
      h('span', { class: 'o-doc' },
        h('span', { class: 'o-container', text: r.container || '?' }), ' / ', h('code', { text: r.id || '?' }))),
    h('p', { class: 'o-detail', text: detail }),
    r.reason ? h('p', { class: 'o-reason' }, 'Reason: ', h('span', { text: r.reason })) : null,
    h('p', { class: 'o-version' }, 'version ', h('code', { text: r.version })));
  if (lsn) li.dataset.lsn = String(lsn);
  if (old && old.parentNode) old.replaceWith(li);
  return li;
}

const renderOutcomes = debounce(() => {
  const entries = [...state.outcomes.values()].sort((a, b) => b.rec.seq - a.rec.seq);
  for (const e of entries.slice(OUTCOMES_KEPT)) state.outcomes.delete(e.rec.version);
  reconcile(el.outcomes, entries.slice(0, OUTCOMES_KEPT).map((e) => e.li));
  el.outcomesEmpty.hidden = entries.length > 0;
}, 100);

// backfillOutcomes reads the tail of each container's local feed for outcome
// records, so that the page shows recent outcomes on load and after a
// reconnect, not only those that arrive while it is open.
async function backfillOutcomes() {
  const lastSeq = state.status && isNum(state.status.lastSeq) ? state.status.lastSeq : null;
  if (lastSeq === 0) return;
  const since0 = lastSeq === null ? 0 : Math.max(0, lastSeq - OUTCOME_BACKFILL);
  let added = false;
  await Promise.all([...state.containers.keys()].map(async (c) => {
    let since = since0;
    for (let page = 0; page < 3; page++) {
      let data;
      try {
        ({ data } = await api('GET', `/containers/${seg(c)}/changes?outcomes=true&since=${since}&limit=1000`));
      } catch {
        return;
      }
      const changes = data && Array.isArray(data.changes) ? data.changes : [];
      for (const ch of changes) {
        if (ch && ch.op === 'outcome' && addOutcome({ ...ch, container: ch.container || c })) added = true;
      }
      const next = Number(data && data.continuation);
      if (changes.length < 1000 || !Number.isFinite(next) || next <= since) return;
      since = next;
    }
  }));
  if (added) renderOutcomes();
}

// ---------------------------------------------------------------- write form

function fieldError(msg, field) {
  show(el.writeError, msg);
  setText(el.writeOk, '');
  for (const f of [el.writeBody, el.writeId, el.writeContainer]) f.removeAttribute('aria-invalid');
  if (field) {
    field.setAttribute('aria-invalid', 'true');
    field.focus();
  }
}

function clearWriteMessages() {
  show(el.writeError, '');
  setText(el.writeOk, '');
  for (const f of [el.writeBody, el.writeId, el.writeContainer]) f.removeAttribute('aria-invalid');
}

// describeJSONError turns JSON.parse's message into one with a line and
// column, whatever the browser's wording.
function describeJSONError(err, text) {
  let msg = String(err && err.message ? err.message : err);
  const m = /position (\d+)/.exec(msg);
  if (m && !/line \d+/.test(msg)) {
    const pos = Math.min(Number(m[1]), text.length);
    const before = text.slice(0, pos);
    const line = before.split('\n').length;
    const col = pos - before.lastIndexOf('\n');
    msg += ` (line ${line}, column ${col})`;
  }
  return msg;
}

function depthOf(v) {
  let max = 0;
  const stack = [[v, 1]];
  while (stack.length) {
    const [x, d] = stack.pop();
    if (x === null || typeof x !== 'object') continue;
    if (d > max) max = d;
    if (max > MAX_DEPTH) return max;
    for (const k of Object.keys(x)) stack.push([x[k], d + 1]);
  }
  return max;
}

function validateId(id) {
  if (id.length === 0) return 'The id is empty.';
  if (new TextEncoder().encode(id).length > 1023) return 'The id is longer than 1023 bytes.';
  if (/[/\\?#]/.test(id)) return 'The id cannot contain /, \\, ? or #.';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(id)) return 'The id cannot contain control characters.';
  return '';
}

async function onWrite(ev) {
  ev.preventDefault();
  clearWriteMessages();
  const c = el.writeContainer.value;
  if (!c) {
    fieldError('Choose a container first. This node has none yet: they arrive from the hub on the first sync.', el.writeContainer);
    return;
  }
  const text = el.writeBody.value;
  if (!text.trim()) {
    fieldError('The document is empty: write a JSON object such as {"id": "a1"}.', el.writeBody);
    return;
  }
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    fieldError(`This is not valid JSON: ${describeJSONError(e, text)}.`, el.writeBody);
    return;
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    const kind = doc === null ? 'null' : Array.isArray(doc) ? 'an array' : `a ${typeof doc}`;
    fieldError(`The document must be a JSON object ({ … }), not ${kind}.`, el.writeBody);
    return;
  }
  let id = el.writeId.value;
  if (id === '') {
    if (typeof doc.id !== 'string' || doc.id === '') {
      fieldError('The document needs a string "id" (or fill in the ID field).', doc.id === undefined ? el.writeId : el.writeBody);
      return;
    }
    id = doc.id;
  } else if (doc.id === undefined) {
    doc = { id, ...doc };
  } else if (doc.id !== id) {
    fieldError(`The ID field (${JSON.stringify(id)}) differs from the body's "id" (${JSON.stringify(doc.id)}).`, el.writeId);
    return;
  }
  const idErr = validateId(id);
  if (idErr) {
    fieldError(idErr, el.writeId.value === '' ? el.writeBody : el.writeId);
    return;
  }
  if (depthOf(doc) > MAX_DEPTH) {
    fieldError(`The document is nested more than ${MAX_DEPTH} levels deep.`, el.writeBody);
    return;
  }
  const payload = JSON.stringify(doc);
  const size = new TextEncoder().encode(payload).length;
  if (size > MAX_DOC_BYTES) {
    fieldError(`The document is ${size} bytes: the limit is ${MAX_DOC_BYTES} (2 MiB).`, el.writeBody);
    return;
  }
  const create = el.writeCreate.checked;
  el.writeSubmit.disabled = true;
  el.form.setAttribute('aria-busy', 'true');
  try {
    const { status, data } = create
      ? await api('POST', docsPath(c, ''), payload)
      : await api('PUT', docsPath(c, `/${seg(id)}`), payload);
    const how = status === 201 ? 'Created' : 'Replaced';
    const tent = data && data._tentative === true ? ': tentative until the hub confirms it' : '';
    setText(el.writeOk, `${how} ${id} in ${c}${tent}.`);
    if (c === state.selected) {
      if (data && typeof data === 'object' && data.id === id) {
        runDocs(() => { applyDoc(id, data); renderDocsState(); });
      }
      docChanged(id);
    }
  } catch (e) {
    let msg;
    if (e.status === 409 && create) msg = `A document with id ${JSON.stringify(id)} already exists in ${c} (uncheck "Create only" to replace it).`;
    else if (e.status === 403) msg = `This node may not write that: ${e.message}`;
    else if (e.status === 0) msg = `The write did not reach the node: ${e.message}.`;
    else msg = `The node refused the write (${e.status} ${e.code}): ${e.message}`;
    fieldError(msg, e.status === 400 ? el.writeBody : null);
  } finally {
    el.writeSubmit.disabled = false;
    el.form.removeAttribute('aria-busy');
  }
}

function onFormat() {
  clearWriteMessages();
  const text = el.writeBody.value;
  try {
    el.writeBody.value = JSON.stringify(JSON.parse(text), null, 2);
  } catch (e) {
    fieldError(`This is not valid JSON: ${describeJSONError(e, text)}.`, el.writeBody);
  }
}

function editDoc(doc) {
  if (!doc) return;
  const body = {};
  for (const [k, v] of Object.entries(doc)) if (!SYSTEM_PROPS.includes(k)) body[k] = v;
  clearWriteMessages();
  if ([...el.writeContainer.options].some((o) => o.value === state.selected)) el.writeContainer.value = state.selected;
  el.writeId.value = doc.id;
  el.writeCreate.checked = false;
  el.writeBody.value = JSON.stringify(body, null, 2);
  el.form.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  el.writeBody.focus({ preventScroll: true });
}

// ---------------------------------------------------------------- live events

const live = {
  es: null,
  retryMs: 1000,
  retryTimer: null,
  watchdog: null,
};

function setLive(s) {
  const text = { live: 'live', reconnecting: 'reconnecting…', connecting: 'connecting…', unsupported: 'no live updates' }[s] || s;
  setText(el.live, text);
  el.live.dataset.state = s;
  el.statusCard.classList.toggle('stale', s !== 'live');
}

function armWatchdog() {
  clearTimeout(live.watchdog);
  live.watchdog = setTimeout(() => reconnectLater(), WATCHDOG_MS);
}

function reconnectLater() {
  clearTimeout(live.watchdog);
  clearTimeout(live.retryTimer);
  if (live.es) live.es.close();
  live.es = null;
  setLive('reconnecting');
  live.retryTimer = setTimeout(connectEvents, live.retryMs);
  live.retryMs = Math.min(live.retryMs * 2, 30000);
}

function connectEvents() {
  clearTimeout(live.retryTimer);
  if (typeof EventSource === 'undefined') {
    setLive('unsupported');
    return;
  }
  const es = new EventSource(`${API}/events`);
  live.es = es;
  es.addEventListener('open', () => {
    if (live.es !== es) return;
    live.retryMs = 1000;
    setLive('live');
    armWatchdog();
    // Whatever happened while the stream was down (or before it first
    // opened) is read again once; from here on events keep the page current.
    resync();
  });
  es.addEventListener('status', (e) => {
    if (live.es !== es) return;
    armWatchdog();
    if (el.live.dataset.state !== 'live') setLive('live');
    renderStatus(parseJSON(e.data));
  });
  es.addEventListener('change', (e) => {
    if (live.es !== es) return;
    armWatchdog();
    onChange(parseJSON(e.data));
  });
  es.addEventListener('error', (e) => {
    if (live.es !== es) return;
    if (typeof e.data === 'string' && e.data) {
      // An "error" event the node sent: show it, the stream goes on.
      const body = parseJSON(e.data);
      notice(`Live updates: ${body && body.message ? body.message : e.data}`);
      return;
    }
    clearTimeout(live.watchdog);
    if (es.readyState === EventSource.CLOSED) reconnectLater(); // the browser gave up: retry with backoff
    else setLive('reconnecting'); // the browser retries by itself
  });
}

function onChange(ch) {
  if (!ch || typeof ch !== 'object') return;
  const c = typeof ch.container === 'string' ? ch.container : '';
  if (ch.op === 'outcome' && addOutcome(ch)) renderOutcomes();
  if (c && !state.containers.has(c)) scheduleContainers();
  if (c && c === state.selected) {
    if (ch.op === 'delete' && ch.tentative === true && typeof ch.id === 'string') {
      // This node's own delete: the document is gone here, nothing to read.
      runDocs(() => { applyDoc(ch.id, null); renderDocsState(); });
    } else {
      docChanged(ch.id);
    }
  }
}

const resync = debounce(async () => {
  await Promise.all([refreshStatus(), loadContainers({ withDocs: true })]);
  backfillOutcomes();
  loadConflicts();
}, 50);

// ---------------------------------------------------------------- live query

// The live query box: GET .../query/live (Server-Sent Events) sends the
// first page of the result, then again whenever a commit changes it. The
// query is first run once with POST .../query, whose error (the column of
// a bad query) EventSource could not read.
const liveQuery = { es: null };

function stopQuery(msg) {
  if (liveQuery.es) liveQuery.es.close();
  liveQuery.es = null;
  el.queryStop.disabled = true;
  if (msg !== undefined) setText(el.queryState, msg);
}

async function onQuery(e) {
  e.preventDefault();
  stopQuery();
  show(el.queryError, '');
  const c = el.queryContainer.value;
  const q = el.queryText.value.trim();
  if (!c || !q) {
    show(el.queryError, !c ? 'Choose a container.' : 'Write a query.');
    return;
  }
  try {
    await api('POST', `/containers/${seg(c)}/query`, JSON.stringify({ query: q, limit: 1 }));
  } catch (err) {
    show(el.queryError, err.message);
    return;
  }
  if (typeof EventSource === 'undefined') {
    show(el.queryError, 'This browser has no EventSource.');
    return;
  }
  const es = new EventSource(`${API}/containers/${seg(c)}/query/live?q=${seg(q)}`);
  liveQuery.es = es;
  el.queryStop.disabled = false;
  setText(el.queryState, 'Waiting for the result…');
  es.addEventListener('result', (ev) => {
    if (liveQuery.es !== es) return;
    const page = parseJSON(ev.data);
    const docs = page && Array.isArray(page.documents) ? page.documents : [];
    setText(el.queryResult, JSON.stringify(docs, null, 2));
    const more = page && page.continuation ? ' (first page)' : '';
    setText(el.queryState, `${docs.length} result${docs.length === 1 ? '' : 's'}${more}, updated ${new Date().toLocaleTimeString()}`);
  });
  es.addEventListener('error', (ev) => {
    if (liveQuery.es !== es) return;
    if (typeof ev.data === 'string' && ev.data) {
      const body = parseJSON(ev.data);
      show(el.queryError, body && body.message ? body.message : ev.data);
      stopQuery('Stopped.');
      return;
    }
    // The connection broke; EventSource reconnects and the result is sent again.
    setText(el.queryState, 'Reconnecting…');
  });
}

// ---------------------------------------------------------------- start

function start() {
  el.toggle.addEventListener('click', toggleOffline);
  el.docsContainer.addEventListener('change', () => {
    selectContainer(el.docsContainer.value);
    // The write form follows the container being looked at.
    if ([...el.writeContainer.options].some((o) => o.value === state.selected)) el.writeContainer.value = state.selected;
  });
  el.docsMore.addEventListener('click', () => loadDocs({ more: true }));
  el.form.addEventListener('submit', onWrite);
  el.writeFormat.addEventListener('click', onFormat);
  el.queryForm.addEventListener('submit', onQuery);
  el.queryStop.addEventListener('click', () => stopQuery('Stopped.'));
  el.queryText.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      el.queryForm.requestSubmit();
    }
  });
  for (const f of [el.writeBody, el.writeId]) {
    f.addEventListener('input', () => {
      f.removeAttribute('aria-invalid');
      setText(el.writeOk, '');
    });
  }
  el.writeBody.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      el.form.requestSubmit();
    }
  });
  setLive('connecting');
  connectEvents();
  resync(); // reads everything once even if the event stream never opens
}

start();
