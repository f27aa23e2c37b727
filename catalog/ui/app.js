// The control plane UI: hash routes (#/overview, #/services/NAME, #/findings, #/policies,
// #/admin), each drawn from the authenticated API. Role decides which buttons exist; the
// API enforces the same rules, and its 401/403 answers are shown as they come.

import { api, ApiError } from "./api.js";
import { h, table, fmtBytes, fmtNum, fmtMix } from "./dom.js";
import { stackedBars } from "./charts.js";
import { findingsPage, policiesPage, adminPage, usersPage, auditPage } from "./pages.js";

const main = document.getElementById("main");
const banner = document.getElementById("banner");

/** Who is signed in and what they may do (from GET /api/v1/whoami). */
export const session = { role: null, user: null };
export const canEdit = () => session.role === "editor" || session.role === "admin";
export const isAdmin = () => session.role === "admin";

/** Shows a message above the page: kind "error" (red) or "info". */
export function notify(message, kind = "error") {
  banner.textContent = message;
  banner.className = kind === "info" ? "banner info" : "banner";
  banner.hidden = !message;
  banner.setAttribute("data-kind", kind);
}

/** Explains an API failure; a 401 sends the user back to sign-in. */
export function showError(e, doing) {
  if (e instanceof ApiError && e.status === 401) {
    session.role = null;
    signIn(`Signed out by the server (401 Unauthorized): ${e.message}.`);
    return;
  }
  if (e instanceof ApiError && e.status === 403) {
    notify(`Not allowed (403 Forbidden) while ${doing}: ${e.message}`);
    return;
  }
  const status = e instanceof ApiError && e.status ? ` (${e.status})` : "";
  notify(`Failed${status} while ${doing}: ${e.message}`);
}

function refusal(e, doing) {
  if (e instanceof ApiError && e.status === 429) return `Too many failed attempts (429): ${e.message}`;
  if (e instanceof ApiError && e.status === 401) return `Refused (401 Unauthorized): ${e.message}`;
  return `${doing} failed: ${e.message}`;
}

function field(id, label, attrs) {
  return h("label", { class: "field" }, h("span", {}, label), h("input", { id, "aria-label": label, ...attrs }));
}

/** The sign-in page: user name, password and the authenticator's 6-digit code. */
function signIn(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("who").hidden = true;
  notify("");
  const error = h("div", { id: "signin-error", class: "error", role: "alert" }, message || "");
  const form = h(
    "form",
    { class: "panel signin", id: "signin" },
    h("h1", {}, "Sign in"),
    field("signin-user", "User", { autocomplete: "username" }),
    field("signin-password", "Password", { type: "password", autocomplete: "current-password" }),
    field("signin-code", "Code from your authenticator app", { inputmode: "numeric", autocomplete: "one-time-code", maxlength: "6", pattern: "[0-9]{6}" }),
    h("div", { class: "actions" }, h("button", { class: "primary", type: "submit", id: "signin-submit" }, "Sign in"), h("button", { type: "button", class: "link", id: "enrol-open", onclick: () => enrol() }, "First time? Enrol with your enrolment secret")),
    error,
    h("p", { class: "muted" }, "An admin creates your user with ", h("code", {}, "weir admin user create NAME --role viewer|editor|admin"), " and gives you its one-time enrolment secret. Machines (edges, CI) use API tokens instead."),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const v = (id) => document.getElementById(id).value;
    try {
      await api("POST", "/api/v1/sign-in", { user: v("signin-user").trim(), password: v("signin-password"), code: v("signin-code").trim() });
      await whoami();
    } catch (e) {
      error.textContent = refusal(e, "Sign-in");
      document.getElementById("signin-code").value = "";
      return;
    }
    if (!location.hash || location.hash === "#/") location.hash = "#/overview";
    else route();
  });
  main.replaceChildren(form);
  document.getElementById("signin-user").focus();
}

/**
 * Enrolment: the enrolment secret gets a new TOTP secret (shown once, with its otpauth://
 * URI for an authenticator app); then a password and a code from the app finish it.
 */
