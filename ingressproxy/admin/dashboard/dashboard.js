// ingressproxy dashboard: reads the admin JSON API and re-renders when the configuration
// changes (server-sent events from /api/events, polling if they are unavailable); polls
// /api/traffic for each router's live request rate, error share and latency.
// Every value from the manifests or from a request is inserted as text, never as HTML.
"use strict";

const API = "../api/";
const CONFLICT_CODES = new Set(["conflict", "shadowed", "duplicate-path", "shared-host"]);
const RETRY_MS = 2000;
const TRAFFIC_MS = 2000;
// As the admin API bounds them (admin/server.py): refuse here what it would refuse.
const MAX_URL = 4096;
const MAX_HEADERS = 32;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;

const state = {
  routers: [], services: [], diagnostics: [], overview: null, generation: null,
  traffic: null, trafficByName: new Map(), loaded: false, explained: null,
};

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
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try { message = (await response.json()).message || message; } catch (err) { /* not JSON */ }
    throw new Error(message);
  }
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

// A route as the user wrote it: namespace/ingress, then host and path. The Traefik-style id
// (`name`) is only ever shown after it.
function routeText(r) {
  const host = r.host ?? "*";
  const where = r.path === null || r.path === undefined ? `${host} (default backend)` : `${host}${r.path}`;
  return `${r.ingress} ${where}`;
}

function routerByName(name) {
  return state.routers.find((r) => r.name === name);
}

// ------------------------------------------------------------------ formatting

function formatRate(perSecond) {
  if (perSecond === null || perSecond === undefined) return "—";
  if (perSecond === 0) return "0";
  return perSecond < 10 ? perSecond.toFixed(1) : String(Math.round(perSecond));
}

function formatShare(share) {
  if (share === null || share === undefined) return "—";
  if (share === 0) return "0%";
  const pct = share * 100;
  return `${pct < 10 ? pct.toFixed(1) : Math.round(pct)}%`;
}

function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 0.001) return `${(seconds * 1000).toFixed(2)} ms`;
  if (seconds < 1) return `${(seconds * 1000).toFixed(seconds < 0.01 ? 1 : 0)} ms`;
  return `${seconds.toFixed(2)} s`;
}

// ------------------------------------------------------------------ overview

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
  // Coloured only when there is something to look at: a red 0 reads as an alarm.
  document.getElementById("card-warnings").classList.toggle("warn", o.diagnostics.warnings > 0);
  document.getElementById("card-errors").classList.toggle("err", o.diagnostics.errors > 0);
  document.getElementById("count-reloads").textContent = cfg.reloads;
  const failed = document.getElementById("failed-reloads");
  failed.textContent = cfg.failedReloads ? `(${cfg.failedReloads} failed)` : "";
  failed.className = cfg.failedReloads ? "bad" : "";
  const ready = state.services.reduce((n, s) => n + s.endpoints.filter((e) => e.state === "ready").length, 0);
  document.getElementById("count-endpoints").textContent = ready;
  // The banner is about reloads that failed (raised, or brought new errors), not every reload:
  // it shows while the latest one failed, with how many have failed since the start.
  const banner = document.getElementById("reload-failed");
  banner.hidden = !cfg.lastError;
  if (cfg.lastError) {
    const when = cfg.lastFailedReload ? ` at ${new Date(cfg.lastFailedReload).toLocaleTimeString()}` : "";
    const count = `${cfg.failedReloads} failed reload${cfg.failedReloads === 1 ? "" : "s"} since start`;
    banner.replaceChildren(
      el("strong", { text: `Reload failed${when}` }),
      ` (${count}); the last good version of what broke keeps serving. `,
      el("span", { class: "mono", text: cfg.lastError }));
  }
}

// ------------------------------------------------------------------ routers

