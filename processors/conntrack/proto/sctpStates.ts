/**
 * The SCTP state machine as data, mirroring nf_conntrack_proto_sctp.c (Linux 6.x, after the 2023
 * rework that dropped HEARTBEAT_ACKED): [direction][chunk class][old state] -> new state, IV marking
 * a chunk that is invalid in that state. Chunk types outside the eleven classes (DATA, SACK, ...)
 * leave the state alone. The kernel's own remarks are kept beside the rows.
 */

export const SCTP_STATE_NAMES = [
  'NONE',
  'CLOSED',
  'COOKIE_WAIT',
  'COOKIE_ECHOED',
  'ESTABLISHED',
  'SHUTDOWN_SENT',
  'SHUTDOWN_RECD',
  'SHUTDOWN_ACK_SENT',
  'HEARTBEAT_SENT',
] as const;
export type SctpStateName = (typeof SCTP_STATE_NAMES)[number];

export const NO = 0, CL = 1, CW = 2, CE = 3, ES = 4, SS = 5, SR = 6, SA = 7, HS = 8;
/** SCTP_CONNTRACK_MAX: the chunk is invalid in this state. */
export const IV = 9;

/** Chunk type ids (RFC 9260 section 3.2) that conntrack looks at. */
export const CHUNK = {
  DATA: 0,
  INIT: 1,
  INIT_ACK: 2,
  SACK: 3,
  HEARTBEAT: 4,
  HEARTBEAT_ACK: 5,
  ABORT: 6,
  SHUTDOWN: 7,
  SHUTDOWN_ACK: 8,
  ERROR: 9,
  COOKIE_ECHO: 10,
  COOKIE_ACK: 11,
  SHUTDOWN_COMPLETE: 14,
} as const;

/** The T bit of ABORT and SHUTDOWN COMPLETE: the sender used the peer's tag (no TCB of its own). */
export const CHUNK_FLAG_T = 0x01;

/** Row of the table for each chunk type (sctp_new_state's switch); undefined: state unchanged. */
const CHUNK_ROW: Readonly<Record<number, number>> = {
  [CHUNK.INIT]: 0,
  [CHUNK.INIT_ACK]: 1,
  [CHUNK.ABORT]: 2,
  [CHUNK.SHUTDOWN]: 3,
  [CHUNK.SHUTDOWN_ACK]: 4,
  [CHUNK.ERROR]: 5,
  [CHUNK.COOKIE_ECHO]: 6,
  [CHUNK.COOKIE_ACK]: 7,
  [CHUNK.SHUTDOWN_COMPLETE]: 8,
  [CHUNK.HEARTBEAT]: 9,
  [CHUNK.HEARTBEAT_ACK]: 10,
};

const CHUNK_NAMES: Readonly<Record<number, string>> = {
  0: 'data', 1: 'init', 2: 'init_ack', 3: 'sack', 4: 'heartbeat', 5: 'heartbeat_ack', 6: 'abort', 7: 'shutdown',
  8: 'shutdown_ack', 9: 'error', 10: 'cookie_echo', 11: 'cookie_ack', 12: 'ecne', 13: 'cwr', 14: 'shutdown_complete',
};

/** Lower-case chunk name for verdict reasons (`chunk<N>` for types without a name here). */
export function chunkName(type: number): string {
  return CHUNK_NAMES[type] ?? `chunk${type}`;
}

//                            NO  CL  CW  CE  ES  SS  SR  SA  HS
export const SCTP_TRANSITIONS: readonly (readonly (readonly number[])[])[] = [
  [
    /* ORIGINAL */
    /* init          */ [CL, CL, CW, CE, ES, CL, CL, SA, CW], // INIT while shutting down: back to CLOSED
    /* init_ack      */ [CL, CL, CW, CE, ES, SS, SR, SA, CL],
    /* abort         */ [CL, CL, CL, CL, CL, CL, CL, CL, CL],
    /* shutdown      */ [CL, CL, CW, CE, SS, SS, SR, SA, CL],
    /* shutdown_ack  */ [SA, CL, CW, CE, ES, SA, SA, SA, SA], // OOTB SHUTDOWN ACK may open an entry
    /* error         */ [CL, CL, CW, CE, ES, SS, SR, SA, CL], // no stale-cookie handling
    /* cookie_echo   */ [CL, CL, CE, CE, ES, SS, SR, SA, CL], // 5.2.4 not handled
    /* cookie_ack    */ [CL, CL, CW, ES, ES, SS, SR, SA, CL], // should not come in this direction
    /* shutdown_comp */ [CL, CL, CW, CE, ES, SS, SR, CL, CL],
    /* heartbeat     */ [HS, CL, CW, CE, ES, SS, SR, SA, HS], // a heartbeat opens a secondary-path entry
    /* heartbeat_ack */ [CL, CL, CW, CE, ES, SS, SR, SA, HS],
  ],
  [
    /* REPLY */
    /* init          */ [IV, CL, CW, CE, ES, SS, SR, SA, IV], // INIT in the reply direction while CLOSED: kernel TODO
    /* init_ack      */ [IV, CW, CW, CE, ES, SS, SR, SA, IV],
    /* abort         */ [IV, CL, CL, CL, CL, CL, CL, CL, IV],
    /* shutdown      */ [IV, CL, CW, CE, SR, SS, SR, SA, IV],
    /* shutdown_ack  */ [IV, CL, CW, CE, ES, SA, SA, SA, IV],
    /* error         */ [IV, CL, CW, CL, ES, SS, SR, SA, IV],
    /* cookie_echo   */ [IV, CL, CE, CE, ES, SS, SR, SA, IV], // should not come in this direction
    /* cookie_ack    */ [IV, CL, CW, ES, ES, SS, SR, SA, IV],
    /* shutdown_comp */ [IV, CL, CW, CE, ES, SS, SR, CL, IV],
    /* heartbeat     */ [IV, CL, CW, CE, ES, SS, SR, SA, HS],
    /* heartbeat_ack */ [IV, CL, CW, CE, ES, SS, SR, SA, ES], // secondary path answered: established
  ],
];

/** sctp_new_state: where one chunk moves the entry (IV when invalid). */
export function nextState(dir: 0 | 1, state: number, chunkType: number): number {
  const row = CHUNK_ROW[chunkType];
  return row === undefined ? state : SCTP_TRANSITIONS[dir][row][state];
}

/** The sysctl holding each state's timeout; NONE uses the CLOSED value, as the kernel's timeouts[0]. */
export const SCTP_TIMEOUT_SYSCTL = [
  'nf_conntrack_sctp_timeout_closed',
  'nf_conntrack_sctp_timeout_closed',
  'nf_conntrack_sctp_timeout_cookie_wait',
  'nf_conntrack_sctp_timeout_cookie_echoed',
  'nf_conntrack_sctp_timeout_established',
  'nf_conntrack_sctp_timeout_shutdown_sent',
  'nf_conntrack_sctp_timeout_shutdown_recd',
  'nf_conntrack_sctp_timeout_shutdown_ack_sent',
  'nf_conntrack_sctp_timeout_heartbeat_sent',
] as const;
