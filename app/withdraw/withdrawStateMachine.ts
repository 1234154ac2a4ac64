// The withdraw order state machine: the closed set of moves. The same table is in SQL
// (withdraw_transitions, checked by a trigger), so a stale worker cannot move an order backwards.

export const WITHDRAW_STATUSES = ['init', 'processing', 'manual', 'success', 'failed'] as const;
export type WithdrawStatus = (typeof WITHDRAW_STATUSES)[number];

export const NEXT: Readonly<Record<WithdrawStatus, readonly WithdrawStatus[]>> = {
  init: ['processing', 'manual', 'failed'],
  processing: ['success', 'failed', 'manual'],
  manual: ['success', 'failed'],
  success: [],
  failed: [],
};

export type Actor = 'api' | 'job' | 'provider' | 'operator' | 'reconciler';

export function canTransition(from: WithdrawStatus, to: WithdrawStatus): boolean {
  return NEXT[from].includes(to);
}

export function isTerminal(status: WithdrawStatus): boolean {
  return NEXT[status].length === 0;
}

/** Statuses whose orders still hold a reservation (I2). */
export const OPEN_STATUSES: readonly WithdrawStatus[] = WITHDRAW_STATUSES.filter((s) => !isTerminal(s));

export function isWithdrawStatus(value: string): value is WithdrawStatus {
  return (WITHDRAW_STATUSES as readonly string[]).includes(value);
}
