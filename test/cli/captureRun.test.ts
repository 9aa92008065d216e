/**
 * CaptureRun, the one loop behind runCapture() and the observed (served, paced) replay: taken in
 * steps it judges exactly as in one go; onPacket pairs every verdict with its own packet, held
 * fragments included; malformed frames are reported as met; and the observed replay's batches
 * add up to the capture, paced at --speed when asked.
 */
import { join } from 'node:path';
import { CaptureRun, loadCapture, runCapture } from '../../cli/runCapture';
import { runCaptureObserved } from '../../cli/observedReplay';
import { main, mainAsync } from '../../main';
import { ipv4Packet, udpDatagram } from '../../ingest/capture/frameBuilders';
import { writePcap } from '../../ingest/capture/pcapWriter';
import { makeSysctl } from '../../processors/conntrack/sysctl';
import type { PacketVerdict } from '../../processors/pipeline';
import type { BatchSample, PipelineObserver } from '../../sinks/telemetry/observer';

const SAMPLE = loadCapture(join(__dirname, '..', 'fixtures', 'sample.pcap'));
const settings = { sysctl: makeSysctl(), shards: 1 };
const line = (v: PacketVerdict): string => JSON.stringify(v);

test('in steps of any size, the run judges the capture exactly as runCapture does in one go', () => {
  const whole: string[] = [];
  const events: string[] = [];
  const r = runCapture(SAMPLE, { ...settings, onVerdict: (v) => whole.push(line(v)), onEvent: (e) => events.push(JSON.stringify(e)) });
  for (const size of [1, 7, 1000]) {
    const got: string[] = [];
    const gotEvents: string[] = [];
    const run = new CaptureRun(SAMPLE, { ...settings, onVerdict: (v) => got.push(line(v)), onEvent: (e) => gotEvents.push(JSON.stringify(e)) });
    let steps = 0;
    while (run.step(size)) {
      steps++;
      expect(run.packets).toBe(Math.min(steps * size, r.packets));
    }
    expect(run.done).toBe(true);
    expect(got).toEqual(whole);
    expect(gotEvents).toEqual(events);
    expect(run.result().packets).toBe(r.packets);
    expect(run.result().engine.stats()).toEqual(r.engine.stats());
  }
});

test('onPacket pairs each verdict with the packet it judges, the fragmented datagram included', () => {
  const pairs: Array<[number, number, number, number]> = [];
  const order: number[] = [];
  runCapture(SAMPLE, { ...settings, onVerdict: (v) => order.push(v.index), onPacket: (p, v) => pairs.push([p.index, v.index, p.frame, v.frame]) });
  expect(pairs).toHaveLength(order.length);
  for (const [pi, vi, pf, vf] of pairs) expect([pi, pf]).toEqual([vi, vf]);
  expect(pairs.map((p) => p[0])).toEqual(order);
});

test('a held fragment is paired with its verdict when that comes out, a packet later', () => {
  // The sample ends with a UDP datagram in two fragments: the first one's verdict waits for the second.
  const paired: number[] = [];
  const run = new CaptureRun(SAMPLE, { ...settings, onPacket: (p, v) => paired.push(p.index === v.index ? p.index : -1) });
  const total = runCapture(SAMPLE, settings).packets;
  run.step(total - 2);
  expect(paired).toHaveLength(total - 2);
  run.step(1);
  expect(paired).toHaveLength(total - 2);
  run.step(1);
  expect(paired.slice(-2)).toEqual([total - 2, total - 1]);
});

test('a step stops before the first packet later than untilUs; nextPacketUs shows it without pushing it', () => {
  const run = new CaptureRun(SAMPLE, settings);
  const first = run.nextPacketUs()!;
  expect(run.packets).toBe(0);
  expect(run.frames).toBe(0);
  expect(run.step(Infinity, first + 100_000)).toBe(true);
  const next = run.nextPacketUs()!;
  expect(next).toBeGreaterThan(first + 100_000);
  expect(run.frames).toBe(run.packets); // the held-back packet is read, not yet processed
  expect(run.step(Infinity, first - 1)).toBe(true);
  expect(run.nextPacketUs()).toBe(next);
  while (run.step(Infinity, Infinity));
  expect(run.nextPacketUs()).toBeUndefined();
});

