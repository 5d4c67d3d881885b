// Validate JSON documents against a JSON Schema with Ajv (draft 2020-12, strict mode).
// Usage: node check_schema.mjs SCHEMA.json DOC.json...; one JSON line per document.
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";

const [schemaFile, ...docs] = process.argv.slice(2);
const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
const validate = ajv.compile(JSON.parse(readFileSync(schemaFile, "utf8")));
let failed = 0;
for (const file of docs) {
  const ok = validate(JSON.parse(readFileSync(file, "utf8")));
  if (!ok) failed += 1;
  console.log(JSON.stringify({ file, ok, errors: ok ? [] : validate.errors }));
}
process.exit(failed ? 1 : 0);
