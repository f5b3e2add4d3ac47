// Adaptive risk: signals about a request (new IP for the token, User-Agent change, velocity above the
// token's own baseline, off-hours use, custom ones) summed to a score that may demand step-up or deny.
import type { TokenInfo } from '../leaf/types.js';
import type { Duration } from '../leaf/duration.js';
import type { TokenUsage } from '../leaf/store.js';
import { z } from 'zod';
import type { GuardRequest, ReasonCode } from '../leaf/types.js';
import { bearerChallenge, userAgentOf } from '../leaf/http.js';
import { dropPromise, isAsyncFunction } from '../leaf/callbacks.js';
import { HoursConstraint, hoursSchema, type HoursRule } from './hours.js';
import { compileStepUpPolicy, satisfiesStepUp, stepUpChallengeParams, stepUpSchema, type StepUpRequirement } from './step-up.js';
import { defineCheck, isPromiseLike, setNote, type CheckContext } from './check.js';

/** What a risk signal sees about the request. */
export interface RiskContext {
  token: TokenInfo;
  /** Client IP as resolved (after trustProxy); undefined when unknown. */
  ip: string | undefined;
  userAgent: string | undefined;
  method: string;
  /** Normalised path. */
  path: string;
  now: Date;
  /** The token's usage before this request (from the store); undefined on its first use. */
  usage: TokenUsage | undefined;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * A custom signal, synchronous: points for this request (a finite number ≥ 0). A throw, a bad number or a promise fails
 * closed; an `async` signal is refused at start-up (one compiled to a plain function, as TypeScript below ES2017 emits,
 * only when called: it then fails closed).
 */
export type RiskSignal = (context: RiskContext) => number;

/** Risk scoring. Each built-in signal is off unless given its points. */
export interface RiskPolicy {
  /** Points when the client IP is unknown or not among the token's recent addresses (from its second use on). */
  newIp?: number;
  /** Points when the User-Agent differs from the one the token last came with. */
  userAgentChange?: number;
  /** Points for a request outside these hours. */
  offHours?: { score: number; hours: HoursRule };
  /**
   * Points when this minute's uses exceed `factor` × the token's own average per minute (and at least
   * `minPerMinute`), once it has `minHistory` uses. Defaults: factor 5, minPerMinute 10, minHistory 50.
   */
  velocity?: { score: number; factor?: number; minPerMinute?: number; minHistory?: number };
  /** Custom signals by name. */
  custom?: Record<string, RiskSignal>;
  /** A score at or above this asks for step-up (satisfied by `stepUp`). */
  stepUpAt?: number;
  /** What satisfies a risk step-up: recent or stronger authentication. Default: `{ maxAge: '5m' }`. */
  stepUp?: { maxAge?: Duration; amr?: readonly string[]; acr?: readonly string[] };
  /** A score at or above this is refused with 403 `risk.denied`. */
  denyAt?: number;
}

/** One signal's contribution to a score. */
export interface RiskScore {
  score: number;
  signals: { name: string; score: number }[];
}

/** A custom signal threw or returned something other than a finite number ≥ 0. */
export class RiskSignalFailure {
  constructor(
    readonly signal: string,
    readonly cause: unknown,
  ) {}
}

const MINUTE = 60_000;

/** A compiled risk policy. */
export class RiskEngine {
  /** Whether any signal reads the token's usage (so the guard fetches it). */
  readonly needsUsage: boolean;
  private readonly offHours: { score: number; hours: HoursConstraint } | undefined;
  private readonly custom: [string, RiskSignal][];

  constructor(private readonly policy: RiskPolicy) {
    this.offHours = policy.offHours ? { score: policy.offHours.score, hours: new HoursConstraint(policy.offHours.hours) } : undefined;
    this.custom = Object.entries(policy.custom ?? {});
    this.needsUsage = policy.newIp !== undefined || policy.userAgentChange !== undefined || policy.velocity !== undefined || this.custom.length > 0;
  }

