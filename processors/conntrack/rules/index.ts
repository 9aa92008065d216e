/**
 * The rules an engine applies besides the sysctls, one list per kind, as netfilter keeps them in
 * different tables and chains: what the raw table's NOTRACK rules, the nat table's
 * SNAT/DNAT/MASQUERADE rules and `ct helper set` rules would do on a Linux gateway. Each kind has
 * its module; all select packets with the same PacketMatch (match.ts).
 */
import type { HelperRule } from '../helpers';
import type { NatRule } from './nat';
import type { NotrackRule } from './notrack';

export interface ConntrackRules {
  notrack?: NotrackRule[];
  nat?: NatRule[];
  /** `ct helper set` rules: which new connections get a helper (first match wins). */
  helpers?: HelperRule[];
}

export type { HelperRule } from '../helpers';
export type { NatRule, NatKind } from './nat';
export type { NotrackRule } from './notrack';
export type { PacketMatch } from './match';
