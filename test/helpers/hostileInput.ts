// Hostile input for the malformed-input suite (test/malformedInput.test.ts), as fast-check
// arbitraries: strings and raw JSON values no field should take, and the valid body, path segment
// or query of an endpoint with one thing broken. Whether a result is still valid is for the oracle
// (malformedRequests.ts) to say; these only aim at what is likely to break something.
import fc from 'fast-check';
import { parse as parseJson, stringify as stringifyJson } from 'lossless-json';
import type { Judge } from './malformedRequests.ts';

export const NASTY_STRINGS: readonly string[] = [
  '',
  ' ',
  '   ',
  '\t',
  '\n',
  '\r\n',
  'a'.repeat(65),
  'a'.repeat(129),
  'a'.repeat(501),
  'x'.repeat(10_000),
  "'; drop table accounts; --",
  "' or 1=1 --",
  '" or ""="',
  '1; select pg_sleep(5)',
  "admin'--",
  '$1',
  '%s%n',
  '\\',
  '\\x00',
  '%00',
  '{"__proto__":{"polluted":true}}',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '💸',
  '👨‍👩‍👧‍👦',
  '\u202eevil',
  'مرحبا',
  'שלום',
  'é',
  'e\u0301',
  '\ufeff',
  '\u200b',
  '\u2028',
  'Ａ',
  '١٢٣',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff',
  'x\ud83d',
  '\udc00x',
  '\u0001',
  '\u001f',
  '\u007f',
  'a\nb',
  '<script>alert(1)</script>',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection probe, sent as text
  '${7*7}',
  '{{7*7}}',
  '../../etc/passwd',
  'NaN',
  'Infinity',
  'null',
  'undefined',
  'true',
  '1.00 ',
  ' 1.00',
  '1,00',
  '1_000',
  '0x10',
  '+1',
  '.5',
  '5.',
  '1.0.0',
  '١٠٠',
  '１',
  '1e400',
  '-0',
  '0.001',
];

/** raw JSON texts that are no string: literals, numbers beyond any limit, structures, JSON injection */
export const RAW_LITERALS: readonly string[] = [
  'null',
  'true',
  'false',
  '0',
  '-0',
  '-1',
  '1e400',
  '-1e400',
  '1e-400',
  '123456789012345678901234567890',
  '-123456789012345678901234567890',
  '0.000000000000000000000000000001',
  '1.001',
  '1.005',
  '0.001',
  '1E+41',
  '1e13',
  '1000000000000.01',
  '9007199254740993',
  '3.141592653589793238462643383279',
  '[]',
  '{}',
  '[null]',
  '["1.00"]',
  '{"value":"1.00"}',
  '{"__proto__":{"isAdmin":true}}',
  '{"constructor":{"prototype":{"isAdmin":true}}}',
  '[[["deep"]]]',
];

/** texts that are not JSON at all, in a value's place */
export const RAW_NOT_JSON: readonly string[] = [
  'NaN',
  'Infinity',
  '-Infinity',
  'undefined',
  "'single'",
  '01',
  '.5',
  '+1',
  '0x10',
  '1.',
  '1e',
  '--1',
  '"\\x41"',
  '"\\u12"',
  '"\\ud800\\"',
  '"a\tb"',
  '"line\nbreak"',
  '"\u0001"',
  'tru',
  'nul',
  '"unterminated',
  '/* c */ 1',
  '1 // c',
];

