// Pages that change things: findings (accept in shadow / enforce / dismiss), policies
// (edit as YAML, enable/disable, shadow/enforce, hits per edge, edges in sync), and the
// admin pages (tokens, users, the audit log with filters). The YAML is the control plane's:
// it renders every policy as YAML (`yaml`, `policy_yaml`) and reads the editor's text as it
// is sent (Content-Type: application/yaml); nothing here parses or writes YAML.

import { api, ApiError } from "./api.js";
import { h, table, fmtBytes, fmtNum, fmtTime } from "./dom.js";
import { canEdit, notify, showError, route } from "./app.js";

/** Runs an API change, then redraws the page and says what happened. */
async function act(doing, call, done) {
  try {
    const result = await call();
    await route();
    if (done) notify(done(result), "info");
  } catch (e) {
    showError(e, doing);
  }
}

/**
 * A button that asks before enforcing fleet-wide: the first click arms it (its text says
 * what will happen), the second runs `run`.
 */
function enforceButton(action, label, run) {
  let armed = false;
  return h("button", { "data-action": action, onclick: (ev) => {
    if (!armed) {
      armed = true;
      ev.target.setAttribute("data-armed", "");
      ev.target.textContent = "Enforce on every edge? Click again";
      return;
    }
    run();
  } }, label);
}

const fmtAmount = (a) => `${fmtNum(a.items)} (${fmtBytes(a.bytes)})`;

function wouldDrop(f) {
  const w = f.would_drop || { by_severity: {}, by_service: {} };
  const sev = Object.entries(w.by_severity).map(([k, a]) => `${k}: ${fmtAmount(a)}`).join(", ");
  const svc = Object.entries(w.by_service).map(([k, a]) => `${k}: ${fmtAmount(a)}`).join(", ");
  return h("p", { class: "would-drop" }, `Dry-run on the catalog's data, it would drop by severity ${sev || "nothing"}; by service ${svc || "nothing"}.`);
}

function findingCard(f) {
  const buttons = canEdit()
    ? h(
        "div",
        { class: "actions" },
        h("button", { class: "primary", "data-action": "accept-shadow", onclick: () => act(`accepting ${f.id}`, () => api("POST", `/api/v1/findings/${f.id}/accept`, { shadow: true }), (p) => `Policy ${p.id} created in shadow mode: edges count what it would drop from their next sync.`) }, "Accept in shadow mode"),
        enforceButton("enforce", "Enforce", () => act(`enforcing ${f.id}`, () => api("POST", `/api/v1/findings/${f.id}/accept`, { shadow: false }), (p) => `Policy ${p.id} enforced: edges drop the matching data from their next sync.`)),
        h("button", { class: "danger", "data-action": "dismiss", onclick: () => act(`dismissing ${f.id}`, () => api("POST", `/api/v1/findings/${f.id}/dismiss`), () => `Finding ${f.id} dismissed.`) }, "Dismiss"),
      )
    : null;
  return h(
    "div",
    { class: "panel finding", "data-finding": f.id, "data-kind": f.kind },
    h("h3", {}, f.title),
    h("div", {}, h("span", { class: "tag" }, f.kind), h("span", { class: "tag" }, f.service), h("span", { class: "tag" }, f.signal)),
    h("ul", { class: "evidence" }, f.evidence.map((e) => h("li", {}, e))),
    f.series
      ? h("p", {}, `Affects ${fmtNum(f.series.series)} series; estimated saving `, h("strong", { class: "saving" }, `${fmtNum(f.series.saving_series)} series`), ` (series, not bytes: Prometheus reports no bytes), ${f.projection}.`)
      : h("p", {}, `Affects ${fmtNum(f.items_per_day)} items (${fmtBytes(f.bytes_per_day)}) per day; estimated saving `, h("strong", { class: "saving" }, `${fmtBytes(f.saving_bytes_per_day)}/day`), `, ${f.projection}.`),
    f.overlaps && f.overlaps.length ? h("p", { class: "muted overlaps" }, `Records also counted by: ${f.overlaps.join(", ")} (counted once, there).`) : null,
    f.series ? null : wouldDrop(f),
    h("div", { class: "muted" }, "Suggested policy:"),
    h("pre", { class: "yaml" }, f.policy_yaml),
    f.series ? [h("div", { class: "muted" }, "Or in Prometheus, in the job's scrape config:"), h("pre", { class: "yaml relabel" }, f.series.relabel)] : null,
    buttons,
  );
}

