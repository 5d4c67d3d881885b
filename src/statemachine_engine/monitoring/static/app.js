// statemachine-ui page: one WebSocket for live rows, REST for lists and actions.
// All text from the server is rendered with textContent, never as HTML.

import { loadMermaid } from "./diagram.js";
import { jobLink, machineLink } from "./links.js";
import { GroupNav } from "./groups.js";
import { HealthWatch, healthBadge, healthSummary, healthText, updateBadge } from "./health.js";
import { ProblemsView } from "./problems.js";
import { SchedulesView } from "./schedules.js";
import { Versions } from "./versions.js";
import { Zoom } from "./zoom.js";

const LOG_LIMIT = 1000;
const LOG_SHOWN = 300;
const JOB_PAGE = 50;
const ERROR_KINDS = new Set(["error", "unhandled_event", "event_interrupted", "stuck"]);
const PROBLEM_KINDS = new Set(["job", "unhandled_event", "event_interrupted"]);

const params = new URLSearchParams(location.search);
if (params.get("token")) sessionStorage.setItem("sm-token", params.get("token"));
const token = sessionStorage.getItem("sm-token");

const state = {
  machines: new Map(),      // name -> machine row
  rows: new Map(),          // name -> <tr>
  definitions: new Map(),   // digest -> promise of a definition view
  definitionViews: new Map(), // digest -> definition view, once loaded
  log: [],
  errors: 0,
  alerts: new Map(),        // name -> error of a failure the machine stays in
  selected: null,
  jobStatus: "",
  jobOffset: 0,
  jobTotal: 0,
  jobCounts: {},
  jobDetail: null,
  kanbanDigest: "",
  lastId: 0,
  logSeq: 0,                // every row added to the log (stream or local) counts up
};

// Latency probe for tests and the benchmark: when each state change reached the DOM.
window.smStats = { applied: [], connected: false, snapshots: 0 };

const $ = (sel) => document.querySelector(sel);
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else if (k === "data") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function fmtTime(ts) {
  if (!ts) return "";
  const d = new Date(ts * 1000);
  return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}
