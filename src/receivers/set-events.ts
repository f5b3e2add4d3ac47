// Event → action: which CAEP events revoke what, read from a verified SET. Its own file because this table is
// what grows as the receiver learns new event types, independent of how a SET is delivered or verified.
import type { JWTPayload } from 'jose';
import { droppedPromise } from '../leaf/callbacks.js';
import { UsageError } from '../leaf/errors.js';
import { warnOnce } from '../leaf/warnings.js';
import { hasLoneSurrogate } from '../leaf/well-formed.js';
import { Refused } from './set-responses.js';
import { isSubject, issuersNamed, type SubjectIdentifier } from './set-subjects.js';
import type { SecurityEventAction, SetReceiverOptions, TokenIdSource } from './set-types.js';

/** CAEP event types this receiver acts on. */
export const CAEP_EVENTS = {
  sessionRevoked: 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
  credentialChange: 'https://schemas.openid.net/secevent/caep/event-type/credential-change',
  tokenClaimsChange: 'https://schemas.openid.net/secevent/caep/event-type/token-claims-change',
} as const;

/** How subjects become revocations: the receiver's options, resolved. */
export interface SubjectMapping {
  subjectOf: NonNullable<SetReceiverOptions['subjectOf']>;
  /** The issuers whose subjects the transmitter may name. */
  subjectIssuers: ReadonlySet<string>;
  /** The guard's token ids, when given; else a `jwt_id` revokes its bare `jti`. */
  guard: TokenIdSource | undefined;
  /** `'issuer'`: a subject is revoked under its issuer's key (`guard.subjectIdOf`, checked at creation), not shared. */
  scope: 'shared' | 'issuer';
}

const quoted = (s: string) => JSON.stringify(s.slice(0, 64));

/** The prefix of the record ids `issueApiKey` gives API keys (`key_` + 32 hex digits). */
const API_KEY_ID = /^key_[0-9a-f]{32}$/;

/** The id a `jwt_id` subject names in the guard's store, or why there is none. */
function tokenIdOf(subject: SubjectIdentifier, jti: string, guard: TokenIdSource | undefined): { id: string } | { why: string } {
  const named = guardIdOf(subject, jti, guard);
  // A bare jti (one issuer configuration, or no guard) is filed beside API key record ids: a token event naming one
  // would refuse that API key, which an identity provider's event never means (nor reaches under subjectScope
  // 'issuer'). With several configurations the id is `<name>:<jti>`, never a record id.
  if ('id' in named && named.id === jti && API_KEY_ID.test(jti))
    return { why: `jwt_id jti ${quoted(jti)} has the shape of an API key id (key_ + 32 hex digits), which a token event does not revoke` };
  return named;
}

/** The id the guard gives a JWT with this jti from the subject's issuer, or why there is none. */
function guardIdOf(subject: SubjectIdentifier, jti: string, guard: TokenIdSource | undefined): { id: string } | { why: string } {
  // Without a guard the id is the bare jti, as before: right for a guard with one issuer configuration.
  if (!guard) return { id: jti };
  const iss = subject['iss'];
  if (typeof iss !== 'string') return { why: 'jwt_id subject names no iss, so no token id of the guard' };
  let id: unknown;
  try {
    id = guard.tokenIdOf(jti, iss);
  } catch {
    id = undefined;
  }
  // `guard` may be any object with tokenIdOf: a promise from it is dropped (its rejection handled), as subjectOf's is.
  if (droppedPromise(id)) return { why: 'guard.tokenIdOf returned a promise (it must be synchronous)' };
  return typeof id === 'string' && id !== '' ? { id } : { why: `jwt_id issuer ${quoted(iss)} is not an issuer the guard accepts` };
}

/**
 * A SET naming a token or subject with a lone UTF-16 surrogate: refused, nothing applied. Every store refuses such a
 * key (PostgreSQL and Redis would keep it as U+FFFD, revoking whoever is spelled that way), and a store's refusal
 * would be a 503, retried for ever.
 */
const illFormed = (what: string): Refused => new Refused('invalid_request', `event ${what} is not well-formed Unicode (it holds a lone UTF-16 surrogate)`);

