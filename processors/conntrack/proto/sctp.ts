/**
 * SctpTracker: the kernel's nf_conntrack_sctp_packet (Linux 6.18) in stages: chunk sanity
 * (do_basic_checks), the first packet's admission (the out-of-the-blue rules and sctp_new), the
 * verification-tag check of RFC 9260 section 8.5, then one pass over the chunks applying the
 * section 8.5.1 special cases, the state table and the INIT / INIT ACK tag bookkeeping, and finally
 * the timeout of the state the last chunk left the entry in.
 *
 * The CRC32c check of sctp_error only runs when nf_conntrack_checksum is set; ctflow, like the
 * oracle (checksum 0), does not verify checksums.
 */
import type { IpPacket, SctpChunk, SctpHeader } from '../../packet';
import { STATUS } from '../../flow';
import type { Conn } from '../conn';
import { ACCEPT, IPCT, invalid } from './tracker';
import type { Dir, ProtoTracker, TrackerContext, TrackerResult } from './tracker';
import {
  CHUNK, CHUNK_FLAG_T, CL, ES, IV, NO, SA, SCTP_STATE_NAMES, SCTP_TIMEOUT_SYSCTL, SR, SS, chunkName, nextState,
} from './sctpStates';

/** struct ip_ct_sctp. */
export interface SctpState {
  state: number;
  /** The verification tag packets travelling in each direction must carry (0: not known yet). */
  vtag: [number, number];
  /** An INIT was seen from this side and no COOKIE ACK since (to catch INIT collisions). */
  init: [boolean, boolean];
  /** SCTP_FLAG_HEARTBEAT_VTAG_FAILED: a HEARTBEAT carried an unknown tag (peer restarted?). */
  heartbeatVtagFailed: boolean;
  /** Direction of that HEARTBEAT; only an answer from the other side may adopt its tag. */
  lastDir: Dir;
}

function newSctpState(): SctpState {
  return { state: NO, vtag: [0, 0], init: [false, false], heartbeatVtagFailed: false, lastDir: 0 };
}

/** Chunks that carry their own tag rules, so the plain section 8.5 check is skipped for the packet. */
const OWN_TAG_RULES: readonly number[] = [
  CHUNK.INIT, CHUNK.SHUTDOWN_COMPLETE, CHUNK.COOKIE_ECHO, CHUNK.ABORT, CHUNK.SHUTDOWN_ACK, CHUNK.HEARTBEAT,
  CHUNK.HEARTBEAT_ACK,
];

/** Chunks that may never open an entry: they answer an association that must already exist (8.4). */
const OOTB_DISCARD: readonly number[] = [CHUNK.ABORT, CHUNK.SHUTDOWN_COMPLETE, CHUNK.COOKIE_ACK];

/**
 * do_basic_checks: at least one chunk, none of length zero, COOKIE ECHO / COOKIE ACK only first,
 * INIT / INIT ACK / SHUTDOWN COMPLETE only alone. Returns the verdict when the packet fails.
 */
function basicChecks(chunks: readonly SctpChunk[]): TrackerResult | undefined {
  if (chunks.length === 0) return invalid('sctp_no_chunks');
  let mustBeAlone = false;
  for (let i = 0; i < chunks.length; i++) {
    const { type, length } = chunks[i];
    if (type === CHUNK.INIT || type === CHUNK.INIT_ACK || type === CHUNK.SHUTDOWN_COMPLETE) mustBeAlone = true;
    if (length === 0) return invalid('sctp_zero_length_chunk', { chunk: i, type });
    if (i === 0) continue;
    if (type === CHUNK.COOKIE_ECHO || type === CHUNK.COOKIE_ACK) return invalid('sctp_cookie_chunk_not_first', { chunk: i, type });
    if (mustBeAlone) return invalid('sctp_chunk_must_be_alone', { chunk: i, type });
  }
  return undefined;
}

