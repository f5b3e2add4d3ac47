// IP binding: allow/deny CIDR lists at policy, rule and token level; deny wins, unknown fails.
import { CidrSet, type IpRule, type ParsedIp } from '../leaf/ip.js';

export type { IpRule } from '../leaf/ip.js';

/** A compiled IpRule. */
export class IpConstraint {
  private readonly allow: CidrSet | undefined;
  private readonly deny: CidrSet | undefined;

  constructor(rule: IpRule) {
    this.allow = rule.allow ? new CidrSet(rule.allow) : undefined;
    this.deny = rule.deny ? new CidrSet(rule.deny) : undefined;
  }

  /** Checks a client address. An unknown address fails every constraint (fail closed). */
  check(ip: ParsedIp | null): 'ip.denied' | 'ip.unknown' | undefined {
    if (!ip) return 'ip.unknown';
    if (this.deny?.has(ip)) return 'ip.denied';
    if (this.allow && !this.allow.has(ip)) return 'ip.denied';
    return undefined;
  }
}