function ago(ts) {
  if (!ts) return "";
  const s = Math.max(0, Date.now() / 1000 - ts);
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${(s / 60).toFixed(0)}m`;
  return `${(s / 3600).toFixed(1)}h`;
}

function setText(node, text) {
  const value = String(text);
  if (node.textContent !== value) node.textContent = value;
}

// ---- notices --------------------------------------------------------------------------
// A notice repeated while it is on screen counts up (×N) instead of stacking; beyond
// TOAST_MAX open notices one line says how many more came. Notices from the stream can be
// muted (remembered in this browser); replies to what the user just did always show.

const TOAST_MAX = 4;
const toastsOpen = new Map();   // message -> {node, timer, count}
let toastsMore = null;          // {node, timer, count}
let toastsMuted = localStorage.getItem("sm-toasts-muted") === "1";
let toastsMissed = 0;

function toastTimer(entry, ms, remove) {
  clearTimeout(entry.timer);
  entry.timer = setTimeout(remove, ms);
}

function toast(message, ok = false) {
  const key = `${ok ? "ok" : "err"}:${message}`;
  const ms = ok ? 2500 : 6000;
  const open = toastsOpen.get(key);
  if (open) {
    open.count += 1;
    open.node.dataset.count = `×${open.count}`;
    toastTimer(open, ms, () => { open.node.remove(); toastsOpen.delete(key); });
    return;
  }
  if (toastsOpen.size >= TOAST_MAX) {
    if (!toastsMore) {
      toastsMore = { node: el("div", { class: "toast more" }), timer: null, count: 0 };
      $("#toasts").append(toastsMore.node);
    }
    toastsMore.count += 1;
    toastsMore.node.dataset.more = String(toastsMore.count);
    toastsMore.node.textContent = `+${toastsMore.count} more (see Events)`;
    toastTimer(toastsMore, 6000, () => { toastsMore.node.remove(); toastsMore = null; });
    return;
  }
  const entry = { node: el("div", { class: ok ? "toast ok" : "toast", role: ok ? "status" : "alert", text: message }), timer: null, count: 1 };
  toastsOpen.set(key, entry);
  (toastsMore ? toastsMore.node.before(entry.node) : $("#toasts").append(entry.node));
  toastTimer(entry, ms, () => { entry.node.remove(); toastsOpen.delete(key); });
}

// A notice the stream brought (not a reply to the user): silent while muted.
function notify(message, ok = false) {
  if (toastsMuted) { toastsMissed += 1; renderMute(); return; }
  toast(message, ok);
}

function renderMute() {
  const button = $("#toast-mute");
  button.setAttribute("aria-pressed", String(toastsMuted));
  setText(button, toastsMuted ? `notices off${toastsMissed ? ` (${toastsMissed})` : ""}` : "notices on");
}

function setMuted(muted) {
  toastsMuted = muted;
  toastsMissed = 0;
  localStorage.setItem("sm-toasts-muted", muted ? "1" : "0");
  if (muted) for (const key of [...toastsOpen.keys()]) if (key.startsWith("err:")) {
    const entry = toastsOpen.get(key);
    clearTimeout(entry.timer);
    entry.node.remove();
    toastsOpen.delete(key);
  }
  renderMute();
}

// Rows and cards that open something on click open it on Enter or Space too.
function activatable(node, open, label) {
  node.tabIndex = 0;
  if (label) node.setAttribute("aria-label", label);
  node.addEventListener("click", open);
  node.addEventListener("keydown", (ev) => {
    if (ev.target !== node || (ev.key !== "Enter" && ev.key !== " ")) return;
    ev.preventDefault();
    open();
  });
  return node;
}

// A changed cell is marked for a moment. No animation: an animation repaints every frame
// while it runs, and at 25 changes a second some cell always would be; the mark costs two
// style changes, and one timer takes every expired mark off.
const FLASH_MS = 900;
const flashing = new Map(); // node -> time the mark comes off
let flashSweep = null;
function flash(node) {
  node.classList.add("changed");
  flashing.set(node, performance.now() + FLASH_MS);
  if (!flashSweep) flashSweep = setInterval(() => {
    const now = performance.now();
    for (const [cell, until] of flashing) if (until <= now) { cell.classList.remove("changed"); flashing.delete(cell); }
    if (!flashing.size) { clearInterval(flashSweep); flashSweep = null; }
  }, 150);
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { ...options, headers });
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  return body;
}

function parseJsonField(text, what) {
  if (!text.trim()) return undefined;
  try { return JSON.parse(text); } catch { throw new Error(`${what} is not valid JSON`); }
}

// ---- machines -------------------------------------------------------------------------

function aliveClass(m) { return m.alive === true ? "dot alive" : m.alive === false ? "dot dead" : "dot"; }

function alertMark(m) {
  const error = state.alerts.get(m.machine_name);
  const mark = el("span", { class: "alert-mark", title: error || "", text: "failed, waiting" });
  mark.hidden = error === undefined;
  return mark;
}

function machineRow(m) {
  const tr = el("tr", { data: { name: m.machine_name } },
    el("td", { class: "name" }, machineLink(m.machine_name), " ", alertMark(m), " ", healthBadge(m)),
    el("td", { class: "state", text: m.current_state }),
    el("td", { class: "since", text: ago(m.state_entered_at || m.updated_at) }),
    el("td", { class: "pid", text: m.pid ?? "" }),
    el("td", {}, el("span", { class: aliveClass(m), title: m.alive ? "alive" : "not running" })));
  if (state.alerts.has(m.machine_name)) tr.classList.add("alerting");
  updateBadge(tr.querySelector(".health"), m);
  activatable(tr, () => selectMachine(m.machine_name), `machine ${m.machine_name}`);
  return tr;
}

function renderMachines() {
  const tbody = $("#machines tbody");
  const filter = $("#machine-filter").value.trim().toLowerCase();
  const names = [...state.machines.keys()].sort();
  tbody.replaceChildren();
  state.rows.clear();
  for (const name of names) {
    const m = state.machines.get(name);
    const tr = machineRow(m);
    if (name === state.selected) tr.classList.add("selected");
    if (filter && !name.toLowerCase().includes(filter)) tr.hidden = true;
    state.rows.set(name, tr);
    tbody.append(tr);
  }
  $("#machine-count").textContent = `(${names.length})`;
  $("#summary").textContent = healthSummary(state.machines.values());
  renderTargets();
  renderKanbanChoices();
}

function updateMachineRow(m) {
  const tr = state.rows.get(m.machine_name);
  if (!tr) { renderMachines(); return; }
  updateBadge(tr.querySelector(".health"), m);
  healthWatch.seen(m);
  const cell = tr.querySelector(".state");
  const moved = cell.textContent !== m.current_state;
  setText(cell, m.current_state);
  setText(tr.querySelector(".since"), ago(m.state_entered_at || m.updated_at));
  setText(tr.querySelector(".pid"), m.pid ?? "");
  const dot = tr.querySelector(".dot");
  if (dot.className !== aliveClass(m)) dot.className = aliveClass(m);
  const error = state.alerts.get(m.machine_name);
  const mark = tr.querySelector(".alert-mark");
  mark.hidden = error === undefined;
  mark.title = error || "";
  tr.classList.toggle("alerting", error !== undefined);
  if (moved) flash(cell);
}

function renderTargets() {
  const select = $("#event-target");
  const current = select.value || state.selected || "";
  select.replaceChildren(...[...state.machines.keys()].sort().map((n) => el("option", { text: n, value: n })));
  if (current && state.machines.has(current)) select.value = current;
}

function selectMachine(name) {
  state.selected = name;
  for (const [n, tr] of state.rows) tr.classList.toggle("selected", n === name);
  $("#event-target").value = name;
  const m = state.machines.get(name);
  if (m && m.definition_hash && !state.kanbanDigest) {
    state.kanbanDigest = m.definition_hash;
    renderKanbanChoices();
  }
  scheduleDiagram();
}

setInterval(() => {
  for (const [name, tr] of state.rows) {
    const m = state.machines.get(name);
    if (m) setText(tr.querySelector(".since"), ago(m.state_entered_at || m.updated_at));
  }
}, 5000);

// ---- definitions, diagram --------------------------------------------------------------

async function definition(digest) {
  if (!digest) return null;
  if (!state.definitions.has(digest)) {
    state.definitions.set(digest, api(`/api/definitions/${encodeURIComponent(digest)}`).then((def) => {
      state.definitionViews.set(digest, def);
      return def;
    }, (e) => {
      state.definitions.delete(digest);
      throw e;
    }));
  }
  return state.definitions.get(digest);
}


// The SVG is rendered once per definition; state changes only move CSS classes on it.
let diagramBusy = false;
let diagramDirty = false;
let diagramSeq = 0;

function scheduleDiagram() {
  diagramDirty = true;
  if (!diagramBusy) drawDiagram();
}

async function drawDiagram() {
  diagramBusy = true;
  try {
    while (diagramDirty) {
      diagramDirty = false;
      await drawDiagramOnce();
    }
  } finally {
    diagramBusy = false;
  }
}

async function drawDiagramOnce() {
  const box = $("#diagram");
  const m = state.machines.get(state.selected);
  if (!m) return;
  const known = state.definitionViews.get(m.definition_hash);
  if (box.dataset.key === groupNav.key(known, m) && known && box.querySelector("svg")) {
    highlightDiagram();
    return;
  }
  let def;
  try { def = await definition(m.definition_hash); } catch (e) {
    box.replaceChildren(el("p", { class: "muted", text: `diagram unavailable: ${e.message}` }));
    delete box.dataset.digest;
    return;
  }
  if (!def) return;
  let mermaid;
  try { mermaid = await loadMermaid(); } catch (e) {
    box.replaceChildren(el("p", { class: "muted", text: `diagram unavailable: ${e.message}` }));
    return;
  }
  const view = groupNav.viewFor(def, m);
  const { svg } = await mermaid.render(`sm-diagram-${++diagramSeq}`, view.mermaid);
  // Mermaid output is sanitised (securityLevel strict); labels were entity-encoded server-side.
  box.innerHTML = svg;
  box.dataset.digest = def.digest;
  box.dataset.key = view.key;
  groupNav.decorate();
  zoom.reset();
  highlightDiagram();
}

function highlightDiagram() {
  const box = $("#diagram");
  const m = state.machines.get(state.selected);
  if (!m) return;
  $("#diagram-title").textContent = `${m.machine_name} (${versions.label(m.definition_hash) || m.definition_name || "?"})`;
  $("#last-transition").textContent = m.previous_state != null
    ? `last: ${m.previous_state} --${m.last_event ?? "?"}--> ${m.current_state}`
    : `in ${m.current_state}`;
  const def = groupNav.view;
  const full = state.definitionViews.get(box.dataset.digest);
  if (!def || !full || box.dataset.digest !== m.definition_hash || box.dataset.key !== groupNav.key(full, m)) {
    scheduleDiagram();
    return;
  }
  for (const node of box.querySelectorAll(".sm-current, .sm-previous, .sm-last")) {
    node.classList.remove("sm-current", "sm-previous", "sm-last");
  }
  const mark = (stateName, cls) => {
    const id = def.ids[stateName];
    const node = id && box.querySelector(`g.node[id*="-state-${id}-"]`);
    if (node) node.classList.add(cls);
  };
  if (m.previous_state !== m.current_state) mark(m.previous_state, "sm-previous");
  mark(m.current_state, "sm-current");
  const last = def.transitions.find((t) => t.event === m.last_event && t.to === m.current_state
    && (t.from === m.previous_state || t.from === "*"));
  if (last) {
    for (const edge of box.querySelectorAll(`[data-id="edge${last.edge}"], [id$="-edge${last.edge}"]`)) {
      (edge.closest(".edgeLabel") || edge).classList.add("sm-last");
    }
  }
  box.dataset.machine = m.machine_name;
  box.dataset.current = m.current_state;
}

// ---- kanban ---------------------------------------------------------------------------

function renderKanbanChoices() {
  const select = $("#kanban-def");
  const defs = new Map();
  for (const m of state.machines.values()) {
    if (m.definition_hash && !defs.has(m.definition_hash)) {
      defs.set(m.definition_hash, versions.label(m.definition_hash));
    }
  }
  if (!state.kanbanDigest || !defs.has(state.kanbanDigest)) state.kanbanDigest = defs.keys().next().value || "";
  const options = [...defs].map(([digest, label]) => el("option", { value: digest, text: label }));
  select.replaceChildren(...options);
  select.value = state.kanbanDigest;
  scheduleKanban();
}

// Whole-board and log renders are coalesced: at most one per interval, however busy.
function throttled(fn, ms) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(async () => {
      timer = null;
      try { await fn(); } catch (e) { console.warn(e); }
    }, ms);
  };
}
const scheduleKanban = throttled(renderKanban, 50);

// The board is built once per definition; later renders move, add and remove only the cards
// whose machine changed.
let board = null; // {digest, columns: [{col, node, count, cards}], byState: Map, cards: Map}

function buildBoard(digest, def) {
  const columns = def.columns.map((col) => {
    const count = el("span", { class: "muted", text: "0" });
    const node = el("div", { class: col.group ? "column group" : "column", data: { column: col.title } },
      el("h4", {}, el("span", { text: col.title }), count));
    return { col, node, count, cards: 0 };
  });
  const byState = new Map();
  for (const column of columns) for (const s of column.col.states) if (!byState.has(s)) byState.set(s, column);
  $("#kanban").replaceChildren(...columns.map((c) => c.node));
  return { digest, columns, byState, cards: new Map() };
}

function placeCard(column, card, name) {
  for (const other of column.node.querySelectorAll(".card")) {
    if (other !== card && other.dataset.machine.localeCompare(name) > 0) { other.before(card); return; }
  }
  column.node.append(card);
}

function boardCard(m) {
  const card = el("div", { class: "card", data: { machine: m.machine_name } },
    el("div", {}, machineLink(m.machine_name)), el("div", { class: "sub" }));
  return activatable(card, () => selectMachine(m.machine_name), `machine ${m.machine_name}`);
}

async function renderKanban() {
  const digest = state.kanbanDigest;
  if (!digest) {
    board = null;
    $("#kanban").replaceChildren(el("p", { class: "muted", text: "no machines yet" }));
    return;
  }
  const def = await definition(digest);
  if (digest !== state.kanbanDigest) return;
  if (!board || board.digest !== digest) board = buildBoard(digest, def);
  const seen = new Set();
  for (const m of state.machines.values()) {
    if (m.definition_hash !== digest) continue;
    const column = board.byState.get(m.current_state);
    if (!column) continue;
    seen.add(m.machine_name);
    let entry = board.cards.get(m.machine_name);
    if (!entry) {
      entry = { card: boardCard(m), column: null };
      board.cards.set(m.machine_name, entry);
    }
    if (entry.column !== column) {
      if (entry.column) entry.column.cards -= 1;
      column.cards += 1;
      entry.column = column;
      placeCard(column, entry.card, m.machine_name);
    }
    entry.card.classList.toggle("dead", m.alive === false);
    const sub = entry.card.querySelector(".sub");
    sub.hidden = !column.col.group;
    if (column.col.group) setText(sub, m.current_state);
  }
  for (const [name, entry] of board.cards) {
    if (seen.has(name)) continue;
    entry.card.remove();
    if (entry.column) entry.column.cards -= 1;
    board.cards.delete(name);
  }
  for (const column of board.columns) setText(column.count, column.cards);
}

// ---- jobs -----------------------------------------------------------------------------

const STATUSES = ["", "pending", "processing", "completed", "failed", "cancelled"];

function renderJobCounts() {
  const total = Object.values(state.jobCounts).reduce((a, b) => a + b, 0);
  const tabs = STATUSES.map((s) => {
    const n = s ? state.jobCounts[s] || 0 : total;
    const b = el("button", { type: "button", class: s === state.jobStatus ? "active" : "", data: { status: s || "all" },
      text: `${s || "all"} ${n}` });
    b.addEventListener("click", () => { state.jobStatus = s; state.jobOffset = 0; loadJobs(); });
    return b;
  });
  $("#job-counts").replaceChildren(...tabs);
}

async function loadJobs() {
  const q = new URLSearchParams({ limit: JOB_PAGE, offset: state.jobOffset });
  if (state.jobStatus) q.set("status", state.jobStatus);
  const jobType = $("#jobs-type").value.trim();
  if (jobType) q.set("type", jobType);
  let page;
  try { page = await api(`/api/jobs?${q}`); } catch (e) { toast(`jobs: ${e.message}`); return; }
  state.jobCounts = page.counts;
  state.jobTotal = page.total;
  renderJobCounts();
  const rows = page.jobs.map((j) => {
    const tr = el("tr", { data: { job: j.job_id } },
      el("td", {}, jobLink(j.job_id)), el("td", { text: j.job_type }),
      el("td", { class: `status-${j.status}`, text: j.status }),
      el("td", { text: `${j.attempts}/${j.max_attempts}` }), el("td", { text: fmtTime(j.created_at) }));
    return activatable(tr, () => showJob(j.job_id), `job ${j.job_id}`);
  });
  $("#jobs tbody").replaceChildren(...rows);
  const last = Math.min(state.jobOffset + JOB_PAGE, state.jobTotal);
  $("#jobs-page").textContent = state.jobTotal ? `${state.jobOffset + 1}-${last} of ${state.jobTotal}` : "no jobs";
  $("#jobs-prev").disabled = state.jobOffset === 0;
  $("#jobs-next").disabled = last >= state.jobTotal;
  if (state.jobDetail) showJob(state.jobDetail, true);
}

let jobsTimer = null;
function scheduleJobs() {
  if (jobsTimer) return;
  jobsTimer = setTimeout(() => { jobsTimer = null; loadJobs(); }, 300);
}

async function showJob(jobId, quiet = false) {
  let job;
  try { job = await api(`/api/jobs/${encodeURIComponent(jobId)}`); } catch (e) { if (!quiet) toast(e.message); return; }
  state.jobDetail = jobId;
  $("#job-detail").hidden = false;
  $("#job-detail-title").textContent = `${job.job_id} — ${job.status}`;
  $("#job-detail-body").textContent = JSON.stringify(job, null, 2);
  $("#job-retry").disabled = !["failed", "cancelled"].includes(job.status);
  $("#job-cancel").disabled = job.status !== "pending";
}

async function jobAction(action) {
  if (!state.jobDetail) return;
  try {
    await api(`/api/jobs/${encodeURIComponent(state.jobDetail)}/${action}`, { method: "POST" });
    toast(`job ${state.jobDetail}: ${action} done`, true);
  } catch (e) { toast(`${action}: ${e.message}`); }
  loadJobs();
}

// ---- event log ------------------------------------------------------------------------

function summary(e) {
  const p = e.payload || {};
  switch (e.kind) {
    case "state_change": return `${p.from_state ?? "∅"} --${p.event ?? "?"}--> ${p.to_state}${p.job_id ? ` (job ${p.job_id})` : ""}`;
    case "job": return `job ${p.job_id} ${p.status}${p.error ? `: ${p.error}` : ""}`;
    case "event_sent": return `${p.source ?? "cli"} → ${p.target}: ${p.event_type}`;
    case "unhandled_event": return `unhandled event ${p.event} in state ${p.state}`;
    case "event_interrupted": return `event ${p.event} #${p.event_id} ${p.status === "failed" ? "failed" : "delivered again"}: ${p.error}`;
    case "error": return `error in ${p.state}: ${p.error}`;
    case "stuck": return `stuck in ${p.state} for ${p.seconds} s (max_dwell): ${p.event ? `firing ${p.event}` : "alert only"}`;
    case "activity": return `${p.level ? `[${p.level}] ` : ""}${p.message}`;
    case "machine_started": return `started in ${p.state} (pid ${p.pid})`;
    case "machine_stopped": return `stopped (${p.status})`;
    case "health": return p.text;
    default: return JSON.stringify(p);
  }
}

