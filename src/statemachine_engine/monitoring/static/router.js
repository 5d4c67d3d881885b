// Client-side routes: `/` is the live overview (app.js), `/machines/NAME` and `/jobs/ID` the
// history pages. The server returns the app for each; links change the URL with pushState and
// the back and forward buttons come back through popstate.

import { leaveJob, showJob } from "./job.js";
import { leaveMachine, showMachine } from "./machine.js";
import { wireSearch } from "./search.js";

const ROUTE = /^\/(machines|jobs)\/([^/]+)\/?$/;
let shown = null;

function parse(pathname) {
  const m = ROUTE.exec(pathname);
  if (!m) return { kind: "home" };
  let name = m[2];
  try { name = decodeURIComponent(name); } catch { /* keep it as written */ }
  return { kind: m[1] === "machines" ? "machine" : "job", name };
}

function anchor() {
  try { return decodeURIComponent(location.hash.slice(1)); } catch { return ""; }
}

export function route() {
  if (location.pathname === shown) return; // only the fragment changed
  shown = location.pathname;
  const r = parse(location.pathname);
  const main = document.querySelector("main");
  const page = document.querySelector("#page");
  leaveMachine();
  leaveJob();
  document.body.dataset.route = r.kind;
  if (r.kind === "home") {
    page.hidden = true;
    page.replaceChildren();
    main.hidden = false;
    document.title = "statemachine-ui";
    return;
  }
  main.hidden = true;
  page.hidden = false;
  document.title = `${r.kind} ${r.name} · statemachine-ui`;
  window.scrollTo(0, 0);
  if (r.kind === "machine") showMachine(page, r.name, anchor());
  else showJob(page, r.name);
}

export function navigate(href) {
  const url = new URL(href, location.href);
  history.pushState(null, "", url.pathname + url.search + url.hash);
  route();
}

function isRoute(url) {
  return url.origin === location.origin && (url.pathname === "/" || ROUTE.test(url.pathname));
}

document.addEventListener("click", (ev) => {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const a = ev.target.closest("a[href]");
  if (!a || a.target || a.hasAttribute("download")) return;
  const url = new URL(a.href, location.href);
  if (!isRoute(url) || (url.pathname === location.pathname && url.hash)) return;
  ev.preventDefault();
  if (url.pathname === "/" && location.search) url.search = location.search;
  navigate(url.href);
});
window.addEventListener("popstate", route);
wireSearch(navigate);
route();
