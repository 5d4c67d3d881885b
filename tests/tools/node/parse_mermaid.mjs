// Parse each Mermaid file named on the command line with the real Mermaid library.
// Prints one JSON line per file: {"file": ..., "ok": true} or {"file": ..., "ok": false, "error": ...}.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!DOCTYPE html><body></body>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;

const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });

let failed = 0;
for (const file of process.argv.slice(2)) {
  const text = readFileSync(file, "utf8");
  try {
    const result = await mermaid.parse(text);
    console.log(JSON.stringify({ file, ok: true, type: result.diagramType }));
  } catch (err) {
    failed += 1;
    console.log(JSON.stringify({ file, ok: false, error: String(err && err.message ? err.message : err) }));
  }
}
process.exit(failed ? 1 : 0);