function acceptedRow(f) {
  const m = f.measured || {};
  return [f.id, f.service, m.mode, `${fmtBytes(m.estimated_bytes_per_day || 0)}/day`, `${fmtNum(m.enforced_items || 0)} (${fmtBytes(m.enforced_bytes || 0)})`, `${fmtNum(m.shadow_items || 0)} (${fmtBytes(m.shadow_bytes || 0)})`];
}

export async function findingsPage() {
  const { findings, accepted = [], withheld = [], services = [], saving_bytes_per_day: total = 0, saving_series: series = 0 } = await api("GET", "/api/v1/findings");
  // Services whose edges counted part of a signal without reading it: estimates, said so.
  const notes = services.flatMap((l) => (l.notes || []).map((n) => `${l.service}: ${n}`));
  return [
    h("h1", {}, `Findings (${findings.length})`),
    h("p", { class: "muted", id: "findings-total" }, `Estimated saving if all are enforced: ${fmtBytes(total)}/day${series ? ` and ${fmtNum(series)} Prometheus series` : ""} (each record counted once; what existing policies cover is not counted).`, canEdit() ? "" : " Your role may look, not accept or dismiss."),
    notes.length ? h("ul", { class: "notice", id: "estimate-notes" }, notes.map((n) => h("li", {}, n))) : null,
    findings.length ? findings.map(findingCard) : h("p", { class: "muted", id: "no-findings" }, "No open findings."),
    accepted.length ? [h("h2", {}, "Accepted: estimated against measured"), table(["finding", "service", "mode", "estimated", "measured enforced#", "measured shadow#"], accepted.map(acceptedRow), { id: "accepted-table" })] : null,
    withheld.length ? [h("h2", {}, "Withheld suggestions"), table(["finding", "service", "why not shown"], withheld.map((w) => [w.title, w.service, w.reason]), { id: "withheld-table" })] : null,
  ];
}

/** What "New policy" starts from. */
const NEW_POLICY = `id: my-policy
name: my policy
log:
  match:
    - log_field: severity_text
      exact: DEBUG
  keep: none
`;

/** Sends the editor's text as it is: the control plane reads it (YAML, or JSON, which is YAML too). */
const YAML = "application/yaml";

function editor(initial, onSave, onCancel) {
  const area = h("textarea", { id: "policy-text", spellcheck: "false", "aria-label": "Policy (YAML or JSON)" });
  area.value = initial;
  const error = h("div", { id: "policy-error", class: "error", role: "alert" });
  const save = h("button", { class: "primary", id: "policy-save" }, "Save");
  save.addEventListener("click", async () => {
    error.textContent = "";
    save.disabled = true;
    try {
      await onSave(area.value);
    } catch (e) {
      if (e instanceof ApiError && e.status === 400) error.textContent = `Rejected by the control plane (400): ${e.message}`;
      else if (e instanceof ApiError && e.status === 409) error.textContent = `Conflict (409): ${e.message}`;
      else if (e instanceof ApiError && e.status === 403) error.textContent = `Not allowed (403 Forbidden): ${e.message}`;
      else showError(e, "saving the policy");
    } finally {
      save.disabled = false;
    }
  });
  const panel = h(
    "div",
    { class: "panel", id: "policy-editor" },
    h("p", { class: "muted" }, "The policy document in YAML (or JSON). The control plane reads it and checks it with the policy engine's compiler before it is stored; a problem is shown here with its line."),
    area,
    error,
    h("div", { class: "actions" }, save, h("button", { onclick: onCancel }, "Cancel")),
  );
  // Shown once it is in the page: bring it into view and put the cursor in it.
  queueMicrotask(() => {
    panel.scrollIntoView();
    area.focus();
  });
  return panel;
}

