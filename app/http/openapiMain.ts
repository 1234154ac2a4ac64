// `npm run openapi [-- <file>]`: the OpenAPI document the web process serves at /openapi.json, to
// a file or stdout (`npm run lint:openapi` lints it with redocly).
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildOpenApiDocument } from './openapi.ts';

const target = process.argv[2];
const text = `${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`;
if (target) {
  mkdirSync(path.dirname(path.resolve(target)), { recursive: true });
  writeFileSync(target, text);
} else {
  process.stdout.write(text);
}
