// Small DOM helpers for the page's modules. Text is always set with textContent.

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else if (k === "data") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

export function clock(ts) {
  return new Date(ts * 1000).toLocaleTimeString([], { hour12: false });
}

export function duration(seconds) {
  const s = Math.max(0, seconds);
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${Math.floor(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${(s / 86400).toFixed(1)}d`;
}

// A long text (an error, a stack, a payload) as its first line, expandable to the whole
// text, wrapped.
export function expandable(text, cls = "", headline = null) {
  const full = String(text ?? "");
  const first = headline ?? full.split("\n", 1)[0];
  if (full === first && full.length <= 120) return el("span", { class: `wrap ${cls}`, text: full });
  return el("details", { class: `expand ${cls}` },
    el("summary", { text: first.length > 120 ? `${first.slice(0, 117)}…` : first }),
    el("pre", { class: "wrap", text: full }));
}