function policyCard(entry, holder) {
  const p = entry.policy;
  const tags = [
    h("span", { class: `tag ${p.enabled ? "" : "disabled"}` }, p.enabled ? "enabled" : "disabled"),
    h("span", { class: `tag ${p.shadow ? "shadow" : "enforced"}`, "data-mode": p.shadow ? "shadow" : "enforce" }, p.shadow ? "shadow" : "enforced"),
    h("span", { class: "tag" }, p.origin),
  ];
  const body = h("pre", { class: "yaml" }, p.yaml);
  const put = (change, done) => act(`updating ${p.id}`, () => api("PUT", `/api/v1/policies/${encodeURIComponent(p.id)}`, change), done);
  let deleteArmed = false;
  const buttons = canEdit()
    ? h(
        "div",
        { class: "actions" },
        h("button", { "data-action": "edit", onclick: () => holder.replaceChildren(editor(p.yaml, async (text) => {
          await api("PUT", `/api/v1/policies/${encodeURIComponent(p.id)}`, text, YAML);
          await route();
          notify(`Policy ${p.id} saved.`, "info");
        }, () => route())) }, "Edit"),
        h("button", { "data-action": "toggle-enabled", onclick: () => put({ enabled: !p.enabled }, () => `Policy ${p.id} ${p.enabled ? "disabled" : "enabled"}.`) }, p.enabled ? "Disable" : "Enable"),
        p.shadow
          ? enforceButton("toggle-shadow", "Enforce", () => put({ shadow: false }, () => `Policy ${p.id} now enforced.`))
          : h("button", { "data-action": "toggle-shadow", onclick: () => put({ shadow: true }, () => `Policy ${p.id} now in shadow mode.`) }, "Switch to shadow"),
        h("button", { class: "danger", "data-action": "delete", onclick: (ev) => {
          if (!deleteArmed) {
            deleteArmed = true;
            ev.target.textContent = "Really delete?";
            return;
          }
          act(`deleting ${p.id}`, () => api("DELETE", `/api/v1/policies/${encodeURIComponent(p.id)}`), () => `Policy ${p.id} deleted.`);
        } }, "Delete"),
      )
    : null;
  return h(
    "div",
    { class: "panel policy", "data-policy": p.id },
    h("h3", {}, p.name, " ", h("code", { class: "muted" }, p.id)),
    h("div", {}, tags),
    h(
      "p",
      { class: "stats" },
      "Reported by edges: ",
      h("strong", { "data-stat": "hits" }, fmtNum(entry.hits)),
      " hits, ",
      h("strong", { "data-stat": "misses" }, fmtNum(entry.misses)),
      " misses, ",
      h("strong", { "data-stat": "errors" }, fmtNum(entry.errors.length)),
      " errors. Of the hits, ",
      h("strong", { "data-stat": "enforced-hits" }, fmtNum(entry.enforced_hits || 0)),
      entry.enforced_bytes == null ? "" : ` (${fmtBytes(entry.enforced_bytes)})`,
      " while enforced, ",
      h("strong", { "data-stat": "shadow-hits" }, fmtNum(entry.shadow_hits || 0)),
      entry.shadow_bytes == null ? "" : ` (${fmtBytes(entry.shadow_bytes)})`,
      " in shadow mode.",
    ),
    entry.errors.length ? h("ul", { class: "error" }, entry.errors.map((e) => h("li", {}, e))) : null,
    entry.per_edge.length
      ? table(["Edge", "Hits#", "Misses#", "Updated"], entry.per_edge.map((s) => [s.edge, fmtNum(s.hits), fmtNum(s.misses), fmtTime(s.updated_at)]))
      : null,
    body,
    buttons,
  );
}