/**
 * The OOTB rule and sctp_new: may this packet create an entry? Every chunk must be one the
 * ORIGINAL/NONE column accepts (DATA, SACK and other unlisted chunks do not), and the tags the
 * first packet reveals are recorded.
 */
function admit(sctp: SctpHeader): SctpState | TrackerResult {
  const discard = sctp.chunks.find((c) => OOTB_DISCARD.includes(c.type));
  if (discard) return invalid(`sctp_cannot_start_with_${chunkName(discard.type)}`);
  const st = newSctpState();
  const vtag = sctp.vtag >>> 0;
  for (const c of sctp.chunks) {
    const next = nextState(0, NO, c.type);
    if (next === NO || next === IV) return invalid(`sctp_cannot_start_with_${chunkName(c.type)}`);
    if (c.type === CHUNK.INIT) {
      if (vtag !== 0) return invalid('sctp_init_nonzero_vtag', { vtag }); // 8.5.1 (A)
      if (c.initTag === undefined) return invalid('sctp_init_truncated');
      st.vtag[1] = c.initTag >>> 0; // the responder will use the initiate tag
    } else if (c.type === CHUNK.HEARTBEAT) {
      st.vtag[0] = vtag; // secondary path of an association we did not see start
    } else if (c.type === CHUNK.SHUTDOWN_ACK) {
      st.vtag[1] = vtag; // OOTB SHUTDOWN ACK: the SHUTDOWN COMPLETE answering it carries this tag
    }
  }
  return st;
}

/** ABORT / SHUTDOWN COMPLETE tag rule (8.5.1 B, C): own tag, or the peer's when the T bit is set. */
function reflectedTagOk(st: SctpState, dir: Dir, vtag: number, flags: number): boolean {
  return vtag === (flags & CHUNK_FLAG_T ? st.vtag[1 - dir] : st.vtag[dir]);
}

