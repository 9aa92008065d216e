/**
 * Kernel parity: runs ctflow on an oracle output folder's packets.pcap (the packets as the kernel
 * saw them, with its timestamps) with the sysctls the oracle used, and compares per-packet
 * verdicts (ctstate and direction) and per-flow event sequences (type, TCP/SCTP state when
 * printed, UNREPLIED/ASSURED). Shared by the `npm run parity` script and the jest tests.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPackets } from '../ingest/packetSource';
import type { FlowEvent, Tuple } from '../processors/flow';
import { STATUS } from '../processors/flow';
import { ConntrackPipeline } from '../processors/pipeline';
import type { PacketVerdict } from '../processors/pipeline';
import { SYSCTL_DEFAULTS, makeSysctl } from '../processors/conntrack/sysctl';
import { parseConntrackLine } from '../ingest/flowEvents/conntrackText';
import type { ParsedCtLine } from '../ingest/flowEvents/conntrackText';
import type { ConntrackRules } from '../processors/conntrack/rules';
import { parseRuleOptions } from '../cli/rules';
import { compareNatTable } from './parityTable';
import type { TableMismatch } from './parityTable';

export interface OracleVerdict {
  i: number;
  ctstate: string;
  dir: string | null;
}


export interface ParityResult {
  name: string;
  /** Why the capture was not compared (helpers, NAT or NOTRACK belong to another issue). */
  skipped?: string;
  packets: number;
  agree: number;
  mismatches: Array<{ i: number; kernel: string; ctflow: string; reason?: string }>;
  flows: number;
  flowsAgree: number;
  flowMismatches: Array<{ flow: string; kernel: string[]; ctflow: string[] }>;
  /** With NAT rules: the final table's entries (table.txt) whose reply tuple ctflow does not reproduce. */
  tableEntries: number;
  tableMismatches: TableMismatch[];
}

export interface OracleOptions {
  sysctl: string[];
  rules: ConntrackRules;
}

