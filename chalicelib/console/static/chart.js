// A small SVG chart of our own (no library): lines for days, grouped bars for channels / staff / codes.
// series: [{key, label, values: [numbers]}], labels: the x axis (days or keys).
const NS = "http://www.w3.org/2000/svg";
const COLORS = ["#2563eb", "#dc2626", "#d97706", "#059669", "#7c3aed", "#0891b2"];

function el(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

export function chart({ title, labels, series, kind = "line" }) {
  const W = 640, H = 260, L = 40, R = 10, T = 10, B = 40;
  const all = series.flatMap((s) => s.values);
  const max = Math.max(1, ...all), min = Math.min(0, ...all);
  const y = (v) => T + (H - T - B) * (1 - (v - min) / (max - min));
  const n = Math.max(1, labels.length);
  const step = (W - L - R) / n;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title, class: "chart", "data-max": max });
  svg.append(el("title", {}, title));
  for (const v of new Set([min, Math.round((min + max) / 2), max])) {  // grid and y axis labels (whole numbers)
    const yy = y(v);
    svg.append(el("line", { x1: L, x2: W - R, y1: yy, y2: yy, class: "grid" }));
    svg.append(el("text", { x: L - 4, y: yy + 4, "text-anchor": "end", class: "axis" }, String(Math.round(v))));
  }
  const every = Math.ceil(n / 8);
  labels.forEach((label, i) => {
    if (i % every) return;
    svg.append(el("text", { x: L + step * (i + 0.5), y: H - B + 16, "text-anchor": "middle", class: "axis" }, String(label).slice(-10)));
  });
  series.forEach((s, si) => {
    const color = COLORS[si % COLORS.length];
    const g = el("g", { "data-series": s.key, fill: color, stroke: color });
    if (kind === "line") {
      const pts = s.values.map((v, i) => `${L + step * (i + 0.5)},${y(v)}`).join(" ");
      g.append(el("polyline", { points: pts, fill: "none", "stroke-width": 2 }));
      s.values.forEach((v, i) => {
        const dot = el("circle", { cx: L + step * (i + 0.5), cy: y(v), r: 3, "data-value": v });
        dot.append(el("title", {}, `${labels[i]} ${s.label}: ${v}`));
        g.append(dot);
      });
    } else {
      const bw = (step * 0.8) / series.length;
      s.values.forEach((v, i) => {
        const x = L + step * i + step * 0.1 + bw * si;
        const rect = el("rect", { x, y: Math.min(y(v), y(0)), width: Math.max(1, bw - 1), height: Math.abs(y(0) - y(v)), "data-value": v, stroke: "none" });
        rect.append(el("title", {}, `${labels[i]} ${s.label}: ${v}`));
        g.append(rect);
      });
    }
    svg.append(g);
    const lx = L + si * 100;  // legend
    svg.append(el("rect", { x: lx, y: H - 14, width: 10, height: 10, fill: color }));
    svg.append(el("text", { x: lx + 14, y: H - 5, class: "legend" }, s.label));
  });
  return svg;
}
