// The operations console's routers, in the order they are mounted (app/webApp.ts): its pages, the
// sign-in and session API, operators, dual-control requests, orders and manual review, jobs, and
// the overview with breaks, provider calls, accounts and the audit trail.
import type { Router } from 'express';
import type { Config } from '../config.ts';
import type { Databases } from '../db/pools.ts';
import type { Auth } from '../http/auth.ts';
import { approvalRoutes } from './approvalRoutes.ts';
import { createApprovals } from './approvals.ts';
import { consoleAuthRoutes, sessionSettings } from './consoleAuthRoutes.ts';
import { consoleJobRoutes } from './consoleJobRoutes.ts';
import { consoleOpsRoutes } from './consoleOpsRoutes.ts';
import { consoleOrderRoutes } from './consoleOrderRoutes.ts';
import { consolePages } from './consolePages.ts';
import type { ManualReview } from './manualReview.ts';
import { operatorRoutes } from './operatorRoutes.ts';

export type ConsoleDeps = Readonly<{ config: Config; auth: Auth; databases: Databases; review: ManualReview }>;

export function consoleRouters(deps: ConsoleDeps): Router[] {
  const db = deps.databases.balance;
  const session = sessionSettings(deps.config.console);
  const approvals = createApprovals({ db, review: deps.review, ttlHours: deps.config.console.approvalTtlHours });
  return [
    consolePages({ db, session }),
    consoleAuthRoutes({ db, settings: deps.config.console }),
    operatorRoutes({ db, auth: deps.auth, config: deps.config }),
    approvalRoutes({ db, approvals, session }),
    consoleOrderRoutes({ databases: deps.databases, review: deps.review, approvals, session }),
    consoleJobRoutes({ db, approvals, session }),
    consoleOpsRoutes({ databases: deps.databases, config: deps.config, session }),
  ];
}
