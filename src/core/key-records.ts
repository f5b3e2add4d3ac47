// API keys: format and checksum first (no store call for a mistyped or made-up key), then the stored record,
// read defensively (any shape may come back) and compiled once per distinct record.
import { LRUCache } from 'lru-cache';
import type { ApiKeyRecord } from '../leaf/store.js';
import { revokedKeyDetail } from '../leaf/lifecycle.js';
import type { TokenInfo } from '../leaf/types.js';
import type { AnyCheck, CheckContext, CheckedToken, CompileEnv } from '../checks/check.js';
import type { AuthenticationFacts } from '../checks/step-up.js';
import { apiKeyExpiryCause, EXPIRY_DETAIL, type KeyExpiry } from '../checks/expiry.js';
import { checkApiKey, hashApiKey, type ApiKeyFormat } from '../tokens/api-key.js';
import { compileRecordChecks, passStands, type CheckSlot } from './registry.js';
import { Refusal } from './refusal.js';
import type { CompiledRule } from './rule-match.js';
import { isFiniteNumber, isPlainObject, isStringList, isThenable, type Invoke } from './store-calls.js';
import { recordFieldProblem } from './record-schema.js';
import type { KeyWatch } from './key-watch.js';

/** Everything the engine needs about a verified token, whatever its kind. */
export interface Holder extends CheckedToken {
  readonly issuedAtMs: number | undefined;
  /** The key record's own values for the registered checks (by slot index), when it has any. */
  readonly recordChecks: readonly unknown[] | undefined;
  /** Response headers warning of the key's coming end (Deprecation, Sunset), when it has one. */
  readonly notices: Readonly<Record<string, string>> | undefined;
  /**
   * Whether `info`'s scopes are on record for requireScopes (set once the token first passed revocation): a
   * cached verification's holder serves many requests, and one WeakMap write is enough for all of them.
   */
  granted: boolean;
  /**
   * The rule whose checks after authentication this token passed, on a request in the `passedScheme` scheme, with
   * each check's `memo` saying the pass stands for later requests: they skip those checks. Never set for an API key.
   */
  passed: CompiledRule | undefined;
  passedScheme: 'bearer' | 'dpop' | undefined;
}

/** Whether `holder` passed `rule`'s checks before, in `scheme`, each pass standing for later requests (`Check.memo`). */
export const passedBefore = (holder: Holder, rule: CompiledRule | undefined, scheme: Holder['passedScheme']): boolean =>
  rule !== undefined && holder.passed === rule && holder.passedScheme === scheme;

/**
 * After an allow with nothing noted for a commit: lets the token's later requests on `rule`, in the same scheme, skip
 * its checks after authentication, when the rule's are all memoisable and each says this pass stands. Never an API key.
 */
export function rememberPass(holder: Holder, rule: CompiledRule | undefined, ctx: CheckContext): void {
  const slots = rule?.checks.memoSlots;
  if (rule === undefined || slots === undefined || holder.record !== undefined || !passStands(slots, ctx, rule.checks.values)) return;
  holder.passed = rule;
  holder.passedScheme = ctx.scheme;
}

/** Per-record compiled constraints; records from a store that hands out the same object are compiled once. */
interface CompiledRecord {
  info: TokenInfo;
  scopeSet: ReadonlySet<string>;
  recordChecks: readonly unknown[] | undefined;
}

const NO_FACTS: AuthenticationFacts = {};

/** Epoch ms a JS Date can hold: a record time beyond it would become an Invalid Date in `decision.token`. */
const isDateMs = (v: unknown): v is number => isFiniteNumber(v) && Math.abs(v) <= 8.64e15;

/**
 * Whether a record read from the store has the shape the checks rely on. Stores may hand back anything
 * (a JSON store turns NaN into null; another app may have written the key), and every field that can
 * restrict a key must be readable, or the restriction would silently vanish (fail open). The constraint
 * fields (scopes, ip, hours, rateLimit) are held to the same schemas as the policy's (record-schema.ts).
 */
export function isRecord(r: unknown): r is ApiKeyRecord {
  if (!isPlainObject(r)) return false;
  return (
    typeof r['id'] === 'string' &&
    r['id'] !== '' &&
    typeof r['hash'] === 'string' &&
    typeof r['subject'] === 'string' &&
    isStringList(r['scopes']) &&
    isDateMs(r['createdAt']) &&
    (r['expiresAt'] === null || isDateMs(r['expiresAt'])) &&
    (r['remaining'] === undefined || Number.isSafeInteger(r['remaining'])) &&
    (r['revokedAt'] === undefined || isDateMs(r['revokedAt'])) &&
    (r['ip'] === undefined || isPlainObject(r['ip'])) &&
    (r['hours'] === undefined || isPlainObject(r['hours'])) &&
    (r['rateLimit'] === undefined || isPlainObject(r['rateLimit'])) &&
    (r['metadata'] === undefined || isPlainObject(r['metadata']))
  );
}

/** The refusal of an expired API key, with its cause for code to test (the detail is for people, and may change). */
export class ExpiredKeyRefusal extends Refusal {
  constructor(
    detail: string | undefined,
    readonly expiry: KeyExpiry,
  ) {
    super('token.expired', detail);
  }
}

