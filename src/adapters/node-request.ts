// The GuardRequest of a Node `IncomingMessage`, and the duplicate-Authorization rule, for the adapters on Node (the
// adapter kit exports `nodeGuardRequest` and the header helpers; Express builds it with headers it has read itself).
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { GuardRequest } from '../leaf/types.js';
import { SPENT, type SpendLedger } from '../core/engine.js';
import { requestKeys, type Keyed } from './request-keys.js';

/**
 * All values of one header (lower-case `name`) from Node's `rawHeaders`. Node keeps only the first of two
 * Authorization headers in `req.headers`; a request carrying two must be seen as such (400), not as its first.
 */
export function rawHeaderValues(rawHeaders: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const n = rawHeaders[i] as string;
    if (n.length === name.length && n.toLowerCase() === name) values.push(rawHeaders[i + 1] as string);
  }
  return values;
}

/**
 * The headers to hand the guard from a Node request: `req.headers` as is, unless Authorization was
 * sent more than once, in which case the guard gets all of them (and answers 400 `request.malformed`).
 */
export function nodeHeaders(headers: Record<string, string | string[] | undefined>, rawHeaders: readonly string[] | undefined): Record<string, string | string[] | undefined> {
  if (!rawHeaders || headers['authorization'] === undefined || !authorizationRepeated(rawHeaders)) return headers;
  return { ...headers, authorization: rawHeaderValues(rawHeaders, 'authorization') };
}

/**
 * Whether `rawHeaders` holds Authorization more than once. Runs on every guarded request, so it allocates nothing:
 * the two spellings clients send are compared as they are, and only another spelling of the same length is lower-cased.
 */
function authorizationRepeated(rawHeaders: readonly string[]): boolean {
  let seen = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const n = rawHeaders[i] as string;
    if (n.length === 13 && (n === 'Authorization' || n === 'authorization' || n.toLowerCase() === 'authorization') && ++seen > 1) return true;
  }
  return false;
}

const NODE_KEYS = requestKeys('socket', 'method', 'headers', 'rawHeaders');
const SOCKET = 0;
const METHOD = 1;
const HEADERS = 2;
const RAW_HEADERS = 3;

/**
 * The GuardRequest of a Node request. A class rather than an object literal: every instance shares one
 * shape, and the `peerCertificate` getter lives once on the prototype instead of in each object.
 */
export class NodeGuardRequest implements GuardRequest {
  readonly #socket: TLSSocket | undefined;
  method: string;
  path: string;
  caseSensitive: boolean | 'mixed';
  ignoreTrailingSlash: boolean;
  headers: Record<string, string | string[] | undefined>;
  remoteAddress: string | undefined;
  context: unknown;
  /** Own and undefined: the guard reads `request.now` on every request, and a missing property walks the prototype chain. */
  now: Date | undefined = undefined;
  // What the native request spent through the guards it met so far (the engine's SpendingRequest; undefined: not kept).
  // Behind an accessor, as the socket is: a copy of this request (a spread) does not take the ledger along.
  #spent: SpendLedger | null | undefined;

  /**
   * `headers`: `req.headers` when the adapter has read it already (undefined: read here). `spent`: given only by this
   * package's adapters, which keep it with their state of `req` (undefined for the kit's `nodeGuardRequest`).
   */
  constructor(
    req: IncomingMessage,
    path: string | undefined,
    caseSensitive: boolean | 'mixed',
    ignoreTrailingSlash: boolean,
    context: unknown,
    headers: IncomingMessage['headers'] | undefined,
    spent: SpendLedger | null | undefined,
  ) {
    // Each property of `req` read once, by key: on Express every request has its own hidden class (request-keys.ts).
    const r = req as unknown as Keyed;
    const socket = r[NODE_KEYS[SOCKET]] as TLSSocket | undefined;
    this.#socket = socket;
    this.method = (r[NODE_KEYS[METHOD]] as string | undefined) ?? '';
    this.path = path ?? '';
    this.caseSensitive = caseSensitive;
    this.ignoreTrailingSlash = ignoreTrailingSlash;
    this.headers = nodeHeaders(headers ?? (r[NODE_KEYS[HEADERS]] as IncomingMessage['headers']), r[NODE_KEYS[RAW_HEADERS]] as string[] | undefined);
    // Undefined for unix sockets and some test harnesses: the guard treats the client IP as unknown.
    this.remoteAddress = socket?.remoteAddress;
    this.context = context;
    this.#spent = spent;
  }

  get [SPENT](): SpendLedger | null | undefined {
    return this.#spent;
  }

  set [SPENT](ledger: SpendLedger | null | undefined) {
    this.#spent = ledger;
  }

  get peerCertificate(): { fingerprint256?: string } | undefined {
    // Read only when a token is certificate-bound: getPeerCertificate() is not free.
    const socket = this.#socket;
    return socket?.authorized && typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
  }
}
