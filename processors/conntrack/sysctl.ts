/**
 * The engine's knobs, named exactly as the kernel's `net.netfilter.nf_conntrack_*` sysctls and
 * with the kernel's defaults (Linux 6.18, as read from the oracle's router namespace). Timeouts
 * are in seconds, as `sysctl` shows them.
 */

export const SYSCTL_DEFAULTS = {
  nf_conntrack_max: 262144,
  nf_conntrack_acct: 0,
  nf_conntrack_checksum: 0,
  nf_conntrack_events: 1,
  nf_conntrack_timestamp: 0,
  /**
   * Expectations the table holds at most (helpers' announced connections). The kernel derives it
   * once at boot from the connection hash size (nf_conntrack_expect_init: expect_hsize =
   * nf_conntrack_buckets / 256, at least 1; expect_max = 4 * expect_hsize), not from
   * nf_conntrack_max; with 6.18's 262144 buckets, 4096. A helper whose expectation does not fit
   * drops the packet that announced it ("expectation table full").
   */
  nf_conntrack_expect_max: 4096,
  nf_conntrack_generic_timeout: 600,
  nf_conntrack_icmp_timeout: 30,
  nf_conntrack_icmpv6_timeout: 30,
  nf_conntrack_udp_timeout: 30,
  nf_conntrack_udp_timeout_stream: 120,
  nf_conntrack_gre_timeout: 30,
  nf_conntrack_gre_timeout_stream: 180,
  nf_conntrack_tcp_loose: 1,
  nf_conntrack_tcp_be_liberal: 0,
  nf_conntrack_tcp_ignore_invalid_rst: 0,
  nf_conntrack_tcp_max_retrans: 3,
  nf_conntrack_tcp_timeout_syn_sent: 120,
  nf_conntrack_tcp_timeout_syn_recv: 60,
  nf_conntrack_tcp_timeout_established: 432000,
  nf_conntrack_tcp_timeout_fin_wait: 120,
  nf_conntrack_tcp_timeout_close_wait: 60,
  nf_conntrack_tcp_timeout_last_ack: 30,
  nf_conntrack_tcp_timeout_time_wait: 120,
  nf_conntrack_tcp_timeout_close: 10,
  nf_conntrack_tcp_timeout_max_retrans: 300,
  nf_conntrack_tcp_timeout_unacknowledged: 300,
  nf_conntrack_sctp_timeout_closed: 10,
  nf_conntrack_sctp_timeout_cookie_wait: 3,
  nf_conntrack_sctp_timeout_cookie_echoed: 3,
  nf_conntrack_sctp_timeout_established: 210,
  nf_conntrack_sctp_timeout_shutdown_sent: 3,
  nf_conntrack_sctp_timeout_shutdown_recd: 3,
  nf_conntrack_sctp_timeout_shutdown_ack_sent: 3,
  nf_conntrack_sctp_timeout_heartbeat_sent: 30,
  nf_conntrack_frag6_timeout: 60,
  /** IPv4 reassembly timeout (net.ipv4.ipfrag_time), seconds. */
  ipfrag_time: 30,
} as const;

export type SysctlName = keyof typeof SYSCTL_DEFAULTS;
export type Sysctl = { readonly [K in SysctlName]: number };

export class SysctlError extends Error {}

/** Accepts `nf_conntrack_x`, `net.netfilter.nf_conntrack_x` or `net.ipv4.ipfrag_time`. */
export function normalizeSysctlName(name: string): SysctlName {
  const bare = name.replace(/^net\.netfilter\./, '').replace(/^net\.ipv4\./, '');
  if (!(bare in SYSCTL_DEFAULTS)) {
    throw new SysctlError(`unknown sysctl '${name}' (expected one of net.netfilter.nf_conntrack_*, e.g. nf_conntrack_tcp_loose)`);
  }
  return bare as SysctlName;
}

/** Builds a frozen knob set from the defaults and `name=value` overrides, rejecting unknown names and bad values. */
export function makeSysctl(overrides: Iterable<string> | Partial<Record<string, number>> = []): Sysctl {
  const values: Record<string, number> = { ...SYSCTL_DEFAULTS };
  const pairs: Array<[string, string | number]> = isIterableOfStrings(overrides)
    ? [...overrides].map(parsePair)
    : Object.entries(overrides).map(([k, v]) => [k, v as number]);
  for (const [rawName, rawValue] of pairs) {
    const name = normalizeSysctlName(rawName);
    const value = typeof rawValue === 'number' ? rawValue : Number(rawValue);
    if (!Number.isInteger(value) || value < 0) {
      throw new SysctlError(`sysctl ${name}: value '${rawValue}' is not a non-negative integer`);
    }
    values[name] = value;
  }
  return Object.freeze(values) as Sysctl;
}

function isIterableOfStrings(x: unknown): x is Iterable<string> {
  return Array.isArray(x) || (typeof x === 'object' && x !== null && Symbol.iterator in x);
}

function parsePair(text: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new SysctlError(`sysctl '${text}': expected name=value`);
  return [text.slice(0, eq).trim(), text.slice(eq + 1).trim()];
}