function trafficCells(name) {
  const t = state.trafficByName.get(name);
  const window = state.traffic?.window;
  const rate = el("td", { class: "num rate" });
  const errors = el("td", { class: "num errors" });
  const latency = el("td", { class: "num latency" });
  if (!t) {
    rate.textContent = errors.textContent = latency.textContent = "—";
    return [rate, errors, latency];
  }
  rate.textContent = formatRate(t.rate);
  rate.dataset.requests = t.requests;
  rate.title = `${t.requests} request${t.requests === 1 ? "" : "s"} since start` + (window ? `; rate over the last ${window.toFixed(1)} s` : "");
  errors.textContent = formatShare(t.errorShare);
  errors.classList.toggle("bad", (t.errorShare ?? 0) > 0);
  errors.title = `${t.errors} answer${t.errors === 1 ? "" : "s"} with a 5xx status since start`;
  // The mean is exact (summed durations); quantiles are estimated from the histogram's buckets.
  latency.textContent = t.latency ? formatSeconds(t.latency.mean) : "—";
  latency.title = t.latency
    ? `mean ${formatSeconds(t.latency.mean)}; p50 ≈ ${formatSeconds(t.latency.p50)}, p95 ≈ ${formatSeconds(t.latency.p95)} (from the histogram's buckets)`
    : "no request in the window";
  return [rate, errors, latency];
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
    const service = r.backend
      ? el("a", { class: "svc mono", href: `#service-${r.service}`, title: r.service, text: r.backend })
      : el("span", { class: "muted", text: "—" });
    rows.push(el("tr", { class: `is-${r.status}`, "data-router": r.name },
      el("td", {}, pill(r.status)),
      // The route as written: namespace/ingress, then host and path.
      el("td", { class: "route" },
        el("div", { class: "ingress mono", text: r.ingress }),
        el("div", { class: "match mono" },
          el("span", { class: "host what", text: r.host ?? "*" }),
          r.path !== null ? el("span", { class: "path what", text: r.path }) : el("span", { class: "path muted", text: " (default backend)" }),
          r.pathType ? el("span", { class: "ptype", text: r.pathType }) : null),
        ...reasons),
      el("td", {}, service),
      el("td", { class: "dialect", title: r.dialectReason ?? "", text: r.dialect ?? "" },
        ...(r.filters ?? []).map((f) => el("span", { class: "why", text: f })),
        ...(r.middlewares ?? []).map((m) => el("span", { class: "why middleware", text: m }))),
      ...trafficCells(r.name),
      el("td", { class: "mono" }, source(r.source, r.field), el("span", { class: "rid", title: "router id (Traefik's name for it)", text: r.name }))));
  }
  body.replaceChildren(...rows);
  document.getElementById("routers-empty").hidden = rows.length > 0;
  return rows.length;
}

function renderTraffic() {
  // In place, so a row keeps its hover and selection while the numbers move.
  for (const row of document.querySelectorAll("#routers tbody tr")) {
    const [rate, errors, latency] = trafficCells(row.dataset.router);
    row.querySelector("td.rate").replaceWith(rate);
    row.querySelector("td.errors").replaceWith(errors);
    row.querySelector("td.latency").replaceWith(latency);
  }
  const t = state.traffic;
  document.getElementById("traffic-window").textContent = t?.window ? `traffic over the last ${Math.round(t.window)} s` : "";
  const u = t?.unrouted;
  document.getElementById("unrouted").textContent = u && u.requests
    ? `Requests no router took (404): ${u.requests} since start, ${formatRate(u.rate)}/s now.`
    : "";
}

// ------------------------------------------------------------------ services

function renderServices(query) {
  const box = document.getElementById("services");
  const cards = [];
  for (const s of state.services) {
    const eps = s.endpoints.map((e) => e.address);
    const users = s.usedBy.map((name) => routerByName(name));
    const userText = users.map((r, i) => (r ? routeText(r) : s.usedBy[i]));
    if (!matches(query, s.name, s.backend, s.source, s.status, ...eps, ...s.usedBy, ...userText)) continue;
    const endpoints = s.endpoints.map((e) =>
      el("li", { class: `endpoint ${e.state.replace(" ", "-")}`, title: e.state, "data-endpoint": e.address, text: e.address }));
    cards.push(el("div", { class: `service ${s.status}`, id: `service-${s.name}`, "data-service": s.name },
      el("h3", {}, el("span", { class: "mono", text: s.backend }), pill(s.status)),
      el("div", { class: "meta" }, s.source ? source(s.source) : null, s.source ? " · " : "",
        el("span", { class: "mono", title: "service id (Traefik's name for it)", text: s.name })),
      endpoints.length ? el("ul", { class: "endpoints" }, ...endpoints) : null,
      ...s.error.map((m) => el("div", { class: "error", text: m })),
      el("div", { class: "used" }, `used by ${s.usedBy.length} router${s.usedBy.length === 1 ? "" : "s"}: `,
        ...userText.map((text, i) => el("span", { class: "mono user", title: s.usedBy[i], text })))));
  }
  box.replaceChildren(...cards);
  document.getElementById("services-empty").hidden = cards.length > 0;
  return cards.length;
}