function enrol() {
  notify("");
  const error = h("div", { id: "enrol-error", class: "error", role: "alert" });
  const step2 = h("div", { id: "enrol-step2", hidden: true });
  const form = h(
    "form",
    { class: "panel signin", id: "enrol" },
    h("h1", {}, "Enrol"),
    field("enrol-user", "User", { autocomplete: "username" }),
    field("enrol-secret", "Enrolment secret", { type: "password", autocomplete: "off" }),
    h("div", { class: "actions" }, h("button", { type: "button", class: "primary", id: "enrol-start" }, "Continue"), h("button", { type: "button", class: "link", onclick: () => signIn() }, "Back to sign-in")),
    step2,
    error,
  );
  const v = (id) => document.getElementById(id).value;
  form.querySelector("#enrol-start").addEventListener("click", async () => {
    error.textContent = "";
    let r;
    try {
      r = await api("POST", "/api/v1/enrol/start", { user: v("enrol-user").trim(), secret: v("enrol-secret").trim() });
    } catch (e) {
      error.textContent = refusal(e, "Enrolment");
      return;
    }
    step2.replaceChildren(
      h("p", {}, "Add this secret to your authenticator app (TOTP, SHA-1, 30 s, 6 digits). It is shown once."),
      h("p", {}, h("code", { id: "enrol-totp" }, r.totp_secret)),
      h("p", { class: "muted" }, "Or as a URI: ", h("code", { id: "enrol-uri" }, r.otpauth_uri)),
      field("enrol-password", "New password (at least 12 characters)", { type: "password", autocomplete: "new-password" }),
      field("enrol-code", "Code from your authenticator app", { inputmode: "numeric", autocomplete: "one-time-code", maxlength: "6" }),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", id: "enrol-finish" }, "Finish enrolment")),
    );
    step2.hidden = false;
    document.getElementById("enrol-password").focus();
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (step2.hidden) return;
    try {
      await api("POST", "/api/v1/enrol/finish", { user: v("enrol-user").trim(), secret: v("enrol-secret").trim(), password: v("enrol-password"), code: v("enrol-code").trim() });
    } catch (e) {
      error.textContent = refusal(e, "Enrolment");
      return;
    }
    const user = v("enrol-user").trim();
    signIn(`Enrolled. Sign in as ${user} with your password and a new code.`);
    document.getElementById("signin-user").value = user;
    document.getElementById("signin-error").setAttribute("data-kind", "info");
  });
  main.replaceChildren(form);
  document.getElementById("enrol-user").focus();
}

async function whoami() {
  const me = await api("GET", "/api/v1/whoami");
  session.role = me.role;
  session.user = me.user || `token ${me.token_id}`;
  document.getElementById("who-role").textContent = `${me.role} · ${session.user}`;
  document.getElementById("who").hidden = false;
  document.getElementById("nav").hidden = me.role === "edge";
  for (const id of ["nav-admin", "nav-users", "nav-audit"]) document.getElementById(id).hidden = me.role !== "admin";
}

function signalParts(sig) {
  return ["logs", "traces", "metrics"].map((k) => ({ value: sig[k].bytes_per_day, cls: `bar-${k}`, title: k }));
}

async function overviewPage() {
  const o = await api("GET", "/api/v1/overview");
  const total = o.bytes_per_day;
  const services = [...o.services].sort((a, b) => b.bytes_per_day - a.bytes_per_day);
  // The ledger counts each record once across findings, so the service savings add up to
  // the same total as the findings page, the API and `weir catalog report`.
  const capped = (s) => s.saving_bytes_per_day;
  const saving = o.saving_bytes_per_day;
  const share = total > 0 ? (100 * saving) / total : 0;
  return [
    h("h1", {}, "Overview"),
    h(
      "div",
      { class: "cards" },
      card("Volume per day", fmtBytes(total), "total-bytes-per-day"),
      card("Services", fmtNum(services.length), "total-services"),
      card("Findings", fmtNum(o.findings), "total-findings"),
      card("Estimated saving per day", `${fmtBytes(saving)} (${share.toFixed(1)}%)`, "total-saving", "saving"),
    ),
    h(
      "div",
      { class: "panel" },
      h("h2", {}, "Bytes per day by service and signal"),
      legend(["logs", "traces", "metrics"]),
      services.length
        ? stackedBars(services.map((s) => ({ label: s.service, href: `#/services/${encodeURIComponent(s.service)}`, parts: signalParts(s.signals) })), { id: "chart-volume" })
        : h("p", { class: "muted" }, "No telemetry in the catalog yet: point an edge's catalog exporter or an OTLP client at this control plane."),
    ),
    h(
      "div",
      { class: "panel" },
      h("h2", {}, "Waste found: estimated saving per day"),
      legend(["saving", "rest"]),
      stackedBars(
        services.map((s) => ({
          label: s.service,
          parts: [
            { value: capped(s), cls: "bar-saving", title: "saving" },
            { value: s.bytes_per_day - capped(s), cls: "bar-rest", title: "kept" },
          ],
          valueText: `${fmtBytes(capped(s))} of ${fmtBytes(s.bytes_per_day)}`,
        })),
        { id: "chart-saving", valueWidth: 190 },
      ),
      h("p", { class: "muted", id: "projection" }, services.map((s) => `${s.service}: ${s.projection}`).join("; ")),
      h("p", {}, h("a", { href: "#/findings" }, `See the ${o.findings} findings →`)),
    ),
    h(
      "div",
      { class: "panel" },
      table(
        ["Service", "Log records#", "Log bytes#", "Spans#", "Span bytes#", "Metric points#", "Metric bytes#", "Bytes/day#", "Saving/day#"],
        services.map((s) => [
          h("a", { href: `#/services/${encodeURIComponent(s.service)}` }, s.service),
          fmtNum(s.signals.logs.items),
          fmtBytes(s.signals.logs.bytes),
          fmtNum(s.signals.traces.items),
          fmtBytes(s.signals.traces.bytes),
          fmtNum(s.signals.metrics.items),
          fmtBytes(s.signals.metrics.bytes),
          fmtBytes(s.bytes_per_day),
          fmtBytes(capped(s)),
        ]),
        { id: "services-table" },
      ),
    ),
  ];
}

