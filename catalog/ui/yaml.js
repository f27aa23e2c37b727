// JSON <-> YAML for policy documents. `toYaml` writes block-style YAML; `parseYaml` reads
// the block subset people write for policies (maps, lists, plain/quoted scalars, flow
// [..]/{..}, comments). Anchors, tags and block scalars are refused with a line number
// rather than guessed at.

const RESERVED = /^(true|false|yes|no|on|off|null|~|y|n)$/i;
const NUMBER = /^[-+]?(\d[\d_]*(\.\d*)?|\.\d+)([eE][-+]?\d+)?$|^0x[0-9a-f]+$|^0o[0-7]+$|^[-+]?\.(inf|nan)$/i;

function quoteIfNeeded(s) {
  const plain =
    s !== "" &&
    !RESERVED.test(s) &&
    !NUMBER.test(s) &&
    /^[A-Za-z0-9_.\/(][^\n]*$/.test(s) &&
    !/[:#]\s|:$|\s#|^\s|\s$|[{}\[\],&*!|>'"`]|^[%@-]/.test(s);
  return plain ? s : JSON.stringify(s);
}

function isLeaf(v) {
  return (
    v === null ||
    typeof v !== "object" ||
    (Array.isArray(v) ? v.length === 0 : Object.keys(v).length === 0)
  );
}

function leaf(v) {
  if (v === null || v === undefined) return "null";
  if (Array.isArray(v)) return "[]";
  if (typeof v === "object") return "{}";
  if (typeof v === "string") return quoteIfNeeded(v);
  return String(v);
}

function emit(v, indent, out) {
  const pad = " ".repeat(indent);
  if (Array.isArray(v)) {
    for (const item of v) {
      if (isLeaf(item)) {
        out.push(`${pad}- ${leaf(item)}`);
      } else {
        const sub = [];
        emit(item, indent + 2, sub);
        out.push(`${pad}- ${sub[0].slice(indent + 2)}`, ...sub.slice(1));
      }
    }
    return;
  }
  for (const [k, x] of Object.entries(v)) {
    if (isLeaf(x)) {
      out.push(`${pad}${quoteIfNeeded(k)}: ${leaf(x)}`);
    } else {
      out.push(`${pad}${quoteIfNeeded(k)}:`);
      emit(x, indent + 2, out);
    }
  }
}

/** Block-style YAML of a JSON value, ending with a newline. */
export function toYaml(value) {
  if (isLeaf(value)) return leaf(value) + "\n";
  const out = [];
  emit(value, 0, out);
  return out.join("\n") + "\n";
}

/** A YAML syntax error with its 1-based line. */
export class YamlError extends Error {
  constructor(line, message) {
    super(`line ${line}: ${message}`);
    this.line = line;
  }
}

function stripComment(raw) {
  let quote = null;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === "#" && (i === 0 || /\s/.test(raw[i - 1]))) {
      return raw.slice(0, i).trimEnd();
    }
  }
  return raw.trimEnd();
}

function setKey(obj, k, v, line) {
  if (Object.prototype.hasOwnProperty.call(obj, k)) throw new YamlError(line, `duplicate key ${JSON.stringify(k)}`);
  Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
}

// Flow collections ([a, b], {k: v}) and scalars inside them.
function parseFlow(s, line) {
  let i = 0;
  const ws = () => {
    while (i < s.length && /\s/.test(s[i])) i++;
  };
  const value = (stops) => {
    ws();
    if (s[i] === "[") {
      i++;
      const arr = [];
      ws();
      if (s[i] === "]") { i++; return arr; }
      for (;;) {
        arr.push(value(",]"));
        ws();
        if (s[i] === ",") { i++; continue; }
        if (s[i] === "]") { i++; return arr; }
        throw new YamlError(line, `expected "," or "]" in ${s}`);
      }
    }
    if (s[i] === "{") {
      i++;
      const obj = {};
      ws();
      if (s[i] === "}") { i++; return obj; }
      for (;;) {
        const k = value(":,}");
        ws();
        if (s[i] !== ":") throw new YamlError(line, `expected ":" after key in ${s}`);
        i++;
        setKey(obj, String(k), value(",}"), line);
        ws();
        if (s[i] === ",") { i++; continue; }
        if (s[i] === "}") { i++; return obj; }
        throw new YamlError(line, `expected "," or "}" in ${s}`);
      }
    }
    if (s[i] === '"' || s[i] === "'") {
      const q = s[i];
      let j = i + 1;
      for (;;) {
        if (j >= s.length) throw new YamlError(line, "unterminated quoted string");
        if (q === '"' && s[j] === "\\") j += 2;
        else if (s[j] === q && q === "'" && s[j + 1] === "'") j += 2;
        else if (s[j] === q) break;
        else j++;
      }
      const text = s.slice(i, j + 1);
      i = j + 1;
      return quoted(text, line);
    }
    let j = i;
    while (j < s.length && !stops.includes(s[j])) j++;
    const text = s.slice(i, j).trim();
    i = j;
    return plainScalar(text);
  };
  const v = value("");
  ws();
  if (i < s.length) throw new YamlError(line, `unexpected ${JSON.stringify(s.slice(i))} after value`);
  return v;
}

