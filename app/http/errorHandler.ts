// The one place that maps errors to the envelope and logs them, once.
import type { NextFunction, Request, Response } from 'express';
import {
  BackendTerminatedError,
  BackendTerminatedUnexpectedlyError,
  ConnectionError,
  StatementTimeoutError,
  UniqueIntegrityConstraintViolationError,
} from 'slonik';
import { ApiError, type Envelope } from './apiErrors.ts';

type HttpParserError = Error & { type?: string; status?: number; expose?: boolean };

export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const parserError = error as HttpParserError;
  switch (parserError?.type) {
    case 'entity.too.large':
      return new ApiError('payload_too_large', 'request body is too large', { cause: error });
    case 'entity.parse.failed':
    case 'encoding.unsupported':
    case 'charset.unsupported':
    case 'request.size.invalid':
      return new ApiError('invalid_request', `body could not be read: ${parserError.message}`, { cause: error });
    case 'request.aborted':
      return new ApiError('invalid_request', 'request aborted', { cause: error });
    default:
      break;
  }
  // other client errors the framework raises with a 4xx status before any route runs: a path
  // parameter that is not valid percent-encoding (router: URIError, status 400), a compressed body
  // that does not decompress (body-parser: the zlib error wrapped with status 400)
  const status = parserError?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    if (status === 413) return new ApiError('payload_too_large', 'request body is too large', { cause: error });
    const what =
      error instanceof URIError ? 'a path parameter is not valid percent-encoding' : `body could not be read: ${parserError.message}`;
    return new ApiError('invalid_request', what, { cause: error });
  }
  if (isUnavailable(error)) return new ApiError('unavailable', 'a dependency is unavailable; retry with the same key', { cause: error });
  return new ApiError('internal', 'internal error', { cause: error });
}

const TRANSIENT_MESSAGES = [
  'Connection terminated',
  'connection error',
  'timeout exceeded when trying to connect',
  'the database system is',
  'Connection refused',
];

/** A database or network failure the client should retry (503), rather than a bug (500). */
export function isUnavailable(error: unknown, depth = 0): boolean {
  if (!error || depth > 4) return false;
  if (
    error instanceof ConnectionError ||
    error instanceof BackendTerminatedError ||
    error instanceof BackendTerminatedUnexpectedlyError ||
    error instanceof StatementTimeoutError
  )
    return true;
  const { code = '', message = '', cause } = error as { code?: string; message?: string; cause?: unknown };
  // refused or reset sockets, or PostgreSQL classes 08 (connection), 57P (shutdown), 53 (resources)
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE'].includes(code) || /^(08|57P|53)/.test(code)) return true;
  if (TRANSIENT_MESSAGES.some((text) => message.includes(text))) return true;
  return isUnavailable(cause, depth + 1);
}

export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  if (!(error instanceof UniqueIntegrityConstraintViolationError)) return false;
  return constraint === undefined || error.constraint === constraint;
}

export function errorHandler() {
  return (error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const apiError = toApiError(error);
    if (apiError.status >= 500) {
      req.log?.error({ err: error, kind: apiError.kind, requestId: req.id }, 'request failed');
    } else {
      req.log?.info({ kind: apiError.kind, msg_detail: apiError.message, requestId: req.id }, 'request rejected');
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    for (const [name, value] of Object.entries(apiError.headers)) res.setHeader(name, value);
    res.status(apiError.status).json(apiError.envelope() satisfies Envelope);
  };
}

export function notFoundHandler() {
  return (req: Request, _res: Response, next: NextFunction) => {
    next(new ApiError('not_found', `no route ${req.method} ${req.path}`));
  };
}
