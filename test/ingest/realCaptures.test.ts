/**
 * Real captures from ../shared (beside the repository): the oracle's scenarios, whose
 * verdicts.jsonl has one line per IP packet of packets.pcap, and public captures by others.
 * The folder is not part of the repository; without it these tests are skipped by name.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { internetChecksum } from '../../ingest/capture/frameBuilders';
import { readAllPackets } from '../../ingest/packetSource';
import type { CapturedPacket } from '../../processors/packet';
import { tcpFlagText } from './helpers';

const SCENARIOS = path.resolve(__dirname, '../../../shared/oracle/scenarios');
const PUBLIC = path.resolve(__dirname, '../../../shared/captures/public');
const hasScenarios = fs.existsSync(SCENARIOS);
const hasPublic = fs.existsSync(PUBLIC);

/** How verdicts.jsonl names protocols; anything else is the number as text. */
const PROTO_NAMES: Record<number, string> = { 1: 'icmp', 2: 'igmp', 6: 'tcp', 17: 'udp', 47: 'gre', 58: 'icmpv6', 132: 'sctp' };

interface Verdict {
  i: number;
  ts: number;
  proto: string;
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  flags?: string;
  type?: number;
  code?: number;
}

/** The fields of a decoded packet in the verdict's vocabulary, for one readable toEqual. */
function asVerdict(p: CapturedPacket, v: Verdict): Partial<Verdict> {
  const l4 = p.ip.l4;
  const out: Partial<Verdict> = { i: p.index, proto: PROTO_NAMES[p.ip.proto] ?? String(p.ip.proto), src: p.ip.src, dst: p.ip.dst };
  if (v.sport !== undefined && l4 && 'sport' in l4) Object.assign(out, { sport: l4.sport, dport: l4.dport });
  if (v.flags !== undefined && l4?.kind === 'tcp') out.flags = tcpFlagText(l4.flags);
  if (v.type !== undefined && (l4?.kind === 'icmp' || l4?.kind === 'icmpv6')) Object.assign(out, { type: l4.type, code: l4.code });
  return out;
}

function pick(v: Verdict): Partial<Verdict> {
  const { i, proto, src, dst, sport, dport, flags, type, code } = v;
  return Object.fromEntries(Object.entries({ i, proto, src, dst, sport, dport, flags, type, code }).filter(([, x]) => x !== undefined));
}

const scenarioDirs = hasScenarios
  ? fs.readdirSync(SCENARIOS).filter((d) => fs.existsSync(path.join(SCENARIOS, d, 'packets.pcap')))
  : [];

// Decided at load time: jest rejects test.each over an empty table, so nothing is declared
// over the folder's contents unless it exists; a skipped test says why instead.
if (!hasScenarios) test.skip('oracle scenarios (skipped: ../shared absent)', () => undefined);
else describe('oracle scenarios: decoded packets match verdicts.jsonl', () => {
  test.each(scenarioDirs)('%s', (dir) => {
    const verdicts: Verdict[] = fs
      .readFileSync(path.join(SCENARIOS, dir, 'verdicts.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Verdict);
    const { packets, summary } = readAllPackets(fs.readFileSync(path.join(SCENARIOS, dir, 'packets.pcap')));
    expect(summary.malformed).toEqual([]);
    expect(summary.captureProblem).toBeUndefined();
    expect(packets).toHaveLength(verdicts.length);
    expect(packets.map((p, k) => asVerdict(p, verdicts[k]))).toEqual(verdicts.map(pick));
    // packets.pcap is stamped with the kernel's time for each verdict.
    expect(packets.map((p) => p.tsUs)).toEqual(verdicts.map((v) => Math.round(v.ts * 1e6)));
  });

  test('IPv4 header checksums written by the oracle verify with internetChecksum', () => {
    const { packets } = readAllPackets(fs.readFileSync(path.join(SCENARIOS, scenarioDirs[0], 'packets.pcap')));
    const v4 = packets.filter((p) => p.ip.family === 4);
    expect(v4.length).toBeGreaterThan(0);
    for (const p of v4) expect(internetChecksum(p.ip.bytes!.subarray(0, p.ip.l4Offset))).toBe(0);
  });
});

/** MANIFEST.tsv columns: file, ..., packets (frames), linktype, ip_packets, ... */
function manifest(): Map<string, { frames: number; ip: number }> {
  const rows = fs.readFileSync(path.join(PUBLIC, 'MANIFEST.tsv'), 'utf8').trim().split('\n');
  const header = rows[0].split('\t');
  const col = (name: string) => header.indexOf(name);
  return new Map(
    rows.slice(1).map((r) => {
      const f = r.split('\t');
      return [f[col('file')], { frames: Number(f[col('packets')]), ip: Number(f[col('ip_packets')]) }];
    }),
  );
}

const publicFiles = hasPublic ? fs.readdirSync(PUBLIC).filter((f) => /\.pcap(ng)?$/.test(f)) : [];
if (!hasPublic) test.skip('public captures (skipped: ../shared absent)', () => undefined);
else describe('public captures decode without exceptions', () => {
  const counts = fs.existsSync(path.join(PUBLIC, 'MANIFEST.tsv')) ? manifest() : new Map();

  test.each(publicFiles)('%s', (file) => {
    const { packets, summary } = readAllPackets(fs.readFileSync(path.join(PUBLIC, file)));
    expect(summary.captureProblem).toBeUndefined();
    expect(packets.every((p, k) => p.index === k)).toBe(true);
    const expected = counts.get(file);
    if (expected) expect({ frames: summary.frames, ip: summary.ipPackets }).toEqual(expected);
  });
});
