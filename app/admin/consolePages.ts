// The console's pages and static assets, served by the app itself (no CDN): the sign-in page is
// public; the console page only to a live session (anyone else is sent to sign in). Scripts are
// files of this app (a strict CSP: script-src 'self', no inline script, no inline handlers); the
// chart library (uPlot) is served from node_modules.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { NextFunction, Request, Response, Router } from 'express';
import express from 'express';
import type { DatabasePool } from 'slonik';
import { projectRoot } from '../paths.ts';
import { sessionHash, sessionIdFrom, type SessionSettings } from './consoleSession.ts';
import { findLiveSession } from './operatorQueries.ts';

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

const ASSET_DIR = path.join(projectRoot, 'app', 'admin', 'console');
const require = createRequire(import.meta.url);

type Asset = Readonly<{ type: string; body: Buffer }>;

function loadAssets(): Map<string, Asset> {
  const own = (file: string, type: string): [string, Asset] => [file, { type, body: readFileSync(path.join(ASSET_DIR, file)) }];
  const vendor = (name: string, module: string, type: string): [string, Asset] => [
    name,
    { type, body: readFileSync(require.resolve(module)) },
  ];
  return new Map([
    ...['console.js', 'consoleDom.js', 'viewOverview.js', 'viewOrders.js', 'viewOps.js', 'viewAdmin.js', 'login.js'].map((file) =>
      own(file, 'text/javascript; charset=utf-8'),
    ),
    own('console.css', 'text/css; charset=utf-8'),
    vendor('uPlot.iife.min.js', 'uplot/dist/uPlot.iife.min.js', 'text/javascript; charset=utf-8'),
    vendor('uPlot.min.css', 'uplot/dist/uPlot.min.css', 'text/css; charset=utf-8'),
  ]);
}

function pageHeaders(res: Response) {
  res.setHeader('Content-Security-Policy', CONSOLE_CSP);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
}

export function consolePages(deps: { db: DatabasePool; session: SessionSettings }): Router {
  const router = express.Router();
  const assets = loadAssets();
  const consoleHtml = readFileSync(path.join(ASSET_DIR, 'index.html'));
  const loginHtml = readFileSync(path.join(ASSET_DIR, 'login.html'));

  router.get(['/admin', '/admin/'], (req: Request, res: Response, next: NextFunction) => {
    const sessionId = sessionIdFrom(req);
    const live = sessionId ? findLiveSession(deps.db, sessionHash(sessionId), deps.session.idleMinutes) : Promise.resolve(null);
    live.then((session) => {
      pageHeaders(res);
      if (!session) {
        res.redirect(303, '/admin/login');
        return;
      }
      res.status(200).type('html').send(consoleHtml);
    }, next);
  });

  router.get('/admin/login', (_req: Request, res: Response) => {
    pageHeaders(res);
    res.status(200).type('html').send(loginHtml);
  });

  router.get('/admin/console/assets/:name', (req: Request, res: Response, next: NextFunction) => {
    const asset = assets.get(String(req.params.name));
    if (!asset) return next();
    res.setHeader('Content-Type', asset.type);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // assets change with a deploy; a short cache keeps refreshes cheap without serving stale code for long
    res.setHeader('Cache-Control', 'private, max-age=300');
    res.status(200).send(asset.body);
  });

  return router;
}
