/**
 * The TCP state machine as data, mirroring nf_conntrack_proto_tcp.c's tcp_conntracks table:
 * [direction][packet class][old state] -> new state, where IV marks an invalid packet and IG one
 * the tracker ignores (lets through without changing anything). The kernel's comments on every
 * move are summarised beside each row.
 */

export const TCP_STATE_NAMES = [
  'NONE',
  'SYN_SENT',
  'SYN_RECV',
  'ESTABLISHED',
  'FIN_WAIT',
  'CLOSE_WAIT',
  'LAST_ACK',
  'TIME_WAIT',
  'CLOSE',
  'SYN_SENT2',
] as const;
export type TcpStateName = (typeof TCP_STATE_NAMES)[number];

const NO = 0, SS = 1, SR = 2, ES = 3, FW = 4, CW = 5, LA = 6, TW = 7, CL = 8, S2 = 9;
/** Invalid and ignore markers (TCP_CONNTRACK_MAX and TCP_CONNTRACK_IGNORE). */
const IV = 10, IG = 11;

/** Packet classes, in the kernel's priority order (get_conntrack_index). */
const SYN_SET = 0, SYNACK_SET = 1, FIN_SET = 2, ACK_SET = 3, RST_SET = 4, NONE_SET = 5;
// (Exported by name: an `export const` would turn this module's own uses, packetClass's on every
// packet, into property loads on its exports object. Importers copy them into constants of their own.)
export { NO, SS, SR, ES, FW, CW, LA, TW, CL, S2, IV, IG, SYN_SET, SYNACK_SET, FIN_SET, ACK_SET, RST_SET, NONE_SET };
export const PACKET_CLASS_NAMES = ['syn', 'synack', 'fin', 'ack', 'rst', 'none'] as const;

export function packetClass(flags: number): number {
  if (flags & 0x04) return RST_SET;
  if (flags & 0x02) return flags & 0x10 ? SYNACK_SET : SYN_SET;
  if (flags & 0x01) return FIN_SET;
  if (flags & 0x10) return ACK_SET;
  return NONE_SET;
}

//                     NO  SS  SR  ES  FW  CW  LA  TW  CL  S2
export const TCP_TRANSITIONS: readonly (readonly (readonly number[])[])[] = [
  [
    /* ORIGINAL */
    /* syn    */ [SS, SS, IG, IG, IG, IG, IG, SS, SS, S2], // new / retransmit; TW,CL reopen (RFC 1122)
    /* synack */ [IV, IV, IG, IG, IG, IG, IG, IG, IG, SR], // client cannot send SYN then SYN/ACK; S2 simultaneous open
    /* fin    */ [IV, IV, FW, FW, LA, LA, LA, TW, CL, IV], // close starts; FIN both ways -> LAST_ACK
    /* ack    */ [ES, IV, ES, ES, CW, CW, TW, TW, CL, IV], // NO -> ES assumed (pickup); SS: no SYN/ACK seen yet
    /* rst    */ [IV, CL, CL, CL, CL, CL, CL, CL, CL, CL],
    /* none   */ [IV, IV, IV, IV, IV, IV, IV, IV, IV, IV],
  ],
  [
    /* REPLY */
    /* syn    */ [IV, S2, IV, IV, IV, IV, IV, IV, IV, S2], // SS -> S2 simultaneous open
    /* synack */ [IV, SR, IG, IG, IG, IG, IG, IG, IG, SR], // standard open; late retransmits ignored
    /* fin    */ [IV, IV, FW, FW, LA, LA, LA, TW, CL, IV],
    /* ack    */ [IV, IG, SR, ES, CW, CW, TW, TW, CL, IG], // SS: maybe a half-open connection (ignored)
    /* rst    */ [IV, CL, CL, CL, CL, CL, CL, CL, CL, CL],
    /* none   */ [IV, IV, IV, IV, IV, IV, IV, IV, IV, IV],
  ],
];

/** TCP_TRANSITIONS flattened, [(direction * 6 + packet class) * 10 + old state]: one load per packet instead of three. */
const NEXT = Uint8Array.from(TCP_TRANSITIONS.flat(2));
const CLASSES = NONE_SET + 1, STATES = S2 + 1;

/** TCP_TRANSITIONS[dir][packetClass][old]. */
export function nextState(dir: number, packetClass: number, old: number): number {
  return NEXT[(dir * CLASSES + packetClass) * STATES + old];
}

/** Flag combinations the kernel accepts (tcp_valid_flags), after masking PSH, ECE and CWR. */
const VALID_FLAG_COMBINATIONS = [
  0x02, // SYN
  0x22, // SYN|URG
  0x12, // SYN|ACK
  0x04, // RST
  0x14, // RST|ACK
  0x11, // FIN|ACK
  0x31, // FIN|ACK|URG
  0x10, // ACK
  0x30, // ACK|URG
];

/** The same as a 256-entry table indexed by the masked flag byte (the kernel's tcp_valid_flags[] is one too). */
const VALID_FLAGS = new Uint8Array(256);
for (const f of VALID_FLAG_COMBINATIONS) VALID_FLAGS[f] = 1;

export function validFlags(flags: number): boolean {
  return VALID_FLAGS[flags & ~(0x40 | 0x80 | 0x08) & 0xff] === 1;
}

/** The sysctl holding each state's timeout, plus the two overrides (max_retrans, unacknowledged). */
export const TCP_TIMEOUT_SYSCTL = [
  'nf_conntrack_tcp_timeout_syn_sent', // NONE uses the SYN_SENT value, as the kernel's timeouts[0]
  'nf_conntrack_tcp_timeout_syn_sent',
  'nf_conntrack_tcp_timeout_syn_recv',
  'nf_conntrack_tcp_timeout_established',
  'nf_conntrack_tcp_timeout_fin_wait',
  'nf_conntrack_tcp_timeout_close_wait',
  'nf_conntrack_tcp_timeout_last_ack',
  'nf_conntrack_tcp_timeout_time_wait',
  'nf_conntrack_tcp_timeout_close',
  'nf_conntrack_tcp_timeout_syn_sent', // SYN_SENT2
] as const;