/** The words of an arguments file, with the shell's single and double quotes (`--notrack 'ip saddr 198.18.0.9'`). */
export function shellWords(text: string): string[] {
  const words: string[] = [];
  const re = /'([^']*)'|"([^"]*)"|(\S+?)(?=\s|'|"|$)|(\s+)/g;
  let word: string | undefined;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m[4] !== undefined) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else word = (word ?? '') + (m[1] ?? m[2] ?? m[3]);
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** The ctflow options the oracle's arguments correspond to; `unsupported` when they need a feature ctflow lacks (helpers, for now). */
export function oracleArgs(dir: string): OracleOptions | { unsupported: string } {
  const argsFile = join(dir, 'ctflow-args');
  if (!existsSync(argsFile)) return argsFromMeta(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')));
  const words = shellWords(readFileSync(argsFile, 'utf8').trim());
  const sysctl: string[] = [];
  const notrack: string[] = [];
  const nat: string[] = [];
  for (let k = 0; k < words.length; k++) {
    const w = words[k];
    if (w === '--sysctl') sysctl.push(words[++k]);
    else if (w === '--notrack') notrack.push(words[++k]);
    else if (w === '--nat') nat.push(words[++k]);
    else if (/^--(helper|ftp-helper-port)$/.test(w)) return { unsupported: `${w} ${words[k + 1]}` };
    else if (w.startsWith('--') && !['--keep-addresses', '--realtime', '--strict'].includes(w)) k++; // oracle-only options with a value
  }
  return { sysctl, rules: parseRuleOptions({ notrack, nat }) };
}

/** Older oracle outputs record the router's sysctls and the rules instead of the command line. */
function argsFromMeta(meta: Record<string, any>): OracleOptions | { unsupported: string } {
  for (const rule of ['ftp_helper_ports', 'helpers'] as const) {
    const v = meta[rule];
    if (Array.isArray(v) ? v.length > 0 : v) return { unsupported: `${rule} ${JSON.stringify(v)}` };
  }
  const sysctl: string[] = [];
  const ignore = new Set(['nf_conntrack_checksum', 'nf_conntrack_events']); // set by the oracle for its own replay
  for (const [name, value] of Object.entries((meta.sysctls ?? {}) as Record<string, string>)) {
    const bare = name.replace(/^net\.netfilter\./, '');
    if (ignore.has(bare) || !(bare in SYSCTL_DEFAULTS)) continue;
    if (Number(value) !== SYSCTL_DEFAULTS[bare as keyof typeof SYSCTL_DEFAULTS]) sysctl.push(`${bare}=${value}`);
  }
  const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
  return { sysctl, rules: parseRuleOptions({ notrack: list(meta.notrack), nat: list(meta.nat) }) };
}

function flowKey(proto: number, o: Tuple): string {
  const ports = o.icmp ? `${o.icmp.type}/${o.icmp.code}/${o.icmp.id}` : `${o.sport}/${o.dport}`;
  return `${proto} ${o.src} ${o.dst} ${ports}`;
}

function stepFromOracle(e: ParsedCtLine): string {
  const flags = ['UNREPLIED', 'ASSURED'].filter((f) => e.flags.includes(f)).join(',');
  return `${e.type}:${e.state ?? ''}:${flags}`;
}

function stepFromCtflow(e: FlowEvent): string {
  const shown = e.type === 'DESTROY' || e.protoinfo;
  const flags = [!(e.flow.status & STATUS.SEEN_REPLY) ? 'UNREPLIED' : '', e.flow.status & STATUS.ASSURED ? 'ASSURED' : '']
    .filter(Boolean)
    .join(',');
  return `${e.type}:${shown ? (e.flow.state ?? '') : ''}:${flags}`;
}

/** Splits each flow's events into lifetimes (a NEW starts one), keyed `flow#n`. */
function lifetimes<E>(events: E[], key: (e: E) => string, step: (e: E) => string, isNew: (e: E) => boolean): Map<string, string[]> {
  const gen = new Map<string, number>();
  const out = new Map<string, string[]>();
  for (const e of events) {
    const k = key(e);
    let n = gen.get(k) ?? 0;
    if (isNew(e) || n === 0) gen.set(k, (n = n + 1));
    const id = `${k}#${n}`;
    if (!out.has(id)) out.set(id, []);
    out.get(id)!.push(step(e));
  }
  return out;
}

/**
 * Whether two lifetimes agree. The kernel reaps expired entries lazily (on lookup or from its GC
 * worker), so an entry that expired near the end of the replay may lack its DESTROY in the
 * kernel's stream; that one trailing difference is not counted as a disagreement.
 */
function sameLifetime(kernel: string[], ours: string[]): boolean {
  if (kernel.join('|') === ours.join('|')) return true;
  return ours.length === kernel.length + 1 && ours[ours.length - 1].startsWith('DESTROY') && ours.slice(0, -1).join('|') === kernel.join('|');
}

export function compareOracleDir(dir: string, name: string, shards = 1): ParityResult {
  const result: ParityResult = { name, packets: 0, agree: 0, mismatches: [], flows: 0, flowsAgree: 0, flowMismatches: [], tableEntries: 0, tableMismatches: [] };
  const args = oracleArgs(dir);
  if ('unsupported' in args) return { ...result, skipped: args.unsupported };
  const kernelVerdicts: OracleVerdict[] = readFileSync(join(dir, 'verdicts.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const kernelEvents: ParsedCtLine[] = existsSync(join(dir, 'events.txt'))
    ? readFileSync(join(dir, 'events.txt'), 'utf8').split('\n').filter((l) => l.trim()).map(parseConntrackLine)
    : [];
  const verdicts: PacketVerdict[] = [];
  const events: FlowEvent[] = [];
  const pipeline = new ConntrackPipeline({ verdict: (v) => verdicts.push(v), event: (e) => events.push(e) }, { sysctl: makeSysctl(args.sysctl), shards, rules: args.rules });
  const buf = readFileSync(join(dir, 'packets.pcap'));
  for (const p of readPackets(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength))) pipeline.push(p);
  pipeline.end();

  const byIndex = new Map(verdicts.map((v) => [v.index, v]));
  for (const k of kernelVerdicts) {
    result.packets++;
    const v = byIndex.get(k.i);
    const ours = v ? `${v.ctstate}/${v.dir}` : 'missing';
    const theirs = `${k.ctstate}/${k.dir}`;
    if (ours === theirs) result.agree++;
    else result.mismatches.push({ i: k.i, kernel: theirs, ctflow: ours, ...(v?.reason ? { reason: v.reason } : {}) });
  }

  const theirs = lifetimes(kernelEvents, (e) => flowKey(e.proto, e.orig), stepFromOracle, (e) => e.type === 'NEW');
  const ours = lifetimes(events, (e) => flowKey(e.flow.proto, e.flow.orig), stepFromCtflow, (e) => e.type === 'NEW');
  for (const id of new Set([...theirs.keys(), ...ours.keys()])) {
    result.flows++;
    const k = theirs.get(id) ?? [];
    const o = ours.get(id) ?? [];
    if (sameLifetime(k, o)) result.flowsAgree++;
    else result.flowMismatches.push({ flow: id, kernel: k, ctflow: o });
  }

  if (args.rules.nat?.length && existsSync(join(dir, 'table.txt'))) {
    const kernelTable = readFileSync(join(dir, 'table.txt'), 'utf8').split('\n').filter((l) => l.trim()).map(parseConntrackLine);
    const t = compareNatTable(kernelTable, pipeline.engine.list());
    result.tableEntries = t.entries;
    result.tableMismatches = t.mismatches;
  }
  return result;
}