// ------------------------------------------------------------------ diagnostics

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

// ------------------------------------------------------------------ explain

function parseHeaders(text) {
  const headers = [];
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line) continue;
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon).trim() : "";
    if (!HEADER_NAME.test(name)) throw new Error(`header line ${i + 1}: write it as "Name: value"`);
    headers.push([name, line.slice(colon + 1).trim()]);
  }
  if (headers.length > MAX_HEADERS) throw new Error(`at most ${MAX_HEADERS} headers`);
  return headers;
}

function explainQuery() {
  const url = document.getElementById("explain-url").value.trim();
  if (!url) throw new Error("type a URL: http://host/path, host/path, or /path with a Host header");
  if (url.length > MAX_URL) throw new Error(`the URL is longer than ${MAX_URL} characters`);
  const params = new URLSearchParams({ url, method: document.getElementById("explain-method").value });
  for (const [name, value] of parseHeaders(document.getElementById("explain-headers").value)) {
    params.append(`header.${name}`, value);
  }
  return params;
}

async function runExplain() {
  const box = document.getElementById("explain-result");
  box.hidden = false;
  let params;
  try {
    params = explainQuery();
  } catch (err) {
    state.explained = null;
    box.replaceChildren(el("div", { class: "explain-error", text: err.message }));
    return;
  }
  state.explained = params;
  box.classList.add("busy");
  try {
    renderExplanation(await getJSON(`explain?${params}`));
  } catch (err) {
    box.replaceChildren(el("div", { class: "explain-error", text: `Cannot explain: ${err.message}` }));
  } finally {
    box.classList.remove("busy");
  }
}

function ruleLine(rule) {
  const known = rule.name ? routerByName(rule.name) : null;
  const id = routeText(known ?? rule);
  return el("span", {}, el("span", { class: "mono", text: id }),
    rule.name ? el("span", { class: "rid inline", text: rule.name }) : null);
}

function renderExplanation(x) {
  const box = document.getElementById("explain-result");
  const ok = x.status < 400;
  const parts = [
    el("div", { class: "verdict" },
      el("span", { class: `pill ${ok ? "enabled" : "disabled"}`, "data-status": x.status, text: String(x.status) }),
      el("span", { class: "reason", text: x.reason })),
  ];
  const facts = [];
  const fact = (label, ...value) => facts.push(el("dt", { text: label }), el("dd", {}, ...value));
  const path = x.path.canonical === null || x.path.canonical === x.path.raw
    ? x.path.raw : `${x.path.raw} → ${x.path.canonical}`;
  fact("request", el("span", { class: "mono", text: `${x.method} ${x.host || "(no host)"} ${path}` }), ` (flavor ${x.flavor})`);
  if (x.hostDecision) fact("host", x.hostDecision);
  if (x.route) {
    const r = x.route;
    fact("router", el("span", { class: "chosen" }, ruleLine(r)),
      el("div", { class: "muted small" }, `${r.pathType ?? "default backend"} · ${r.dialect}${r.dialectReason ? ` (${r.dialectReason})` : ""} · `,
        source(r.source, r.field), r.filters.length ? ` · filters: ${r.filters.join(", ")}` : "",
        (r.middlewares ?? []).length ? ` · middlewares: ${r.middlewares.join(", ")}` : ""));
  }
  if (x.backend) {
    const eps = [...new Set(x.backend.endpoints)];
    const list = eps.length
      ? el("span", {}, ...eps.map((e) => el("span", { class: "endpoint", "data-endpoint": e, text: e })),
        eps.length > 1 ? el("span", { class: "muted small", text: " one of these, in turn (round robin)" }) : null)
      : el("span", { class: "bad", text: x.backend.error ?? "no ready endpoints" });
    fact("service", el("span", { class: "mono", text: x.backend.key }));
    fact("endpoint", list);
  }
  parts.push(el("dl", { class: "facts" }, ...facts));

  const lost = x.rules.filter((r) => !r.chosen);
  if (lost.length) {
    parts.push(el("div", { class: "sub-h", text: "Candidates that lost, and why" }));
    parts.push(el("ul", { class: "candidates" }, ...lost.map((r) => {
      const kind = r.skipped ? "skipped" : r.matched ? "outranked" : "no match";
      return el("li", { class: `cand ${kind.replace(" ", "-")}`, "data-rule": r.name ?? "" },
        el("span", { class: "tag", text: kind }), ruleLine(r),
        el("div", { class: "why-text", text: r.reason + (r.rank ? ` [${r.rank}]` : "") }));
    })));
  }
  const otherHosts = x.hosts.filter((h) => h.exists && !h.chosen);
  const notes = [
    ...x.tieBreaks,
    ...otherHosts.map((h) => `${h.kind} host ${h.host ?? "(rules without a host)"}: ${h.note}`),
    ...x.diagnostics.map((d) => `${d.severity}: ${d.message}`),
    ...x.notes,
  ];
  if (notes.length) parts.push(el("ul", { class: "notes" }, ...notes.map((n) => el("li", { text: n }))));
  box.replaceChildren(...parts);
}

