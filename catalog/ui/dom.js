// Small DOM and number helpers. Everything the API returns is put in the page as text
// (textContent), never as markup, so catalog names cannot inject HTML.

/** Creates an element: h("a", {href: "#/x", class: "y"}, "text", child, ...). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** A table from column heads and rows of cells; heads ending in "#" are numeric. */
export function table(heads, rows, attrs) {
  const num = heads.map((x) => x.endsWith("#"));
  return h(
    "table",
    attrs,
    h("thead", {}, h("tr", {}, heads.map((x, i) => h("th", { class: num[i] ? "num" : null }, x.replace(/#$/, ""))))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => h("td", { class: num[i] ? "num" : null }, c))))),
  );
}

/** 1234567 -> "1.23 MB" (decimal units, as billing uses). */
export function fmtBytes(n) {
  n = Number(n) || 0;
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let i = 0;
  while (Math.abs(n) >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i === 0 ? Math.round(n) : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ${units[i]}`;
}

/** 1234567 -> "1,234,567"; fractions rounded. */
export function fmtNum(n) {
  return Math.round(Number(n) || 0).toLocaleString("en-US");
}

/** Unix seconds -> "2026-11-29 04:53:48 UTC". */
export function fmtTime(secs) {
  if (!secs) return "never";
  return new Date(secs * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/** {"debug": 3, "info": 0, ...} -> "debug 3 · ..." for the non-zero entries. */
export function fmtMix(obj) {
  if (!obj || typeof obj !== "object") return "";
  return Object.entries(obj)
    .filter(([, v]) => v)
    .map(([k, v]) => `${k} ${typeof v === "number" ? fmtNum(v) : v}`)
    .join(" · ");
}
