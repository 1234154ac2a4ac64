// pino, with bigint rendered as a string (money is bigint minor units) and secrets redacted.
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** `destination`: where the lines go (stdout unless given; a command whose stdout is its output logs to stderr). */
export function createLogger(options: { level: string; name: string; destination?: DestinationStream }): Logger {
  const settings: pino.LoggerOptions = {
    name: options.name,
    level: options.level,
    redact: {
      paths: ['req.headers.authorization', 'req.headers["x-signature"]', 'headers.authorization'],
      censor: '[redacted]',
    },
    formatters: { level: (label) => ({ level: label }) },
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map(stringifyBigints) as Parameters<typeof method>);
      },
    },
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}

function stringifyBigints(value: unknown, depth = 0): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (depth > 4 || value === null || typeof value !== 'object' || value instanceof Error) return value;
  if (Array.isArray(value))
    return value.some((v) => typeof v === 'bigint' || (v && typeof v === 'object'))
      ? value.map((v) => stringifyBigints(v, depth + 1))
      : value;
  let changed = false;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    const next = stringifyBigints(inner, depth + 1);
    if (next !== inner) changed = true;
    out[key] = next;
  }
  return changed ? out : value;
}
