// One current definition of every SQL function: the live catalogue of a migrated database must be
// exactly what sql/<database>/functions/ defines, function for function and trigger for trigger.
import test from 'ava';
import type pg from 'pg';
import { applyFunctions, functionFiles, type MigrationSet } from '../app/db/migrate.ts';
import { createTestDatabases, type TestDatabases } from './helpers/testDatabases.ts';

let db: TestDatabases;
test.before(async () => {
  db = await createTestDatabases();
});
test.after.always(async () => {
  await db?.drop();
});

const SETS: readonly MigrationSet[] = ['balance', 'ledger'];
const SCRATCH_SCHEMA = 'fn_files';

type Definitions = Map<string, string[]>;

/** name → pg_get_functiondef of every function of that name in `schema` (not owned by an extension). */
async function definitions(client: pg.Client, schema: string): Promise<Definitions> {
  const { rows } = await client.query<{ name: string; def: string }>(
    `select p.proname as name, pg_get_functiondef(p.oid) as def
       from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = $1 and p.prokind in ('f', 'p')
        and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
      order by 1, 2`,
    [schema],
  );
  const map: Definitions = new Map();
  for (const row of rows) map.set(row.name, [...(map.get(row.name) ?? []), row.def.replaceAll(`${schema}.`, 'public.')]);
  return map;
}

async function liveTriggers(client: pg.Client): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `select t.tgname as name from pg_trigger t join pg_class c on c.oid = t.tgrelid
       join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and not t.tgisinternal order by 1`,
  );
  return rows.map((r) => r.name);
}

/** What the files define, read by PostgreSQL itself: each file applied into a scratch schema, then rolled back. */
async function fileDefinitions(client: pg.Client, set: MigrationSet): Promise<Definitions> {
  await client.query('begin');
  try {
    await client.query(`create schema ${SCRATCH_SCHEMA}`);
    await client.query(`set local search_path = ${SCRATCH_SCHEMA}, public`);
    await client.query('set local check_function_bodies = off');
    for (const file of functionFiles(set)) await client.query(file.text);
    return await definitions(client, SCRATCH_SCHEMA);
  } finally {
    await client.query('rollback');
  }
}

const DECLARED_TRIGGER = /\bcreate (?:or replace |constraint )?trigger (\w+)/gi;

/** Every way the catalogue can differ from the files, in words; empty when they agree. */
function catalogueProblems(
  set: MigrationSet,
  live: Definitions,
  files: Definitions,
  triggers: { live: readonly string[]; declared: readonly string[] },
): string[] {
  const problems: string[] = [];
  for (const file of functionFiles(set)) {
    const name = file.file.replace(/\.sql$/, '');
    const defined = [...file.text.matchAll(/\bcreate or replace function (\w+)\s*\(/gi)].map((m) => m[1]);
    if (defined.length !== 1 || defined[0] !== name) {
      problems.push(
        `sql/${set}/functions/${file.file} must define exactly one function, named ${name} (defines ${defined.join(', ') || 'none'})`,
      );
    }
  }
  for (const [name, defs] of live) {
    if (defs.length > 1) problems.push(`${set}: ${name} has ${defs.length} definitions (an old signature was never dropped)`);
    if (!files.has(name)) problems.push(`${set}: ${name} exists in the database but in no file under sql/${set}/functions/`);
  }
  for (const [name, defs] of files) {
    const liveDefs = live.get(name);
    if (!liveDefs) problems.push(`${set}: sql/${set}/functions/${name}.sql is not in the database (npm run migrate applies it)`);
    else if (liveDefs.length === 1 && liveDefs[0] !== defs[0]) problems.push(`${set}: ${name} in the database differs from its file`);
  }
  for (const name of triggers.live) if (!triggers.declared.includes(name)) problems.push(`${set}: trigger ${name} is in no file`);
  for (const name of triggers.declared)
    if (!triggers.live.includes(name)) problems.push(`${set}: trigger ${name} is declared but not in the database`);
  return problems;
}

async function compare(client: pg.Client, set: MigrationSet): Promise<string[]> {
  const declared = functionFiles(set).flatMap((f) => [...f.text.matchAll(DECLARED_TRIGGER)].map((m) => m[1]!));
  return catalogueProblems(set, await definitions(client, 'public'), await fileDefinitions(client, set), {
    live: await liveTriggers(client),
    declared,
  });
}

for (const set of SETS) {
  test.serial(
    `when the ${set} database is migrated, then its functions and triggers are exactly those of sql/${set}/functions/`,
    async (t) => {
      const client = await db.client(set);
      t.deepEqual(await compare(client, set), []);
    },
  );

  test.serial(`when a ${set} function is added, redefined or overloaded outside the files, then the comparison names it`, async (t) => {
    const client = await db.client(set);
    const [first] = functionFiles(set);
    const name = first!.file.replace(/\.sql$/, '');
    await client.query('begin');
    try {
      await client.query('create function public.stray_helper() returns int language sql as $$ select 1 $$');
      // a second signature of an existing name, as a migration that changed arguments without a drop would leave
      await client.query(
        `create function public.${name}(p_unused_extra_argument uuid, p_more uuid, p_and_more uuid) returns int language sql as $$ select 1 $$`,
      );
      const problems = await compare(client, set);
      t.true(
        problems.some((p) => p.includes('stray_helper exists in the database but in no file')),
        problems.join('\n'),
      );
      t.true(
        problems.some((p) => p.includes(`${name} has 2 definitions`)),
        problems.join('\n'),
      );
    } finally {
      await client.query('rollback');
    }
    await client.query('begin');
    try {
      // a body edited in place (by hand, or by a migration that copied the function)
      const { rows } = await client.query<{ def: string }>(
        `select pg_get_functiondef(p.oid) as def from pg_proc p join pg_namespace n on n.oid = p.pronamespace
          where n.nspname = 'public' and p.proname = $1`,
        [name],
      );
      await client.query(rows[0]!.def.replace(/\$function\$/, '$function$\n-- edited in place\n'));
      t.true((await compare(client, set)).includes(`${set}: ${name} in the database differs from its file`));
    } finally {
      await client.query('rollback');
    }
  });

  test.serial(`when the ${set} functions are applied again, then nothing changes`, async (t) => {
    const client = await db.client(set);
    const before = await definitions(client, 'public');
    const triggersBefore = await liveTriggers(client);
    const url = set === 'balance' ? db.balanceUrl : db.ledgerUrl;
    t.is(await applyFunctions(url, set), functionFiles(set).length);
    t.is(await applyFunctions(url, set), functionFiles(set).length);
    t.deepEqual(await definitions(client, 'public'), before);
    t.deepEqual(await liveTriggers(client), triggersBefore);
    const { rows } = await client.query<{ file: string; sha256: string }>('select file, sha256 from schema_functions order by file');
    t.deepEqual(
      rows,
      functionFiles(set).map((f) => ({ file: f.file, sha256: f.sha256 })),
    );
  });
}
