// Machine health on the page: a badge per machine row, the header counts, and one toast
// plus one log row each time a machine's health changes. The server decides the health
// (monitoring/health.py); this module only shows it.

const LABELS = {
  ok: "",
  stopped: "stopped",
  unknown: "other host",
  dead: "dead",
  restarting: "restarting",
  crash_loop: "crash loop",
  stuck: "stuck",
  lease_overdue: "lease overdue",
};

export function healthOf(m) {
  if (m.health) return m.health;
  if (m.status === "running" && m.alive === false) return { kind: "dead", detail: "process is gone", problem: true };
  return { kind: m.status === "running" ? "ok" : "stopped", detail: "", problem: false };
}

export function isDead(m) {
  const kind = healthOf(m).kind;
  return kind === "dead" || (kind === "crash_loop" && m.alive === false);
}

// The badge next to a machine's name (a <span>, updated in place by updateBadge).
export function healthBadge(m) {
  const badge = document.createElement("span");
  updateBadge(badge, m);
  return badge;
}

export function updateBadge(badge, m) {
  const h = healthOf(m);
  badge.className = `health health-${h.kind}`;
  badge.textContent = LABELS[h.kind] ?? h.kind;
  badge.title = h.detail || "";
  badge.hidden = !badge.textContent;
  const row = badge.closest("tr");
  if (row) {
    row.dataset.health = h.kind;
    row.classList.toggle("unhealthy", Boolean(h.problem));
  }
}

// "56 machines, 54 alive, 2 dead, 1 stuck": what the header says.
export function healthSummary(machines) {
  const list = [...machines];
  const alive = list.filter((m) => m.alive === true && !isDead(m)).length;
  const counts = {};
  for (const m of list) {
    const kind = isDead(m) ? "dead" : healthOf(m).kind;
    if (healthOf(m).problem || kind === "dead" || kind === "restarting") counts[kind] = (counts[kind] || 0) + 1;
  }
  const parts = [`${list.length} machines`, `${alive} alive`];
  for (const kind of ["dead", "crash_loop", "stuck", "lease_overdue", "restarting"]) {
    if (counts[kind]) parts.push(`${counts[kind]} ${LABELS[kind]}`);
  }
  return parts.join(", ");
}

// Remembers each machine's last health kind; `changed` reports a change once.
export class HealthWatch {
  constructor(report) {
    this.report = report;   // (machine row, health, previous kind) => void
    this.kinds = new Map();
  }

  // A snapshot: remember without reporting (the page just loaded or reconnected).
  reset(machines) {
    this.kinds = new Map([...machines].map((m) => [m.machine_name, healthOf(m).kind]));
  }

  seen(m) {
    const h = healthOf(m);
    const before = this.kinds.get(m.machine_name);
    this.kinds.set(m.machine_name, h.kind);
    if (before === undefined || before === h.kind) return;
    this.report(m, h, before);
  }
}

export function healthText(m, h, before) {
  if (h.kind === "ok") return `${m.machine_name}: healthy again (was ${LABELS[before] || before})`;
  return `${m.machine_name}: ${LABELS[h.kind] || h.kind}${h.detail ? ` — ${h.detail}` : ""}`;
}