function card(label, value, id, cls) {
  return h("div", { class: `card ${cls || ""}`, id }, h("div", { class: "n" }, value), h("div", { class: "l" }, label));
}

function legend(keys) {
  return h("div", { class: "legend" }, keys.map((k) => h("span", {}, h("i", { class: k === "rest" ? "" : k }), k === "rest" ? "kept" : k)));
}

async function servicesPage() {
  const { services } = await api("GET", "/api/v1/services");
  return [
    h("h1", {}, "Services"),
    h(
      "div",
      { class: "panel" },
      table(
        ["Service", "Log records#", "Templates#", "Spans#", "Metric points#", "Bytes#"],
        services.map((s) => [
          h("a", { href: `#/services/${encodeURIComponent(s.service)}` }, s.service),
          fmtNum(s.logs_items),
          fmtNum(s.templates),
          fmtNum(s.traces_items),
          fmtNum(s.metrics_items),
          fmtBytes(s.logs_bytes + s.traces_bytes + s.metrics_bytes),
        ]),
      ),
    ),
  ];
}

function attrTable(attrs, id) {
  if (!attrs.length) return h("p", { class: "muted" }, "none");
  return table(
    ["Key", "Types", "Present on#", "Distinct values (est.)#", "Bytes#"],
    attrs.map((a) => [h("code", {}, a.key), fmtMix(a.types) || JSON.stringify(a.types), `${(100 * a.share).toFixed(1)}%`, fmtNum(a.distinct_estimate), fmtBytes(a.bytes)]),
    { id },
  );
}

const pct = (x) => `${(100 * (x || 0)).toFixed(1)}%`;

/** Per signal, what the edges counted without reading it (the names and counts below describe the rest). */
function unsummarisedNotice(s) {
  const rows = [
    ["Log records", s.logs],
    ["Spans", s.traces],
    ["Metric points", s.metrics],
  ].filter(([, sig]) => sig.unsummarised && sig.unsummarised.items > 0);
  if (!rows.length) return null;
  return h(
    "div",
    { class: "panel notice", id: "svc-unsummarised" },
    h("h2", {}, "Counted without being read"),
    h("p", {}, "The edge was too busy to summarise part of this service's traffic and counted it instead: volumes are exact, but templates, severities, attributes and names (and their shares) describe only the part read. Findings scale their estimates up to the whole volume and say so."),
    table(
      ["Signal", "Items counted unread#", "Bytes#", "Share of items#"],
      rows.map(([label, sig]) => [label, fmtNum(sig.unsummarised.items), fmtBytes(sig.unsummarised.bytes), pct(sig.unsummarised.share_of_items)]),
      { id: "unsummarised-table" },
    ),
  );
}

