// Raw-socket HTTP for the malformed-input suite: bytes no HTTP client would send, and what came back.
import net from 'node:net';
import { API_ERRORS } from '../../app/http/apiErrors.ts';

export type Exchange = Readonly<{ text: string; statuses: number[]; envelopeProblems: string[] }>;

const EXCHANGE_WAIT_MS = 2_000;
const CODE_STATUS = new Map(Object.values(API_ERRORS).map((e) => [e.code as number, e.status as number]));

/** Writes `bytes`, half-closes when asked, and collects the answer until the server closes (or a short wait). */
export function rawExchange(port: number, bytes: Buffer, options: { end?: boolean; waitMs?: number } = {}): Promise<Exchange> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(port, '127.0.0.1');
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(parseResponses(Buffer.concat(chunks).toString('latin1')));
    };
    const timer = setTimeout(finish, options.waitMs ?? EXCHANGE_WAIT_MS);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => finish()); // a reset is an acceptable answer to garbage
    socket.on('close', finish);
    socket.on('connect', () => {
      socket.write(bytes, () => {
        if (options.end) socket.end();
      });
    });
  });
}

/** Splits what came back into responses; checks the envelope of every JSON one. */
function parseResponses(text: string): Exchange {
  const statuses: number[] = [];
  const envelopeProblems: string[] = [];
  let rest = text;
  while (rest.startsWith('HTTP/1.')) {
    const headEnd = rest.indexOf('\r\n\r\n');
    if (headEnd < 0) break;
    const head = rest.slice(0, headEnd);
    const status = Number(head.slice(9, 12));
    statuses.push(status);
    const header = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(head)?.[1]?.trim();
    const length = Number(header('content-length') ?? 0);
    const body = rest.slice(headEnd + 4, headEnd + 4 + length);
    rest = rest.slice(headEnd + 4 + (status === 100 ? 0 : length));
    if (/^application\/json/.test(header('content-type') ?? '')) {
      try {
        const envelope = JSON.parse(Buffer.from(body, 'latin1').toString('utf8')) as { code: number; msg: unknown; data: unknown };
        if (status >= 400 && (CODE_STATUS.get(envelope.code) !== status || typeof envelope.msg !== 'string' || envelope.data !== null)) {
          envelopeProblems.push(`${status} with ${body.slice(0, 200)}`);
        }
      } catch {
        envelopeProblems.push(`${status} with a body that is not JSON: ${body.slice(0, 200)}`);
      }
      if (!header('x-request-id')) envelopeProblems.push(`${status} without X-Request-Id`);
    }
  }
  return { text, statuses, envelopeProblems };
}

