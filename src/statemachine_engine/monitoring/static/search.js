// The header's search box: a machine name or a job id opens its page; anything else gets a
// clear message next to the box.

import { api } from "./http.js";
import { jobHref, machineHref } from "./links.js";

async function exists(path) {
  try {
    await api(path);
    return true;
  } catch (e) {
    if (e.status === 404 || e.status === 422) return false;
    throw e;
  }
}

export function wireSearch(navigate) {
  const form = document.querySelector("#search");
  if (!form) return;
  const input = form.querySelector("#search-input");
  const message = document.querySelector("#search-message");
  input.addEventListener("input", () => { message.textContent = ""; });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const q = input.value.trim();
    message.textContent = "";
    if (!q) return;
    try {
      if (await exists(`/api/machines/${encodeURIComponent(q)}?limit=1`)) { navigate(machineHref(q)); return; }
      if (await exists(`/api/jobs/${encodeURIComponent(q)}`)) { navigate(jobHref(q)); return; }
      message.textContent = `No machine or job named “${q}”.`;
    } catch (e) {
      message.textContent = `search: ${e.message}`;
    }
  });
}
