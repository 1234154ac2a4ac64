// Provider callbacks arrive one HTTP request each; storing each in its own transaction costs a
// commit per callback. Concurrent callbacks are written together instead: while one insert is in
// flight the next ones wait and go as one multi-row insert (group commit, no added delay when
// idle). Each request still gets its 200 only after its row is durably stored.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { InboxInsert } from './gatewayQueries.ts';

type Pending = { event: InboxInsert; resolve: (stored: boolean) => void; reject: (error: unknown) => void };

export type InboxWriter = Readonly<{ store: (event: InboxInsert) => Promise<boolean> }>;

export function createInboxWriter(db: CommonQueryMethods, batchSizeMax = 200): InboxWriter {
  let queue: Pending[] = [];
  let flushing = false;

  async function insertBatch(batch: readonly Pending[]): Promise<Set<string>> {
    const events = batch.map((p) => p.event);
    const inserted = await db.anyFirst(sql.type(z.object({ eventId: z.string() }))`
      insert into gateway_inbox (event_id, reference, status, failure_code, occurred_at, payload, signed_at)
      select e.event_id, e.reference, e.status, e.failure_code, e.occurred_at, e.payload, to_timestamp(e.signed_at)
        from unnest(${sql.array(
          events.map((e) => e.eventId),
          'text',
        )}::text[],
                    ${sql.array(
                      events.map((e) => e.reference),
                      'text',
                    )}::text[],
                    ${sql.array(
                      events.map((e) => e.status),
                      'text',
                    )}::text[],
                    ${sql.array(
                      events.map((e) => e.failureCode),
                      'text',
                    )}::text[],
                    ${sql.array(
                      events.map((e) => e.occurredAt),
                      'timestamptz',
                    )}::timestamptz[],
                    ${sql.array(
                      events.map((e) => JSON.stringify(e.payload)),
                      'jsonb',
                    )}::jsonb[],
                    ${sql.array(
                      events.map((e) => e.signedAtSec),
                      'float8',
                    )}::float8[])
             as e(event_id, reference, status, failure_code, occurred_at, payload, signed_at)
      on conflict (event_id) do nothing
      returning event_id as "eventId"`);
    return new Set(inserted);
  }

  async function flushSingles(): Promise<void> {
    while (queue.length > 0 && (queue[0] as Pending & { single?: boolean }).single) {
      const pending = queue.shift()!;
      try {
        pending.resolve((await insertBatch([pending])).has(pending.event.eventId));
      } catch (error) {
        pending.reject(error);
      }
    }
  }

  async function flush(): Promise<void> {
    flushing = true;
    while (queue.length > 0) {
      const batch = queue.slice(0, batchSizeMax);
      queue = queue.slice(batch.length);
      try {
        const inserted = await insertBatch(batch);
        // the same eventId twice in one batch: only its first request stored it
        const answered = new Set<string>();
        for (const pending of batch) {
          const stored = inserted.has(pending.event.eventId) && !answered.has(pending.event.eventId);
          answered.add(pending.event.eventId);
          pending.resolve(stored);
        }
      } catch (error) {
        if (batch.length === 1) {
          batch[0]!.reject(error);
        } else {
          // one bad row must not fail the others: each goes again on its own
          queue = [...batch.map((p) => ({ ...p, single: true })), ...queue];
          await flushSingles();
        }
      }
    }
    flushing = false;
  }

  return {
    store: (event) =>
      new Promise<boolean>((resolve, reject) => {
        queue.push({ event, resolve, reject });
        if (!flushing) void flush();
      }),
  };
}
