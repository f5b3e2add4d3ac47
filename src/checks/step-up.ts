// Step-up (RFC 9470): a route may demand a recent authentication (auth_time), methods (amr) or a level (acr).

/** A compiled step-up requirement. */
export interface StepUpRequirement {
  /** Longest accepted time since `auth_time`, seconds. */
  maxAgeS?: number;
  /** Every one of these must be in the token's `amr`. */
  amr?: readonly string[];
  /** The token's `acr` must be one of these. */
  acr?: readonly string[];
  /** Ready-made WWW-Authenticate parameters (`max_age="600", acr_values="…"`), built at start-up. */
  challenge: string;
}

/** Authentication facts of a token, as claims. */
export interface AuthenticationFacts {
  authTime?: number;
  amr?: readonly string[];
  acr?: string;
}

/** Builds the requirement and its challenge parameters. */
export function compileStepUp(rule: { maxAgeMs?: number; amr?: readonly string[]; acr?: readonly string[] }): StepUpRequirement {
  const req: StepUpRequirement = { challenge: '' };
  const params: string[] = [];
  if (rule.maxAgeMs !== undefined) {
    req.maxAgeS = Math.floor(rule.maxAgeMs / 1000);
    params.push(`max_age="${req.maxAgeS}"`);
  }
  if (rule.amr?.length) req.amr = [...rule.amr];
  if (rule.acr?.length) {
    req.acr = [...rule.acr];
    params.push(`acr_values="${req.acr.join(' ')}"`);
  }
  req.challenge = params.join(', ');
  return req;
}

/** Whether the token's authentication satisfies the requirement at `nowS` (seconds). */
export function satisfiesStepUp(req: StepUpRequirement, facts: AuthenticationFacts, nowS: number, toleranceS: number): boolean {
  if (req.maxAgeS !== undefined) {
    if (facts.authTime === undefined || facts.authTime > nowS + toleranceS) return false;
    if (nowS - facts.authTime - toleranceS > req.maxAgeS) return false;
  }
  if (req.amr) {
    if (!facts.amr) return false;
    for (const m of req.amr) if (!facts.amr.includes(m)) return false;
  }
  if (req.acr && (facts.acr === undefined || !req.acr.includes(facts.acr))) return false;
  return true;
}
