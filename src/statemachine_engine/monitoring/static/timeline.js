// One timeline item as a list row, with links to what it names: the job, the machine at the
// other end of an event (at that event), the event a transition consumed.

import { el, fmtDateTime } from "./http.js";
import { jobLink, machineLink } from "./links.js";

const JOB_WORDS = { processing: "taken", completed: "completed", failed: "failed", pending: "given back", cancelled: "cancelled" };

function jobPart(jobId) {
  return jobId ? [" · job ", jobLink(jobId)] : [];
}

function body(item, machine) {
  switch (item.kind) {
    case "transition":
      return [
        el("button", { type: "button", class: "linkish", data: { replay: String(item.id) },
          title: "show in the diagram", text: `${item.from_state ?? "∅"} --${item.event ?? "?"}--> ${item.to_state}` }),
        ...(item.event_id != null ? [" · event ", el("a", { href: `#event-${item.event_id}`, text: `#${item.event_id}` })] : []),
        ...(item.event_delivery > 1 ? [` (delivery ${item.event_delivery})`] : []),
        ...jobPart(item.job_id),
      ];
    case "event_received":
      return [
        `received ${item.event} #${item.id} from `,
        item.source ? machineLink(item.source, `event-${item.id}`) : "outside",
        ` · ${item.status}`, ...(item.deliveries > 1 ? [` (${item.deliveries} deliveries)`] : []),
        ...jobPart(item.job_id),
        ...(item.error ? [el("span", { class: "error-text", text: ` · ${item.error}` })] : []),
      ];
    case "event_sent":
      return [
        `sent ${item.event} #${item.id} to `,
        item.target === machine ? item.target : machineLink(item.target, `event-${item.id}`),
        ` · ${item.status}`, ...jobPart(item.job_id),
      ];
    case "job":
      return [
        "job ", item.job_id ? jobLink(item.job_id) : "?",
        ` ${JOB_WORDS[item.status] || item.status}`,
        ...(item.attempt ? [` (attempt ${item.attempt})`] : []),
        ...(item.error ? [el("span", { class: "error-text", text: `: ${item.error}` })] : []),
      ];
    case "error":
      if (item.what === "unhandled_event") return [`unhandled event ${item.event} in state ${item.state}`];
      if (item.what === "event_interrupted") {
        return [`event ${item.event} #${item.event_id} interrupted: `, el("span", { class: "error-text", text: item.error || "" })];
      }
      return [`error in ${item.state}: `, el("span", { class: "error-text", text: item.error || "" })];
    case "machine":
      return item.what === "started"
        ? [`started in ${item.state}${item.pid ? ` (pid ${item.pid})` : ""}`]
        : [`stopped (${item.status})`];
    default:
      return [JSON.stringify(item)];
  }
}

function anchorId(item) {
  if (item.kind === "transition") return `transition-${item.id}`;
  if (item.kind === "event_received" || item.kind === "event_sent") return `event-${item.id}`;
  return null;
}

export function timelineItem(item, machine) {
  const failed = item.kind === "error" || (item.kind === "job" && item.status === "failed");
  const li = el("li", { class: failed ? "err" : "", data: { kind: item.kind, key: item.key } },
    el("time", { class: "k", datetime: new Date(item.at * 1000).toISOString(), text: fmtDateTime(item.at) }),
    el("span", { class: `kind kind-${item.kind}`, text: item.kind.replace("_", " ") }),
    el("span", { class: "what" }, ...body(item, machine)));
  const id = anchorId(item);
  if (id && !document.getElementById(id)) li.id = id;
  return li;
}
