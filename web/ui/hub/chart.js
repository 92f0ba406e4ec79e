// A small live line chart on <canvas>: time on x (a sliding window), one or
// more named series on y. Colours come from CSS (--chart-0 .. --chart-5,
// --muted, --border), so the chart follows the light or dark theme.

const SERIES_COLORS = 6;

export class LineChart {
  /**
   * canvas: the <canvas>; opts: windowMs (default 2 min), format(v) for the
   * axis and the label, describe(latest) -> the canvas's accessible label,
   * legend: an element to list the series in (omit for one series).
   */
  constructor(canvas, opts = {}) {
    this.canvas = canvas;
    this.windowMs = opts.windowMs || 120_000;
    this.format = opts.format || ((v) => String(Math.round(v)));
    this.describe = opts.describe || (() => "");
    this.legend = opts.legend || null;
    this.minTop = opts.minTop || 1;
    this.series = new Map(); // name -> {points: [[t, v]], color: index}
    this.now = 0;
    this.colorNext = 0;
    this.pending = false;
    this.ro = new ResizeObserver(() => this.schedule());
    this.ro.observe(canvas);
  }

  /** push(t, {name: value, ...}) adds one sample per series at time t (ms). */
  push(t, values) {
    this.now = Math.max(this.now, t);
    for (const [name, v] of Object.entries(values)) {
      if (typeof v !== "number" || !Number.isFinite(v)) continue;
      let s = this.series.get(name);
      if (!s) {
        s = { points: [], color: this.colorNext++ % SERIES_COLORS };
        this.series.set(name, s);
      }
      s.points.push([t, v]);
    }
    const from = this.now - this.windowMs - 5000;
    for (const [name, s] of this.series) {
      while (s.points.length && s.points[0][0] < from) s.points.shift();
      if (!s.points.length) this.series.delete(name);
    }
    this.schedule();
  }

  /** Forget every sample (after a log out). */
  clear() {
    this.series.clear();
    this.now = 0;
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  draw() {
    const c = this.canvas;
    const w = c.clientWidth;
    const hgt = c.clientHeight;
    if (!w || !hgt) return; // hidden
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(hgt * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(hgt * dpr);
    }
    const css = getComputedStyle(c);
    const color = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
    const ctx = c.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, hgt);
    ctx.font = `11px ${css.fontFamily}`;

    let max = 0;
    for (const s of this.series.values()) for (const [, v] of s.points) max = Math.max(max, v);
    const top = niceCeil(Math.max(max, this.minTop));
    const left = Math.max(28, ctx.measureText(this.format(top)).width + 10);
    const pad = { l: left, r: 8, t: 8, b: 20 };
    const pw = w - pad.l - pad.r;
    const ph = hgt - pad.t - pad.b;
    const t1 = this.now || Date.now();
    const t0 = t1 - this.windowMs;
    const x = (t) => pad.l + ((t - t0) / this.windowMs) * pw;
    const y = (v) => pad.t + ph - (v / top) * ph;

    // grid and axes
    ctx.strokeStyle = color("--border", "#ccc");
    ctx.fillStyle = color("--muted", "#666");
    ctx.lineWidth = 1;
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    for (const f of [0, 0.5, 1]) {
      const yy = Math.round(y(top * f)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(pad.l, yy);
      ctx.lineTo(w - pad.r, yy);
      ctx.stroke();
      ctx.fillText(this.format(top * f), pad.l - 6, yy);
    }
    ctx.textBaseline = "alphabetic";
    const ticks = [[t0, `−${Math.round(this.windowMs / 60000)} min`], [t0 + this.windowMs / 2, `−${Math.round(this.windowMs / 120000)} min`], [t1, "now"]];
    ticks.forEach(([t, label], i) => {
      ctx.textAlign = i === 0 ? "left" : i === 2 ? "right" : "center";
      ctx.fillText(label, x(t), hgt - 5);
    });

    // series
    ctx.save();
    ctx.beginPath();
    ctx.rect(pad.l, 0, pw, hgt);
    ctx.clip();
    ctx.lineJoin = "round";
    ctx.lineWidth = 2;
    for (const s of this.series.values()) {
      const col = color(`--chart-${s.color}`, "#0b5cad");
      ctx.strokeStyle = col;
      ctx.fillStyle = col;
      ctx.beginPath();
      s.points.forEach(([t, v], i) => (i ? ctx.lineTo(x(t), y(v)) : ctx.moveTo(x(t), y(v))));
      ctx.stroke();
      const [lt, lv] = s.points[s.points.length - 1];
      ctx.beginPath();
      ctx.arc(x(lt), y(lv), 3, 0, Math.PI * 2);
      ctx.fill();
    }
    ctx.restore();

    const latest = {};
    for (const [name, s] of this.series) latest[name] = s.points[s.points.length - 1][1];
    c.setAttribute("aria-label", this.describe(latest));
    this.drawLegend(latest);
  }

  drawLegend(latest) {
    if (!this.legend) return;
    const items = [...this.series.entries()].map(([name, s]) => {
      const li = document.createElement("li");
      const sw = document.createElement("span");
      sw.className = `swatch s${s.color}`;
      sw.setAttribute("aria-hidden", "true");
      li.append(sw, `${name}: ${this.format(latest[name])}`);
      return li;
    });
    this.legend.replaceChildren(...items);
  }
}

/** The smallest of 1, 2, 2.5, 5 × 10^n at or above v (at least 1). */
export function niceCeil(v) {
  if (!(v > 1)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