const request = (lines: readonly string[], body = '') => Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`, 'latin1');
const refusedOrClosed = (statuses: number[]) => statuses.length <= 1 && statuses.every((s) => s >= 400 && s < 500);
const exactly =
  (...expected: number[]) =>
  (statuses: number[]) =>
    statuses.join() === expected.join();
const anyAnswer = (statuses: number[]) => statuses.every((s) => s < 500);

export type FramingCase = Readonly<{
  label: string;
  bytes: (userToken: string) => Buffer;
  expect: (statuses: number[]) => boolean;
  end?: boolean;
}>;

export const RAW_FRAMING_CASES: readonly FramingCase[] = [
  { label: 'garbage bytes', bytes: () => Buffer.from([0, 1, 2, 0xff, 0x0d, 0x0a, 0x0d, 0x0a]), expect: refusedOrClosed },
  { label: 'invalid method token', bytes: () => request(['G@T /healthz HTTP/1.1', 'Host: x']), expect: refusedOrClosed },
  { label: 'HTTP/9.9', bytes: () => request(['GET /healthz HTTP/9.9', 'Host: x']), expect: refusedOrClosed },
  { label: 'HTTP/0.9 request line', bytes: () => Buffer.from('GET /\r\n\r\n'), expect: refusedOrClosed },
  {
    label: 'Content-Length and Transfer-Encoding',
    bytes: () => request(['POST /withdraw HTTP/1.1', 'Host: x', 'Content-Length: 5', 'Transfer-Encoding: chunked'], '0\r\n\r\n'),
    expect: refusedOrClosed,
  },
  {
    label: 'two different Content-Length',
    bytes: () => request(['POST /withdraw HTTP/1.1', 'Host: x', 'Content-Length: 2', 'Content-Length: 3'], '{}x'),
    expect: refusedOrClosed,
  },
  {
    label: 'negative Content-Length',
    bytes: () => request(['POST /withdraw HTTP/1.1', 'Host: x', 'Content-Length: -1'], '{}'),
    expect: refusedOrClosed,
  },
  {
    label: 'Content-Length +2',
    bytes: () => request(['POST /withdraw HTTP/1.1', 'Host: x', 'Content-Length: +2'], '{}'),
    expect: refusedOrClosed,
  },
  {
    label: 'bad chunk size',
    bytes: () => request(['POST /withdraw HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked'], 'zz\r\nhello\r\n0\r\n\r\n'),
    expect: refusedOrClosed,
  },
  {
    label: 'chunked not last',
    bytes: () => request(['POST /withdraw HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked, gzip'], '2\r\n{}\r\n0\r\n\r\n'),
    expect: refusedOrClosed,
  },
  { label: 'header without colon', bytes: () => request(['GET /healthz HTTP/1.1', 'Host x']), expect: refusedOrClosed },
  { label: 'space before colon', bytes: () => request(['GET /healthz HTTP/1.1', 'Host : x']), expect: refusedOrClosed },
  { label: 'obsolete line folding', bytes: () => request(['GET /healthz HTTP/1.1', 'Host: x', 'X-A: a', ' b']), expect: refusedOrClosed },
  { label: 'CR inside a header value', bytes: () => request(['GET /healthz HTTP/1.1', 'Host: x', 'X-A: a\rb']), expect: refusedOrClosed },
  { label: 'NUL in the URL', bytes: () => request(['GET /withdraw/\u0000 HTTP/1.1', 'Host: x']), expect: refusedOrClosed },
  {
    label: 'raw non-ASCII in the URL',
    bytes: () => request(['GET /withdraw/\u00e9\u00ff HTTP/1.1', 'Host: x', 'Connection: close']),
    expect: refusedOrClosed,
  },
  { label: 'bare LF line endings', bytes: () => Buffer.from('GET /healthz HTTP/1.1\nHost: x\nConnection: close\n\n'), expect: anyAnswer },
  { label: 'URL of 20 KB', bytes: () => request([`GET /withdraw/${'a'.repeat(20_000)} HTTP/1.1`, 'Host: x']), expect: exactly(431) },
  {
    label: '1000 headers',
    bytes: () =>
      request(['GET /healthz HTTP/1.1', 'Host: x', 'Connection: close', ...Array.from({ length: 1_000 }, (_, i) => `X-${i}: 1`)]),
    expect: exactly(200),
  },
  {
    label: 'body shorter than its Content-Length, then the client hangs up',
    end: true,
    bytes: (token) =>
      request(
        ['POST /withdraw HTTP/1.1', 'Host: x', `Authorization: Bearer ${token}`, 'Content-Type: application/json', 'Content-Length: 100'],
        '{"toAccountId":',
      ),
    expect: refusedOrClosed,
  },
  {
    label: 'headers never finished, then the client hangs up',
    end: true,
    bytes: () => Buffer.from('POST /withdraw HTTP/1.1\r\nHost: x\r\nContent-Le'),
    expect: refusedOrClosed,
  },
  {
    label: 'a valid request pipelined with garbage',
    bytes: () => Buffer.concat([request(['GET /healthz HTTP/1.1', 'Host: x']), Buffer.from('\u0000garbage\r\n\r\n')]),
    expect: (s) => s[0] === 200 && s.slice(1).every((x) => x === 400),
  },
  // body-parser reads off a refused body before answering (the connection stays usable), so the 413
  // comes once the declared bytes have arrived; a client that hangs up earlier gets nothing
  {
    label: 'a declared body of 99 999 999 bytes, then the client hangs up',
    end: true,
    bytes: (token) =>
      request(['POST /withdraw HTTP/1.1', 'Host: x', `Authorization: Bearer ${token}`, 'Content-Length: 99999999'], '{"a":'),
    expect: refusedOrClosed,
  },
  {
    label: 'a body of 20 000 bytes',
    bytes: (token) =>
      request(
        ['POST /withdraw HTTP/1.1', 'Host: x', `Authorization: Bearer ${token}`, 'Content-Length: 20000', 'Connection: close'],
        'x'.repeat(20_000),
      ),
    expect: exactly(413),
  },
  {
    label: 'DEL in a header value',
    bytes: () => request(['GET /healthz HTTP/1.1', 'Host: x', 'Content-Type: ;;;=/\u007f']),
    expect: refusedOrClosed,
  },
  {
    label: 'a chunked body over the limit',
    bytes: (token) =>
      request(
        ['POST /withdraw HTTP/1.1', 'Host: x', `Authorization: Bearer ${token}`, 'Transfer-Encoding: chunked', 'Connection: close'],
        `${Array.from({ length: 40 }, () => `400\r\n${'x'.repeat(0x400)}\r\n`).join('')}0\r\n\r\n`,
      ),
    expect: exactly(413),
  },
  {
    label: 'Expect: 100-continue with a broken body',
    end: false,
    bytes: (token) =>
      request(
        [
          'POST /withdraw HTTP/1.1',
          'Host: x',
          `Authorization: Bearer ${token}`,
          'Idempotent-Key: 01900000-0000-7000-8000-000000000000',
          'Expect: 100-continue',
          'Content-Length: 1',
          'Connection: close',
        ],
        '{',
      ),
    expect: (s) => s.filter((x) => x !== 100).join() === '400',
  },
  {
    label: 'absolute-form target',
    bytes: () => request(['GET http://evil.example/healthz HTTP/1.1', 'Host: evil.example', 'Connection: close']),
    expect: exactly(200),
  },
  { label: 'CONNECT', bytes: () => request(['CONNECT evil.example:443 HTTP/1.1', 'Host: evil.example:443']), expect: refusedOrClosed },
  {
    label: 'Upgrade: websocket',
    bytes: () =>
      request([
        'GET /healthz HTTP/1.1',
        'Host: x',
        'Connection: Upgrade',
        'Upgrade: websocket',
        'Sec-WebSocket-Version: 13',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      ]),
    expect: anyAnswer,
  },
];
