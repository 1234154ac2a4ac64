// The operations console's routers, in the order they are mounted (app/webApp.ts).
import type { Router } from 'express';
import type { DatabasePool } from 'slonik';
import type { Config } from '../config.ts';
import type { Auth } from '../http/auth.ts';
import { consoleAuthRoutes } from './consoleAuthRoutes.ts';
import { operatorRoutes } from './operatorRoutes.ts';

export type ConsoleDeps = Readonly<{ config: Config; auth: Auth; db: DatabasePool }>;

export function consoleRouters(deps: ConsoleDeps): Router[] {
  return [consoleAuthRoutes({ db: deps.db, settings: deps.config.console }), operatorRoutes(deps)];
}