const codeUnit = fc.oneof(
  fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
  fc.constantFrom('\u0000', '\ud800', '\udfff', '\u202e', '\u200f', '\ufeff', '💸', '\u0301', "'", '"', '\\', ';', '-', ' ', '\u0007'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
);

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
  { weight: 3, arbitrary: fc.string({ unit: codeUnit, maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constantFrom('a', 'é', '💸', "'", '0'), fc.integer({ min: 60, max: 20_000 })).map(([c, n]) => c.repeat(n)),
  },
);

/** numbers (as texts) the contract refuses as amounts: too large, too precise, not positive */
export const badNumberText: fc.Arbitrary<string> = fc.oneof(
  fc.bigInt({ min: 10n ** 13n, max: 10n ** 40n }).map(String),
  fc.tuple(fc.nat({ max: 1_000_000 }), fc.stringMatching(/^\d{2,30}[1-9]$/)).map(([i, f]) => `${i}.${f}`),
  fc.tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 13, max: 500 })).map(([m, e]) => `${m}e${e}`),
  fc.tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 3, max: 500 })).map(([m, e]) => `${m}e-${e}`),
  fc.bigInt({ min: -(10n ** 30n), max: 0n }).map(String),
);

const deepArray = (n: number) => '['.repeat(n) + ']'.repeat(n);
const deepObject = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;

/** any hostile value, as raw JSON text (strings are escaped as JSON.stringify does: "\ud800", "\u0000") */
export const hostileRaw: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: hostileString.map((s) => JSON.stringify(s)) },
  { weight: 2, arbitrary: fc.constantFrom(...RAW_LITERALS) },
  { weight: 1, arbitrary: fc.constantFrom(...RAW_NOT_JSON) },
  { weight: 2, arbitrary: badNumberText },
  { weight: 1, arbitrary: badNumberText.map((s) => JSON.stringify(s)) },
  { weight: 1, arbitrary: fc.integer({ min: 2, max: 9_000 }).map(deepArray) },
);

// ---------------------------------------------------------------------------------------------
// bodies: the valid shape with one thing broken

export type BodyPlan = Readonly<{ label: string; bytes: Buffer; contentType?: string; contentEncoding?: string }>;

export type BodyFields = Readonly<Record<string, { judge: Judge; valid?: string; bad?: fc.Arbitrary<string> }>>;

