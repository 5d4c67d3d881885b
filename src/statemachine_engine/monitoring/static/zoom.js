// Zoom and pan for the diagram: buttons, the wheel, dragging, and the keyboard (+ - 0
// and arrows while the diagram has focus). The SVG is moved with a CSS transform.

import { el } from "./dom.js";

const MIN = 0.1;
const MAX = 4;
const STEP = 1.25;
const PAN = 40;

export class Zoom {
  constructor(box) {
    this.box = box;
    this.scale = 1;
    this.x = 0;
    this.y = 0;
    box.tabIndex = 0;
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", "diagram; + and - zoom, arrow keys pan, 0 fits");
    box.classList.add("zoomable");
    this.tools = el("div", { class: "zoom-tools", role: "toolbar", "aria-label": "diagram zoom" },
      el("button", { type: "button", class: "zoom-out", "aria-label": "zoom out", text: "−", onclick: () => this.by(1 / STEP) }),
      el("button", { type: "button", class: "zoom-in", "aria-label": "zoom in", text: "+", onclick: () => this.by(STEP) }),
      el("button", { type: "button", class: "zoom-fit", "aria-label": "fit diagram", text: "fit", onclick: () => this.fit() }),
      el("span", { class: "zoom-level muted", "aria-live": "polite" }));
    box.before(this.tools);
    box.addEventListener("wheel", (ev) => {
      if (!this.svg()) return;
      ev.preventDefault();
      const r = box.getBoundingClientRect();
      this.by(ev.deltaY < 0 ? STEP : 1 / STEP, ev.clientX - r.left, ev.clientY - r.top);
    }, { passive: false });
    box.addEventListener("pointerdown", (ev) => this.drag(ev));
    box.addEventListener("keydown", (ev) => this.key(ev));
  }

  svg() { return this.box.querySelector("svg"); }

  // A new drawing: fit it when it is bigger than the box, else show it at its size.
  reset() {
    const svg = this.svg();
    if (!svg) return;
    svg.style.transformOrigin = "0 0";
    this.scale = 1; this.x = 0; this.y = 0;
    this.apply();
    const r = svg.getBoundingClientRect();
    const box = this.box.getBoundingClientRect();
    if (r.height > box.height + 1 || r.width > box.width + 1) this.fit();
  }

  fit() {
    const svg = this.svg();
    if (!svg) return;
    this.scale = 1; this.x = 0; this.y = 0;
    this.apply();
    const r = svg.getBoundingClientRect();
    const box = this.box.getBoundingClientRect();
    const s = Math.min(1, box.width / Math.max(r.width, 1), box.height / Math.max(r.height, 1));
    this.scale = Math.max(MIN, s);
    this.x = Math.max(0, (box.width - r.width * this.scale) / 2);
    this.apply();
  }

  by(factor, cx = this.box.clientWidth / 2, cy = this.box.clientHeight / 2) {
    const next = Math.min(MAX, Math.max(MIN, this.scale * factor));
    const k = next / this.scale;
    this.x = cx - (cx - this.x) * k;
    this.y = cy - (cy - this.y) * k;
    this.scale = next;
    this.apply();
  }

  pan(dx, dy) { this.x += dx; this.y += dy; this.apply(); }

  apply() {
    const svg = this.svg();
    if (svg) svg.style.transform = `translate(${this.x}px, ${this.y}px) scale(${this.scale})`;
    this.box.dataset.zoom = this.scale.toFixed(3);
    this.tools.querySelector(".zoom-level").textContent = `${Math.round(this.scale * 100)}%`;
  }

  drag(ev) {
    if (ev.button !== 0 || !this.svg() || ev.target.closest("[data-group]")) return;
    const start = { x: ev.clientX, y: ev.clientY, ox: this.x, oy: this.y };
    let moved = false;
    const move = (e) => {
      moved = moved || Math.abs(e.clientX - start.x) + Math.abs(e.clientY - start.y) > 3;
      if (!moved) return;
      this.x = start.ox + e.clientX - start.x;
      this.y = start.oy + e.clientY - start.y;
      this.apply();
    };
    const up = () => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
      this.box.classList.remove("dragging");
    };
    this.box.classList.add("dragging");
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  }

  key(ev) {
    if (ev.target !== this.box) return;
    const keys = {
      "+": () => this.by(STEP), "=": () => this.by(STEP), "-": () => this.by(1 / STEP), "0": () => this.fit(),
      ArrowLeft: () => this.pan(PAN, 0), ArrowRight: () => this.pan(-PAN, 0),
      ArrowUp: () => this.pan(0, PAN), ArrowDown: () => this.pan(0, -PAN),
    };
    const action = keys[ev.key];
    if (!action) return;
    ev.preventDefault();
    action();
  }
}
