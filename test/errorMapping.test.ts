import test from 'ava';
import { BackendTerminatedUnexpectedlyError, ConnectionError } from 'slonik';
import { isUnavailable, toApiError } from '../app/http/errorHandler.ts';

test('when the database goes away, then the client is told 503 (retry with the same key), not 500', (t) => {
  const pgShutdown = Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });
  const dropped = new Error('Connection terminated unexpectedly');
  const wrapped = new Error('query failed', {
    cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
  });
  for (const error of [
    pgShutdown,
    dropped,
    wrapped,
    new ConnectionError('connection lost'),
    new BackendTerminatedUnexpectedlyError(new Error('x')),
  ]) {
    t.true(isUnavailable(error), String(error.message));
    t.is(toApiError(error).status, 503);
    t.is(toApiError(error).code, 50301);
  }
});

test('when the code fails for any other reason, then it is a 500 and nothing about it is called transient', (t) => {
  for (const error of [new TypeError('x is undefined'), Object.assign(new Error('duplicate key'), { code: '23505' }), new Error('boom')]) {
    t.false(isUnavailable(error));
    t.is(toApiError(error).status, 500);
    t.is(toApiError(error).code, 50001);
  }
});