const objectText = (entries: ReadonlyArray<readonly [string, string]>) =>
  `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
const utf8 = (text: string) => Buffer.from(text, 'utf8');
const plan = (label: string, bytes: Buffer, extra: Partial<BodyPlan> = {}): BodyPlan => ({ label, bytes, ...extra });

const BAD_UTF8: readonly number[][] = [
  [0xff],
  [0xfe, 0xff],
  [0xc0, 0xaf],
  [0x80],
  [0xe2, 0x82],
  [0xed, 0xa0, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
];
const COMPRESSED_GARBAGE: readonly string[] = ['garbage', 'not compressed at all', '\u001f\u008b\u0008 broken', '{"a":1}'];

/** Every way of breaking a body whose valid form has `fields` (raw JSON text per field). */
export function bodyMutations(fields: BodyFields, sizeMaxBytes: number): fc.Arbitrary<BodyPlan> {
  const names = Object.keys(fields);
  const validEntries = names.flatMap((name) => (fields[name]!.valid === undefined ? [] : [[name, fields[name]!.valid!] as const]));
  const required = validEntries.map(([name]) => name);
  const validText = objectText(validEntries);
  const withField = (name: string, raw: string) =>
    objectText(
      validEntries.some(([n]) => n === name)
        ? validEntries.map(([n, v]) => [n, n === name ? raw : v] as const)
        : [...validEntries, [name, raw]],
    );
  const badFor = (name: string) => (fields[name]!.bad ? fc.oneof(hostileRaw, fields[name]!.bad!) : hostileRaw);
  const fieldBad = fc
    .constantFrom(...names)
    .chain((name) => badFor(name).map((raw) => plan(`${name} = ${raw.slice(0, 60)}`, utf8(withField(name, raw)))));
  // a valid string value with a NUL or an unpaired surrogate slipped in (escaped, as JSON.stringify does)
  const stringFields = validEntries.filter(([, v]) => v.startsWith('"')).map(([n]) => n);
  const poisoned =
    stringFields.length === 0
      ? fieldBad
      : fc
          .tuple(fc.constantFrom(...stringFields), fc.nat(), fc.constantFrom('\u0000', '\ud800', '\udfff', '\udbff\u0000'))
          .map(([name, at, poison]) => {
            const text = JSON.parse(fields[name]!.valid!) as string;
            const cut = at % (text.length + 1);
            return plan(`${name} poisoned at ${cut}`, utf8(withField(name, JSON.stringify(text.slice(0, cut) + poison + text.slice(cut)))));
          });
  const without = (name: string) => validEntries.filter(([n]) => n !== name);
  const missing =
    required.length === 0 ? fieldBad : fc.constantFrom(...required).map((name) => plan(`${name} missing`, utf8(objectText(without(name)))));
  const duplicate = fc
    .tuple(
      fc.constantFrom(...(required.length ? required : names)),
      fc.oneof(hostileRaw, fc.constantFrom(...validEntries.map(([, v]) => v), '"1.00"', '1')),
      fc.boolean(),
    )
    .filter(
      ([name, raw]) =>
        raw !== (validEntries.find(([n]) => n === name)?.[1] ?? '') && differentJson(raw, validEntries.find(([n]) => n === name)?.[1]),
    )
    .map(([name, raw, before]) => {
      const entries = [...validEntries, [name, raw] as const];
      const text = before ? `${objectText([[name, raw]]).slice(0, -1)},${validText.slice(1)}` : objectText(entries);
      return plan(`duplicate ${name}`, utf8(text));
    });
  const wholeTexts = [
    '',
    ' ',
    '\r\n',
    'null',
    'true',
    'false',
    '0',
    '-0',
    '5',
    '1.00',
    '1e400',
    '"text"',
    '""',
    '[]',
    '{}',
    '[{}]',
    `[${validText}]`,
    `${validText}${validText}`,
    `${validText},`,
    `${validText}x`,
    `{${validText}}`,
    "{'a':1}",
    '{"a":1,}',
    'toAccountId=bank-1&amount=1.00',
    '<withdraw><amount>1</amount></withdraw>',
    "'; drop table accounts; --",
    `${validText}/*`,
    '\u0000',
    `\ufeff\ufeff${validText}`,
    `\ufeff[]`,
    objectText([['__proto__', validText]]),
    objectText([['constructor', objectText([['prototype', validText]])]]),
  ];
  const whole = fc.oneof(
    fc.constantFrom(...wholeTexts).map((text) => plan(`body ${JSON.stringify(text.slice(0, 40))}`, utf8(text))),
    fc.nat({ max: validText.length - 1 }).map((k) => plan(`truncated at ${k}`, utf8(validText.slice(0, k)))),
    fc.integer({ min: 100, max: 10_000 }).map((n) => plan(`${n} nested arrays`, utf8(deepArray(n)))),
    fc.integer({ min: 100, max: 3_000 }).map((n) => plan(`${n} nested objects`, utf8(deepObject(n)))),
    fc.tuple(fc.nat({ max: validText.length - 1 }), fc.integer({ min: 0, max: 255 })).map(([at, byte]) => {
      const bytes = utf8(validText);
      bytes[at] = byte;
      return plan(`byte ${at} = ${byte}`, bytes);
    }),
  );
  // the required fields hidden where only prototype pollution would find them
  const injected = fc.constantFrom(...(required.length ? required : names)).chain((name) =>
    fc.constantFrom('__proto__', 'constructor').map((key) => {
      const hidden = objectText([[name, fields[name]!.valid ?? '"x"']]);
      const value = key === '__proto__' ? hidden : objectText([['prototype', hidden]]);
      return plan(`${name} inside ${key}`, utf8(objectText([...without(name), [key, value]])));
    }),
  );
  const encoding = fc.oneof(
    fc
      .tuple(fc.nat({ max: validText.length }), fc.constantFrom(...BAD_UTF8))
      .map(([at, seq]) =>
        plan(
          `bytes ${seq.map((b) => b.toString(16)).join(' ')} at ${at}`,
          Buffer.concat([utf8(validText.slice(0, at)), Buffer.from(seq), utf8(validText.slice(at))]),
        ),
      ),
    fc.constantFrom('utf16le', 'utf16be', 'utf16le+bom', 'latin1').map((name) => {
      const text = name === 'latin1' ? withField(names[0]!, '"bänk"') : validText;
      const le = Buffer.from(text, name === 'latin1' ? 'latin1' : 'utf16le');
      const bytes =
        name === 'utf16be' ? Buffer.from(le).swap16() : name === 'utf16le+bom' ? Buffer.concat([Buffer.from([0xff, 0xfe]), le]) : le;
      return plan(`encoded as ${name}`, bytes, { contentType: `application/json; charset=${name.replace('+bom', '')}` });
    }),
    fc
      .constantFrom(...wholeTexts.filter((t) => t !== ''))
      .map((text) => plan(`BOM + ${JSON.stringify(text.slice(0, 30))}`, utf8(`\ufeff${text}`))),
  );
  const contentType = fc.constantFrom(
    plan('form-urlencoded', utf8('toAccountId=bank-1&amount=1.00'), { contentType: 'application/x-www-form-urlencoded' }),
    plan('multipart', utf8('--x\r\nContent-Disposition: form-data; name="amount"\r\n\r\n1.00\r\n--x--\r\n'), {
      contentType: 'multipart/form-data; boundary=x',
    }),
    plan('xml', utf8('<?xml version="1.0"?><withdraw amount="1.00"/>'), { contentType: 'text/xml' }),
    plan('text', utf8('hello'), { contentType: 'text/plain' }),
    plan('garbage content type', utf8('{"a":'), { contentType: ';;;=/' }),
    plan('charset not closed', utf8('[1,2'), { contentType: 'application/json; charset="' }),
    plan('octet-stream', Buffer.from([0, 1, 2, 3, 255]), { contentType: 'application/octet-stream' }),
  );
  const compression = fc.oneof(
    fc
      .tuple(fc.constantFrom('gzip', 'deflate', 'br', 'GZIP'), fc.constantFrom(...COMPRESSED_GARBAGE))
      .map(([coding, text]) => plan(`${coding} garbage`, utf8(text), { contentEncoding: coding })),
    fc
      .constantFrom('x-unknown', 'zstd', 'gzip, deflate', 'compress')
      .map((coding) => plan(`coding ${coding}`, utf8(validText), { contentEncoding: coding })),
  );
  const oversized = fc.integer({ min: sizeMaxBytes + 1, max: sizeMaxBytes * 4 }).chain((size) =>
    fc.boolean().map((asField) => {
      const padding = 'x'.repeat(size);
      return plan(`${size} bytes`, utf8(asField ? objectText([...validEntries, ['padding', JSON.stringify(padding)]]) : padding));
    }),
  );
  return fc.oneof(
    { weight: 10, arbitrary: fieldBad },
    { weight: 2, arbitrary: poisoned },
    { weight: 1, arbitrary: missing },
    { weight: 2, arbitrary: duplicate },
    { weight: 4, arbitrary: whole },
    { weight: 1, arbitrary: injected },
    { weight: 2, arbitrary: encoding },
    { weight: 1, arbitrary: contentType },
    { weight: 1, arbitrary: compression },
    { weight: 1, arbitrary: oversized },
  );
}

/** two raw JSON texts whose values differ (a duplicate key with them is a conflict) */
function differentJson(a: string, b: string | undefined): boolean {
  if (b === undefined) return true;
  try {
    return stringifyJson(parseJson(a)) !== stringifyJson(parseJson(b));
  } catch {
    return true;
  }
}

