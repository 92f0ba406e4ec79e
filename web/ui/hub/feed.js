// The live change feed: every log record the hub confirms, newest first.
// It fills from the event stream; on (re)connect it catches up from each
// container's change feed, so nothing confirmed while the stream was down is
// missing.

import { enc, qs } from "/ui/api.js";
import { badge, fill, fmtTime, h } from "/ui/dom.js";

const KEEP = 200; // records kept on screen
const BACKFILL = 50; // records read per container on connect

let ctx;
let records = []; // newest first
const seen = new Set(); // LSNs on screen
let lastLsn = 0;
let needBackfill = false;
let paused = false;
let held = []; // records that came while paused

function init(c) {
  ctx = c;
  ctx.bus.on("connected", () => { needBackfill = true; });
  ctx.bus.on("status", (s) => {
    if (!needBackfill) return;
    needBackfill = false;
    backfill(lastLsn || Math.max(0, (s.lsn || 0) - BACKFILL));
  });
  ctx.bus.on("change", (ch) => add([ch]));
  ctx.bus.on("logout", () => {
    records = [];
    held = [];
    seen.clear();
    lastLsn = 0;
    render();
  });
  const pause = document.getElementById("feed-pause");
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? `Resume${held.length ? ` (${held.length} new)` : ""}` : "Pause";
    if (!paused) {
      const h2 = held;
      held = [];
      add(h2);
    }
  });
}

async function backfill(since) {
  let names = ctx.state.containers.map((c) => c.name);
  if (!names.length) names = (await ctx.loadContainers()).map((c) => c.name);
  const got = [];
  await Promise.all(names.map(async (name) => {
    try {
      const r = await ctx.api(`/api/v1/containers/${enc(name)}/changes${qs({ since, limit: BACKFILL })}`);
      for (const ch of r.changes || []) got.push({ ...ch, container: name, document: undefined });
    } catch {
      // a container removed meanwhile, or the session ended (handled)
    }
  }));
  add(got);
}

function add(list) {
  const fresh = list.filter((ch) => typeof ch.lsn === "number" && !seen.has(ch.lsn));
  if (!fresh.length) return;
  for (const ch of fresh) {
    lastLsn = Math.max(lastLsn, ch.lsn);
  }
  if (paused) {
    held.push(...fresh);
    document.getElementById("feed-pause").textContent = `Resume (${held.length} new)`;
    return;
  }
  for (const ch of fresh) seen.add(ch.lsn);
  records = records.concat(fresh).sort((a, b) => b.lsn - a.lsn);
  for (const old of records.splice(KEEP)) seen.delete(old.lsn);
  scheduleRender();
}

let renderQueued = false;
/** Bursts of records render once, and only while the feed is on screen. */
function scheduleRender() {
  if (renderQueued || ctx.state.view !== "feed") return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

function render() {
  const ol = document.getElementById("feed-list");
  fill(ol, records.length ? null : h("li", { class: "muted empty" }, "Waiting for writes…"),
    records.map((ch) => {
      const who = ctx.originName(ch.origin);
      return h("li", { class: "feed-item", dataset: { lsn: String(ch.lsn) } },
        h("span", { class: "feed-lsn" }, `LSN ${ch.lsn}`),
        badge(ch.op, ch.op === "delete" ? "warn" : "info"),
        h("a", { href: `#/documents?c=${encodeURIComponent(ch.container)}&id=${encodeURIComponent(ch.id)}` }, `${ch.container} / ${ch.id}`),
        h("span", { class: "hint" }, `from ${who}${who !== ch.origin ? ` (${ch.origin})` : ""}`),
        h("span", { class: "hint" }, [ch.policy ? `policy ${ch.policy}` : null, ch.resolver ? `resolver ${ch.resolver}` : null].filter(Boolean).join(" · ")),
        ch.resolves ? [badge("resolution", "resolved"), h("span", { class: "hint" }, `settles the conflict of ${ch.resolves}`)] : null,
        h("time", { class: "hint feed-time", datetime: ch.crts ? new Date(ch.crts * 1000).toISOString() : "" }, fmtTime(ch.crts)));
    }));
}

function show() {
  render();
}

export default { init, show };