  /** Scores one request. Throws RiskSignalFailure when a custom signal fails. */
  score(ctx: RiskContext): RiskScore {
    const signals: { name: string; score: number }[] = [];
    const { usage } = ctx;
    const p = this.policy;
    // An unknown client address is not a familiar one: it counts as new once the token has history.
    if (p.newIp !== undefined && usage && usage.recentIps.length > 0 && (ctx.ip === undefined || !usage.recentIps.includes(ctx.ip))) {
      signals.push({ name: 'newIp', score: p.newIp });
    }
    if (p.userAgentChange !== undefined && usage?.lastUserAgent !== undefined && ctx.userAgent !== usage.lastUserAgent) {
      signals.push({ name: 'userAgentChange', score: p.userAgentChange });
    }
    if (this.offHours && !this.offHours.hours.allows(ctx.now.getTime())) signals.push({ name: 'offHours', score: this.offHours.score });
    if (p.velocity && usage && usage.count >= (p.velocity.minHistory ?? 50)) {
      const nowMs = ctx.now.getTime();
      const thisMinute = Math.floor(nowMs / MINUTE) * MINUTE;
      const current = (usage.minute === thisMinute ? usage.minuteCount : 0) + 1;
      // The token's own baseline: its average uses per minute over its life so far.
      const lifeMinutes = Math.max(1, (usage.lastUsedAt - usage.firstUsedAt) / MINUTE);
      const baseline = usage.count / lifeMinutes;
      if (current >= (p.velocity.minPerMinute ?? 10) && current > (p.velocity.factor ?? 5) * baseline) signals.push({ name: 'velocity', score: p.velocity.score });
    }
    for (const [name, signal] of this.custom) {
      let value: unknown;
      let promised = false;
      try {
        value = signal(ctx);
        // A plain function can still hand back a promise: not waited for (it fails closed below), its rejection handled.
        promised = isPromiseLike(value);
        if (promised) dropPromise(value as PromiseLike<unknown>);
      } catch (err) {
        throw new RiskSignalFailure(name, err);
      }
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        // Described by type, not String(value): an object without a prototype cannot be turned into a string.
        const what = promised ? 'a promise (signals must be synchronous)' : typeof value === 'number' ? String(value) : typeof value;
        throw new RiskSignalFailure(name, new TypeError(`returned ${what}`));
      }
      if (value > 0) signals.push({ name, score: value });
    }
    let score = 0;
    for (const s of signals) score += s.score;
    return { score, signals };
  }
}

const points = z.number().finite().min(0, 'expected points ≥ 0');
const signalFn = z
  .custom<RiskSignal>((v) => typeof v === 'function', 'expected a function ((context) => number)')
  .refine((v) => !isAsyncFunction(v), 'an async signal answers with a promise, never a number, so it would deny every request: make it synchronous');

/** The policy's `risk`. */
export const riskSchema = z
  .strictObject({
    newIp: points.optional(),
    userAgentChange: points.optional(),
    offHours: z.strictObject({ score: points, hours: hoursSchema }).optional(),
    velocity: z
      .strictObject({ score: points, factor: z.number().min(1).optional(), minPerMinute: z.number().int().min(1).optional(), minHistory: z.number().int().min(1).optional() })
      .optional(),
    custom: z.record(z.string().regex(/^[A-Za-z][\w.-]*$/, 'expected a signal name'), signalFn).optional(),
    stepUpAt: points.optional(),
    stepUp: stepUpSchema.optional(),
    denyAt: points.optional(),
  })
  .superRefine((r, ctx) => {
    if (r.stepUpAt !== undefined && r.denyAt !== undefined && r.stepUpAt >= r.denyAt) {
      ctx.addIssue({ code: 'custom', path: ['stepUpAt'], message: 'must be lower than denyAt (a score that denies cannot be stepped up)' });
    }
  });

/** Risk scoring, compiled. */
export interface CompiledRisk {
  engine: RiskEngine;
  stepUpAt: number | undefined;
  denyAt: number | undefined;
  /** What satisfies a risk step-up. */
  stepUp: StepUpRequirement;
  /** The WWW-Authenticate challenge of a risk step-up (the risk policy's own requirement). */
  challenge: string;
}

/** Compiles the policy's `risk`. */
export function compileRisk(r: RiskPolicy, realm?: string, resourceMetadata?: string): CompiledRisk {
  const stepUp = compileStepUpPolicy(r.stepUp ?? { maxAge: '5m' });
  return { engine: new RiskEngine(r), stepUpAt: r.stepUpAt, denyAt: r.denyAt, stepUp, challenge: bearerChallenge(realm, stepUpChallengeParams(stepUp), resourceMetadata) };
}