/** The actions a verified SET asks for. Throws Refused for a SET whose events cannot be read. */
export function actionsOf(payload: JWTPayload, mapping: SubjectMapping): SecurityEventAction[] {
  const { subjectOf, subjectIssuers, guard } = mapping;
  const events = payload['events'];
  if (!events || typeof events !== 'object' || Array.isArray(events) || Object.keys(events).length === 0) {
    throw new Refused('invalid_request', 'SET has no events');
  }
  const topSubject = payload['sub_id'];
  const out: SecurityEventAction[] = [];
  for (const [type, raw] of Object.entries(events as Record<string, unknown>)) {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Refused('invalid_request', 'an event is not an object');
    const event = raw as Record<string, unknown>;
    const known = type === CAEP_EVENTS.sessionRevoked || type === CAEP_EVENTS.credentialChange || type === CAEP_EVENTS.tokenClaimsChange;
    if (!known) {
      out.push({ type, action: 'ignored', detail: 'event type not acted on' });
      continue;
    }
    const subject = isSubject(event['subject']) ? event['subject'] : isSubject(topSubject) ? topSubject : undefined;
    if (!subject) throw new Refused('invalid_request', 'event has no subject identifier');
    if (type === CAEP_EVENTS.credentialChange && event['change_type'] === 'create') {
      out.push({ type, action: 'ignored', detail: 'a credential was created, none changed' });
      continue;
    }
    // Subjects are not namespaced per issuer in the store: a transmitter naming another issuer's subject (or token)
    // would revoke that issuer's user. Such an event is ignored, not refused: the SET itself is valid (RFC 8935 §2.2).
    const foreign = issuersNamed(subject).find((iss) => !subjectIssuers.has(iss));
    if (foreign !== undefined) {
      out.push({ type, action: 'ignored', detail: `subject issuer ${quoted(foreign)} is not one this transmitter may name (subjectIssuers)` });
      continue;
    }
    if (type === CAEP_EVENTS.tokenClaimsChange && subject.format === 'jwt_id' && typeof subject['jti'] === 'string' && subject['jti'] !== '') {
      if (hasLoneSurrogate(subject['jti'])) throw illFormed('jwt_id jti');
      const named = tokenIdOf(subject, subject['jti'], guard);
      out.push('id' in named ? { type, action: 'revoke_token', tokenId: named.id } : { type, action: 'ignored', detail: named.why });
      continue;
    }
    let sub: unknown;
    try {
      // Called unbound: as `mapping.subjectOf(…)` a `function` mapping's `this` would be the receiver's mapping.
      sub = subjectOf(subject, type);
    } catch {
      sub = undefined;
    }
    // A plain function can still hand back a promise (`(s) => lookup(s)`): not waited for, its rejection handled.
    if (droppedPromise(sub)) out.push({ type, action: 'ignored', detail: 'subjectOf returned a promise (it must be synchronous)' });
    else if (typeof sub !== 'string' || sub === '')
      out.push({ type, action: 'ignored', detail: `subject format ${JSON.stringify(String(subject.format).slice(0, 32))} not mapped to a token subject` });
    else if (hasLoneSurrogate(sub)) throw illFormed('subject');
    else if (mapping.scope === 'shared') out.push({ type, action: 'revoke_subject', subject: sub });
    // Each issuer the subject names (all allowed, checked above), else each the transmitter may name: a subject
    // whose issuer is not one is revoked for every issuer within the transmitter's reach, and no further.
    else {
      const named = issuersNamed(subject);
      for (const issuer of new Set(named.length > 0 ? named : subjectIssuers)) out.push({ type, action: 'revoke_subject', subject: sub, issuer });
    }
  }
  return out;
}

/** Throws a UsageError unless `subjectScope: 'issuer'` can key each allowed issuer's subjects: a guard accepting every one. */
export function checkIssuerScope(mapping: SubjectMapping): void {
  const { guard } = mapping;
  if (typeof guard?.subjectIdOf !== 'function')
    throw new UsageError("createSetReceiver: subjectScope 'issuer' needs the guard, whose subjectIdOf keys each issuer's subjects", {
      help: "pass the guard: createSetReceiver({ ..., guard, subjectScope: 'issuer' })",
    });
  for (const iss of mapping.subjectIssuers) {
    const key: unknown = guard.subjectIdOf('subject', iss);
    if (droppedPromise(key))
      throw new UsageError("createSetReceiver: subjectScope 'issuer': guard.subjectIdOf returned a promise (it must be synchronous)", {
        help: 'pass the Guard itself, or an object whose subjectIdOf answers synchronously',
      });
    if (key === undefined)
      throw new UsageError(`createSetReceiver: subjectScope 'issuer': the guard accepts no tokens of ${quoted(iss)}, so none of its subjects could be revoked`, {
        help: "list in subjectIssuers the token issuers this transmitter speaks for, each a jwt issuer of the guard's policy",
      });
  }
  // A guard with one issuer configuration keys its subjects bare: asked for one issuer's tokens, the scope would
  // revoke the shared subject, API keys of that subject included. It works, but not as asked: said once.
  if ([...mapping.subjectIssuers].every((iss) => guard.subjectIdOf?.('subject', iss) === 'subject'))
    warnOnce(
      'TOKEN_GUARD_SET_SCOPE_SHARED',
      "token-guard: createSetReceiver with subjectScope 'issuer' and a guard that has one issuer configuration, whose subjects are keyed bare: each revocation is the shared subject's (every token of that sub, API keys included), as with subjectScope 'shared'. Drop subjectScope, or give the guard one jwt configuration per issuer.",
    );
}

/** The store key an action revokes: its issuer's own key for `subjectScope: 'issuer'`, else the shared subject. */
export function subjectKeyOf(action: SecurityEventAction, mapping: SubjectMapping): string {
  const sub = action.subject as string;
  if (action.issuer === undefined) return sub;
  const key: unknown = mapping.guard?.subjectIdOf?.(sub, action.issuer);
  if (droppedPromise(key)) throw new Error('guard.subjectIdOf returned a promise (it must be synchronous)');
  // Every allowed issuer was checked against the guard at creation: a guard that changed its mind fails the delivery (503).
  if (typeof key !== 'string' || key === '') throw new Error(`the guard no longer accepts issuer ${quoted(action.issuer)}`);
  return key;
}