function quoted(text, line) {
  if (text[0] === "'") return text.slice(1, -1).replace(/''/g, "'");
  try {
    return JSON.parse(text);
  } catch {
    throw new YamlError(line, `invalid double-quoted string ${text}`);
  }
}

function plainScalar(t) {
  if (t === "" || t === "~" || t === "null" || t === "Null" || t === "NULL") return null;
  if (/^(true|True|TRUE)$/.test(t)) return true;
  if (/^(false|False|FALSE)$/.test(t)) return false;
  if (/^-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?$/.test(t)) return Number(t);
  return t;
}

function scalar(t, line) {
  if (/^[&*!]/.test(t)) throw new YamlError(line, "anchors, aliases and tags are not supported here");
  if (/^[|>][-+0-9]*$/.test(t)) throw new YamlError(line, "block scalars (| and >) are not supported here; use a quoted string");
  if (t[0] === "[" || t[0] === "{" || t[0] === '"' || t[0] === "'") return parseFlow(t, line);
  return plainScalar(t);
}

function splitKey(t, line) {
  if (t[0] === '"' || t[0] === "'") {
    const q = t[0];
    let j = 1;
    while (j < t.length && t[j] !== q) j += t[j] === "\\" && q === '"' ? 2 : 1;
    const after = t.slice(j + 1);
    if (j >= t.length || !(after === ":" || after.startsWith(": "))) return null;
    return [quoted(t.slice(0, j + 1), line), after.slice(1).trim()];
  }
  const m = /:(\s|$)/.exec(t);
  if (!m || m.index === 0) return null;
  return [t.slice(0, m.index).trim(), t.slice(m.index + 1).trim()];
}

/** Parses block YAML into a JSON value; throws YamlError with a line number. */
export function parseYaml(text) {
  const lines = [];
  text.split(/\r?\n/).forEach((raw, n) => {
    const s = stripComment(raw);
    if (s.trim() === "" || s.trim() === "---") return;
    if (/^ *\t/.test(s)) throw new YamlError(n + 1, "tabs are not allowed for indentation");
    lines.push({ indent: s.length - s.trimStart().length, text: s.trim(), line: n + 1 });
  });
  if (lines.length === 0) throw new YamlError(1, "the document is empty");
  let pos = 0;
  const isItem = (t) => t === "-" || t.startsWith("- ");

  function block(indent) {
    return isItem(lines[pos].text) ? seq(indent) : map(indent);
  }
  function seq(indent) {
    const arr = [];
    while (pos < lines.length && lines[pos].indent === indent && isItem(lines[pos].text)) {
      const l = lines[pos];
      const rest = l.text.slice(1).trimStart();
      if (rest === "") {
        pos++;
        arr.push(pos < lines.length && lines[pos].indent > indent ? block(lines[pos].indent) : null);
      } else if (isItem(rest) || (!/^[\[{]/.test(rest) && splitKey(rest, l.line))) {
        const inner = indent + (l.text.length - rest.length);
        lines[pos] = { indent: inner, text: rest, line: l.line };
        arr.push(block(inner));
      } else {
        arr.push(scalar(rest, l.line));
        pos++;
      }
    }
    return arr;
  }
  function map(indent) {
    const obj = {};
    while (pos < lines.length && lines[pos].indent === indent) {
      const l = lines[pos];
      if (isItem(l.text)) throw new YamlError(l.line, "a list item where a key was expected");
      const kv = splitKey(l.text, l.line);
      if (!kv) throw new YamlError(l.line, `expected "key: value", found ${JSON.stringify(l.text)}`);
      pos++;
      let v;
      if (kv[1] !== "") v = scalar(kv[1], l.line);
      else if (pos < lines.length && lines[pos].indent > indent) v = block(lines[pos].indent);
      else if (pos < lines.length && lines[pos].indent === indent && isItem(lines[pos].text)) v = seq(indent);
      else v = null;
      setKey(obj, kv[0], v, l.line);
    }
    return obj;
  }
  const first = lines[0];
  const v = isItem(first.text) || splitKey(first.text, first.line) ? block(first.indent) : scalar(first.text, first.line);
  if (!(isItem(first.text) || splitKey(first.text, first.line))) pos = 1;
  if (pos < lines.length) {
    const l = lines[pos];
    throw new YamlError(l.line, l.indent > first.indent ? "unexpected indentation" : `unexpected ${JSON.stringify(l.text)}`);
  }
  return v;
}
