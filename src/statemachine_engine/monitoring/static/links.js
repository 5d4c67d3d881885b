// Links between the pages: a machine name goes to /machines/NAME, a job id to /jobs/ID (an
// optional anchor names a transition or an event there). router.js follows them in place.

export function machineHref(name, anchor = "") {
  return `/machines/${encodeURIComponent(name)}${anchor ? `#${anchor}` : ""}`;
}

export function jobHref(jobId) {
  return `/jobs/${encodeURIComponent(jobId)}`;
}

function link(href, text, cls) {
  const a = document.createElement("a");
  a.href = href;
  a.className = cls;
  a.textContent = text;
  return a;
}

export function machineLink(name, anchor = "", text = name) {
  return link(machineHref(name, anchor), text, "machine-link");
}

export function jobLink(jobId, text = jobId) {
  return link(jobHref(jobId), text, "job-link");
}
