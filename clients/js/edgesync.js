// edgesync.js: a dependency-free client for the HTTP API of an edgesync
// edge node (edgenode) or hub (cloudhub), for browsers and Node 20+.
// docs/api.md describes the API; clients/js/README.md this module.
//
//   import { Client } from './edgesync.js';
//   const edge = new Client('http://127.0.0.1:7070');
//   await edge.create('products', { id: 'p1', category: 'tools', price: 12 });
//
// Retries: a call is sent again (exponential backoff with full jitter, at
// most maxAttempts in all) only when that cannot do something twice: a GET,
// a HEAD, a PUT without ifMatch, a query and the sync on/off switches after a
// network error or a 502, 503 or 504; any call, a POST included, when the
// connection was refused (Node reports it; a browser does not say, so
// there a POST is never sent again). A POST create, a PUT with ifMatch and
// a DELETE are otherwise sent once: the caller reads the state and decides.

/** Defaults of the Client options. */
export const DEFAULTS = Object.freeze({
  maxAttempts: 4,
  minBackoffMs: 100,
  maxBackoffMs: 2000,
  maxResponseBytes: 64 << 20,
});

/** An error answer of the API: its status and its {code, message} body. */
export class EdgesyncError extends Error {
  constructor(status, code, message) {
    super(`edgesync: ${status} ${code}${message ? `: ${message}` : ''}`);
    this.name = 'EdgesyncError';
    this.status = status;
    this.code = code;
    this.detail = message;
  }
  get notFound() { return this.status === 404; }
  get conflict() { return this.status === 409; }
  get preconditionFailed() { return this.status === 412; }
  get notModified() { return this.status === 304; }
  get unauthorized() { return this.status === 401; }
  get forbidden() { return this.status === 403; }
}

const RETRY_UNSENT = 0; // only when no byte reached the server
const RETRY_IDEMPOTENT = 1; // also after a network error or 502/503/504

const sleep = (ms, signal) => new Promise((resolve, reject) => {
  if (signal?.aborted) return reject(signal.reason);
  const t = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason); }, { once: true });
});

// refused reports whether a fetch error says that the connection could not
// be made (Node's undici gives the cause; browsers give none).
function refused(err) {
  const code = err?.cause?.code ?? err?.cause?.cause?.code;
  return code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH';
}

const seg = encodeURIComponent;

