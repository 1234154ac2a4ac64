// The markdown summary of one benchmark run (bench/results/<name>.md).
type Json = Record<string, unknown>;

const get = (value: unknown, ...keys: string[]): unknown => {
  let current = value;
  for (const key of keys) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Json)[key];
  }
  return current;
};
const show = (value: unknown): string => (value === undefined || value === null ? '—' : String(value));

function costTable(title: string, phase: unknown): string[] {
  if (!phase) return [];
  const cpu = (k: string) => show(get(phase, 'cpuMsPerWithdrawal', k));
  const lines = [
    `### ${title}`,
    '',
    `${show(get(phase, 'perSec'))} withdrawals/s end to end (${show(get(phase, 'orders'))} orders: ${JSON.stringify(get(phase, 'statuses') ?? {})}); created → final p50 ${show(get(phase, 'createdToFinalP50Ms'))} ms, p99 ${show(get(phase, 'createdToFinalP99Ms'))} ms`,
    '',
    '| per withdrawal | web | worker | postgres | psp | system | loadgen |',
    '|---|---|---|---|---|---|---|',
    `| CPU-ms | ${cpu('web')} | ${cpu('worker')} | ${cpu('postgres')} | ${cpu('psp')} | **${cpu('system')}** | ${cpu('loadgen')} |`,
    '',
    `PostgreSQL CPU-ms by client: ${JSON.stringify(get(phase, 'cpuMsPerWithdrawal', 'postgresByClient'))}; kernel share ${show(get(phase, 'cpuMsPerWithdrawal', 'kernelShare'))}`,
    '',
    '| per withdrawal | Balance DB | Ledger DB | cluster |',
    '|---|---|---|---|',
    `| WAL bytes | ${show(get(phase, 'walBytesPerWithdrawal', 'balance'))} | ${show(get(phase, 'walBytesPerWithdrawal', 'ledger'))} | ${show(get(phase, 'walBytesPerWithdrawal', 'cluster'))} |`,
    `| statements (top level / nested) | ${show(get(phase, 'statementsPerWithdrawal', 'balance', 'topLevel'))} / ${show(get(phase, 'statementsPerWithdrawal', 'balance', 'nested'))} | ${show(get(phase, 'statementsPerWithdrawal', 'ledger', 'topLevel'))} / ${show(get(phase, 'statementsPerWithdrawal', 'ledger', 'nested'))} | |`,
    `| transactions | ${show(get(phase, 'transactionsPerWithdrawal', 'balance'))} | ${show(get(phase, 'transactionsPerWithdrawal', 'ledger'))} | |`,
    `| rows written | ${show(get(phase, 'rowsWrittenPerWithdrawal', 'balance'))} | ${show(get(phase, 'rowsWrittenPerWithdrawal', 'ledger'))} | |`,
    '',
    `Rows written by table: ${Object.entries((get(phase, 'rowsWrittenPerWithdrawal', 'byTable') as Json | undefined) ?? {})
      .map(([t, n]) => `${t} ${n}`)
      .join(', ')}`,
    '',
    `Hot-path lock wait: ${show(get(phase, 'lockWaitMsPerWithdrawal'))} ms per withdrawal`,
    '',
  ];
  return lines;
}

export function renderMarkdown(report: Json, name: string): string {
  const lines = [
    `# Benchmark ${name}`,
    '',
    `Commit ${show(report.commit)}${report.dirty ? ' (with uncommitted changes)' : ''}; ${show(get(report, 'machine', 'cores'))} cores (${show(get(report, 'machine', 'cpuModel'))}), Node ${show(get(report, 'machine', 'node'))}, ${show(get(report, 'machine', 'postgres'))}; fsync and synchronous_commit on.`,
    '',
    '## Headline',
    '',
    '| figure | value |',
    '|---|---|',
    `| ceiling (pgbench, the reservation as one prepared statement) | ${show(get(report, 'ceiling', 'tps'))} TPS, ${show(get(report, 'ceiling', 'pgCpuMsPerTx'))} PostgreSQL CPU-ms/tx |`,
    `| an order placed as one prepared statement (pgbench) | ${show(get(report, 'ceiling', 'placeOrder', 'tps'))} TPS, ${show(get(report, 'ceiling', 'placeOrder', 'pgCpuMsPerTx'))} PostgreSQL CPU-ms/tx |`,
    `| accept, the worker draining | ${show(get(report, 'accept', 'rps'))} req/s (${show(get(report, 'accept', 'ratioToCeiling'))} × ceiling), p50 ${show(get(report, 'accept', 'p50Ms'))} ms, p99 ${show(get(report, 'accept', 'p99Ms'))} ms, ${show(get(report, 'accept', 'errors'))} errors |`,
    `| hot-path lock wait (accept phase) | ${show(report.lockWaitMsPerWithdrawal)} ms per request |`,
    `| end to end | ${show(get(report, 'endToEnd', 'perSec'))}/s, created → final p99 ${show(get(report, 'endToEnd', 'createdToFinalP99Ms'))} ms |`,
    `| end to end, mild faults | ${show(get(report, 'endToEndWithFaults', 'perSec'))}/s, created → final p99 ${show(get(report, 'endToEndWithFaults', 'createdToFinalP99Ms'))} ms |`,
    `| system CPU-ms per withdrawal (no faults / mild faults) | ${show(get(report, 'endToEnd', 'cpuMsPerWithdrawal', 'system'))} / ${show(get(report, 'endToEndWithFaults', 'cpuMsPerWithdrawal', 'system'))} |`,
    `| pipeline alone | ${show(get(report, 'pipeline', 'perSec'))}/s |`,
    `| at ${show(get(report, 'latency', 'offeredPerSec'))}/s offered | accept p99 ${show(get(report, 'latency', 'acceptP99Ms'))} ms, accept → processing p99 ${show(get(report, 'latency', 'acceptToProcessingP99Ms'))} ms, notify → final p99 ${show(get(report, 'latency', 'notifyToFinalP99Ms'))} ms |`,
    `| sustained ${show(get(report, 'sustained', 'offeredPerSec'))}/s for ${show(get(report, 'sustained', 'durationS'))} s | ${show(get(report, 'sustained', 'successPerSecInWindow'))}/s reached success in the window, drained ${show(get(report, 'sustained', 'drainAfterMs'))} ms after; invariant violations ${show(get(report, 'sustained', 'invariantViolations') ?? get(report, 'checks', 'invariantViolations'))}, ledger clean ${show(get(report, 'sustained', 'ledgerClean') ?? get(report, 'checks', 'ledgerClean'))} |`,
    `| peak RSS | web ${show(get(report, 'rss', 'webMb'))} MB, worker ${show(get(report, 'rss', 'workerMb'))} MB |`,
    '',
    '## Cost per withdrawal',
    '',
    ...costTable('No faults', report.endToEnd),
    ...costTable('Mild faults', report.endToEndWithFaults),
  ];
  const top = get(report, 'endToEnd', 'topStatements') as Array<Json> | undefined;
  if (top?.length) {
    lines.push(
      '### Where PostgreSQL spends its time (top-level statements, no faults)',
      '',
      '| db | ms per withdrawal | calls | statement |',
      '|---|---|---|---|',
    );
    for (const s of top.slice(0, 12))
      lines.push(
        `| ${show(s.db)} | ${show(s.msPerWithdrawal)} | ${show(s.calls)} | \`${String(s.query).slice(0, 100).replace(/\|/g, '\\|')}\` |`,
      );
    lines.push('');
  }
  return `${lines.join('\n')}\n`;
}
