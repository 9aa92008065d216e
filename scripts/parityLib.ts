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
import type { ExpectEvent } from '../processors/conntrack/helpers/expectations';
import { formatExpectation } from '../sinks/conntrackText';
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
  /** conntrack -E expect and the final conntrack -L expect (helpers only): lines that differ. */
  expectEvents: number;
  expectMismatches: Array<{ at: number; kernel: string; ctflow: string }>;
  expectTableMismatches: Array<{ kernel: string; ctflow: string }>;
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

/** The ctflow options the oracle's arguments correspond to; `unsupported` when they need a feature ctflow lacks. */
export function oracleArgs(dir: string): OracleOptions | { unsupported: string } {
  const argsFile = join(dir, 'ctflow-args');
  if (!existsSync(argsFile)) return argsFromMeta(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')));
  const words = shellWords(readFileSync(argsFile, 'utf8').trim());
  const sysctl: string[] = [];
  const notrack: string[] = [];
  const nat: string[] = [];
  const helper: string[] = [];
  for (let k = 0; k < words.length; k++) {
    const w = words[k];
    if (w === '--sysctl') sysctl.push(words[++k]);
    else if (w === '--notrack') notrack.push(words[++k]);
    else if (w === '--nat') nat.push(words[++k]);
    else if (w === '--helper') helper.push(words[++k]);
    else if (w === '--ftp-helper-port') helper.push(`ftp:tcp/${words[++k]}`);
    else if (w.startsWith('--') && !['--keep-addresses', '--realtime', '--strict'].includes(w)) k++; // oracle-only options with a value
  }
  return { sysctl, rules: parseRuleOptions({ notrack, nat, helper }) };
}

/** Older oracle outputs record the router's sysctls and the rules instead of the command line. */
function argsFromMeta(meta: Record<string, any>): OracleOptions | { unsupported: string } {
  // `helpers` lists every assignment as NAME:PROTO/PORT, --ftp-helper-port ones included.
  const helper: string[] = Array.isArray(meta.helpers) && meta.helpers.length
    ? meta.helpers.map(String)
    : ((meta.ftp_helper_ports ?? []) as number[]).map((port) => `ftp:tcp/${port}`);
  const sysctl: string[] = [];
  const ignore = new Set(['nf_conntrack_checksum', 'nf_conntrack_events']); // set by the oracle for its own replay
  for (const [name, value] of Object.entries((meta.sysctls ?? {}) as Record<string, string>)) {
    const bare = name.replace(/^net\.netfilter\./, '');
    if (ignore.has(bare) || !(bare in SYSCTL_DEFAULTS)) continue;
    if (Number(value) !== SYSCTL_DEFAULTS[bare as keyof typeof SYSCTL_DEFAULTS]) sysctl.push(`${bare}=${value}`);
  }
  const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
  return { sysctl, rules: parseRuleOptions({ notrack: list(meta.notrack), nat: list(meta.nat), helper }) };
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
  const result: ParityResult = { name, packets: 0, agree: 0, mismatches: [], flows: 0, flowsAgree: 0, flowMismatches: [], tableEntries: 0, tableMismatches: [], expectEvents: 0, expectMismatches: [], expectTableMismatches: [] };
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
  const expectEvents: ExpectEvent[] = [];
  const pipeline = new ConntrackPipeline(
    { verdict: (v) => verdicts.push(v), event: (e) => events.push(e), expectEvent: (e) => expectEvents.push(e) },
    { sysctl: makeSysctl(args.sysctl), shards, rules: args.rules },
  );
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
  compareExpectations(dir, expectEvents, pipeline.engine.expectations().map(formatExpectation), result);
  return result;
}

/**
 * An expectation line without what depends on the clock: the event's timestamp, and the
 * remaining timeout, which is compared apart within a second (the kernel counts jiffies).
 */
function expectLine(line: string): { type: string; timeout: number; rest: string } {
  const m = /^(?:\[[\d. ]+\]\s+\[(\w+)\]\s+)?(\d+) (.*)$/.exec(line.trim());
  if (!m) return { type: '?', timeout: -1, rest: line.trim() };
  return { type: m[1] ?? '', timeout: Number(m[2]), rest: m[3] };
}

function readLines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()) : [];
}

/** conntrack -E expect, line by line in order, and the final conntrack -L expect as a set (timeouts aside: the kernel listed it later). */
function compareExpectations(dir: string, ours: ExpectEvent[], ourTable: string[], result: ParityResult): void {
  const kernel = readLines(join(dir, 'expect-events.txt')).map(expectLine);
  const mine = ours.map((e) => ({ type: e.type, timeout: e.expectation.timeout, rest: formatExpectation(e.expectation).replace(/^\d+ /, '') }));
  result.expectEvents = Math.max(kernel.length, mine.length);
  for (let i = 0; i < result.expectEvents; i++) {
    const k = kernel[i], o = mine[i];
    const same = k && o && k.type === o.type && k.rest === o.rest && Math.abs(k.timeout - o.timeout) <= 1;
    if (!same) result.expectMismatches.push({ at: i, kernel: k ? `${k.type} ${k.timeout} ${k.rest}` : 'missing', ctflow: o ? `${o.type} ${o.timeout} ${o.rest}` : 'missing' });
  }
  const kernelTable = readLines(join(dir, 'expect.txt')).map((l) => expectLine(l).rest).sort();
  const ourRest = ourTable.map((l) => expectLine(l).rest).sort();
  for (let i = 0; i < Math.max(kernelTable.length, ourRest.length); i++) {
    if (kernelTable[i] !== ourRest[i]) result.expectTableMismatches.push({ kernel: kernelTable[i] ?? 'missing', ctflow: ourRest[i] ?? 'missing' });
  }
}