// A job a schedule's tick enqueued (its id is `sched:NAME:TICK`): the Schedules panel reloads.
function isScheduleJob(e) {
  return e.kind === "job" && e.payload && typeof e.payload.job_id === "string" && e.payload.job_id.startsWith("sched:");
}

function isError(e) {
  return ERROR_KINDS.has(e.kind) || (e.kind === "job" && e.payload && e.payload.status === "failed")
    || (e.kind === "activity" && e.payload && e.payload.level === "error");
}

const scheduleLog = throttled(renderLog, 200);

// The log is rendered whole when its filters change (or a snapshot replaces it); otherwise
// only rows newer than the last shown are added on top and the oldest dropped.
let logShown = { key: null, seq: 0 };

function logItem(e) {
  return el("li", { class: isError(e) ? "err" : "", data: { kind: e.kind, id: e.id } },
    el("span", { class: "k", text: `${fmtTime(e.created_at)} ` }),
    el("span", { class: "k", text: e.kind }), " ",
    e.machine_name ? el("b", {}, machineLink(e.machine_name)) : el("b", { text: "-" }), " ",
    el("span", { text: summary(e) }));
}

function renderLog() {
  const kind = $("#log-kind").value;
  const machine = $("#log-machine").value.trim().toLowerCase();
  const errorsOnly = $("#log-errors").checked;
  const matches = (e) => (!kind || e.kind === kind)
    && (!machine || (e.machine_name || "").toLowerCase().includes(machine))
    && (!errorsOnly || isError(e));
  const key = JSON.stringify([kind, machine, errorsOnly]);
  const list = $("#log");
  const whole = key !== logShown.key;
  const items = [];
  for (let i = state.log.length - 1; i >= 0 && items.length < LOG_SHOWN; i--) {
    const e = state.log[i];
    if (!whole && e.seq <= logShown.seq) break;
    if (matches(e)) items.push(logItem(e));
  }
  logShown = { key, seq: state.logSeq };
  if (whole) { list.replaceChildren(...items); return; }
  if (!items.length) return;
  list.prepend(...items);
  while (list.childElementCount > LOG_SHOWN) list.lastElementChild.remove();
}

