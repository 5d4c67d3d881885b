// A machine's Mermaid diagram with a state and a transition marked, as on the main page:
// the SVG is rendered once per definition; marking only moves CSS classes on it.

let seq = 0;

// Mermaid (the largest file the page uses) loads when the first diagram is drawn, after the
// lists are on screen.
let mermaidLoading = null;
export function loadMermaid() {
  if (!mermaidLoading) {
    mermaidLoading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "/static/vendor/mermaid.min.js";
      script.onload = () => {
        const dark = window.matchMedia && matchMedia("(prefers-color-scheme: dark)").matches;
        window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: dark ? "dark" : "default" });
        resolve(window.mermaid);
      };
      script.onerror = () => { mermaidLoading = null; script.remove(); reject(new Error("could not load the diagram library")); };
      document.head.append(script);
    });
  }
  return mermaidLoading;
}

// Render `def` (a definition view: mermaid text, state ids, transitions) into `box`.
export async function renderDiagram(box, def) {
  const mermaid = await loadMermaid();
  const { svg } = await mermaid.render(`sm-replay-${++seq}`, def.mermaid);
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
