// ingressproxy dashboard: reads the admin JSON API and re-renders when the configuration
// changes (server-sent events from /api/events, polling if they are unavailable).
// Every value from the manifests is inserted as text, never as HTML.
"use strict";

const API = "../api/";
const CONFLICT_CODES = new Set(["conflict", "shadowed", "duplicate-path", "shared-host"]);
const state = { routers: [], services: [], diagnostics: [], overview: null, generation: null };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

async function getJSON(path) {
  const response = await fetch(API + path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function matches(query, ...values) {
  if (!query) return true;
  return values.some((v) => v !== null && v !== undefined && String(v).toLowerCase().includes(query));
}

// "/long/path/to/folder/ingress.yaml:13" -> "folder/ingress.yaml:13" (the full path is the title).
function shortSource(source) {
  if (!source) return "";
  const parts = source.split("/");
  return parts.length > 2 ? parts.slice(-2).join("/") : source;
}

function source(text, extra) {
  return el("span", { class: "src", title: extra ? `${text}\n${extra}` : text, text: shortSource(text) });
}

function pill(status, text) {
  return el("span", { class: `pill ${status.replace(" ", "-")}`, text: text ?? status });
}

function renderOverview() {
  const o = state.overview;
  if (!o) return;
  const cfg = o.config;
  document.getElementById("generation").textContent = cfg.generation;
  document.getElementById("loaded-at").textContent = cfg.loadedAt ? `loaded ${new Date(cfg.loadedAt).toLocaleTimeString()}` : "";
  document.getElementById("count-routers").textContent = o.http.routers.total;
  document.getElementById("count-services").textContent = o.http.services.total;
  document.getElementById("count-warnings").textContent = o.diagnostics.warnings;
  document.getElementById("count-errors").textContent = o.diagnostics.errors;
  document.getElementById("count-reloads").textContent = cfg.reloads;
  document.getElementById("failed-reloads").textContent = cfg.failedReloads ? `(${cfg.failedReloads} failed)` : "";
  const ready = state.services.reduce((n, s) => n + s.endpoints.filter((e) => e.state === "ready").length, 0);
  document.getElementById("count-endpoints").textContent = ready;
  const banner = document.getElementById("last-error");
  banner.hidden = !cfg.lastError;
  banner.textContent = cfg.lastError ? `Last reload error: ${cfg.lastError}` : "";
}

function renderRouters(query) {
  const body = document.querySelector("#routers tbody");
  const rows = [];
  for (const r of state.routers) {
    if (!matches(query, r.name, r.host, r.path, r.service, r.backend, r.ingress, r.source, r.status, r.dialect)) continue;
    const reasons = [
      ...r.error.map((m) => el("span", { class: "why", text: m })),
      ...r.warnings.map((m) => el("span", { class: "why warn", text: m })),
    ];
    const service = r.service
      ? el("a", { class: "svc mono", href: `#service-${r.service}`, title: r.backend, text: r.service })
      : el("span", { class: "muted", text: "—" });
    rows.push(el("tr", { class: `is-${r.status}`, "data-router": r.name },
      el("td", {}, pill(r.status)),
      el("td", { class: "host mono" }, el("span", { class: "what", text: r.host ?? "*" })),
      el("td", { class: "path mono" },
        r.path !== null ? el("span", { class: "what", text: r.path }) : el("span", { class: "muted", text: "(default backend)" }),
        ...reasons),
      el("td", { text: r.pathType ?? "" }),
      el("td", { class: "dialect", title: r.dialectReason ?? "", text: r.dialect ?? "" },
        ...(r.filters ?? []).map((f) => el("span", { class: "why", text: f }))),
      el("td", {}, service),
      el("td", { class: "mono", text: r.ingress }),
      el("td", { class: "mono" }, source(r.source, r.field))));
  }
  body.replaceChildren(...rows);
  document.getElementById("routers-empty").hidden = rows.length > 0;
  return rows.length;
}

function renderServices(query) {
  const box = document.getElementById("services");
  const cards = [];
  for (const s of state.services) {
    const eps = s.endpoints.map((e) => e.address);
    if (!matches(query, s.name, s.backend, s.source, s.status, ...eps, ...s.usedBy)) continue;
    const endpoints = s.endpoints.map((e) =>
      el("li", { class: `endpoint ${e.state.replace(" ", "-")}`, title: e.state, "data-endpoint": e.address, text: e.address }));
    cards.push(el("div", { class: `service ${s.status}`, id: `service-${s.name}`, "data-service": s.name },
      el("h3", {}, el("span", { class: "mono", text: s.name }), pill(s.status)),
      el("div", { class: "meta" }, `${s.backend}`, s.source ? " · " : "", s.source ? source(s.source) : null),
      endpoints.length ? el("ul", { class: "endpoints" }, ...endpoints) : null,
      ...s.error.map((m) => el("div", { class: "error", text: m })),
      el("div", { class: "used", text: `used by ${s.usedBy.length} router${s.usedBy.length === 1 ? "" : "s"}: ${s.usedBy.join(", ")}` })));
  }
  box.replaceChildren(...cards);
  document.getElementById("services-empty").hidden = cards.length > 0;
  return cards.length;
}

function renderDiagnostics(query) {
  const list = document.getElementById("diagnostics");
  const items = [];
  for (const d of state.diagnostics) {
    if (!matches(query, d.message, d.file, d.object, d.field, d.code, d.severity)) continue;
    const where = d.file ? source(`${d.file}${d.line ? ":" + d.line : ""}`) : "";
    const classes = [d.severity, CONFLICT_CODES.has(d.code) ? "conflict" : ""].join(" ").trim();
    items.push(el("li", { class: classes, "data-code": d.code },
      el("div", {}, pill(d.severity === "error" ? "disabled" : "warning", d.severity)),
      el("div", { class: "where" }, where, el("br"), d.object ?? "", d.field ? el("div", { text: d.field }) : null),
      el("div", {}, d.message, el("div", { class: "code", text: d.code }))));
  }
  list.replaceChildren(...items);
  document.getElementById("diagnostics-empty").hidden = items.length > 0;
  return items.length;
}

function render() {
  const query = document.getElementById("search").value.trim().toLowerCase();
  renderOverview();
  const shown = renderRouters(query) + renderServices(query) + renderDiagnostics(query);
  document.getElementById("match-count").textContent = query ? `${shown} matching` : "";
}

let loading = null;
async function refresh() {
  if (loading) return loading;
  loading = (async () => {
    try {
      const [overview, routers, services, diagnostics] = await Promise.all([
        getJSON("overview"), getJSON("http/routers"), getJSON("http/services"), getJSON("diagnostics"),
      ]);
      Object.assign(state, { overview, routers, services, diagnostics, generation: overview.config.generation });
      render();
      const dot = document.getElementById("live-dot");
      dot.classList.remove("flash");
      void dot.offsetWidth; // restart the animation
      dot.classList.add("flash");
    } catch (err) {
      console.error(err);
    } finally {
      loading = null;
    }
  })();
  return loading;
}

function poll() {
  // Without server-sent events: ask for the generation every two seconds.
  setInterval(async () => {
    try {
      const o = await getJSON("overview");
      if (o.config.generation !== state.generation || o.config.reloads !== state.overview?.config.reloads) refresh();
    } catch (err) { /* the proxy is restarting; try again on the next tick */ }
  }, 2000);
}

function live() {
  const dot = document.getElementById("live-dot");
  if (!("EventSource" in window)) { poll(); return; }
  const source = new EventSource(API + "events");
  source.addEventListener("open", () => dot.classList.add("on"));
  source.addEventListener("error", () => dot.classList.remove("on"));
  source.addEventListener("config", () => refresh());
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("search").addEventListener("input", render);
  refresh();
  live();
});
