// The Schedules panel: every schedule with when it runs (every/cron and time zone), its job
// type, the next run (relative and absolute), the last tick, active or paused, and a
// Pause/Resume button. Data from GET /api/schedules; changes through
// POST /api/schedules/NAME/pause|resume. Reloaded every 5 s while the overview is on screen
// and soon after a schedule's job arrives in the stream (coalesced, never per row); between
// reloads only the relative times change, in place.

import { duration, el } from "./dom.js";

const POLL_MS = 5000;
const SOON_MS = 1000;
const LOCAL_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;

export class SchedulesView {
  // ctx: { api(path, options), toast(text, kind) }
  constructor(root, count, ctx) {
    this.root = root;
    this.count = count;
    this.ctx = ctx;
    this.data = null;
    this.offset = 0;          // server clock minus this browser's, seconds
    this.shown = null;        // what the rows were built from
    this.timer = null;
    this.loading = false;
    setInterval(() => { if (this.visible()) this.load(); }, POLL_MS);
    document.addEventListener("visibilitychange", () => { if (this.visible()) this.load(); });
  }

  visible() {
    return !document.hidden && !this.root.closest("main")?.hidden;
  }

  // A reload soon, at most one pending: what the stream's schedule jobs ask for.
  schedule(ms = SOON_MS) {
    if (this.timer) return;
    this.timer = setTimeout(() => { this.timer = null; this.load(); }, ms);
  }

  async load() {
    if (this.loading) return;
    this.loading = true;
    try {
      const data = await this.ctx.api("/api/schedules");
      this.offset = data.now - Date.now() / 1000;
      this.data = data;
      this.render();
    } catch (e) {
      this.ctx.toast(`schedules: ${e.message}`, "error");
    } finally {
      this.loading = false;
    }
  }

  now() { return Date.now() / 1000 + this.offset; }

  // Rows are rebuilt only when a schedule changed; the focus stays on the same control.
  render(focusKey = null) {
    const list = this.data ? this.data.schedules : [];
    const key = JSON.stringify(list);
    if (key !== this.shown) {
      this.shown = key;
      const focused = focusKey || (this.root.contains(document.activeElement)
        ? document.activeElement.dataset.focusKey : null);
      this.root.replaceChildren(list.length ? this.table(list)
        : el("p", { class: "muted", text: "no schedules (statemachine-cli schedule add NAME --every 5m --type T)" }));
      if (focused) this.root.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`)?.focus();
      this.count.textContent = `(${list.length})`;
    }
    this.root.dataset.loaded = "1";
    this.renderTimes();
  }

  table(list) {
    return el("div", { class: "scroll" }, el("table", { class: "schedules" },
      el("thead", {}, el("tr", {}, ...["name", "when", "job type", "next run", "last tick", "status", ""]
        .map((h) => el("th", { text: h })))),
      el("tbody", {}, ...list.map((s) => this.row(s)))));
  }

  row(s) {
    const status = s.paused ? "paused" : "active";
    const button = el("button", {
      type: "button", class: "toggle", text: s.paused ? "Resume" : "Pause",
      "aria-label": `${s.paused ? "resume" : "pause"} schedule ${s.name}`,
      data: { focusKey: `toggle:${s.name}` },
      onclick: (ev) => this.toggle(s, ev.currentTarget),
    });
    const zone = s.cron && s.timezone !== LOCAL_ZONE
      ? el("span", { class: "zone-time", data: { zone: s.timezone } }) : null;
    const next = s.paused ? el("td", { class: "next muted", text: "—" })
      : el("td", { class: "next", data: { at: s.next_due } },
        el("span", { class: "rel" }), " ",
        el("time", { datetime: new Date(s.next_due * 1000).toISOString(), text: stamp(s.next_due), title: "your time zone" }),
        zone ? " " : null, zone);
    const last = s.last_tick == null ? el("td", { class: "last muted", text: "never" })
      : el("td", { class: "last", data: { at: s.last_tick } },
        el("time", { datetime: new Date(s.last_tick * 1000).toISOString(), text: stamp(s.last_tick) }), " ",
        el("span", { class: "rel muted" }));
    const title = [s.machine_type ? `machine type ${s.machine_type}` : "", `catch-up ${s.catch_up}`,
      s.payload ? `payload ${JSON.stringify(s.payload)}` : ""].filter(Boolean).join(" · ");
    return el("tr", { data: { name: s.name, status } },
      el("td", { class: "name", text: s.name, title }),
      el("td", { class: "when", text: s.when }),
      el("td", { class: "job-type", text: s.job_type }),
      next, last,
      el("td", {}, el("span", { class: `sched-status sched-${status}`, text: status })),
      el("td", {}, button));
  }

  // Relative times only: the rows stay as built.
  renderTimes() {
    const now = this.now();
    for (const cell of this.root.querySelectorAll("td.next[data-at]")) {
      const wait = Number(cell.dataset.at) - now;
      const rel = cell.querySelector(".rel");
      setText(rel, wait > 0 ? `in ${duration(wait)}` : `due since ${duration(-wait)}`);
      const hint = wait > 0 ? "" : "a running machine process enqueues due ticks when it waits";
      if (rel.title !== hint) rel.title = hint;
      const zone = cell.querySelector(".zone-time");
      if (zone) setText(zone, `(${stamp(Number(cell.dataset.at), zone.dataset.zone)} ${zone.dataset.zone})`);
    }
    for (const cell of this.root.querySelectorAll("td.last[data-at]")) {
      setText(cell.querySelector(".rel"), `${duration(now - Number(cell.dataset.at))} ago`);
    }
  }

  async toggle(s, button) {
    const action = s.paused ? "resume" : "pause";
    if (button.getAttribute("aria-busy") === "true") return;
    const hadFocus = document.activeElement === button;
    button.setAttribute("aria-busy", "true");
    try {
      const changed = await this.ctx.api(`/api/schedules/${encodeURIComponent(s.name)}/${action}`, { method: "POST" });
      this.ctx.toast(`schedule ${s.name}: ${action === "pause" ? "paused" : "resumed"}`, "ok");
      if (this.data) {
        this.data.schedules = this.data.schedules.map((x) => (x.name === changed.name ? changed : x));
        this.render(hadFocus ? button.dataset.focusKey : null);
      }
    } catch (e) {
      this.ctx.toast(`${action} ${s.name}: ${e.message}`, "error");
    } finally {
      button.removeAttribute("aria-busy");
    }
  }
}

function setText(node, text) {
  if (node && node.textContent !== text) node.textContent = text;
}

// `2026-12-03 03:00:00` in `timeZone` (default: this browser's).
export function stamp(ts, timeZone = undefined) {
  const parts = {};
  const format = new Intl.DateTimeFormat("en-US", {
    timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  for (const p of format.formatToParts(new Date(ts * 1000))) parts[p.type] = p.value;
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
}