export async function policiesPage() {
  const v = await api("GET", "/api/v1/policies");
  const holder = h("div", { id: "editor-holder" });
  const newButton = canEdit()
    ? h("button", { id: "policy-new", onclick: () => holder.replaceChildren(editor(NEW_POLICY, async (text) => {
        const p = await api("POST", "/api/v1/policies?shadow=true", text, YAML);
        await route();
        notify(`Policy ${p.id} created in shadow mode.`, "info");
      }, () => holder.replaceChildren())) }, "New policy")
    : null;
  const inSync = v.edges.filter((e) => e.in_sync).length;
  return [
    h("h1", {}, `Policies (${v.policies.length})`),
    h(
      "div",
      { class: "panel" },
      h("h2", {}, `Edges: ${inSync} of ${v.edges.length} in sync`),
      h("p", { class: "muted" }, "Served policy set hash ", h("code", {}, v.hash)),
      v.edges.length
        ? table(
            ["Edge", "Service", "Last sync", "Policy set"],
            v.edges.map((e) => [e.edge, e.service, fmtTime(e.last_sync), h("span", { class: `tag ${e.in_sync ? "ok" : "stale"}`, "data-edge": e.edge }, e.stale ? "stale (not seen since last sync)" : e.in_sync ? "in sync" : "behind")]),
            { id: "edges-table" },
          )
        : h("p", { class: "muted" }, "No edge has synced yet."),
    ),
    h("div", { class: "actions" }, newButton),
    holder,
    v.policies.map((e) => policyCard(e, holder)),
  ];
}

export async function adminPage() {
  // No role check here: the API answers non-admins with its own 403, shown as it is.
  const { tokens } = await api("GET", "/api/v1/tokens");
  const role = h("select", { id: "new-token-role" }, ["viewer", "editor", "admin", "edge"].map((r) => h("option", { value: r }, r)));
  const name = h("input", { id: "new-token-name", placeholder: "name" });
  const edge = h("input", { id: "new-token-edge", placeholder: "edge name (edge tokens)" });
  const expires = h("input", { id: "new-token-expires", placeholder: "expires: 30d, never (default 90d; edge never)" });
  const create = h("button", { class: "primary", id: "new-token-create", onclick: async () => {
    try {
      const body = { role: role.value, name: name.value };
      if (edge.value.trim()) body.edge = edge.value.trim();
      if (expires.value.trim()) body.expires = expires.value.trim();
      const r = await api("POST", "/api/v1/tokens", body);
      await route();
      notify(`Token ${r.info.id} (${r.info.role}) created. Copy it now, it is not shown again: ${r.token}`, "info");
    } catch (e) {
      showError(e, "creating a token");
    }
  } }, "Create token");
  const now = Date.now() / 1000;
  const state = (t) => (t.revoked_at ? "revoked" : t.expires_at && t.expires_at <= now ? "expired" : "active");
  return [
    h("h1", {}, "Tokens"),
    h("p", { class: "muted" }, "API tokens are for machines: edges, CI, scripts. People sign in as users."),
    h(
      "div",
      { class: "panel" },
      table(
        ["Id", "Role", "Edge", "Name", "State", "Created", "Expires", "Last used", ""],
        tokens.map((t) => [
          h("code", {}, t.id),
          t.role,
          t.edge || "",
          t.name,
          h("span", { class: `tag ${state(t) === "active" ? "ok" : "stale"}` }, state(t)),
          fmtTime(t.created_at),
          t.expires_at ? fmtTime(t.expires_at) : "never",
          fmtTime(t.last_used_at),
          t.revoked_at ? "" : h("button", { class: "danger", onclick: () => act(`revoking ${t.id}`, () => api("DELETE", `/api/v1/tokens/${t.id}`), () => `Token ${t.id} revoked.`) }, "Revoke"),
        ]),
        { id: "tokens-table" },
      ),
      h("div", { class: "actions" }, role, name, edge, expires, create),
    ),
  ];
}