/** Authenticates API keys against one store. */
export class KeyAuthenticator {
  private readonly records = new WeakMap<ApiKeyRecord, CompiledRecord>();
  // A store that hands out a new object per read (RedisStore, or any key with uses) would otherwise
  // rebuild a 10 KB hours bitmap and CIDR masks on every request; constraints are cached by content.
  private readonly constraints = new LRUCache<string, { v: unknown }>({ max: 2000 });
  // Scope lists validated by content, so a store handing out a new object per read costs no schema run.
  private readonly scopeLists = new LRUCache<string, true>({ max: 2000 });

  constructor(
    private readonly format: ApiKeyFormat,
    private readonly invoke: Invoke,
    private readonly slots: readonly CheckSlot[],
    private readonly env: CompileEnv,
    private readonly watch: KeyWatch,
  ) {}

  /** The holder of a key, or a promise of it when the store answers asynchronously. Throws (or rejects with) Refusal. */
  authenticate(token: string, nowMs: number): Holder | Promise<Holder> {
    // Format and checksums are checked before the store is asked. The CRC makes a mistyped key cost no round
    // trip; only the keyed checksum (apiKeys.checksumSecret) does the same for a key someone made up.
    const checked = checkApiKey(token, this.format);
    if (checked === 'malformed') throw new Refusal('token.malformed', 'API key checksum or format invalid');
    if (checked === 'forged') throw new Refusal('token.invalid', 'API key not minted with this checksumSecret');
    const hash = hashApiKey(token);
    const answer: unknown = this.invoke('getApiKey', hash);
    if (isThenable(answer)) return Promise.resolve(answer).then((record) => this.holderOf(record, hash, nowMs));
    return this.holderOf(answer, hash, nowMs);
  }

  private holderOf(record: unknown, hash: string, nowMs: number): Holder | Promise<Holder> {
    if (record === undefined || record === null) throw new Refusal('token.invalid', 'unknown API key');
    if (!isRecord(record) || record.hash !== hash) throw new Refusal('token.invalid', 'API key record is malformed');
    let compiled: CompiledRecord;
    try {
      compiled = this.compile(record);
    } catch {
      throw new Refusal('token.invalid', 'API key record has invalid constraints');
    }
    if (record.revokedAt !== undefined && record.revokedAt <= nowMs) throw new Refusal('token.revoked', revokedKeyDetail(record));
    const expiry = apiKeyExpiryCause(record, nowMs);
    if (expiry !== undefined) return this.expired(record, nowMs, expiry);
    const tooOld = this.watch.tooOld(record, nowMs);
    if (tooOld) return this.watch.expired(record, nowMs, tooOld, 'max_age');
    const holder: Holder = {
      info: compiled.info,
      scopeSet: compiled.scopeSet,
      issuedAtMs: record.createdAt,
      facts: NO_FACTS,
      cnf: undefined,
      subjectKey: undefined,
      record,
      recordChecks: compiled.recordChecks,
      notices: this.watch.notices(record, nowMs),
      granted: false,
      passed: undefined,
      passedScheme: undefined,
    };
    const idle = this.watch.idle(record, nowMs);
    return idle ? idle.then(() => holder) : holder;
  }

  /** Refuses an expired key through the watch (which reports it), the refusal carrying its cause. */
  private expired(record: ApiKeyRecord, nowMs: number, expiry: KeyExpiry): Promise<never> {
    const withCause = (err: unknown): never => {
      throw err instanceof Refusal ? new ExpiredKeyRefusal(err.detail, expiry) : err;
    };
    try {
      // The cause is the lifecycle event's reason as well.
      return this.watch.expired(record, nowMs, EXPIRY_DETAIL[expiry], expiry).then(undefined, withCause);
    } catch (err) {
      return withCause(err);
    }
  }

  private cached(field: string, value: unknown, make: () => unknown): unknown {
    const key = `${field}\u0000${JSON.stringify(value)}`;
    let hit = this.constraints.get(key);
    if (!hit) {
      const problem = recordFieldProblem(field, value);
      if (problem) throw new TypeError(problem);
      hit = { v: make() };
      this.constraints.set(key, hit);
    }
    return hit.v;
  }

  private compile(record: ApiKeyRecord): CompiledRecord {
    const known = this.records.get(record);
    if (known) return known;
    const scopesKey = JSON.stringify(record.scopes);
    if (!this.scopeLists.has(scopesKey)) {
      const problem = recordFieldProblem('scopes', record.scopes);
      if (problem) throw new TypeError(problem);
      this.scopeLists.set(scopesKey, true);
    }
    const info: TokenInfo = {
      id: record.id,
      kind: 'api_key',
      subject: record.subject,
      scopes: Object.freeze([...record.scopes]) as string[],
      issuedAt: new Date(record.createdAt),
    };
    if (record.expiresAt !== null) info.expiresAt = new Date(record.expiresAt);
    if (record.metadata) info.metadata = Object.freeze({ ...record.metadata });
    const compiled: CompiledRecord = {
      info: Object.freeze(info),
      scopeSet: new Set(record.scopes),
      recordChecks: compileRecordChecks(this.slots, record as unknown as Record<string, unknown>, (c: AnyCheck, value) =>
        this.cached(c.recordKey as string, value, () => c.compile(value, this.env)),
      ),
    };
    if (Object.isFrozen(record)) this.records.set(record, compiled);
    return compiled;
  }
}
