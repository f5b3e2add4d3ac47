// Subject identifiers (RFC 9493) as events name them, and the default mapping to the tokens' `sub`: the part an
// application may replace (`subjectOf`), kept apart from verification and delivery.

/** A subject identifier (RFC 9493) as an event names it: `iss_sub`, `opaque`, `jwt_id`, `email`, `complex`, … */
export interface SubjectIdentifier {
  format: string;
  [member: string]: unknown;
}

/** The subject of the tokens an identifier names, by the default mapping. */
export function defaultSubjectOf(s: SubjectIdentifier): string | undefined {
  if (s.format === 'iss_sub' && typeof s['sub'] === 'string') return s['sub'];
  if (s.format === 'opaque' && typeof s['id'] === 'string') return s['id'];
  if (s.format === 'complex' && isSubject(s['user'])) return defaultSubjectOf(s['user']);
  return undefined;
}

/**
 * The `iss` members a subject identifier names (a `complex` one's members too), for the check that a transmitter
 * only speaks for issuers it may: an `iss` that is not a string counts as `''`, which no issuer equals.
 */
export function issuersNamed(s: SubjectIdentifier): string[] {
  const out: string[] = 'iss' in s ? [typeof s['iss'] === 'string' ? s['iss'] : ''] : [];
  // Followed as deep as defaultSubjectOf follows `complex`, so no nested iss_sub escapes the check.
  if (s.format === 'complex') for (const v of Object.values(s)) if (isSubject(v)) out.push(...issuersNamed(v));
  return out;
}

/** Whether a value has the shape of a subject identifier (an object with a string `format`). */
export function isSubject(v: unknown): v is SubjectIdentifier {
  return !!v && typeof v === 'object' && !Array.isArray(v) && typeof (v as { format?: unknown }).format === 'string';
}
