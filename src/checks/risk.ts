// Adaptive risk: signals about a request (new IP for the token, User-Agent change, velocity above the
// token's own baseline, off-hours use, custom ones) summed to a score that may demand step-up or deny.
import type { TokenInfo } from '../leaf/types.js';
import type { Duration } from '../leaf/duration.js';
import type { TokenUsage } from '../leaf/store.js';
import { z } from 'zod';
import { HoursConstraint, hoursSchema, type HoursRule } from './hours.js';
import { compileStepUpPolicy, stepUpSchema, type StepUpRequirement } from './step-up.js';

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

/** A custom signal: points for this request (a finite number ≥ 0). A throw or a bad number fails closed. */
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
      try {
        value = signal(ctx);
      } catch (err) {
        throw new RiskSignalFailure(name, err);
      }
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new RiskSignalFailure(name, new TypeError(`returned ${String(value)}`));
      if (value > 0) signals.push({ name, score: value });
    }
    let score = 0;
    for (const s of signals) score += s.score;
    return { score, signals };
  }
}

const points = z.number().finite().min(0, 'expected points ≥ 0');
const signalFn = z.custom<RiskSignal>((v) => typeof v === 'function', 'expected a function ((context) => number)');

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
}

/** Compiles the policy's `risk`. */
export function compileRisk(r: RiskPolicy): CompiledRisk {
  return { engine: new RiskEngine(r), stepUpAt: r.stepUpAt, denyAt: r.denyAt, stepUp: compileStepUpPolicy(r.stepUp ?? { maxAge: '5m' }) };
}
