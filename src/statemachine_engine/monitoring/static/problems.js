// The Problems view: failed jobs (readable errors, retry one or many, edit the data and
// retry), unhandled and failed events, and delayed jobs with when they will run (cancel
// one or many). Data from GET /api/problems; changes through POST /api/jobs/retry|cancel.

import { clock, duration, el, expandable } from "./dom.js";

export class ProblemsView {
  // ctx: { api(path, options), toast(text, kind), changed() } — changed() after a change.
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.data = null;
    this.selected = { failed: new Set(), delayed: new Set() };
    this.editing = null;
    this.timer = null;
    this.loading = false;
    setInterval(() => this.renderDelays(), 5000);
  }

  schedule(ms = 2000) {
    if (this.timer) return;
    this.timer = setTimeout(() => { this.timer = null; this.load(); }, ms);
  }

  async load() {
    if (this.loading) { this.schedule(); return; }
    this.loading = true;
    try {
      this.data = await this.ctx.api("/api/problems");
      this.render();
    } catch (e) {
      this.ctx.toast(`problems: ${e.message}`, "error");
    } finally {
      this.loading = false;
    }
  }

  count() {
    if (!this.data) return 0;
    return this.data.failed_total + this.data.events.length;
  }

  render() {
    if (!this.data || this.editing) return;  // never pull the editor away from the user
    const d = this.data;
    for (const kind of ["failed", "delayed"]) {
      const ids = new Set((kind === "failed" ? d.failed_jobs : d.delayed_jobs).map((j) => j.job_id));
      for (const id of this.selected[kind]) if (!ids.has(id)) this.selected[kind].delete(id);
    }
    this.root.replaceChildren(
      this.section("failed", `Failed jobs (${d.failed_total})`, d.failed_jobs, "Retry selected",
        (j) => this.failedRow(j)),
      this.eventsSection(d.events),
      this.section("delayed", `Delayed jobs (${d.delayed_jobs.length})`, d.delayed_jobs, "Cancel selected",
        (j) => this.delayedRow(j)),
    );
    this.root.dataset.loaded = "1";
    const badge = document.querySelector("#problem-count");
    if (badge) {
      badge.textContent = `${this.count()} problem${this.count() === 1 ? "" : "s"}`;
      badge.className = this.count() ? "errors some" : "errors none";
    }
  }

  section(kind, title, jobs, bulkLabel, row) {
    const bulk = el("button", {
      type: "button", class: `bulk-${kind}`, text: bulkLabel,
      disabled: this.selected[kind].size === 0,
      onclick: () => (kind === "failed" ? this.retry([...this.selected.failed]) : this.cancel([...this.selected.delayed])),
    });
    const all = el("input", {
      type: "checkbox", class: "select-all", "aria-label": `select all ${kind} jobs`,
      onchange: (ev) => {
        for (const j of jobs) ev.target.checked ? this.selected[kind].add(j.job_id) : this.selected[kind].delete(j.job_id);
        this.render();
      },
    });
    all.checked = jobs.length > 0 && jobs.every((j) => this.selected[kind].has(j.job_id));
    const body = jobs.length ? el("ul", { class: "problem-list" }, ...jobs.map(row))
      : el("p", { class: "muted", text: "none" });
    return el("section", { class: `problems-${kind}`, "aria-label": title },
      el("h3", {}, all, " ", el("span", { text: title }), " ", bulk), body);
  }

  checkbox(kind, job) {
    const box = el("input", {
      type: "checkbox", class: "pick", "aria-label": `select job ${job.job_id}`,
      onchange: (ev) => {
        ev.target.checked ? this.selected[kind].add(job.job_id) : this.selected[kind].delete(job.job_id);
        this.render();
        this.root.querySelector(`li[data-job="${CSS.escape(job.job_id)}"] .pick`)?.focus();
      },
    });
    box.checked = this.selected[kind].has(job.job_id);
    return box;
  }

  failedRow(j) {
    return el("li", { class: "problem", data: { job: j.job_id } },
      el("div", { class: "problem-head" },
        this.checkbox("failed", j), " ",
        el("b", { text: j.job_id }), " ",
        el("span", { class: "muted", text: `${j.job_type} · ${j.attempts}/${j.max_attempts} attempts · ${j.completed_at ? clock(j.completed_at) : ""}` }),
        " ",
        el("button", { type: "button", class: "retry", text: "Retry", "aria-label": `retry job ${j.job_id}`,
          onclick: () => this.retry([j.job_id]) }),
        el("button", { type: "button", class: "edit", text: "Edit & retry", "aria-label": `edit and retry job ${j.job_id}`,
          onclick: () => this.edit(j) })),
      expandable(j.error || "(no error message)", "problem-error"),
      j.errors && j.errors.length > 1
        ? el("details", { class: "expand" }, el("summary", { text: `all ${j.errors.length} errors` }),
          el("ol", {}, ...j.errors.map((e) => el("li", {}, el("pre", { class: "wrap", text: e })))))
        : null);
  }

  delayedRow(j) {
    return el("li", { class: "problem", data: { job: j.job_id } },
      el("div", { class: "problem-head" },
        this.checkbox("delayed", j), " ",
        el("b", { text: j.job_id }), " ",
        el("span", { class: "muted", text: `${j.job_type} · attempt ${j.attempts + 1}/${j.max_attempts}` }), " ",
        el("span", { class: "runs-at", data: { at: j.run_after }, text: runsAt(j.run_after) }), " ",
        el("button", { type: "button", class: "cancel", text: "Cancel", "aria-label": `cancel job ${j.job_id}`,
          onclick: () => this.cancel([j.job_id]) })),
      j.error ? expandable(`last error: ${j.error}`, "problem-error") : null);
  }

  eventsSection(events) {
    const items = events.map((e) => el("li", { class: "problem", data: { event: e.id } },
      el("div", { class: "problem-head" },
        el("b", { text: `${e.event_type}` }), " ",
        el("span", { text: `→ ${e.target_machine}` }), " ",
        el("span", { class: `status-${e.status === "failed" ? "failed" : "cancelled"}`, text: e.status }), " ",
        el("span", { class: "muted", text: `${e.source_machine ? `from ${e.source_machine} · ` : ""}${clock(e.created_at)}` })),
      e.error_message ? expandable(e.error_message, "problem-error") : null,
      e.payload != null
        ? expandable(JSON.stringify(e.payload, null, 2), "payload", `payload ${JSON.stringify(e.payload)}`)
        : null));
    return el("section", { class: "problems-events", "aria-label": "unhandled and failed events" },
      el("h3", { text: `Unhandled or failed events (${events.length})` }),
      items.length ? el("ul", { class: "problem-list" }, ...items) : el("p", { class: "muted", text: "none" }));
  }

  renderDelays() {
    for (const span of this.root.querySelectorAll(".runs-at")) span.textContent = runsAt(Number(span.dataset.at));
  }

  edit(job) {
    const row = this.root.querySelector(`li[data-job="${CSS.escape(job.job_id)}"]`);
    if (!row) return;
    this.editing = job.job_id;
    const id = `edit-${job.job_id.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    const area = el("textarea", { id, class: "edit-data", rows: 8, spellcheck: "false" });
    area.value = JSON.stringify(job.data ?? {}, null, 2);
    const problem = el("p", { class: "edit-error", role: "alert" });
    const close = () => { this.editing = null; this.render(); };
    const form = el("form", { class: "edit-form", "aria-label": `edit data of job ${job.job_id}` },
      el("label", { for: id, text: `data of job ${job.job_id} (JSON)` }), area, problem,
      el("button", { type: "submit", text: "Retry with this data" }), " ",
      el("button", { type: "button", text: "Discard", onclick: close }));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      let data;
      try { data = JSON.parse(area.value); } catch (e) {
        problem.textContent = `not valid JSON: ${e.message}`;
        area.setAttribute("aria-invalid", "true");
        area.focus();
        return;
      }
      problem.textContent = "";
      area.removeAttribute("aria-invalid");
      if (await this.retry([job.job_id], { [job.job_id]: data }, problem)) close();
    });
    row.append(form);
    area.focus();
  }

  async retry(ids, data = undefined, problem = null) {
    if (!ids.length) return false;
    const body = { job_ids: ids };
    if (data) body.data = data;
    return this.change("retry", body, problem);
  }

  async cancel(ids) {
    if (!ids.length) return false;
    return this.change("cancel", { job_ids: ids });
  }

  async change(action, body, problem = null) {
    try {
      const done = await this.ctx.api(`/api/jobs/${action}`, { method: "POST", body: JSON.stringify(body) });
      const what = done.count === 1 ? `job ${body.job_ids[0]}` : `${done.count} jobs`;
      this.ctx.toast(`${what}: ${action === "retry" ? "retried" : "cancelled"}`, "ok");
      for (const id of body.job_ids) { this.selected.failed.delete(id); this.selected.delayed.delete(id); }
      this.ctx.changed();
      this.editing = null;
      await this.load();
      return true;
    } catch (e) {
      if (problem) problem.textContent = e.message;
      this.ctx.toast(`${action}: ${e.message}`, "error");
      return false;
    }
  }
}

export function runsAt(at) {
  const wait = at - Date.now() / 1000;
  return wait > 0 ? `runs in ${duration(wait)} (at ${clock(at)})` : `due since ${clock(at)}`;
}
