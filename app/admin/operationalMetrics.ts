// Gauges read from the databases at scrape time: outbox lag per database, the job queue, open
// orders, pending callbacks, open breaks by age. One overview query serves every gauge of a scrape.
import { Gauge, type Registry } from 'prom-client';
import type { Databases } from '../db/pools.ts';
import { overview } from './dashboardQueries.ts';
import { OPEN_STATUSES } from '../withdraw/withdrawStateMachine.ts';
import { openBreaksByAge } from '../../reconcile/breakQueries.ts';

const SNAPSHOT_TTL_MS = 1_000;

export function registerOperationalMetrics(registry: Registry, databases: Databases): void {
  let snapshot: { at: number; value: Promise<Awaited<ReturnType<typeof overview>>> } | null = null;
  const current = () => {
    if (!snapshot || Date.now() - snapshot.at > SNAPSHOT_TTL_MS) {
      snapshot = { at: Date.now(), value: overview(databases) };
      snapshot.value.catch(() => {
        snapshot = null;
      });
    }
    return snapshot.value;
  };

  new Gauge({
    name: 'withdraw_outbox_unrelayed',
    help: 'outbox rows not yet relayed',
    labelNames: ['database'] as const,
    registers: [registry],
    async collect() {
      const o = await current();
      this.set({ database: 'balance' }, o.outbox.balance.unrelayed);
      this.set({ database: 'ledger' }, o.outbox.ledger.unrelayed);
    },
  });
  new Gauge({
    name: 'withdraw_outbox_oldest_unrelayed_age_seconds',
    help: 'age of the oldest unrelayed outbox row',
    labelNames: ['database'] as const,
    registers: [registry],
    async collect() {
      const o = await current();
      this.set({ database: 'balance' }, o.outbox.balance.oldestAgeSeconds ?? 0);
      this.set({ database: 'ledger' }, o.outbox.ledger.oldestAgeSeconds ?? 0);
    },
  });
  new Gauge({
    name: 'withdraw_jobs',
    help: 'graphile-worker jobs by task and state',
    labelNames: ['task', 'state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of (await current()).jobs) {
        for (const state of ['queued', 'running', 'retrying', 'failed'] as const) this.set({ task: row.task, state }, row[state]);
      }
    },
  });
  new Gauge({
    name: 'withdraw_orders_open',
    help: 'withdraw orders not yet final, by status',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const open = (await current()).openOrders;
      for (const status of OPEN_STATUSES) this.set({ status }, open[status] ?? 0);
    },
  });
  new Gauge({
    name: 'withdraw_callbacks_pending',
    help: 'provider callbacks stored but not applied',
    registers: [registry],
    async collect() {
      this.set((await current()).inbox.pending);
    },
  });
  new Gauge({
    name: 'withdraw_breaks_open',
    help: 'open reconciliation breaks by category and age',
    labelNames: ['category', 'age'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await openBreaksByAge(databases.balance)) this.set({ category: row.category, age: row.ageBucket }, row.count);
    },
  });
}