function renderErrorCount() {
  const badge = $("#error-count");
  badge.textContent = `${state.errors} error${state.errors === 1 ? "" : "s"}`;
  badge.className = state.errors ? "errors some" : "errors none";
}

// ---- the stream -----------------------------------------------------------------------

function applyEvent(e, live) {
  e.seq = ++state.logSeq;
  state.log.push(e);
  if (state.log.length > LOG_LIMIT) state.log.splice(0, state.log.length - LOG_LIMIT);
  state.lastId = Math.max(state.lastId, e.id);
  const p = e.payload || {};
  if (isError(e)) {
    state.errors += 1;
    if (live) notify(`${e.machine_name || "job"}: ${summary(e)}`);
  }
  // A machine that failed and stays where it is (no transition, no job to go back with)
  // keeps an alert until it moves on.
  const m = e.machine_name && state.machines.get(e.machine_name);
  if (e.kind === "error" && p.stays && e.machine_name) state.alerts.set(e.machine_name, p.error);
  else if (e.kind === "state_change" && p.from_state !== p.to_state) state.alerts.delete(e.machine_name);
  if (!live) return;
  if (e.kind === "error" && m) updateMachineRow(m);
  if (e.kind === "state_change" && m) {
    m.previous_state = p.from_state;
    m.current_state = p.to_state;
    m.last_event = p.event;
    m.step = p.step;
    if (p.from_state !== p.to_state) m.state_entered_at = e.created_at;
    m.updated_at = e.created_at;
    updateMachineRow(m);
    if (e.machine_name === state.selected) highlightDiagram();
    if (m.definition_hash === state.kanbanDigest) scheduleKanban();
    window.smStats.applied.push({ id: e.id, created: e.created_at, received: receivedAt, applied: (performance.timeOrigin + performance.now()) / 1000 });
    if (window.smStats.applied.length > 5000) window.smStats.applied.splice(0, 1000);
  } else if (e.kind === "machine_started" || e.kind === "machine_stopped") {
    refreshMachine(e.machine_name);
  } else if (e.kind === "state_change" && !m) {
    refreshMachine(e.machine_name);
  }
  if (e.kind === "job") scheduleJobs();
}

