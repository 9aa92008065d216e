/**
 * One conntrack entry as a changelog value: the format version, its ConnStore record copied as
 * it is (the kernel's struct nf_conn fields: tuples, status, timeouts, counters, TCP window
 * state, and the expiry-queue key), its IPv6 addresses, and the rare parts kept outside the
 * record: SCTP's private state (store.extra), helper data (nf_conn_help: FTP newline tracking,
 * seqadj, master, use count) and whether NAT's by-source index holds it. What the engine builds
 * from entries (the tuple hash, the expiry heap, the early-drop queue, the creation chain, NAT's
 * by-source lists) is not saved: ConntrackShard.restoreEntry rebuilds it.
 *
 * Layout: u8 ENTRY_FORMAT | RECORD_BYTES record | (IPv6 only) 4 strings: orig src, orig dst,
 * reply src, reply dst | u8 flags (1 extra, 2 help, 4 NAT-indexed) | extra value | help value.
 * The caller may append more (the partition's accounting of the flow).
 */
import type { ConnHelp } from '../helpers';
import { HELPERS } from '../helpers';
import type { NatFollow } from '../helpers/expectations';
import { FtpState } from '../helpers/ftp';
import { SeqAdjust } from '../helpers/seqadj';
import type { ConntrackShard } from '../shard';
import { LIFE_CONFIRMED, LIFE_USED, RECORD_BYTES } from '../store';
import type { ByteReader, ByteWriter } from './bytes';

/** Bump on any change of the layout above or of ConnStore's record layout (store.ts). */
export const ENTRY_FORMAT = 1;

const HAS_EXTRA = 1, HAS_HELP = 2, NAT_INDEXED = 4;

export function writeEntry(w: ByteWriter, shard: ConntrackShard, slot: number): void {
  const store = shard.store;
  w.u8(ENTRY_FORMAT);
  w.raw(store.recordBytes(slot));
  if (store.kind(slot) & 1) {
    for (const dir of [0, 1]) {
      w.str(store.src6Of(slot, dir));
      w.str(store.dst6Of(slot, dir));
    }
  }
  const extra = store.extra.get(slot);
  const help = shard.helpOf(slot);
  w.u8((extra !== undefined ? HAS_EXTRA : 0) | (help !== undefined ? HAS_HELP : 0) | (shard.natIndexed(slot) ? NAT_INDEXED : 0));
  if (extra !== undefined) w.value(extra);
  if (help !== undefined) w.value(plainHelp(help));
}

/** An entry read back into the shard's store (not yet in its table: see ConntrackShard.restoreEntry). */
export interface LoadedEntry {
  id: number;
  slot: number;
  /** Its helper data; `master` is filled in once every entry is loaded (see linkMasters). */
  help?: ConnHelp;
  natIndexed: boolean;
}

export function readEntry(r: ByteReader, shard: ConntrackShard): LoadedEntry {
  const version = r.u8();
  if (version !== ENTRY_FORMAT) r.fail(`unknown entry format version ${version} (this build reads version ${ENTRY_FORMAT})`);
  const record = r.raw(RECORD_BYTES);
  const kind = record[0] | (record[1] << 8) | (record[2] << 16) | (record[3] << 24);
  const addr6 = kind & 1 ? [r.str(), r.str(), r.str(), r.str()] : undefined;
  const flags = r.u8();
  const extra = flags & HAS_EXTRA ? r.value() : undefined;
  const help = flags & HAS_HELP ? helpFromPlain(r, r.value()) : undefined;
  const store = shard.store;
  const slot = store.loadRecord(record, addr6);
  if (store.life(slot) !== (LIFE_USED | LIFE_CONFIRMED)) r.fail(`not a confirmed entry (life ${store.life(slot)})`);
  if (extra !== undefined) store.extra.set(slot, extra);
  return { id: store.id(slot), slot, help, natIndexed: (flags & NAT_INDEXED) !== 0 };
}

/**
 * An expected connection's help data points at its master's (whose use count it holds up); a
 * master destroyed before it leaves a pointer nothing reads again but the decrement when the child
 * goes, so an absent master is no pointer at all.
 */
export function linkMasters(entries: readonly LoadedEntry[]): Map<number, ConnHelp> {
  const byId = new Map<number, ConnHelp>();
  for (const e of entries) if (e.help) byId.set(e.id, e.help);
  for (const e of entries) {
    if (e.help?.masterId === undefined) continue;
    const master = byId.get(e.help.masterId);
    if (master) e.help.master = master;
  }
  return byId;
}

/** ConnHelp as plain data: [helper, ftp newline seqs, masterId, children, follow, seqadj]. */
function plainHelp(h: ConnHelp): unknown[] {
  return [
    h.helper?.name ?? null,
    h.ftp ? h.ftp.afterNewline.map((seqs) => [...seqs]) : null,
    h.masterId ?? null,
    h.children,
    h.follow ?? null,
    h.seqadj ? h.seqadj.map((a) => [a.correctionPos, a.offsetBefore, a.offsetAfter]) : null,
  ];
}

function helpFromPlain(r: ByteReader, v: unknown): ConnHelp {
  if (!Array.isArray(v) || v.length !== 6) return r.fail('bad helper data');
  const [helper, ftp, masterId, children, follow, seqadj] = v as [string | null, number[][] | null, number | null, number, NatFollow | null, number[][] | null];
  const help: ConnHelp = { children };
  if (helper !== null) {
    if (helper !== 'ftp' && helper !== 'tftp') r.fail(`unknown helper '${helper}'`);
    help.helper = HELPERS[helper];
  }
  if (ftp !== null) {
    help.ftp = new FtpState();
    help.ftp.afterNewline[0].push(...ftp[0]);
    help.ftp.afterNewline[1].push(...ftp[1]);
  }
  if (masterId !== null) help.masterId = masterId;
  if (follow !== null) help.follow = follow;
  if (seqadj !== null) {
    help.seqadj = [new SeqAdjust(), new SeqAdjust()];
    seqadj.forEach(([pos, before, after], dir) => Object.assign(help.seqadj![dir], { correctionPos: pos, offsetBefore: before, offsetAfter: after }));
  }
  return help;
}
