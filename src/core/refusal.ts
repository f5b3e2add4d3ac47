// Ends an evaluation early with one reason (authentication, binding and revocation failures).
import type { ReasonCode } from '../leaf/types.js';

/** Thrown inside the pipeline to end evaluation with one reason; never escapes the guard. */
export class Refusal {
  constructor(
    readonly reason: ReasonCode,
    readonly detail?: string,
  ) {}
}