async function refreshMachine(name) {
  try {
    const { machine } = await api(`/api/machines/${encodeURIComponent(name)}?limit=1`);
    const known = state.machines.has(name);
    state.machines.set(name, machine);
    if (known) updateMachineRow(machine); else { renderMachines(); healthWatch.seen(machine); }
    $("#summary").textContent = healthSummary(state.machines.values());
    if (name === state.selected) scheduleDiagram();
    scheduleKanban();
  } catch (e) { console.warn(e); }
}

function onSnapshot(snap) {
  state.machines = new Map(snap.machines.map((m) => [m.machine_name, m]));
  state.log = [];
  state.errors = 0;
  state.alerts.clear();
  for (const e of snap.history) applyEvent(e, false);
  state.lastId = snap.last_id;
  state.jobCounts = snap.job_counts;
  healthWatch.reset(state.machines.values());
  renderMachines();
  renderJobCounts();
  logShown = { key: null, seq: 0 };
  renderLog();
  renderErrorCount();
  if (!state.selected && state.machines.size) selectMachine([...state.machines.keys()].sort()[0]);
  else scheduleDiagram();
  loadJobs();
  problems.load();
  schedules.load();
  window.smStats.snapshots += 1;
  if (window.smStats.firstSnapshotMs === undefined) window.smStats.firstSnapshotMs = performance.now();
}

