// Prometheus metrics of one process. A registry per process (not prom-client's global one) so
// that tests can run several apps side by side.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export function createMetrics(processName: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ process: processName });
  collectDefaultMetrics({ register: registry });
  const httpRequests = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const withdrawOutcomes = new Counter({
    name: 'withdraw_requests_total',
    help: 'POST /withdraw outcomes',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  return { registry, httpRequests, withdrawOutcomes, Counter, Gauge, Histogram };
}

export type Metrics = ReturnType<typeof createMetrics>;