/** The policy's `risk` slice. */
export interface RiskPolicySlice {
  /** Risk scoring: signals summed to a score that may ask for step-up (`stepUpAt`) or deny (`denyAt`). */
  risk?: RiskPolicy;
}

// Never handed to custom risk signals (they may be vendor code that ships its context elsewhere).
const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'dpop']);

/** The request headers a custom risk signal may see: credentials removed, frozen. */
function signalHeaders(headers: GuardRequest['headers']): GuardRequest['headers'] {
  const out: GuardRequest['headers'] = {};
  for (const name of Object.keys(headers)) if (!SECRET_HEADERS.has(name)) out[name] = headers[name];
  return Object.freeze(out);
}

/** What the risk check keeps for `decorate`. */
interface RiskNote {
  score: RiskScore | undefined;
  /** The step-up asked for is the risk policy's (its challenge answers), not a rule's. */
  stepUp: boolean;
}

function scoreRequest(ctx: CheckContext, c: CompiledRisk, usage: TokenUsage | undefined): ReasonCode | undefined {
  const token = ctx.token;
  if (!token) return undefined;
  const note: RiskNote = { score: undefined, stepUp: false };
  setNote(ctx, 'risk', note);
  let score: RiskScore;
  try {
    score = c.engine.score({
      token: token.info,
      ip: ctx.ip?.text,
      userAgent: userAgentOf(ctx.headers),
      method: ctx.method,
      path: ctx.path,
      now: ctx.request.now ?? new Date(ctx.nowMs),
      usage,
      headers: signalHeaders(ctx.headers),
    });
  } catch (err) {
    if (!(err instanceof RiskSignalFailure)) throw err;
    // A signal that cannot say how risky a request is must not make it look safe.
    ctx.detail = `risk signal "${err.signal}" failed`;
    return 'risk.denied';
  }
  note.score = score;
  if (c.denyAt !== undefined && score.score >= c.denyAt) return 'risk.denied';
  if (c.stepUpAt !== undefined && score.score >= c.stepUpAt && !satisfiesStepUp(c.stepUp, token.facts, Math.floor(ctx.nowMs / 1000), ctx.clockToleranceS)) {
    // A rule's own step-up refusal keeps its challenge; otherwise the risk policy's requirement answers.
    note.stepUp = !(!ctx.trial && !!ctx.blocking?.includes('step_up.required'));
    return 'step_up.required';
  }
  return undefined;
}

/** Adaptive risk (`risk.denied`, `step_up.required`): scores each request once every constraint has been checked. */
export const riskCheck = defineCheck<RiskPolicySlice, object, RiskPolicy, CompiledRisk>({
  name: 'risk',
  phase: 'risk',
  order: 10,
  policyKey: 'risk',
  policySchema: riskSchema,
  compile: (r, env) => compileRisk(r, env.realm, env.resourceMetadata),
  // Read while the engine reads the revocation: one round trip's wait for both on a remote store.
  prefetch: (ctx, c) => (c.engine.needsUsage && ctx.token ? ctx.store.getUsage(ctx.token.info.id) : undefined),
  check(ctx, c, usage) {
    if (isPromiseLike(usage)) return Promise.resolve(usage as PromiseLike<TokenUsage | undefined>).then((u) => scoreRequest(ctx, c, u));
    return scoreRequest(ctx, c, usage as TokenUsage | undefined);
  },
  decorate(ctx, c, decision) {
    const note = ctx.notes?.['risk'] as RiskNote | undefined;
    if (!note) return;
    if (note.score) decision.risk = note.score;
    if (note.stepUp && decision.reason === 'step_up.required') decision.headers['WWW-Authenticate'] = c.challenge;
  },
  policyIssues(policy) {
    const risk = policy['risk'] as RiskPolicy | undefined;
    if (policy['trackUsage'] === false && risk && (risk.newIp !== undefined || risk.userAgentChange !== undefined || risk.velocity !== undefined)) {
      return [[['risk'], 'newIp, userAgentChange and velocity read the usage that trackUsage: false turns off']];
    }
    return [];
  },
});