// ------------------------------------------------------------------ refresh

function render() {
  const query = document.getElementById("search").value.trim().toLowerCase();
  renderOverview();
  const shown = renderRouters(query) + renderServices(query) + renderDiagnostics(query);
  renderTraffic();
  document.getElementById("match-count").textContent = query ? `${shown} matching` : "";
}

function showLoaded() {
  if (state.loaded) return;
  state.loaded = true;
  document.getElementById("loading").hidden = true;
  document.getElementById("content").hidden = false;
  const first = state.routers.find((r) => r.host && r.path);
  if (first) {
    document.getElementById("explain-url").placeholder = `http://${first.host}${first.path}`;
    document.getElementById("explain-headers").placeholder = `Optional headers, one per line, e.g. Host: ${first.host}`;
  }
}

let loading = null;
let retry = null;
async function refresh() {
  if (loading) return loading;
  loading = (async () => {
    try {
      const [overview, routers, services, diagnostics] = await Promise.all([
        getJSON("overview"), getJSON("http/routers"), getJSON("http/services"), getJSON("diagnostics"),
      ]);
      const changed = state.generation !== null && overview.config.generation !== state.generation;
      Object.assign(state, { overview, routers, services, diagnostics, generation: overview.config.generation });
      showLoaded();
      render();
      const dot = document.getElementById("live-dot");
      dot.classList.remove("flash");
      void dot.offsetWidth; // restart the animation
      dot.classList.add("flash");
      // An explanation on screen follows the configuration it explains.
      if (changed && state.explained) runExplain();
    } catch (err) {
      if (!state.loaded) {
        // Nothing to show yet: say so, and try again.
        document.getElementById("loading-text").textContent =
          `Cannot reach the admin API (${err.message}); retrying every ${RETRY_MS / 1000} s…`;
        document.getElementById("loading").classList.add("failed");
        clearTimeout(retry);
        retry = setTimeout(refresh, RETRY_MS);
      } else {
        console.warn("refresh failed:", err);
      }
    } finally {
      loading = null;
    }
  })();
  return loading;
}

async function refreshTraffic() {
  if (!state.loaded || document.visibilityState === "hidden") return;
  try {
    state.traffic = await getJSON("traffic");
  } catch (err) {
    state.traffic = null; // no metrics (or the proxy is restarting): the cells say "—"
  }
  state.trafficByName = new Map((state.traffic?.routers ?? []).map((t) => [t.name, t]));
  renderTraffic();
}

function poll() {
  // Without server-sent events: ask for the generation every two seconds.
  setInterval(async () => {
    try {
      const o = await getJSON("overview");
      if (o.config.generation !== state.generation || o.config.reloads !== state.overview?.config.reloads) refresh();
    } catch (err) { /* the proxy is restarting; try again on the next tick */ }
  }, RETRY_MS);
}

function live() {
  const dot = document.getElementById("live-dot");
  if (!("EventSource" in window)) { poll(); return; }
  const events = new EventSource(API + "events");
  events.addEventListener("open", () => dot.classList.add("on"));
  events.addEventListener("error", () => dot.classList.remove("on"));
  events.addEventListener("config", () => refresh());
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("search").addEventListener("input", render);
  document.getElementById("explain-form").addEventListener("submit", (event) => {
    event.preventDefault();
    runExplain();
  });
  refresh().then(refreshTraffic);
  setInterval(refreshTraffic, TRAFFIC_MS);
  live();
});
