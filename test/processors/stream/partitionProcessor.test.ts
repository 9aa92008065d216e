import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPackets } from '../../../ingest/packetSource';
import { ConntrackPipeline } from '../../../processors/pipeline';
import { makeSysctl } from '../../../processors/conntrack/sysctl';
import { PartitionProcessor } from '../../../processors/stream/partitionProcessor';
import type { FlowAccountingRecord, FlowEvent } from '../../../processors/flow';
import { parseNat } from '../../../processors/conntrack/rules/nat';
import { parseNotrack } from '../../../processors/conntrack/rules/notrack';

const sample = new Uint8Array(readFileSync(join(__dirname, '..', '..', 'fixtures', 'sample.pcap')));

function runProcessor(activeTimeoutUs: number, advanceToEnd = 0): { events: FlowEvent[]; records: FlowAccountingRecord[]; proc: PartitionProcessor } {
  const proc = new PartitionProcessor({ sysctl: makeSysctl(), activeTimeoutUs, verdicts: false });
  const events: FlowEvent[] = [];
  const records: FlowAccountingRecord[] = [];
  let last = 0;
  for (const p of readPackets(sample)) {
    const { index: _index, ...rest } = p;
    proc.push(rest);
    last = p.tsUs;
    const o = proc.drain();
    events.push(...o.events);
    records.push(...o.records);
  }
  proc.end();
  if (advanceToEnd) proc.advanceTo(last + advanceToEnd);
  const o = proc.drain();
  events.push(...o.events);
  records.push(...o.records);
  return { events, records, proc };
}

describe('PartitionProcessor', () => {
  test('gives the same events as the in-process pipeline on the same packets', () => {
    const expected: FlowEvent[] = [];
    const pipeline = new ConntrackPipeline({ verdict: () => undefined, event: (e) => expected.push(e) }, { sysctl: makeSysctl() });
    for (const p of readPackets(sample)) pipeline.push(p);
    pipeline.end();
    const { events } = runProcessor(0);
    expect(events.length).toBeGreaterThan(100);
    expect(events.map(({ ctstate: _c, ...e }) => e)).toEqual(expected);
  });

  test("one end record per destroyed flow, whose counters are conntrack's", () => {
    const { events, records } = runProcessor(0, 10 * 86400e6);
    const destroys = events.filter((e) => e.type === 'DESTROY');
    expect(records.every((r) => r.kind === 'end')).toBe(true);
    expect(records.map((r) => r.flow.id)).toEqual(destroys.map((e) => e.flow.id));
    for (const r of records) expect(r.delta).toEqual(r.flow.counters);
  });

  test("with an active timeout, a long flow's records add up to its counters", () => {
    const { records } = runProcessor(2000, 10 * 86400e6);
    const active = records.filter((r) => r.kind === 'active');
    expect(active.length).toBeGreaterThan(0);
    const byFlow = new Map<number, FlowAccountingRecord[]>();
    for (const r of records) byFlow.set(r.flow.id, [...(byFlow.get(r.flow.id) ?? []), r]);
    for (const list of byFlow.values()) {
      const end = list[list.length - 1];
      expect(end.kind).toBe('end');
      const sum = (k: 'orig' | 'reply', f: 'packets' | 'bytes') => list.reduce((n, r) => n + r.delta[k][f], 0);
      expect(sum('orig', 'packets')).toBe(end.flow.counters.orig.packets);
      expect(sum('reply', 'bytes')).toBe(end.flow.counters.reply.bytes);
      for (let i = 1; i < list.length; i++) expect(list[i].tsUs - list[i - 1].tsUs).toBeGreaterThanOrEqual(list[i].kind === 'active' ? 2000 : 0);
    }
  });

  test("each transition carries its packet's ctstate; every INVALID packet is reported with its tuple and reason", () => {
    const verdicts = new Map<number, string>();
    const invalid: Array<{ i: number; reason?: string }> = [];
    const pipeline = new ConntrackPipeline(
      { verdict: (v) => { verdicts.set(v.index, v.ctstate); if (v.ctstate === 'INVALID') invalid.push({ i: v.index, reason: v.reason }); }, event: () => undefined },
      { sysctl: makeSysctl() },
    );
    for (const p of readPackets(sample)) pipeline.push(p);
    pipeline.end();
    const proc = new PartitionProcessor({ sysctl: makeSysctl(), activeTimeoutUs: 0, verdicts: false });
    const events = [];
    const reported = [];
    for (const p of readPackets(sample)) {
      const { index: _index, ...rest } = p;
      proc.push(rest);
      const o = proc.drain();
      events.push(...o.events);
      reported.push(...o.invalid);
    }
    for (const e of events) if (e.packetIndex !== undefined) expect(e.ctstate).toBe(verdicts.get(e.packetIndex));
    expect(invalid.length).toBeGreaterThan(0);
    expect(reported.map((r) => r.reason)).toEqual(invalid.map((v) => v.reason));
    expect(reported.every((r) => r.src && r.dst && r.proto > 0)).toBe(true);
  });

  test('knows the first packet of the oldest open flow, and the next index once all are closed', () => {
    const { proc } = runProcessor(0);
    expect(proc.openFlows).toBeGreaterThan(0);
    expect(proc.oldestOpenPacket()).toBeLessThan(proc.packets);
    proc.advanceTo(Date.UTC(2100, 0) * 1000);
    expect(proc.openFlows).toBe(0);
    expect(proc.oldestOpenPacket()).toBe(proc.packets);
  });

  test('applies NOTRACK and NAT rules like the in-process pipeline', () => {
    const dir = join(__dirname, '..', '..', 'fixtures', 'scenarios', 'nat_hairpin');
    const packets = [...readPackets(new Uint8Array(readFileSync(join(dir, 'packets.pcap'))))];
    const rules = { nat: [parseNat('dnat:tcp/198.18.100.1:80->198.18.0.2:8080'), parseNat('snat:198.18.0.0/24->198.18.200.1')], notrack: [parseNotrack('ip saddr 198.18.50.5')] };
    const expected: string[] = [];
    const pipeline = new ConntrackPipeline({ verdict: (v) => expected.push(`${v.ctstate}/${v.dir}`), event: () => undefined }, { sysctl: makeSysctl(), rules });
    packets.forEach((p) => pipeline.push(p));
    const proc = new PartitionProcessor({ sysctl: makeSysctl(), rules, activeTimeoutUs: 0, verdicts: true });
    for (const { index: _index, ...rest } of packets) proc.push(rest);
    proc.end();
    const out = proc.drain();
    expect(out.verdicts.map((v) => `${v.ctstate}/${v.dir}`)).toEqual(expected);
    expect(expected).toContain('UNTRACKED/null');
    expect(out.events[0].flow.reply).toMatchObject({ src: '198.18.0.2', dst: '198.18.200.1', sport: 8080 });
  });
});

