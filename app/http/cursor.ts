// Opaque keyset cursors: a page's last position (never an offset), bound to the filters of the
// listing it came from, so a cursor reused with other filters is refused rather than misread.
// The text is base64url of a small JSON document; clients must treat it as opaque.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ApiError } from './apiErrors.ts';

const CURSOR_LENGTH_MAX = 512;
const CURSOR_VERSION = 1;

const CursorDocument = z.object({
  v: z.literal(CURSOR_VERSION),
  /** which listing it belongs to */
  l: z.string().max(32),
  /** hash of the filters */
  f: z.string().length(16),
  /** the position: the sort keys of the last item served */
  k: z.array(z.string().max(64)).min(1).max(4),
});

function filterHash(filters: unknown): string {
  return createHash('sha256').update(JSON.stringify(filters)).digest('base64url').slice(0, 16);
}

export function encodeCursor(listing: string, filters: unknown, keys: readonly string[]): string {
  const document: z.infer<typeof CursorDocument> = { v: CURSOR_VERSION, l: listing, f: filterHash(filters), k: [...keys] };
  return Buffer.from(JSON.stringify(document)).toString('base64url');
}

/** The position a cursor holds; 400 40001 naming `cursor` when it is not one of this listing's, for these filters. */
export function decodeCursor(listing: string, filters: unknown, text: string): string[] {
  const invalid = (why: string) => new ApiError('invalid_request', `cursor: ${why}`);
  if (text.length === 0 || text.length > CURSOR_LENGTH_MAX || !/^[A-Za-z0-9_-]+$/.test(text)) throw invalid('is not a cursor');
  let document: z.infer<typeof CursorDocument>;
  try {
    const parsed = CursorDocument.safeParse(JSON.parse(Buffer.from(text, 'base64url').toString('utf8')));
    if (!parsed.success) throw invalid('is not a cursor');
    document = parsed.data;
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw invalid('is not a cursor');
  }
  if (document.l !== listing) throw invalid('belongs to another listing');
  if (document.f !== filterHash(filters)) throw invalid('was issued for other filters; start again without a cursor');
  return document.k;
}
