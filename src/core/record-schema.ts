// The one definition of what an API key may carry: its constraints (scopes, ip, hours, rateLimit) by the same
// schemas as the policy's, used by issueApiKey and by the reader of stored records, and its descriptive name and
// metadata, checked by issueApiKey (the reader takes them as they come: they decide nothing).
import { z } from 'zod';
import { ipSchema } from '../checks/ip.js';
import { hoursSchema } from '../checks/hours.js';
import { scopeSchema } from '../checks/scopes.js';
import { rateLimitSchema } from '../checks/rate-limit.js';

/** The checked fields of a key record: each constraint by the schema the policy uses for it, then name and metadata. */
export const RECORD_FIELD_SCHEMAS: Readonly<Record<string, z.ZodType>> = Object.freeze({
  scopes: z.array(scopeSchema),
  ip: ipSchema,
  hours: hoursSchema,
  rateLimit: rateLimitSchema,
  name: z.string({ error: 'expected a string' }),
  metadata: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()], { error: 'expected a string, a finite number or a boolean' }), {
    error: 'expected an object',
  }),
});

/** Every problem of a record's constraint field (`ip.allow[0]: …`, `ip.alow: unknown key`); empty when it is valid or not a constraint. */
export function recordFieldProblems(field: string, value: unknown): string[] {
  const schema = RECORD_FIELD_SCHEMAS[field];
  if (!schema) return [];
  const result = schema.safeParse(value);
  if (result.success) return [];
  const at = (path: readonly PropertyKey[]) => [field, ...path].map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? String(k) : `.${String(k)}`)).join('');
  return result.error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys' ? issue.keys.map((k) => `${at([...issue.path, k])}: unknown key`) : [`${at(issue.path)}: ${issue.message}`],
  );
}

/** The first problem of a record's constraint field, or undefined. */
export function recordFieldProblem(field: string, value: unknown): string | undefined {
  return recordFieldProblems(field, value)[0];
}
