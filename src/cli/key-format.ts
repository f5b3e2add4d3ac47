// How `keys issue` and `keys rotate` mint a key under `--policy`: with the prefix and checksum secret the policy's
// `apiKeys` accept, so that a key the command reports as made is never one the app refuses (an unknown prefix, a
// missing or foreign keyed checksum).
import { usage } from './exit.js';
import type { PolicyKeys } from './target.js';

/** The prefix and checksum secret to mint with. */
export interface KeyFormat {
  prefix: string;
  checksumSecret: string | Uint8Array | undefined;
}

const listed = (prefixes: readonly string[]): string => prefixes.join(', ');

/** Refuses a policy that accepts no API keys at all: every key made under it would be refused. */
function acceptingKeys(name: string, policy: PolicyKeys): void {
  if (policy.prefixes.length === 0) {
    throw usage(`${name}: the policy in ${policy.file} accepts no API keys (it has no apiKeys): the app would refuse every key made here`);
  }
}

/**
 * The policy's checksum secret, or the one given when it matches. A secret given while the policy has none is kept:
 * such keys work now (the CRC32 covers the keyed checksum) and once the policy turns the secret on.
 */
function secretFor(name: string, policy: PolicyKeys, given: { secret: string; variable: string } | undefined): string | Uint8Array | undefined {
  const own = policy.checksumSecret;
  if (given === undefined) return own;
  if (own !== undefined && !Buffer.from(given.secret, 'utf8').equals(Buffer.from(own))) {
    throw usage(
      `${name}: --checksum-secret-env: ${given.variable} does not hold the apiKeys.checksumSecret of the policy in ${policy.file}: the app would refuse the key as forged`,
      'leave out --checksum-secret-env: with --policy the policy’s own secret is used',
    );
  }
  return given.secret;
}

/**
 * The format of a new key (`keys issue`): `--key-prefix` when the policy accepts it, else the policy's one prefix (with
 * several, the choice is the operator's); the policy's checksum secret unless a matching one is given. Throws CliError
 * (usage) otherwise.
 */
export function issueFormat(name: string, policy: PolicyKeys, prefix: string | undefined, given: { secret: string; variable: string } | undefined): KeyFormat {
  acceptingKeys(name, policy);
  const { prefixes } = policy;
  if (prefix === undefined && prefixes.length > 1) {
    throw usage(`${name}: the policy in ${policy.file} accepts several key prefixes (${listed(prefixes)}): choose one with --key-prefix`);
  }
  const chosen = prefix ?? (prefixes[0] as string);
  if (!prefixes.includes(chosen)) {
    throw usage(
      `${name}: --key-prefix ${JSON.stringify(chosen)} is not accepted by the policy in ${policy.file} (apiKeys.prefix: ${listed(prefixes)}): the app would refuse the key`,
    );
  }
  return { prefix: chosen, checksumSecret: secretFor(name, policy, given) };
}

/**
 * The checksum secret of a successor (`keys rotate`), which keeps its key's prefix: refused (usage) when the policy no
 * longer accepts that prefix, since the app refuses the key already and would refuse its successor as well; the
 * way on is a new key (`keys issue`) and the old one's revocation.
 */
export function rotateFormat(
  name: string,
  policy: PolicyKeys,
  id: string,
  prefix: string,
  given: { secret: string; variable: string } | undefined,
): string | Uint8Array | undefined {
  acceptingKeys(name, policy);
  if (!policy.prefixes.includes(prefix)) {
    throw usage(
      `${name}: ${id} has the prefix ${JSON.stringify(prefix)}, which the policy in ${policy.file} no longer accepts (apiKeys.prefix: ${listed(policy.prefixes)}): the app refuses it, and would refuse a successor with its prefix`,
      'issue a new key (token-guard keys issue --policy …) and revoke this one (token-guard keys revoke)',
    );
  }
  return secretFor(name, policy, given);
}