/** Admins: users, their state, creating one (its enrolment secret shown once), disabling. */
export async function usersPage() {
  const { users } = await api("GET", "/api/v1/users");
  const name = h("input", { id: "new-user-name", placeholder: "user name" });
  const role = h("select", { id: "new-user-role" }, ["viewer", "editor", "admin"].map((r) => h("option", { value: r }, r)));
  const create = h("button", { class: "primary", id: "new-user-create", onclick: async () => {
    try {
      const r = await api("POST", "/api/v1/users", { name: name.value.trim(), role: role.value });
      await route();
      notify(`User ${r.name} (${r.role}) created. Give them this one-time enrolment secret (valid 24 h, not shown again): ${r.enrolment_secret}`, "info");
    } catch (e) {
      showError(e, "creating a user");
    }
  } }, "Create user");
  return [
    h("h1", {}, "Users"),
    h("p", { class: "muted" }, "People sign in with a password and a code from an authenticator app. Creating an existing user again resets their password and authenticator."),
    h(
      "div",
      { class: "panel" },
      users.length
        ? table(
            ["User", "Role", "State", "Created", "Last sign-in", ""],
            users.map((u) => [
              u.name,
              u.role,
              h("span", { class: `tag ${u.state === "active" ? "ok" : "stale"}`, "data-user": u.name }, u.state),
              fmtTime(u.created_at),
              fmtTime(u.last_sign_in),
              u.state === "disabled" ? "" : h("button", { class: "danger", onclick: () => act(`disabling ${u.name}`, () => api("DELETE", `/api/v1/users/${encodeURIComponent(u.name)}`), () => `User ${u.name} disabled; their sessions ended.`) }, "Disable"),
            ]),
            { id: "users-table" },
          )
        : h("p", { class: "muted" }, "No users yet."),
      h("div", { class: "actions" }, name, role, create),
    ),
  ];
}

/** Admins: the audit log, filtered by actor, action, client address and time; the chain verified. */
export async function auditPage(params) {
  const q = new URLSearchParams();
  for (const k of ["actor", "action", "client"]) if (params.get(k)) q.set(k, params.get(k));
  for (const k of ["from", "to"]) {
    const d = params.get(k);
    if (d) q.set(k, String(Math.floor(Date.parse(`${d}T00:00:00Z`) / 1000)));
  }
  q.set("limit", "10000");
  const [{ entries }, verify] = await Promise.all([api("GET", `/api/v1/audit?${q}`), api("GET", "/api/v1/audit/verify")]);
  const input = (k, placeholder, type) => h("input", { id: `audit-${k}`, placeholder, type: type || "text", value: params.get(k) || "" });
  const fields = { actor: input("actor", "actor: user:ana, token:…, cli"), action: input("action", "action prefix: policy., auth.failure"), client: input("client", "client address"), from: input("from", "from", "date"), to: input("to", "to (exclusive)", "date") };
  const apply = h("button", { class: "primary", id: "audit-apply", onclick: () => {
    const p = new URLSearchParams();
    for (const [k, el] of Object.entries(fields)) if (el.value.trim()) p.set(k, el.value.trim());
    const next = `#/audit${p.toString() ? `?${p}` : ""}`;
    if (location.hash === next) route();
    else location.hash = next;
  } }, "Filter");
  const shown = entries.slice(-500).reverse();
  return [
    h("h1", {}, "Audit log"),
    h(
      "div",
      { class: "panel" },
      h("p", { id: "audit-verify", class: verify.ok ? "ok" : "error", "data-ok": verify.ok ? "true" : "false" }, verify.ok ? `Hash chain intact: ${verify.verified.records} records (${verify.verified.first_seq} to ${verify.verified.last_seq}).` : `Hash chain BROKEN: ${verify.error}`),
      h("div", { class: "actions" }, Object.values(fields), apply, h("a", { href: "#/audit", id: "audit-clear" }, "Clear")),
      h("p", { class: "muted", id: "audit-count" }, `${entries.length} records match${entries.length > shown.length ? `; the newest ${shown.length} shown` : ""}, newest first. Export all as JSON lines: GET /api/v1/audit/export.`),
      table(
        ["#", "At", "Actor", "Client", "Action", "Target", "Details"],
        shown.map((a) => [String(a.seq), fmtTime(a.at), a.actor, a.client || "", a.action, a.target, a.after ? JSON.stringify(a.after) : ""]),
        { id: "audit-table" },
      ),
    ),
  ];
}
