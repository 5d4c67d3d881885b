// The machine page (/machines/NAME): its paged timeline and its diagram with a replay
// scrubber over the transitions loaded so far. All server text goes in with textContent.

import { api, el, fmtDateTime } from "./http.js";
import { jobLink } from "./links.js";
import { markDiagram, renderDiagram } from "./diagram.js";
import { timelineItem } from "./timeline.js";

const PAGE = 100;
const FIND_PAGES = 20;   // pages loaded at most to find the transition or event a link names
const SPEEDS = [1, 2, 5, 10, 25];

// One machine page at a time; `view.alive` turns false when the page is left.
let view = null;

export function leaveMachine() {
  if (view) { view.alive = false; stopPlay(view); }
  view = null;
}

export async function showMachine(root, name, anchor) {
  leaveMachine();
  const v = view = { alive: true, name, items: [], before: null, transitions: [], def: null, timer: null };
  root.replaceChildren(skeleton(name));
  let machine;
  try {
    ({ machine } = await api(`/api/machines/${encodeURIComponent(name)}?limit=1`));
  } catch (e) {
    if (!v.alive) return;
    root.replaceChildren(el("section", { class: "panel history-page" },
      el("h2", { text: `Machine ${name}` }),
      el("p", { class: "not-found", role: "alert", text: e.status === 404 ? `No machine named “${name}”.` : `machine ${name}: ${e.message}` })));
    return;
  }
  if (!v.alive) return;
  renderSummary(machine);
  wireControls(v);
  const diagram = loadDiagram(v);
  await loadPage(v);
  if (anchor) await findAnchor(v, anchor);
  await diagram;
  if (!v.alive) return;
  setPosition(v, anchor && anchor.startsWith("transition-") ? indexOfTransition(v, anchor) : v.transitions.length - 1);
  document.querySelector("#machine-page").dataset.ready = "true";
}

function skeleton(name) {
  const speed = el("select", { id: "replay-speed" },
    ...SPEEDS.map((s) => el("option", { value: String(s), text: `${s} steps/s` })));
  speed.value = "5";
  return el("section", { id: "machine-page", class: "panel history-page", data: { machine: name } },
    el("h2", {}, "Machine ", el("span", { class: "state", text: name }), " ",
      el("a", { href: "/", class: "muted back", text: "← all machines" })),
    el("div", { id: "machine-summary", class: "summary-line" }),
    el("div", { class: "replay" },
      el("div", { id: "replay-diagram", class: "diagram", data: { machine: name } },
        el("p", { class: "muted", text: "loading diagram…" })),
      el("div", { class: "scrubber", role: "group", "aria-labelledby": "replay-label" },
        el("span", { id: "replay-label", class: "label", text: "Replay" }),
        el("button", { id: "replay-first", type: "button", "aria-label": "first loaded transition", text: "first" }),
        el("button", { id: "replay-prev", type: "button", "aria-label": "step back", text: "◀" }),
        el("button", { id: "replay-play", type: "button", "aria-label": "play", text: "play" }),
        el("button", { id: "replay-next", type: "button", "aria-label": "step forward", text: "▶" }),
        el("button", { id: "replay-last", type: "button", "aria-label": "latest transition", text: "latest" }),
        el("label", { for: "replay-range", class: "visually-hidden", text: "replay position" }),
        el("input", { id: "replay-range", type: "range", min: "0", max: "0", value: "0", step: "1" }),
        el("label", { for: "replay-speed", text: "speed " }), speed),
      el("output", { id: "replay-at", for: "replay-range", class: "replay-at", "aria-live": "polite" })),
    el("h3", {}, "Timeline ", el("span", { id: "timeline-count", class: "muted" })),
    el("ol", { id: "timeline", class: "timeline" }),
    el("button", { id: "timeline-older", type: "button", text: "older", hidden: "" }));
}

function renderSummary(m) {
  const alive = m.alive === true ? "alive" : m.alive === false ? "not running" : "liveness unknown";
  const parts = [
    el("span", {}, "in ", el("b", { class: "state", text: m.current_state })),
    el("span", { text: `since ${fmtDateTime(m.state_entered_at || m.updated_at)}` }),
    el("span", { text: `${m.status} · ${alive}${m.pid ? ` · pid ${m.pid}` : ""}${m.hostname ? ` on ${m.hostname}` : ""}` }),
    el("span", { text: `definition ${m.definition_name || "?"}` }),
  ];
  if (m.current_job_id) parts.push(el("span", {}, "holds job ", jobLink(m.current_job_id)));
  document.querySelector("#machine-summary").replaceChildren(...parts);
}

async function loadDiagram(v) {
  const box = document.querySelector("#replay-diagram");
  try {
    const def = await api(`/api/machines/${encodeURIComponent(v.name)}/diagram`);
    if (!v.alive) return;
    await renderDiagram(box, def);
    v.def = def;
  } catch (e) {
    if (v.alive) box.replaceChildren(el("p", { class: "muted", text: `diagram unavailable: ${e.message}` }));
  }
}

