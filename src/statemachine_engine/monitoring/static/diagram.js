// A machine's Mermaid diagram with a state and a transition marked, as on the main page:
// the SVG is rendered once per definition; marking only moves CSS classes on it.

let seq = 0;

function loaded() {
  if (document.readyState === "complete") return Promise.resolve();
  return new Promise((resolve) => window.addEventListener("load", resolve, { once: true }));
}

// Render `def` (a definition view: mermaid text, state ids, transitions) into `box`.
export async function renderDiagram(box, def) {
  await loaded();
  if (!window.mermaid) throw new Error("Mermaid is not loaded");
  const { svg } = await window.mermaid.render(`sm-replay-${++seq}`, def.mermaid);
  // Mermaid output is sanitised (securityLevel strict); labels were entity-encoded server-side.
  box.innerHTML = svg;
  box.dataset.digest = def.digest;
}

// Mark `current` (and `previous`, when it differs) and the edge `previous --event--> current`.
export function markDiagram(box, def, { current, previous, event }) {
  for (const node of box.querySelectorAll(".sm-current, .sm-previous, .sm-last")) {
    node.classList.remove("sm-current", "sm-previous", "sm-last");
  }
  const mark = (stateName, cls) => {
    const id = stateName != null && def.ids[stateName];
    const node = id && box.querySelector(`g.node[id*="-state-${id}-"]`);
    if (node) node.classList.add(cls);
  };
  if (previous != null && previous !== current) mark(previous, "sm-previous");
  mark(current, "sm-current");
  const last = def.transitions.find((t) => t.event === event && t.to === current
    && (t.from === previous || t.from === "*"));
  if (last) {
    for (const edge of box.querySelectorAll(`[data-id="edge${last.edge}"], [id$="-edge${last.edge}"]`)) {
      (edge.closest(".edgeLabel") || edge).classList.add("sm-last");
    }
  }
  box.dataset.current = current ?? "";
}