export class Client {
  /**
   * @param {string} url the node's base URL, e.g. "http://127.0.0.1:7070"
   * @param {object} [opts]
   * @param {string} [opts.token] sent as Authorization: Bearer (hub admin token, edge local token)
   * @param {typeof fetch} [opts.fetch]
   * @param {number} [opts.maxAttempts] most times one call is sent (1: never retried)
   * @param {number} [opts.minBackoffMs]
   * @param {number} [opts.maxBackoffMs]
   * @param {number} [opts.maxResponseBytes] bound of a response body
   * @param {typeof EventSource} [opts.EventSource] for live(); default the global one
   */
  constructor(url, opts = {}) {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`edgesync: URL ${url}: want http(s)://host[:port]`);
    this.url = u.href.replace(/\/+$/, '');
    this.token = opts.token || '';
    this.fetch = opts.fetch || globalThis.fetch.bind(globalThis);
    this.EventSource = opts.EventSource ?? globalThis.EventSource;
    this.maxAttempts = opts.maxAttempts > 0 ? opts.maxAttempts : DEFAULTS.maxAttempts;
    this.minBackoffMs = opts.minBackoffMs > 0 ? opts.minBackoffMs : DEFAULTS.minBackoffMs;
    this.maxBackoffMs = Math.max(this.minBackoffMs, opts.maxBackoffMs > 0 ? opts.maxBackoffMs : DEFAULTS.maxBackoffMs);
    this.maxResponseBytes = opts.maxResponseBytes > 0 ? opts.maxResponseBytes : DEFAULTS.maxResponseBytes;
  }

  backoff(attempt) {
    const ceil = Math.min(this.maxBackoffMs, this.minBackoffMs * 2 ** (attempt - 1));
    return 1 + Math.random() * ceil;
  }

  // request sends one call with the retry rule and returns
  // { status, headers, json } for a status in ok, or throws.
  async request(method, path, { body, headers = {}, ok = [200], retry = RETRY_IDEMPOTENT, signal } = {}) {
    const h = { Accept: 'application/json', ...headers };
    if (this.token) h.Authorization = `Bearer ${this.token}`;
    let payload;
    if (body !== undefined) {
      payload = JSON.stringify(body);
      if (!h['Content-Type']) h['Content-Type'] = 'application/json';
    }
    let last;
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      if (attempt > 0) await sleep(this.backoff(attempt), signal);
      let res;
      try {
        res = await this.fetch(this.url + path, { method, headers: h, body: payload, signal });
      } catch (err) {
        if (signal?.aborted) throw err;
        last = err;
        if (refused(err) || retry === RETRY_IDEMPOTENT) continue;
        throw err;
      }
      if (ok.includes(res.status)) {
        const text = await readLimited(res, this.maxResponseBytes);
        return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : null };
      }
      last = await apiError(res);
      if (retry === RETRY_IDEMPOTENT && (res.status === 502 || res.status === 503 || res.status === 504)) continue;
      throw last;
    }
    throw last;
  }

  // ---------------------------------------------------------- status

  /** GET /api/v1/status (an edge's or the hub's). */
  async status(opts) { return (await this.request('GET', '/api/v1/status', opts)).json; }

  /** Turns an edge's syncing on or off. */
  async setOnline(online, opts) {
    await this.request('POST', `/api/v1/sync/${online ? 'online' : 'offline'}`, { ok: [204], ...opts });
  }

  // ---------------------------------------------------------- containers

  async containers(opts) { return (await this.request('GET', '/api/v1/containers', opts)).json.containers; }

  async container(name, opts) { return (await this.request('GET', `/api/v1/containers/${seg(name)}`, opts)).json; }

  /** Creates a container or changes its policy: { container, created }. */
  async putContainer(name, def, opts) {
    const r = await this.request('PUT', `/api/v1/containers/${seg(name)}`, { body: def, ok: [200, 201], ...opts });
    return { container: r.json, created: r.status === 201 };
  }

  // ---------------------------------------------------------- documents

  /** Creates a document; 409 (error.conflict) when the id exists. Sent once. */
  async create(container, doc, opts) {
    const r = await this.request('POST', `/api/v1/containers/${seg(container)}/docs`,
      { body: doc, ok: [201], retry: RETRY_UNSENT, ...opts });
    return r.json;
  }

  /**
   * Reads a document (its _etag is the ETag). ifNoneMatch: an error with
   * notModified when unchanged; consistency "confirmed" on an edge reads the
   * hub-confirmed version.
   */
  async get(container, id, { consistency, ifNoneMatch, signal } = {}) {
    const q = consistency ? `?consistency=${seg(consistency)}` : '';
    const headers = ifNoneMatch ? { 'If-None-Match': ifNoneMatch } : {};
    return (await this.request('GET', `/api/v1/containers/${seg(container)}/docs/${seg(id)}${q}`, { headers, signal })).json;
  }

  /** Creates or replaces a document: { doc, created }. ifMatch: 412 when the item moved on. */
  async put(container, id, doc, { ifMatch, signal } = {}) {
    const r = await this.request('PUT', `/api/v1/containers/${seg(container)}/docs/${seg(id)}`, {
      body: doc, ok: [200, 201], signal,
      headers: ifMatch ? { 'If-Match': ifMatch } : {},
      retry: ifMatch ? RETRY_UNSENT : RETRY_IDEMPOTENT,
    });
    return { doc: r.json, created: r.status === 201 };
  }

  /** Deletes a document; 404 when there is none. Sent once. */
  async delete(container, id, { ifMatch, signal } = {}) {
    await this.request('DELETE', `/api/v1/containers/${seg(container)}/docs/${seg(id)}`, {
      ok: [204], signal, retry: RETRY_UNSENT, headers: ifMatch ? { 'If-Match': ifMatch } : {},
    });
  }

  /** A page of live documents: { documents, continuation } (null on the last page). */
  async list(container, { pk, limit, continuation, consistency, signal } = {}) {
    const q = new URLSearchParams();
    if (pk !== undefined) q.set('pk', pk);
    if (limit) q.set('limit', String(limit));
    if (continuation) q.set('continuation', continuation);
    if (consistency) q.set('consistency', consistency);
    const qs = q.size ? `?${q}` : '';
    return (await this.request('GET', `/api/v1/containers/${seg(container)}/docs${qs}`, { signal })).json;
  }

  /** Every live document, a page at a time. */
  async *listAll(container, opts = {}) {
    let continuation = opts.continuation;
    for (let pages = 0; pages < 1 << 20; pages++) {
      const p = await this.list(container, { ...opts, continuation });
      yield* p.documents;
      if (!p.continuation || p.continuation === continuation) return;
      continuation = p.continuation;
    }
  }

  // ---------------------------------------------------------- queries

  /**
   * Runs a query (docs/queries.md): { documents, continuation } (null on the
   * last page). It changes nothing, so it is retried like a GET. A query
   * that does not parse: 400 bad_query; past the node's time limit: 408
   * query_timeout.
   */
  async query(container, { query, parameters, limit, continuation, consistency, signal } = {}) {
    const body = { query };
    if (parameters) body.parameters = parameters;
    if (limit) body.limit = limit;
    if (continuation) body.continuation = continuation;
    if (consistency) body.consistency = consistency;
    return (await this.request('POST', `/api/v1/containers/${seg(container)}/query`, { body, signal })).json;
  }

  /** Every result of a query, a page at a time. */
  async *queryAll(container, opts = {}) {
    let continuation = opts.continuation;
    for (let pages = 0; pages < 1 << 20; pages++) {
      const p = await this.query(container, { ...opts, continuation });
      yield* p.documents;
      if (!p.continuation || p.continuation === continuation) return;
      continuation = p.continuation;
    }
  }

  // ---------------------------------------------------------- change feed

  /** A page of the change feed after since: { changes, next }. */
  async changes(container, { since = 0, limit, outcomes = false, signal } = {}) {
    const q = new URLSearchParams({ since: String(since) });
    if (limit) q.set('limit', String(limit));
    if (outcomes) q.set('outcomes', 'true');
    const r = await this.request('GET', `/api/v1/containers/${seg(container)}/changes?${q}`, { signal });
    return { changes: r.json.changes, next: Number(r.json.continuation) };
  }

  /**
   * What the hub decided for this edge's writes after since: the outcome
   * records ({ version, id, outcome: confirmed|merged|lost|rejected, lsn,
   * reason }) and the position to read on from.
   */
  async outcomes(container, { since = 0, limit, signal } = {}) {
    const p = await this.changes(container, { since, limit, outcomes: true, signal });
    return { outcomes: p.changes.filter((c) => c.op === 'outcome'), next: p.next };
  }

  /**
   * Live change records: onChange(record) for each record after since, as
   * they are committed, until close(). In a browser this is an EventSource
   * (which reconnects by itself, resuming after the last record); where
   * there is none (Node 20) or with { transport: 'fetch' }, a fetch stream
   * that does the same and can carry the token. An EventSource cannot send
   * Authorization: against a node that needs a token, use the fetch
   * transport. onError(err) hears of errors; the stream goes on retrying
   * unless the server ended it with an error event.
   */
  live(container, { since = 0, outcomes = false, transport, onChange, onError = () => {}, onOpen = () => {} } = {}) {
    const q = new URLSearchParams({ stream: 'true', since: String(since) });
    if (outcomes) q.set('outcomes', 'true');
    const url = `${this.url}/api/v1/containers/${seg(container)}/changes?${q}`;
    const useES = transport !== 'fetch' && typeof this.EventSource === 'function';
    return useES ? liveEventSource(this, url, onChange, onError, onOpen) : liveFetch(this, url, since, onChange, onError, onOpen);
  }

  // ---------------------------------------------------------- conflicts, hub

  /** A page of the conflicts feed: { conflicts, next }. */
  async conflicts(container, { status, limit, after, signal } = {}) {
    const q = new URLSearchParams();
    if (status) q.set('status', status);
    if (limit) q.set('limit', String(limit));
    if (after) q.set('continuation', String(after));
    const qs = q.size ? `?${q}` : '';
    const r = await this.request('GET', `/api/v1/containers/${seg(container)}/conflicts${qs}`, { signal });
    return { conflicts: r.json.conflicts, next: Number(r.json.continuation) };
  }

  /** Hub: settles a conflict with { keep: 'existing'|'incoming' } or { document }. Sent once. */
  async resolveConflict(container, id, resolution, opts) {
    return (await this.request('POST', `/api/v1/containers/${seg(container)}/conflicts/${Number(id)}/resolve`,
      { body: resolution, retry: RETRY_UNSENT, ...opts })).json;
  }

  /** Hub: registers an edge; the answer's token is shown once. Sent once. */
  async registerEdge(name, scope, opts) {
    const body = scope ? { name, scope } : { name };
    return (await this.request('POST', '/api/v1/edges', { body, ok: [201], retry: RETRY_UNSENT, ...opts })).json;
  }

  async edges(opts) { return (await this.request('GET', '/api/v1/edges', opts)).json.edges; }

  async revokeEdge(name, opts) {
    await this.request('DELETE', `/api/v1/edges/${seg(name)}`, { ok: [204], retry: RETRY_UNSENT, ...opts });
  }
}