async function loadPage(v) {
  const q = new URLSearchParams({ limit: PAGE });
  if (v.before) q.set("before", v.before);
  const older = document.querySelector("#timeline-older");
  older.disabled = true;
  let page;
  try {
    page = await api(`/api/machines/${encodeURIComponent(v.name)}/timeline?${q}`);
  } catch (e) {
    if (v.alive) document.querySelector("#timeline").append(el("li", { class: "err", text: `timeline: ${e.message}` }));
    return false;
  }
  if (!v.alive) return false;
  v.items.push(...page.items);
  v.before = page.before;
  const added = page.items.filter((i) => i.kind === "transition").reverse();
  v.transitions = [...added, ...v.transitions];
  const list = document.querySelector("#timeline");
  list.append(...page.items.map((item) => timelineItem(item, v.name)));
  older.hidden = !v.before;
  older.disabled = false;
  document.querySelector("#timeline-count").textContent = `(${v.items.length} loaded${v.before ? "" : ", all"})`;
  const range = document.querySelector("#replay-range");
  const position = Number(range.value) + added.length;
  range.max = String(Math.max(0, v.transitions.length - 1));
  range.disabled = v.transitions.length === 0;
  if (v.def && v.transitions.length) setPosition(v, Math.min(position, v.transitions.length - 1));
  return true;
}

async function findAnchor(v, anchor) {
  for (let n = 0; n < FIND_PAGES && !document.getElementById(anchor) && v.before && v.alive; n++) {
    if (!(await loadPage(v))) return;
  }
  const target = document.getElementById(anchor);
  if (target) {
    target.classList.add("anchored");
    target.scrollIntoView({ block: "center" });
  }
}

function indexOfTransition(v, anchor) {
  const id = Number(anchor.slice("transition-".length));
  const i = v.transitions.findIndex((t) => t.id === id);
  return i >= 0 ? i : v.transitions.length - 1;
}

// Show the machine as it was right after transition `index` (oldest loaded is 0).
function setPosition(v, index) {
  const range = document.querySelector("#replay-range");
  const out = document.querySelector("#replay-at");
  const box = document.querySelector("#replay-diagram");
  if (!v.transitions.length) {
    out.textContent = "no transitions recorded";
    range.disabled = true;
    return;
  }
  index = Math.max(0, Math.min(index, v.transitions.length - 1));
  range.value = String(index);
  const t = v.transitions[index];
  range.setAttribute("aria-valuetext", `${t.to_state}, step ${index + 1} of ${v.transitions.length}`);
  out.replaceChildren(
    el("span", { text: `${index + 1} / ${v.transitions.length} · ${fmtDateTime(t.at)} · ` }),
    el("b", { class: "state", text: t.to_state }),
    el("span", { text: ` (${t.from_state ?? "∅"} --${t.event ?? "?"}--> ${t.to_state})` }),
    ...(t.job_id ? [el("span", {}, " job ", jobLink(t.job_id))] : []));
  box.dataset.position = String(index);
  box.dataset.transition = String(t.id);
  if (v.def) markDiagram(box, v.def, { current: t.to_state, previous: t.from_state, event: t.event });
  for (const li of document.querySelectorAll("#timeline li.replay-at")) li.classList.remove("replay-at");
  const li = document.getElementById(`transition-${t.id}`);
  if (li) li.classList.add("replay-at");
}

function stopPlay(v) {
  if (v.timer) clearInterval(v.timer);
  v.timer = null;
  const play = document.querySelector("#replay-play");
  if (play) { play.textContent = "play"; play.setAttribute("aria-label", "play"); }
}

function togglePlay(v) {
  if (v.timer) { stopPlay(v); return; }
  const range = document.querySelector("#replay-range");
  if (Number(range.value) >= v.transitions.length - 1) setPosition(v, 0);
  const speed = Number(document.querySelector("#replay-speed").value) || 5;
  const play = document.querySelector("#replay-play");
  play.textContent = "pause";
  play.setAttribute("aria-label", "pause");
  v.timer = setInterval(() => {
    const next = Number(range.value) + 1;
    if (!v.alive || next >= v.transitions.length) { stopPlay(v); return; }
    setPosition(v, next);
  }, 1000 / speed);
}

function wireControls(v) {
  const range = document.querySelector("#replay-range");
  const at = () => Number(range.value);
  range.addEventListener("input", () => { stopPlay(v); setPosition(v, at()); });
  document.querySelector("#replay-first").addEventListener("click", () => { stopPlay(v); setPosition(v, 0); });
  document.querySelector("#replay-prev").addEventListener("click", () => { stopPlay(v); setPosition(v, at() - 1); });
  document.querySelector("#replay-next").addEventListener("click", () => { stopPlay(v); setPosition(v, at() + 1); });
  document.querySelector("#replay-last").addEventListener("click", () => { stopPlay(v); setPosition(v, v.transitions.length - 1); });
  document.querySelector("#replay-play").addEventListener("click", () => togglePlay(v));
  document.querySelector("#replay-speed").addEventListener("change", () => {
    if (v.timer) { stopPlay(v); togglePlay(v); }
  });
  document.querySelector("#timeline-older").addEventListener("click", () => loadPage(v));
  document.querySelector("#timeline").addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-replay]");
    if (!button) return;
    const i = v.transitions.findIndex((t) => String(t.id) === button.dataset.replay);
    if (i >= 0) { stopPlay(v); setPosition(v, i); range.focus(); }
  });
}
