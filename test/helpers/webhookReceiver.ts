// A real HTTP receiver of outgoing events for tests, as a platform service would run one: it checks
// each request's X-Signature against its endpoint's secret, records every event it accepts, and
// can be taken down (the port closed), made to fail (500) or to hang (requests held unanswered).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhook } from '../../app/gateway/webhookSignature.ts';

export type ReceiverMode = 'ok' | 'fail' | 'hang';

export type ReceivedEvent = Readonly<{
  path: string;
  eventId: string;
  type: string;
  createdAt: string;
  data: Record<string, any>;
  attempt: string | undefined;
}>;

export type WebhookReceiver = Readonly<{
  url: (path: string) => string;
  /** the secret the endpoint at `path` signs with (known once it is registered) */
  setSecret: (path: string, secret: string) => void;
  setMode: (path: string, mode: ReceiverMode) => void;
  /** events accepted (2xx answered), in arrival order */
  events: (path: string) => readonly ReceivedEvent[];
  /** requests that failed the signature check: must stay 0 */
  badSignatures: () => number;
  /** requests held by a hanging path and not answered yet */
  hanging: (path: string) => number;
  /** answers every held request with 200 (recording its event) */
  releaseHanging: (path: string) => void;
  /** closes the port: requests are refused until up() */
  down: () => Promise<void>;
  up: () => Promise<void>;
  close: () => Promise<void>;
}>;

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const secrets = new Map<string, string>();
  const modes = new Map<string, ReceiverMode>();
  const received = new Map<string, ReceivedEvent[]>();
  const held = new Map<string, Array<{ res: http.ServerResponse; event: ReceivedEvent }>>();
  let bad = 0;

  const accept = (path: string, event: ReceivedEvent, res: http.ServerResponse) => {
    received.set(path, [...(received.get(path) ?? []), event]);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  };

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0]!;
      const raw = Buffer.concat(chunks);
      const secret = secrets.get(path);
      const header = req.headers['x-signature'];
      const verified = secret ? verifyWebhook(typeof header === 'string' ? header : undefined, raw, [secret], Date.now() / 1000) : null;
      if (!verified?.ok) {
        bad += 1;
        res.writeHead(401).end();
        return;
      }
      const body = JSON.parse(raw.toString('utf8'));
      const event: ReceivedEvent = {
        path,
        eventId: body.eventId,
        type: body.type,
        createdAt: body.createdAt,
        data: body.data,
        attempt: req.headers['x-delivery-attempt'] as string | undefined,
      };
      const mode = modes.get(path) ?? 'ok';
      if (mode === 'fail') {
        res.writeHead(500).end('receiver is failing on purpose');
      } else if (mode === 'hang') {
        held.set(path, [...(held.get(path) ?? []), { res, event }]);
      } else {
        accept(path, event, res);
      }
    });
  };

  let server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  const closeServer = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });

  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    setSecret: (path, secret) => secrets.set(path, secret),
    setMode: (path, mode) => modes.set(path, mode),
    events: (path) => received.get(path) ?? [],
    badSignatures: () => bad,
    hanging: (path) => (held.get(path) ?? []).filter((h) => !h.res.writableEnded && !h.res.destroyed).length,
    releaseHanging: (path) => {
      for (const h of held.get(path) ?? []) if (!h.res.writableEnded && !h.res.destroyed) accept(path, h.event, h.res);
      held.set(path, []);
      modes.set(path, 'ok');
    },
    down: closeServer,
    up: async () => {
      if (server.listening) return;
      server = http.createServer(handler);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve());
      });
    },
    close: closeServer,
  };
}
