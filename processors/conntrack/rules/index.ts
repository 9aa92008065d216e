/**
 * The rules an engine applies besides the sysctls: what the raw table's NOTRACK rules and the nat
 * table's SNAT/DNAT/MASQUERADE rules would do on a Linux gateway (helper assignment joins them).
 * Each kind has its module; all select packets with the same PacketMatch (match.ts).
 */
import type { NatRule } from './nat';
import type { NotrackRule } from './notrack';

export interface ConntrackRules {
  notrack?: NotrackRule[];
  nat?: NatRule[];
}

export type { NatRule, NatKind } from './nat';
export type { NotrackRule } from './notrack';
export type { PacketMatch } from './match';