function onMessage(msg) {
  if (msg.type === "snapshot") onSnapshot(msg);
  else if (msg.type === "events") {
    for (const e of msg.events) if (e.id > state.lastId) applyEvent(e, true);
    if (msg.events.some((e) => PROBLEM_KINDS.has(e.kind))) problems.schedule();
    if (msg.events.some(isScheduleJob)) schedules.schedule();
    scheduleLog();
    renderErrorCount();
  } else if (msg.type === "machines") {
    for (const m of msg.machines) { state.machines.set(m.machine_name, m); updateMachineRow(m); }
    $("#summary").textContent = healthSummary(state.machines.values());
    scheduleKanban();
  } else if (msg.type === "error") console.warn("server:", msg.error);
}

let retry = 500;
let receivedAt = 0;
function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const q = token ? `?token=${encodeURIComponent(token)}` : "";
  const ws = new WebSocket(`${scheme}://${location.host}/api/stream${q}`);
  ws.onopen = () => {
    retry = 500;
    $("#conn").textContent = "live";
    $("#conn").className = "conn up";
    window.smStats.connected = true;
  };
  ws.onmessage = (ev) => {
    receivedAt = (performance.timeOrigin + performance.now()) / 1000;
    try { onMessage(JSON.parse(ev.data)); } catch (e) { console.error(e); }
  };
  ws.onclose = () => {
    $("#conn").textContent = "reconnecting";
    $("#conn").className = "conn down";
    window.smStats.connected = false;
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 5000);
  };
}

