// Definition versions by name: "Worker v2 · 1a2b3c4d · first seen 2026-12-02 09:15 UTC",
// from GET /api/definitions, instead of bare hashes.

export class Versions {
  constructor(api, onLoad) {
    this.api = api;
    this.onLoad = onLoad;
    this.labels = new Map();
    this.pending = null;
  }

  label(digest) {
    if (!digest) return "";
    const known = this.labels.get(digest);
    if (known) return known;
    this.refresh();
    return `${digest.slice(0, 8)}`;
  }

  refresh() {
    if (this.pending) return this.pending;
    this.pending = this.api("/api/definitions").then((body) => {
      for (const d of body.definitions) this.labels.set(d.digest, d.label);
      this.onLoad();
    }, (e) => console.warn("definitions:", e)).finally(() => {
      setTimeout(() => { this.pending = null; }, 2000);  // at most one reload per 2 s
    });
    return this.pending;
  }
}
