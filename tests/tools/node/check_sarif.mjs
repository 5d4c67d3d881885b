// Validate SARIF logs against the SARIF 2.1.0 JSON Schema (draft-04, as published; shipped in
// @microsoft/jest-sarif together with the Ajv 6 that reads draft-04).
// Usage: node check_sarif.mjs DOC.json...; one JSON line per document.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const sarifPackage = require.resolve("@microsoft/jest-sarif/package.json");
const local = createRequire(sarifPackage);
const Ajv = local("ajv");
const schema = local("./lib/schemas/sarif-2.1.0-rtm.5.json");
const ajv = new Ajv({ schemaId: "id", allErrors: true, format: false, meta: false });
ajv.addMetaSchema(local("ajv/lib/refs/json-schema-draft-04.json"));
const validate = ajv.compile(schema);
let failed = 0;
for (const file of process.argv.slice(2)) {
  const ok = validate(JSON.parse(readFileSync(file, "utf8")));
  if (!ok) failed += 1;
  console.log(JSON.stringify({ file, ok, errors: ok ? [] : validate.errors }));
}
process.exit(failed ? 1 : 0);
