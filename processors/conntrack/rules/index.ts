/**
 * The rules an engine runs with besides its sysctls, one list per kind, as netfilter keeps them
 * in different tables and chains. Each kind lives in its own module; this is only their union.
 */
import type { HelperRule } from '../helpers';

export type { HelperRule } from '../helpers';

export interface ConntrackRules {
  /** `ct helper set` rules: which new connections get a helper (first match wins). */
  helpers?: HelperRule[];
}