export const SctpTracker: ProtoTracker = {
  name: 'sctp',

  stateName(conn: Conn): string {
    return SCTP_STATE_NAMES[(conn.proto as SctpState | undefined)?.state ?? NO];
  },

  /** sctp_can_early_drop: an association that is shutting down may be evicted even when assured. */
  canEarlyDrop(conn: Conn): boolean {
    const state = (conn.proto as SctpState | undefined)?.state;
    return state === SS || state === SR || state === SA;
  },

  packet(conn: Conn, dir: Dir, ip: IpPacket, ctx: TrackerContext): TrackerResult {
    const sctp = ip.l4;
    if (!sctp || sctp.kind !== 'sctp') return invalid('sctp_truncated');
    const bad = basicChecks(sctp.chunks);
    if (bad) return bad;
    if (!conn.confirmed) {
      const admitted = admit(sctp);
      if ('verdict' in admitted) return admitted;
      conn.proto = admitted;
    }
    const st = conn.proto as SctpState;
    const vtag = sctp.vtag >>> 0;
    const types = new Set(sctp.chunks.map((c) => c.type));

    // Section 8.5: the packet must carry the tag this direction is known by.
    if (!OWN_TAG_RULES.some((t) => types.has(t)) && vtag !== st.vtag[dir]) {
      return invalid('sctp_vtag_mismatch', { vtag, expected: st.vtag[dir], dir });
    }

    // Why the packet is let through without refreshing the timeout, when it is.
    let ignore: string | undefined;
    let newState = NO;
    for (const c of sctp.chunks) {
      switch (c.type) {
        case CHUNK.INIT:
          if (vtag !== 0) return invalid('sctp_init_nonzero_vtag', { vtag }); // 8.5.1 (A)
          break;
        case CHUNK.ABORT:
        case CHUNK.SHUTDOWN_COMPLETE:
          if (!reflectedTagOk(st, dir, vtag, c.flags)) {
            return invalid(`sctp_${chunkName(c.type)}_vtag_mismatch`, { vtag, flags: c.flags, dir });
          }
          break;
        case CHUNK.COOKIE_ECHO:
          // 8.5.1 (D): the tag the INIT ACK announced.
          if (vtag !== st.vtag[dir]) return invalid('sctp_cookie_echo_vtag_mismatch', { vtag, expected: st.vtag[dir], dir });
          break;
        case CHUNK.COOKIE_ACK:
          st.init = [false, false]; // handshake complete, no collision pending
          break;
        case CHUNK.HEARTBEAT:
          if (st.vtag[dir] === 0) st.vtag[dir] = vtag;
          else if (vtag !== st.vtag[dir]) {
            if (types.has(CHUNK.DATA) || ignore) return invalid('sctp_heartbeat_vtag_mismatch', { vtag, expected: st.vtag[dir], dir });
            // Maybe the peer restarted with a new tag: let it through, and let its answer decide.
            st.heartbeatVtagFailed = true;
            st.lastDir = dir;
            ignore = 'sctp_heartbeat_vtag_unknown';
            continue;
          } else st.heartbeatVtagFailed = false;
          break;
        case CHUNK.HEARTBEAT_ACK:
          if (st.vtag[dir] === 0) st.vtag[dir] = vtag;
          else if (vtag !== st.vtag[dir]) {
            if (types.has(CHUNK.DATA) || ignore || !st.heartbeatVtagFailed || st.lastDir === dir) {
              return invalid('sctp_heartbeat_ack_vtag_mismatch', { vtag, expected: st.vtag[dir], dir });
            }
            // The answer to the unknown-tag HEARTBEAT: adopt the new tag, forget the other side's.
            st.heartbeatVtagFailed = false;
            st.vtag[dir] = vtag;
            st.vtag[1 - dir] = 0;
          } else st.heartbeatVtagFailed = false;
          break;
        default:
          break;
      }

      const oldState = st.state;
      newState = nextState(dir, oldState, c.type);
      if (newState === IV) {
        return invalid('sctp_invalid_chunk_in_state', { chunkType: c.type, state: oldState, dir });
      }

      if (c.type === CHUNK.INIT) {
        if (c.initTag === undefined) return invalid('sctp_init_truncated');
        const initTag = c.initTag >>> 0;
        // An INIT repeating the tag already recorded (retransmitted or stale) is no new INIT.
        if (oldState === NO || st.vtag[1 - dir] !== initTag) {
          if (st.init[dir] && st.init[1 - dir]) st.init[1 - dir] = false;
          st.init[dir] = true;
        }
        st.vtag[1 - dir] = initTag;
        // A repeated INIT does not renew the timeout, or port reuse could keep the entry forever.
        if (newState === CL && oldState === CL && conn.confirmed) ignore = 'sctp_init_retransmit';
      } else if (c.type === CHUNK.INIT_ACK) {
        if (c.initTag === undefined) return invalid('sctp_init_ack_truncated');
        const initTag = c.initTag >>> 0;
        const known = st.vtag[1 - dir];
        if (!st.init[1 - dir] && known !== 0 && known !== initTag) {
          return invalid('sctp_init_ack_vtag_mismatch', { initTag, expected: known, dir });
        }
        if (st.init[dir] && st.init[1 - dir] && known !== initTag) {
          return invalid('sctp_init_collision', { initTag, expected: known, dir });
        }
        st.vtag[1 - dir] = initTag;
      }

      st.state = newState;
      if (oldState !== newState) {
        ctx.event(conn, IPCT.PROTOINFO);
        // Any way into ESTABLISHED (COOKIE ACK, or a HEARTBEAT ACK on a secondary path) assures.
        if (newState === ES && !conn.assured) {
          conn.status |= STATUS.ASSURED;
          ctx.event(conn, IPCT.ASSURED);
        }
      }
    }

    if (ignore) return { verdict: 'accept', note: ignore };
    ctx.refresh(conn, dir, ip, ctx.sysctl[SCTP_TIMEOUT_SYSCTL[newState]]);
    return ACCEPT;
  },
};
