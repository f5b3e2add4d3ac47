// The one definition of what an API key may carry as constraints (scopes, ip, hours, rateLimit): the same
// schemas as the policy's, used by issueApiKey and by the reader of stored records.
import { z } from 'zod';
import { ipSchema } from '../checks/ip.js';
import { hoursSchema } from '../checks/hours.js';
import { scopeSchema } from '../checks/scopes.js';
import { rateLimitSchema } from '../checks/rate-limit.js';

/** The constraint fields of a key record, each by the schema the policy uses for it. */
export const RECORD_FIELD_SCHEMAS: Readonly<Record<string, z.ZodType>> = Object.freeze({
  scopes: z.array(scopeSchema),
  ip: ipSchema,
  hours: hoursSchema,
  rateLimit: rateLimitSchema,
});

/** Why a record's constraint field is invalid (`ip.allow[0]: …`), or undefined when it is valid or not a constraint. */
export function recordFieldProblem(field: string, value: unknown): string | undefined {
  const schema = RECORD_FIELD_SCHEMAS[field];
  if (!schema) return undefined;
  const result = schema.safeParse(value);
  if (result.success) return undefined;
  const issue = result.error.issues[0];
  const path = [field, ...(issue?.path ?? [])].map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? String(k) : `.${String(k)}`)).join('');
  return `${path}: ${issue?.message ?? 'invalid'}`;
}