// apiError reads an error answer.
async function apiError(res) {
  let text = '';
  try { text = await readLimited(res, 64 << 10); } catch { /* keep the status */ }
  try {
    const b = JSON.parse(text);
    if (b && typeof b.code === 'string') return new EdgesyncError(res.status, b.code, b.message || '');
  } catch { /* not the API's body */ }
  const code = (res.statusText || `status_${res.status}`).toLowerCase().replace(/ /g, '_');
  return new EdgesyncError(res.status, code, text.slice(0, 200));
}

// readLimited reads a body as text, failing past limit bytes.
async function readLimited(res, limit) {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
    if (n > limit) {
      await reader.cancel();
      throw new Error(`edgesync: response over ${limit} bytes`);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) { all.set(c, off); off += c.byteLength; }
  return new TextDecoder().decode(all);
}

function streamError(data) {
  try {
    const b = JSON.parse(data);
    return new EdgesyncError(b.code === 'container_not_found' || b.code === 'not_found' ? 404 : 500, b.code, b.message);
  } catch {
    return new EdgesyncError(500, 'internal', String(data));
  }
}

function liveEventSource(client, url, onChange, onError, onOpen) {
  const es = new client.EventSource(url);
  es.addEventListener('open', () => onOpen());
  es.addEventListener('change', (ev) => onChange(JSON.parse(ev.data)));
  es.addEventListener('error', (ev) => {
    if (ev.data) { // the server's error event: the stream is over
      es.close();
      onError(streamError(ev.data));
      return;
    }
    onError(new Error(es.readyState === 2 ? 'edgesync: live stream closed' : 'edgesync: live stream reconnecting'));
  });
  return { close: () => es.close() };
}