// ---------------------------------------------------------------------------------------------
// paths and queries

const UNRESERVED = /[A-Za-z0-9\-._~]/;
/** percent-encodes the UTF-8 bytes of `value` (a lone surrogate becomes U+FFFD, as it would on any wire) */
export function percentEncode(value: string): string {
  return [...Buffer.from(value, 'utf8')]
    .map((b) => (UNRESERVED.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`))
    .join('');
}

const RAW_SEGMENTS: readonly string[] = [
  '%',
  '%zz',
  '%E0%A4%A',
  '%C0%AF',
  '%ED%A0%80',
  '%FF',
  '%00',
  'a%2Fb',
  '%2F',
  '%2F%2F',
  'a%5Cb',
  '%20',
  '%25',
  '%u0041',
  'null',
  'undefined',
  '0',
  '-1',
  '1.0',
  '0x1',
  "'%20or%201=1%20--",
  '%27%3B%20drop%20table%20accounts%3B%20--',
  '~',
  '%7B%7D',
  '9223372036854775807',
  '9223372036854775808',
  '99999999999999999999',
  '00000000-0000-0000-0000-000000000000',
  'a'.repeat(10_000),
  '%F0%9F%92%B8',
];

/** a path segment as sent (already percent-encoded), never one that routes elsewhere ('.', '..') */
export function segmentMutations(related: readonly string[]): fc.Arbitrary<string> {
  return fc
    .oneof(
      { weight: 3, arbitrary: hostileString.map(percentEncode) },
      { weight: 3, arbitrary: fc.constantFrom(...RAW_SEGMENTS) },
      { weight: 1, arbitrary: fc.uuid().map((u) => (u.startsWith('0') ? u.toUpperCase() : u)) },
      { weight: 1, arbitrary: fc.constantFrom(...related) },
      {
        weight: 1,
        arbitrary: fc.oneof(fc.bigInt({ min: 0n, max: 10n ** 25n }), fc.bigInt({ min: 2n ** 63n - 3n, max: 10n ** 19n + 3n })).map(String),
      },
      {
        weight: 2,
        arbitrary: fc
          .tuple(fc.constantFrom(...related), fc.constantFrom('x', '%00', '%20', '/'.replace('/', '%2F'), '-', '0'), fc.boolean())
          .map(([id, extra, before]) => (before ? extra + id : id + extra)),
      },
      {
        weight: 1,
        arbitrary: fc
          .constantFrom(...related)
          .map((id) => `{${id}}`)
          .map(percentEncode),
      },
    )
    .filter((raw) => raw.length > 0 && raw.length <= 12_000 && !/^(\.|%2e){1,2}$/i.test(raw));
}

const QUERY_VALUES: readonly string[] = [
  '-1',
  '1e9',
  '30001',
  '1.5',
  'abc',
  'NaN',
  'Infinity',
  '1e400',
  '99999999999999999999',
  '0',
  '501',
  '-0.5',
];

/** a raw query string with one named parameter broken (or repeated); unknown parameters as noise */
export function queryMutations(names: readonly string[]): fc.Arbitrary<string> {
  const value = fc.oneof(fc.constantFrom(...QUERY_VALUES), hostileString.filter((s) => s.length < 2_000).map(percentEncode));
  return fc.oneof(
    { weight: 4, arbitrary: fc.tuple(fc.constantFrom(...names), value).map(([name, v]) => `${name}=${v}`) },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...names), value, value).map(([name, a, b]) => `${name}=${a}&${name}=${b}`) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(...names)
        .chain((name) =>
          fc.constantFrom(
            `${name}=%`,
            `${name}=%zz`,
            `${name}=%E0%A4%A`,
            `${name}=%00`,
            `${name}=1&${name}=2`,
            `${name}=1&${name}=1`,
            `${name}=${'9'.repeat(5_000)}`,
          ),
        ),
    },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...names), value).map(([name, v]) => `foo=bar&${name}=${v}&&=x&__proto__=1`) },
  );
}
