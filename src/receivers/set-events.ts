// Event → action: which CAEP events revoke what, read from a verified SET. Its own file because this table is
// what grows as the receiver learns new event types, independent of how a SET is delivered or verified.
import type { JWTPayload } from 'jose';
import { Refused } from './set-responses.js';
import { isSubject } from './set-subjects.js';
import type { SecurityEventAction, SetReceiverOptions } from './set-types.js';

/** CAEP event types this receiver acts on. */
export const CAEP_EVENTS = {
  sessionRevoked: 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
  credentialChange: 'https://schemas.openid.net/secevent/caep/event-type/credential-change',
  tokenClaimsChange: 'https://schemas.openid.net/secevent/caep/event-type/token-claims-change',
} as const;

/** The actions a verified SET asks for. Throws Refused for a SET whose events cannot be read. */
export function actionsOf(payload: JWTPayload, subjectOf: NonNullable<SetReceiverOptions['subjectOf']>): SecurityEventAction[] {
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
    if (type === CAEP_EVENTS.tokenClaimsChange && subject.format === 'jwt_id' && typeof subject['jti'] === 'string' && subject['jti'] !== '') {
      out.push({ type, action: 'revoke_token', tokenId: subject['jti'] });
      continue;
    }
    let sub: string | undefined;
    try {
      sub = subjectOf(subject, type);
    } catch {
      sub = undefined;
    }
    if (typeof sub !== 'string' || sub === '')
      out.push({ type, action: 'ignored', detail: `subject format ${JSON.stringify(String(subject.format).slice(0, 32))} not mapped to a token subject` });
    else out.push({ type, action: 'revoke_subject', subject: sub });
  }
  return out;
}
