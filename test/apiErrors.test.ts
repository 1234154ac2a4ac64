// The error catalogue: each kind maps to one HTTP status and one envelope code, no two kinds share
// a code, and docs/api.md lists exactly the catalogue (one table row per kind).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { API_ERRORS, ApiError, type ApiErrorKind, errorEnvelope } from '../app/http/apiErrors.ts';
import { projectRoot } from '../app/paths.ts';

const kinds = Object.keys(API_ERRORS) as ApiErrorKind[];

/** The rows of docs/api.md's error-code table: `| 400 | 40001 | invalid_request | meaning |`. */
async function documentedErrors(): Promise<Array<{ status: number; code: number; kind: string; meaning: string }>> {
  const text = await readFile(path.join(projectRoot, 'docs', 'api.md'), 'utf8');
  const rows: Array<{ status: number; code: number; kind: string; meaning: string }> = [];
  for (const line of text.split('\n')) {
    const match = /^\|\s*(\d{3})\s*\|\s*(\d{5})\s*\|\s*([a-z_]+)\s*\|\s*(.*?)\s*\|\s*$/.exec(line);
    if (match) rows.push({ status: Number(match[1]), code: Number(match[2]), kind: match[3]!, meaning: match[4]! });
  }
  return rows;
}

test('when the catalogue is read, then every kind has one 4xx/5xx status and a code of that status, and no two kinds share a code', (t) => {
  t.true(kinds.length > 0);
  const codes = new Map<number, string>();
  for (const kind of kinds) {
    const { status, code } = API_ERRORS[kind];
    t.true(Number.isInteger(status) && status >= 400 && status <= 599, `${kind}: status ${status}`);
    // the code names its status: 40001..40099 are 400s, and so on
    t.true(Number.isInteger(code) && Math.floor(code / 100) === status && code % 100 > 0, `${kind}: code ${code} of status ${status}`);
    t.is(codes.get(code), undefined, `${kind} and ${codes.get(code)} share code ${code}`);
    codes.set(code, kind);
    // what the handlers build answers with exactly that pair
    const error = new ApiError(kind, 'why');
    t.deepEqual([error.status, error.code, error.envelope()], [status, code, { code, msg: 'why', data: null }]);
    t.deepEqual(errorEnvelope(kind, 'why'), { status, body: { code, msg: 'why', data: null } });
  }
});

test('when docs/api.md is read, then its error table lists each kind of the catalogue once, with its status and code', async (t) => {
  const documented = await documentedErrors();
  t.deepEqual(
    documented.map((row) => [row.kind, row.status, row.code]).sort(),
    kinds.map((kind) => [kind, API_ERRORS[kind].status, API_ERRORS[kind].code]).sort(),
  );
  t.is(new Set(documented.map((row) => row.code)).size, documented.length, 'no code documented twice');
  for (const row of documented) t.true(row.meaning.length > 0, `${row.kind} says what it means`);
});
