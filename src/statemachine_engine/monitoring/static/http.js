// REST calls of the history pages: the page's token (app.js keeps it in sessionStorage) and
// errors as one readable message.

export async function api(path) {
  const token = sessionStorage.getItem("sm-token");
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const response = await fetch(path, { headers });
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) {
    const error = new Error((body && body.error) || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

export function fmtDateTime(ts) {
  if (ts == null) return "";
  const d = typeof ts === "number" ? new Date(ts * 1000) : new Date(ts);
  if (Number.isNaN(d.getTime())) return String(ts);
  const date = d.toLocaleDateString([], { year: "numeric", month: "2-digit", day: "2-digit" });
  const time = d.toLocaleTimeString([], { hour12: false });
  return `${date} ${time}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null) continue;
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else if (k === "data") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child != null && child !== false) node.append(child);
  return node;
}
