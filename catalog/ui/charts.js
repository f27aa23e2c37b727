// Charts as inline SVG, drawn here: horizontal stacked bars with labels and values.

import { fmtBytes } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";

function s(tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/**
 * rows: [{label, href?, parts: [{value, cls, title}]}]; one bar per row, parts stacked,
 * scaled to the largest row total; the total is written after the bar.
 */
export function stackedBars(rows, { width = 820, rowHeight = 28, labelWidth = 170, valueWidth = 110, format = fmtBytes, id } = {}) {
  const barMax = width - labelWidth - valueWidth;
  const height = Math.max(rows.length, 1) * rowHeight + 8;
  const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart" });
  if (id) svg.setAttribute("id", id);
  const max = Math.max(1e-9, ...rows.map((r) => r.parts.reduce((a, p) => a + p.value, 0)));
  rows.forEach((r, i) => {
    const y = i * rowHeight + 4;
    const label = s("text", { x: labelWidth - 8, y: y + rowHeight / 2 + 4, "text-anchor": "end" }, r.label);
    if (r.href) {
      const a = s("a", { href: r.href });
      a.appendChild(label);
      svg.appendChild(a);
    } else svg.appendChild(label);
    let x = labelWidth;
    let total = 0;
    for (const p of r.parts) {
      const w = (p.value / max) * barMax;
      total += p.value;
      if (w <= 0) continue;
      const rect = s("rect", { x, y: y + 4, width: Math.max(w, 1), height: rowHeight - 8, class: p.cls, "data-value": p.value });
      rect.appendChild(s("title", {}, `${p.title}: ${format(p.value)}`));
      svg.appendChild(rect);
      x += w;
    }
    svg.appendChild(s("text", { x: x + 6, y: y + rowHeight / 2 + 4 }, r.valueText ?? format(total)));
  });
  svg.appendChild(s("line", { x1: labelWidth, y1: 0, x2: labelWidth, y2: height, class: "axis" }));
  return svg;
}
