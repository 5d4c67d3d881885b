// The job page (/jobs/ID): the job, then every attempt (worker, start, end, outcome, error)
// with the transitions it caused, the events it sent and each action's command, exit code and
// output tails in expandable blocks. All server text goes in with textContent.

import { api, el, fmtDateTime } from "./http.js";
import { machineLink } from "./links.js";

let current = 0;

export function leaveJob() {
  current += 1;
}

export async function showJob(root, jobId) {
  const mine = ++current;
  root.replaceChildren(el("section", { id: "job-page", class: "panel history-page", data: { job: jobId } },
    el("h2", {}, "Job ", el("span", { class: "state", text: jobId })),
    el("p", { class: "muted", text: "loading…" })));
  let job;
  try {
    job = await api(`/api/jobs/${encodeURIComponent(jobId)}`);
  } catch (e) {
    if (mine !== current) return;
    root.querySelector("#job-page p").replaceWith(el("p", { class: "not-found", role: "alert",
      text: e.status === 404 ? `No job with id “${jobId}”.` : `job ${jobId}: ${e.message}` }));
    return;
  }
  let attempts = null;
  let problem = null;
  try {
    ({ attempts } = await api(`/api/jobs/${encodeURIComponent(jobId)}/timeline`));
  } catch (e) {
    problem = `attempt history unavailable: ${e.message}`;
  }
  if (mine !== current) return;
  const page = root.querySelector("#job-page");
  page.replaceChildren(...[
    el("h2", {}, "Job ", el("span", { class: "state", text: job.job_id }), " ",
      el("span", { class: `status-${job.status}`, text: job.status }), " ",
      el("a", { href: "/", class: "muted back", text: "← all jobs" })),
    facts(job),
    el("h3", {}, "Attempts ", el("span", { class: "muted", text: attempts ? `(${attempts.length})` : "" })),
    problem ? el("p", { class: "muted", text: problem }) : null,
    attempts && !attempts.length ? el("p", { class: "muted", text: "not attempted yet" }) : null,
    ...(attempts || []).map(attemptView)].filter((node) => node != null));
  page.dataset.ready = "true";
}

function facts(job) {
  const rows = [
    ["type", job.job_type],
    ["for machine type", job.machine_type],
    ["priority", job.priority],
    ["attempts", `${job.attempts} of ${job.max_attempts}`],
    ["created", fmtDateTime(job.created_at)],
    ["started", fmtDateTime(job.started_at)],
    ["ended", fmtDateTime(job.completed_at)],
    ["runs after", job.status === "pending" && job.run_after > Date.now() / 1000 ? fmtDateTime(job.run_after) : null],
  ].filter(([, v]) => v != null && v !== "");
  const dl = el("dl", { class: "facts" });
  for (const [k, v] of rows) dl.append(el("dt", { text: k }), el("dd", { text: String(v) }));
  if (job.lease_owner) {
    const worker = job.lease_owner.split("@")[0];
    dl.append(el("dt", { text: "held by" }), el("dd", {}, machineLink(worker)));
  }
  const blocks = [["data", job.data], ["result", job.result]]
    .filter(([, v]) => v != null)
    .map(([k, v]) => details(k, JSON.stringify(v, null, 2), k === "data"));
  if (job.error_message) blocks.push(el("p", { class: "error-text", text: `error: ${job.error_message}` }));
  return el("div", { class: "job-facts" }, dl, ...blocks);
}

function details(summary, text, open = false, cls = "") {
  const d = el("details", { class: cls }, el("summary", { text: summary }), el("pre", { text: text ?? "" }));
  d.open = open;
  return d;
}

function attemptView(a) {
  const failed = a.outcome !== "completed" && a.outcome !== "running";
  return el("section", { class: `attempt outcome-${a.outcome}`, data: { attempt: String(a.attempt), outcome: a.outcome } },
    el("h4", {}, `Attempt ${a.attempt} · `, el("span", { class: `outcome ${failed ? "status-failed" : `status-${a.outcome === "running" ? "processing" : "completed"}`}`, text: a.outcome }),
      " · on ", a.worker ? machineLink(a.worker) : "?"),
    el("p", { class: "muted", text: `${fmtDateTime(a.started_at)} → ${a.ended_at ? fmtDateTime(a.ended_at) : "not ended"}${duration(a)}` }),
    a.error ? el("pre", { class: "error-block", text: a.error }) : null,
    listBlock("Transitions", a.transitions, (t) => el("li", { data: { transition: String(t.id) } },
      el("time", { class: "k", text: fmtDateTime(t.at) }), " ",
      machineLink(t.machine, `transition-${t.id}`), ` ${t.from ?? "∅"} --${t.event ?? "?"}--> ${t.to}`)),
    listBlock("Events sent", a.events_sent, (e) => el("li", { data: { event: String(e.id) } },
      el("time", { class: "k", text: fmtDateTime(e.at) }), ` ${e.event} #${e.id} to `,
      machineLink(e.target, `event-${e.id}`))),
    listBlock("Actions", a.actions, actionView));
}

function duration(a) {
  const start = Date.parse(a.started_at);
  const end = Date.parse(a.ended_at);
  if (Number.isNaN(start) || Number.isNaN(end)) return "";
  const s = (end - start) / 1000;
  return ` (${s < 10 ? s.toFixed(3) : s.toFixed(1)} s)`;
}

function listBlock(title, items, row) {
  if (!items || !items.length) return el("p", { class: "muted", text: `${title}: none` });
  return el("div", { class: "attempt-part" }, el("h5", { text: title }),
    el("ol", { class: "timeline compact" }, ...items.map(row)));
}

function actionView(act) {
  const code = act.exit_code == null ? "" : ` · exit ${act.exit_code}`;
  const li = el("li", { class: act.exit_code ? "action err" : "action", data: { state: act.state, action: act.action } },
    el("time", { class: "k", text: fmtDateTime(act.started_at) }), " ",
    el("b", { text: act.action }), ` in ${act.state}${code}`);
  if (act.command != null) li.append(details("command", act.command, true, "command"));
  if (act.stdout_tail) li.append(details(`stdout (last ${act.stdout_tail.length} chars)`, act.stdout_tail, false, "stdout"));
  if (act.stderr_tail) li.append(details(`stderr (last ${act.stderr_tail.length} chars)`, act.stderr_tail, Boolean(act.exit_code), "stderr"));
  return li;
}