async function servicePage(name) {
  const s = await api("GET", `/api/v1/services/${encodeURIComponent(name)}`);
  return [
    h("h1", {}, `Service ${s.service}`),
    h(
      "div",
      { class: "cards" },
      card("Log records", fmtNum(s.logs.items), "svc-logs"),
      card("Log bytes", fmtBytes(s.logs.bytes)),
      card("Spans", fmtNum(s.traces.items), "svc-spans"),
      card("Metric points", fmtNum(s.metrics.items), "svc-points"),
    ),
    unsummarisedNotice(s),
    h(
      "div",
      { class: "panel" },
      h("h2", {}, `Log templates (${s.logs.templates.length})`),
      h("p", { class: "muted" }, `Severity: ${fmtMix(s.logs.severity) || "none"}`),
      s.logs.templates.length
        ? table(
            ["Template", "Records#", "Share#", "Bytes#", "Severity"],
            s.logs.templates.map((t) => [h("code", {}, t.template), fmtNum(t.count), pct(t.share), fmtBytes(t.bytes), fmtMix(t.severity)]),
            { id: "templates-table" },
          )
        : h("p", { class: "muted" }, "none"),
      h("h2", {}, "Log attributes"),
      attrTable(s.logs.attributes, "log-attributes"),
      h("h2", {}, "Resource attributes"),
      attrTable(s.logs.resource_attributes, "resource-attributes"),
    ),
    h(
      "div",
      { class: "panel" },
      h("h2", {}, `Metrics (${s.metrics.metrics.length})`),
      s.metrics.metrics.length
        ? table(
            ["Name", "Kind", "Unit", "Points#", "Series (est.)#", "Constant"],
            s.metrics.metrics.map((m) => [h("code", {}, m.name), m.kind, m.unit || "", fmtNum(m.points), fmtNum(m.series_estimate), m.constant ? "yes" : "no"]),
            { id: "metrics-table" },
          )
        : h("p", { class: "muted" }, "none"),
    ),
    h(
      "div",
      { class: "panel" },
      h("h2", {}, `Span names (${s.traces.spans.length})`),
      s.traces.spans.length
        ? table(
            ["Name", "Spans#", "Bytes#", "Kinds", "Status", "p50 ms#", "p99 ms#"],
            s.traces.spans.map((sp) => [h("code", {}, sp.name), fmtNum(sp.count), fmtBytes(sp.bytes), fmtMix(sp.kinds), fmtMix(sp.status), sp.p50_ms?.toFixed?.(1) ?? "", sp.p99_ms?.toFixed?.(1) ?? ""]),
            { id: "spans-table" },
          )
        : h("p", { class: "muted" }, "none"),
      h("h2", {}, "Span attributes"),
      attrTable(s.traces.attributes, "span-attributes"),
    ),
  ];
}

const routes = [
  [/^#\/overview$/, "overview", () => overviewPage()],
  [/^#\/services$/, "services", () => servicesPage()],
  [/^#\/services\/(.+)$/, "services", (m) => servicePage(decodeURIComponent(m[1]))],
  [/^#\/findings$/, "findings", () => findingsPage()],
  [/^#\/policies$/, "policies", () => policiesPage()],
  [/^#\/admin$/, "admin", () => adminPage()],
  [/^#\/users$/, "users", () => usersPage()],
  [/^#\/audit(\?.*)?$/, "audit", (m) => auditPage(new URLSearchParams((m[1] || "").slice(1)))],
];

let generation = 0;

/** Draws the page the hash names. */
export async function route() {
  if (!session.role) return signIn();
  const hash = location.hash || "#/overview";
  const found = routes.map(([re, view, draw]) => [re.exec(hash), view, draw]).find(([m]) => m);
  if (!found) {
    location.hash = "#/overview";
    return;
  }
  const [m, view, draw] = found;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.view === view);
  const mine = ++generation;
  main.setAttribute("aria-busy", "true");
  try {
    const content = await draw(m);
    if (mine !== generation) return;
    main.replaceChildren(...content.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
    main.setAttribute("data-page", view);
  } catch (e) {
    if (mine !== generation) return;
    main.replaceChildren(h("h1", {}, "Could not load this page"));
    showError(e, `loading ${hash.slice(2)}`);
  } finally {
    if (mine === generation) main.removeAttribute("aria-busy");
  }
}

async function start() {
  document.getElementById("sign-out").addEventListener("click", async () => {
    try {
      await api("POST", "/api/v1/sign-out");
    } catch {
      // Signed out either way: the session is gone or was already.
    }
    session.role = null;
    signIn("Signed out.");
  });
  window.addEventListener("hashchange", () => {
    notify("");
    route();
  });
  // A session cookie from before (a reload) signs in without asking.
  try {
    await whoami();
  } catch (e) {
    return signIn(e instanceof ApiError && e.status === 401 ? "" : e.message);
  }
  route();
}

start();