test('malformed frames reach onMalformed as the reader meets them, and the summary lists them', () => {
  const good = ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, payload: udpDatagram({ sport: 1, dport: 2 }) });
  const bytes = writePcap(
    [
      { tsUs: 1e15, data: good },
      { tsUs: 1e15 + 1, data: good.subarray(0, 12) },
      { tsUs: 1e15 + 2, data: good },
    ],
    101,
  );
  const seen: Array<[number, string, number]> = [];
  const run = new CaptureRun(bytes, { ...settings, onMalformed: (frame, reason) => seen.push([frame, reason, run.packets]) });
  run.step();
  expect(seen).toHaveLength(1);
  expect(seen[0][0]).toBe(1);
  expect(seen[0][2]).toBe(1); // met between the two good packets
  expect(run.summary.malformed).toEqual([{ frame: 1, reason: seen[0][1] }]);
  expect(run.result().packets).toBe(2);
});

interface Recorder {
  observer: PipelineObserver;
  batches: BatchSample[];
  packets: number[];
}

function recorder(): Recorder {
  const rec: Recorder = {
    batches: [],
    packets: [],
    observer: {
      packet: (p) => rec.packets.push(p.bytes),
      events: () => undefined,
      batch: (b) => rec.batches.push({ ...b }),
      deadLetter: () => undefined,
      table: () => undefined,
    },
  };
  return rec;
}

test('the observed replay reports batches that add up to the capture, the lag known only at the end', async () => {
  const rec = recorder();
  const r = await runCaptureObserved(SAMPLE, { ...settings, observer: rec.observer, batchPackets: 1000 });
  expect(rec.batches.map((b) => b.packets)).toEqual([1000, 1000, 1000, 1000, 1000, 802]);
  expect(rec.batches.reduce((n, b) => n + b.messages, 0)).toBe(r.summary.frames);
  expect(rec.batches.slice(0, -1).every((b) => b.highWatermark === undefined)).toBe(true);
  expect(rec.batches.at(-1)).toMatchObject({ nextOffset: String(r.summary.frames), highWatermark: String(r.summary.frames) });
  expect(rec.packets).toHaveLength(r.packets);
});

test('--speed paces the replay: the capture takes its own duration divided by the speed', async () => {
  const run = new CaptureRun(SAMPLE, settings);
  const first = run.nextPacketUs()!;
  while (run.step());
  const last = run.engine.clockUs;
  const speed = 4;
  const expected = (last - first) / 1e6 / speed;
  const rec = recorder();
  const t0 = Date.now();
  const r = await runCaptureObserved(SAMPLE, { ...settings, observer: rec.observer, speed });
  const took = (Date.now() - t0) / 1000;
  expect(took).toBeGreaterThanOrEqual(expected - 0.05);
  expect(took).toBeLessThan(expected + 1.5);
  // Many small batches (what was due between waits), none empty, adding up to the capture.
  expect(rec.batches.length).toBeGreaterThan(20);
  expect(rec.batches.slice(0, -1).every((b) => b.messages > 0)).toBe(true);
  expect(rec.batches.reduce((n, b) => n + b.packets, 0)).toBe(r.packets);
});

test('ctflow replay CAPTURE --speed without --http or --otlp says why instead of ignoring it; a bad speed is named', async () => {
  const err: string[] = [];
  const io = { out: () => undefined, err: (l: string) => err.push(l) };
  const capture = join(__dirname, '..', 'fixtures', 'sample.pcap');
  expect(main(['replay', capture, '--speed', '2'], io)).toBe(1);
  expect(err.pop()).toMatch(/--speed paces a capture .*--http or --otlp/);
  expect(await mainAsync(['replay', capture, '--http', '127.0.0.1:0', '--speed', 'fast'], io)).toBe(1);
  expect(err.pop()).toBe("ctflow: --speed: 'fast' is not a non-negative number (0 = as fast as possible)");
});