const MAX_EVENT_BYTES = 8 << 20;

function liveFetch(client, url, since, onChange, onError, onOpen) {
  const ctl = new AbortController();
  let last = since;
  let failures = 0;
  (async () => {
    while (!ctl.signal.aborted) {
      try {
        const headers = { Accept: 'text/event-stream', 'Last-Event-ID': String(last) };
        if (client.token) headers.Authorization = `Bearer ${client.token}`;
        const res = await client.fetch(url, { headers, signal: ctl.signal });
        if (res.status !== 200) {
          const err = await apiError(res);
          if (res.status !== 502 && res.status !== 503 && res.status !== 504) { onError(err); return; }
          throw err;
        }
        failures = 0;
        onOpen();
        const ended = await readEvents(res, (ev) => {
          if (ev.event === 'change') {
            const rec = JSON.parse(ev.data);
            last = rec.seq > 0 ? rec.seq : rec.lsn;
            onChange(rec);
          } else if (ev.event === 'error') {
            onError(streamError(ev.data));
            return true;
          }
          return false;
        });
        if (ended) return;
      } catch (err) {
        if (ctl.signal.aborted) return;
        onError(err);
      }
      failures++;
      try { await sleep(client.backoff(Math.min(failures, 10)), ctl.signal); } catch { return; }
    }
  })();
  return { close: () => ctl.abort() };
}

// readEvents parses a Server-Sent Events body, calling on(event) for each
// until it returns true (the stream is over: resolves true) or the body
// ends (resolves false).
async function readEvents(res, on) {
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  let ev = { event: 'message', data: [] };
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return false;
    buf += dec.decode(value, { stream: true });
    if (buf.length > MAX_EVENT_BYTES) throw new Error(`edgesync: a stream event over ${MAX_EVENT_BYTES} bytes`);
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).replace(/\r$/, '');
      buf = buf.slice(i + 1);
      if (line === '') {
        if (ev.data.length) {
          if (on({ event: ev.event, data: ev.data.join('\n') })) { await reader.cancel(); return true; }
        }
        ev = { event: 'message', data: [] };
      } else if (!line.startsWith(':')) {
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        const v = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
        if (field === 'event') ev.event = v;
        else if (field === 'data') ev.data.push(v);
      }
    }
  }
}
