// Big definitions by their state groups: an overview with one node per group, a drill-down
// into a group, and a breadcrumb back. The server sends the views (monitoring/groupview.py);
// each has the shape the diagram already draws: mermaid, ids, transitions.

import { el } from "./dom.js";

export class GroupNav {
  // onChange(): the view to draw changed (the page redraws the diagram).
  constructor(box, onChange) {
    this.box = box;
    this.onChange = onChange;
    this.group = null;     // the group shown; null is the overview
    this.manual = false;   // the user chose a view: stop following the machine
    this.machine = null;
    this.view = null;      // the view drawn last
    this.crumbs = el("nav", { class: "crumbs", "aria-label": "diagram groups", hidden: true });
    box.before(this.crumbs);
  }

  // Which group to show for machine `m` of definition `def` (null: the overview).
  groupFor(def, m) {
    if (!def || !def.views) return null;
    if (!m || m.machine_name !== this.machine) {
      this.machine = m ? m.machine_name : null;
      this.manual = false;
    }
    if (this.manual) return this.group;
    return (m && def.views.group_of[m.current_state]) || null;
  }

  key(def, m) {
    if (!def || !def.views) return def ? def.digest : "";
    return `${def.digest}:${this.groupFor(def, m) ?? "*"}`;
  }

  // The view to draw: the whole definition, the overview or one group.
  viewFor(def, m) {
    if (!def.views) {
      this.group = null;
      this.groupIds = null;
      this.view = { ...def, key: this.key(def, m) };
      this.renderCrumbs(def);
      return this.view;
    }
    this.group = this.groupFor(def, m);
    this.groupIds = def.views.group_ids;
    const base = this.group ? def.views.groups[this.group] : def.views.overview;
    this.view = { ...base, digest: def.digest, key: this.key(def, m) };
    this.renderCrumbs(def);
    return this.view;
  }

  open(group) {
    this.group = group;
    this.manual = true;
    this.onChange();
  }

  renderCrumbs(def) {
    if (!def.views) { this.crumbs.hidden = true; this.crumbs.replaceChildren(); return; }
    this.crumbs.hidden = false;
    const top = this.group
      ? el("button", { type: "button", class: "crumb-top", text: `${def.name}: all groups`, onclick: () => this.open(null) })
      : el("span", { class: "crumb-top", "aria-current": "page", text: `${def.name}: all groups` });
    const parts = [top];
    if (this.group) parts.push(el("span", { class: "sep", text: " › " }), el("span", { class: "crumb-group", "aria-current": "page", text: this.group }));
    const others = Object.keys(def.views.groups).filter((g) => g !== this.group)
      .map((g) => el("button", { type: "button", class: "crumb-open", data: { group: g }, text: g, "aria-label": `open group ${g}`, onclick: () => this.open(g) }));
    this.crumbs.replaceChildren(...parts, el("span", { class: "crumb-others" }, el("span", { class: "muted", text: " open: " }), ...others));
  }

  // After drawing: group nodes (all in the overview, the neighbours in a group's view)
  // open their group on click, Enter or Space.
  decorate() {
    if (!this.view || !this.groupIds) return;
    for (const [group, id] of Object.entries(this.groupIds)) {
      if (group === this.group) continue;
      const node = this.box.querySelector(`g.node[id*="-state-${id}-"]`);
      if (!node) continue;
      node.dataset.group = group;
      node.setAttribute("tabindex", "0");
      node.setAttribute("role", "button");
      node.setAttribute("aria-label", `open group ${group}`);
      node.classList.add("sm-group");
      node.addEventListener("click", () => this.open(group));
      node.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); this.open(group); }
      });
    }
  }
}
