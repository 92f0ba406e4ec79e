// Overview: the log position, confirmed writes per second, edges online,
// unresolved conflicts, and two live charts, all from the "status" events.

import { empty, fill, fmtNum, h, table } from "/ui/dom.js";
import { LineChart } from "/ui/chart.js";

const MAX_LAG_SERIES = 6;

let writes;
let lag;

function init(ctx) {
  const fmtRate = (v) => (v >= 10 || v === 0 ? String(Math.round(v)) : v.toFixed(1));
  writes = new LineChart(document.getElementById("chart-writes"), {
    format: fmtRate,
    describe: (l) => `Confirmed writes per second over the last 2 minutes; now ${fmtRate(l.writes ?? 0)}.`,
  });
  lag = new LineChart(document.getElementById("chart-lag"), {
    format: (v) => String(Math.round(v)),
    minTop: 2,
    legend: document.getElementById("chart-lag-legend"),
    describe: (l) => {
      const parts = Object.entries(l).map(([k, v]) => `${k} ${Math.round(v)}`);
      return `Edge lag in LSNs over the last 2 minutes; now: ${parts.join(", ") || "no edges"}.`;
    },
  });
  ctx.bus.on("status", (s) => {
    text("overview-lsn", fmtNum(s.lsn));
    text("overview-writes", fmtNum(s.writesPerSecond));
    text("overview-edges-online", fmtNum(s.edgesOnline));
    const total = (s.edges || []).length;
    text("overview-edges-total", total ? ` of ${total}` : "");
    text("overview-unresolved", fmtNum(s.unresolvedConflicts));
    document.getElementById("overview-unresolved-card").classList.toggle("attention", s.unresolvedConflicts > 0);

    tier(s);

    const t = s.time || Date.now();
    writes.push(t, { writes: s.writesPerSecond || 0 });
    const list = s.edges || [];
    if (list.length <= MAX_LAG_SERIES) {
      const v = {};
      for (const e of list) v[e.name] = e.lag || 0;
      lag.push(t, v);
    } else {
      // Many edges: the worst and the average, not a line each.
      const lags = list.map((e) => e.lag || 0);
      lag.push(t, { max: Math.max(...lags), average: lags.reduce((a, b) => a + b, 0) / lags.length });
    }
  });
  // A conflict event may carry the new count before the next status.
  ctx.bus.on("conflict", (c) => {
    if (c && typeof c.unresolvedConflicts === "number") text("overview-unresolved", fmtNum(c.unresolvedConflicts));
  });
  ctx.bus.on("logout", () => {
    writes.clear();
    lag.clear();
  });
}

// tier shows the hubs sharing the log, which one sequences, and the
// newest takeovers (who took the lease from whom, and how long the tier had
// no sequencer).
function tier(s) {
  text("overview-tier-name", s.name ? `(this hub: ${s.name})` : "");
  text("overview-sequencer", s.sequencer || "none: waiting for a hub to take the lease");
  const hubs = s.hubs || [];
  fill(document.getElementById("overview-hubs"), table({ testid: "hubs-table", "aria-label": "Hubs" },
    [{ text: "Order", attrs: { class: "num" } }, "Hub", "State", { text: "Edges", attrs: { class: "num" } }],
    hubs.map((x) => h("tr", { testid: `hub-${x.name}` },
      h("td", { class: "num" }, String(x.order)),
      h("td", {}, x.name),
      h("td", {}, x.sequencer ? "sequencer" : x.online ? "online" : "offline"),
      h("td", { class: "num" }, fmtNum(x.edges))))));
  const ks = s.takeovers || [];
  fill(document.getElementById("overview-takeovers"), ks.length === 0 ? empty("No takeovers yet.") :
    table({ testid: "takeovers-table", "aria-label": "Takeovers" },
      [{ text: "Epoch", attrs: { class: "num" } }, "When", "New sequencer", "Previous", { text: "Without a sequencer", attrs: { class: "num" } }],
      ks.map((k) => h("tr", {},
        h("td", { class: "num" }, String(k.epoch)),
        h("td", {}, new Date(k.at).toLocaleString()),
        h("td", {}, k.holder),
        h("td", {}, k.previous || "—"),
        h("td", { class: "num" }, k.previous ? `${fmtNum(k.gapMs)} ms` : "—")))));
}

function text(id, v) {
  document.getElementById(id).textContent = v;
}

function show() {
  // Charts drawn while hidden have no size: draw again now they show.
  writes.schedule();
  lag.schedule();
}

export default { init, show };
