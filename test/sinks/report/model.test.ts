/**
 * The report's model against ctflow's other commands on the same capture: the numbers a reader
 * sees in the report are those `ctflow stats`, `list`, `events` and `classify` print.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { buildReportModel } from '../../../cli/report';
import { parseRuleOptions } from '../../../cli/rules';
import { captureZoneOf } from '../../../cli/zoneOptions';
import { loadCapture } from '../../../cli/runCapture';
import { makeSysctl } from '../../../processors/conntrack/sysctl';
import type { ReportModel } from '../../../sinks/report/collect';
import { encodeReport } from '../../../sinks/report/encode';
import { CTSTATES, DIRECTIONS, EVENT_TYPES, FATES, ctstateOf, dirOf, undelta } from '../../../sinks/report/reportData';
import { captureWithBadFrames, ctflow, jsonLines } from './reportHelpers';

const sample = join(__dirname, '..', '..', 'fixtures', 'sample.pcap');
const sum = (a: number[]): number => a.reduce((x, y) => x + y, 0);

describe.each([
  ['sample.pcap, default knobs', []],
  ['sample.pcap, tcp_be_liberal=1 and a small table', ['nf_conntrack_tcp_be_liberal=1', 'nf_conntrack_max=200']],
])('report model of %s', (_name, knobs: string[]) => {
  const sysctlArgs = knobs.flatMap((k) => ['--sysctl', k]);
  let model: ReportModel;
  const col = (name: keyof ReportModel['columns']): ArrayLike<number> => model.columns[name];
  beforeAll(() => {
    model = buildReportModel(loadCapture(sample), 'sample.pcap', makeSysctl(knobs), 1);
  });

  test('the conntrack -S counters are those of ctflow stats', () => {
    expect(model.meta.stats).toEqual(jsonLines('stats', sample, '--json', ...sysctlArgs)[0]);
  });

  test('verdicts per packet are those of ctflow classify, and so are their totals', () => {
    const lines = jsonLines('classify', sample, ...sysctlArgs);
    expect(model.meta.capture.packets).toBe(lines.length);
    const s = model.meta.strings;
    const ours = lines.map((_, i) => {
      const code = col('pVerdict')[i];
      const row = col('pFlow')[i];
      return {
        i,
        ctstate: CTSTATES[ctstateOf(code)],
        dir: DIRECTIONS[dirOf(code)] || null,
        state: s.states[col('pState')[i]] || undefined,
        reason: s.reasons[col('pReason')[i]] || undefined,
        flow: row >= 0 ? col('fId')[row] : undefined,
        frame: col('pFrame')[i],
      };
    });
    expect(ours).toEqual(lines.map((l) => ({ i: l.i, ctstate: l.ctstate, dir: l.dir, state: l.state, reason: l.reason, flow: l.flow, frame: l.frame })));
    const totals: Record<string, number> = Object.fromEntries(CTSTATES.map((c) => [c, 0]));
    lines.forEach((l) => totals[l.ctstate]++);
    expect(model.meta.verdicts).toEqual(totals);
    for (const l of lines.filter((x) => x.detail)) expect(model.meta.details[l.i]?.detail).toEqual(l.detail);
  });

  test('events and flows are those of ctflow events', () => {
    const events = jsonLines('events', sample, '--json', ...sysctlArgs);
    expect(model.meta.eventCount).toBe(events.length);
    const byType: Record<string, number> = Object.fromEntries(EVENT_TYPES.map((t) => [t, 0]));
    events.forEach((e) => byType[e.type]++);
    expect(model.meta.events).toEqual(byType);
    const newByProto: Record<string, number> = {};
    events.filter((e) => e.type === 'NEW').forEach((e) => (newByProto[e.proto] = (newByProto[e.proto] ?? 0) + 1));
    expect(model.meta.flowsByProto).toEqual(newByProto);
    // Each destroyed flow row ends the way its DESTROY event says.
    const destroyed = new Map(events.filter((e) => e.type === 'DESTROY').map((e) => [e.id, e.reason]));
    const rowsDestroyed = new Map<number, string>();
    for (let r = 0; r < col('fId').length; r++) if (col('fFate')[r] !== 0) rowsDestroyed.set(col('fId')[r], FATES[col('fFate')[r]]);
    expect(rowsDestroyed).toEqual(destroyed);
    expect(sum(model.meta.series.newEntries)).toBe(byType.NEW);
  });

  test('the flows still open are the table of ctflow list, with the same counters', () => {
    const listed = jsonLines('list', sample, '--json', ...sysctlArgs);
    const s = model.meta.strings;
    const open: Array<Record<string, unknown>> = [];
    for (let r = 0; r < col('fId').length; r++) {
      if (col('fFate')[r] !== 0) continue;
      open.push({
        id: col('fId')[r], proto: s.protos[col('fProto')[r]], state: s.states[col('fState')[r]] || null, timeout: col('fTimeout')[r],
        src: s.addresses[col('fOrigSrc')[r]], dst: s.addresses[col('fOrigDst')[r]],
        packets: [col('fOrigPackets')[r], col('fReplyPackets')[r]], bytes: [col('fOrigBytes')[r], col('fReplyBytes')[r]],
      });
    }
    const sortById = (a: Array<Record<string, unknown>>): Array<Record<string, unknown>> => [...a].sort((x, y) => (x.id as number) - (y.id as number));
    expect(sortById(open)).toEqual(sortById(listed.map((f) => ({
      id: f.id, proto: f.proto, state: f.state, timeout: f.timeout, src: f.orig.src, dst: f.orig.dst,
      packets: [f.orig.packets, f.reply.packets], bytes: [f.orig.bytes, f.reply.bytes],
    }))));
    // The table-entries series ends with the table ctflow list shows, category by category.
    const atEnd: Record<string, number> = {};
    listed.forEach((f) => { const k = `${f.proto}${f.state ? ` ${f.state}` : ''}`; atEnd[k] = (atEnd[k] ?? 0) + 1; });
    const last: Record<string, number> = {};
    for (const [k, v] of Object.entries(model.meta.series.entries)) if (v[v.length - 1]) last[k] = v[v.length - 1];
    expect(last).toEqual(atEnd);
  });

  test('the time series add up to the totals, and the TCP transition matrix to the state changes classify shows', () => {
    const ser = model.meta.series;
    expect(ser.buckets).toBeGreaterThan(1);
    for (const c of CTSTATES) expect(sum(ser.verdicts[c])).toBe(model.meta.verdicts[c]);
    for (const [r, n] of Object.entries(model.meta.invalidReasons)) expect(sum(ser.invalidByReason[r])).toBe(n);
    expect(ser.startUs + ser.buckets * ser.bucketUs).toBeGreaterThan(model.meta.capture.lastUs);
    const tcpFlows = new Set(jsonLines('events', sample, '--json', ...sysctlArgs).filter((e) => e.proto === 'tcp').map((e) => e.id));
    const last = new Map<number, string>();
    const changes = new Map<string, number>();
    for (const l of jsonLines('classify', sample, ...sysctlArgs)) {
      if (l.flow === undefined || l.state === undefined || !tcpFlows.has(l.flow)) continue;
      const before = last.get(l.flow) ?? '';
      if (before !== l.state) changes.set(`${before}>${l.state}`, (changes.get(`${before}>${l.state}`) ?? 0) + 1);
      last.set(l.flow, l.state);
    }
    const { states, counts } = model.meta.transitions;
    const matrix = new Map<string, number>();
    states.forEach((from, r) => states.forEach((to, k) => counts[r][k] && matrix.set(`${from}>${to}`, counts[r][k])));
    expect(matrix).toEqual(changes);
    expect(matrix.size).toBeGreaterThan(3);
  });

  test('the columns survive encoding: gunzip of the base64, then undelta where marked, gives each column back at its offset', () => {
    const enc = encodeReport(model);
    const buf = gunzipSync(Buffer.from(enc.columnsBase64, 'base64'));
    expect(buf.length).toBe(enc.rawBytes);
    expect(Object.values(enc.meta.columns).filter((r) => r.delta).length).toBeGreaterThan(3);
    for (const [name, ref] of Object.entries(enc.meta.columns)) {
      expect(ref.offset % 8).toBe(0);
      const original = model.columns[name as keyof ReportModel['columns']];
      const bytes = Uint8Array.from(buf.subarray(ref.offset, ref.offset + original.byteLength));
      const copy = new (original.constructor as new (b: ArrayBuffer) => Uint32Array)(bytes.buffer);
      if (ref.delta) undelta(copy);
      expect(Buffer.from(copy.buffer).equals(Buffer.from(original.buffer, original.byteOffset, original.byteLength))).toBe(true);
      expect(ref.length).toBe(original.length);
    }
  });
});

test('with nf_conntrack_events=0 the open flows are still known, and their packets linked to them as ctflow classify links them', () => {
  const model = buildReportModel(loadCapture(sample), 'sample.pcap', makeSysctl(['nf_conntrack_events=0']), 1);
  const listed = jsonLines('list', sample, '--json', '--sysctl', 'nf_conntrack_events=0');
  expect(model.meta.flowCount).toBe(listed.length);
  expect(model.meta.eventCount).toBe(0);
  const open = new Set(listed.map((f) => f.id));
  const lines = jsonLines('classify', sample, '--sysctl', 'nf_conntrack_events=0');
  const linked = lines.filter((l) => open.has(l.flow));
  expect(linked.length).toBeGreaterThan(1000);
  for (const l of linked) expect(model.columns.fId[model.columns.pFlow[l.i]]).toBe(l.flow);
  for (const l of lines.filter((x) => !open.has(x.flow))) expect(model.columns.pFlow[l.i]).toBe(-1);
});

test('a capture with bad frames: they are listed with index and reason, as the other commands report them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctflow-report-'));
  const path = join(dir, 'bad.pcap');
  writeFileSync(path, captureWithBadFrames());
  const model = buildReportModel(loadCapture(path), 'bad.pcap', makeSysctl(), 1);
  const stderr = ctflow('stats', path).err;
  expect(model.meta.capture.badFrames.map((b) => b.frame)).toEqual([2, 5]);
  for (const b of model.meta.capture.badFrames) expect(stderr).toContain(`ctflow: frame ${b.frame}: ${b.reason}`);
  expect(model.meta.capture.captureProblem).toBeDefined();
  expect(stderr.some((l) => l.includes(`frame ${model.meta.capture.captureProblem!.frame}`) && l.includes('the capture ends there'))).toBe(true);
  expect(model.meta.capture.packets).toBe(5);
  expect(model.meta.flowsByProto).toEqual({ udp: 1, tcp: 1 });
});

test('NOTRACK rules and zones given to report are those the engine runs with, as in ctflow classify and stats', () => {
  const args = ['--notrack', 'udp/53', '--zone-default', '4'];
  const model = buildReportModel(loadCapture(sample), 'sample.pcap', makeSysctl(), 1, {}, { rules: parseRuleOptions({ notrack: ['udp/53'] }), zoneOf: captureZoneOf({ zoneDefault: '4' }) });
  const classified = jsonLines('classify', sample, ...args);
  const untracked = classified.filter((v) => v.ctstate === 'UNTRACKED').length;
  expect(untracked).toBeGreaterThan(0);
  expect(model.meta.verdicts.UNTRACKED).toBe(untracked);
  expect(model.meta.stats).toEqual(jsonLines('stats', sample, '--json', ...args)[0]);
});