// ---- forms and controls ---------------------------------------------------------------

$("#send-event-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const target = $("#event-target").value;
  try {
    const payload = parseJsonField($("#event-payload").value, "payload");
    const body = { event_type: $("#event-type").value.trim() };
    if (payload !== undefined) body.payload = payload;
    await api(`/api/machines/${encodeURIComponent(target)}/events`, { method: "POST", body: JSON.stringify(body) });
    toast(`sent ${body.event_type} to ${target}`, true);
  } catch (e) { toast(`send event: ${e.message}`); }
});

$("#add-job-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const data = parseJsonField($("#job-data").value, "data");
    const body = { job_type: $("#job-type").value.trim(), priority: Number($("#job-priority").value || 5) };
    if (data !== undefined) body.data = data;
    const job = await api("/api/jobs", { method: "POST", body: JSON.stringify(body) });
    toast(`added job ${job.job_id}`, true);
    loadJobs();
  } catch (e) { toast(`add job: ${e.message}`); }
});

$("#job-retry").addEventListener("click", () => jobAction("retry"));
$("#job-cancel").addEventListener("click", () => jobAction("cancel"));
$("#jobs-prev").addEventListener("click", () => { state.jobOffset = Math.max(0, state.jobOffset - JOB_PAGE); loadJobs(); });
$("#jobs-next").addEventListener("click", () => { state.jobOffset += JOB_PAGE; loadJobs(); });
$("#machine-filter").addEventListener("input", renderMachines);
$("#jobs-type").addEventListener("change", () => { state.jobOffset = 0; loadJobs(); });
$("#kanban-def").addEventListener("change", (ev) => { state.kanbanDigest = ev.target.value; scheduleKanban(); });
for (const id of ["#log-kind", "#log-machine", "#log-errors"]) $(id).addEventListener("input", renderLog);
$("#toast-mute").addEventListener("click", () => setMuted(!toastsMuted));
$("#error-count").addEventListener("click", () => { $("#log-errors").checked = !$("#log-errors").checked; renderLog(); });

// Health changes, the Problems view, definition versions, group navigation and zoom
// live in their own modules; these are their hooks.
const healthWatch = new HealthWatch((m, h, before) => {
  const text = healthText(m, h, before);
  notify(text, !h.problem);
  const now = Date.now() / 1000;
  state.log.push({ id: state.lastId, seq: ++state.logSeq, kind: "health", machine_name: m.machine_name, created_at: now,
    payload: { kind: h.kind, text, problem: h.problem } });
  scheduleLog();
});
const problems = new ProblemsView($("#problems"), {
  api, toast: (text, kind) => toast(text, kind === "ok"), changed: () => loadJobs(),
});
const schedules = new SchedulesView($("#schedules"), $("#schedule-count"), {
  api, toast: (text, kind) => toast(text, kind === "ok"),
});
const versions = new Versions(api, () => { renderKanbanChoices(); if (state.selected) highlightDiagram(); });
const groupNav = new GroupNav($("#diagram"), () => scheduleDiagram());
const zoom = new Zoom($("#diagram"));
$("#problem-count").addEventListener("click", () => $("#problems-panel").focus());

function start() {
  renderMute();
  connect();
}
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
