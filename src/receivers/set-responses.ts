// What a delivery is answered with (RFC 8935 §2.3-2.4): the refusal a check throws and the canned responses,
// shared by the receiver, its event mapping and its transports.
import type { SetErrorCode, SetResponse } from './set-types.js';

/** A delivery refused with an RFC 8935 error: thrown by the checks, answered 400 by the receiver. */
export class Refused extends Error {
  constructor(
    readonly err: SetErrorCode,
    readonly description: string,
  ) {
    super(description);
  }
}

/** A 400 answer carrying the RFC 8935 error object. */
export function errorResponse(err: SetErrorCode, description: string): SetResponse {
  return { status: 400, headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }, body: JSON.stringify({ err, description }) };
}

/** The answer to an accepted SET. */
export const ACCEPTED: SetResponse = { status: 202, headers: {}, body: '' };
/** The answer to a body over the size limit. */
export const TOO_LARGE = (): SetResponse => ({ ...errorResponse('invalid_request', 'SET too large'), status: 413 });
/**
 * The answer to a body not received within `bodyTimeout`: 408 (RFC 9110 §15.5.9), a timing failure the transmitter
 * may retry, with the RFC 8935 error object since the SET could not be read.
 */
export const TIMED_OUT = (): SetResponse => ({ ...errorResponse('invalid_request', 'body not received in time'), status: 408 });
/** The answer when the store or the key server fails: the transmitter retries. */
export const UNAVAILABLE = (): SetResponse => ({ status: 503, headers: { 'Retry-After': '5', 'Cache-Control': 'no-store' }, body: '' });
/**
 * The answer when a body parser in front read the request stream and left no string or buffer on `req.body`: 500, not
 * 400, since the SET is not at fault, and a transmitter that retries delivers it once the app's set-up is fixed.
 */
export const BODY_CONSUMED = (): SetResponse => ({
  ...errorResponse(
    'invalid_request',
    'the request body was already consumed by a body parser in front of the SET receiver: leave application/secevent+jwt unparsed, or parse it as text or a buffer',
  ),
  status: 500,
});
