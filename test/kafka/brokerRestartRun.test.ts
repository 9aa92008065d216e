/**
 * An exactly-once `ctflow run` survives its broker going down and coming back mid-stream, with no
 * manual action, and loses nothing: its outputs equal those of a run the outage never touched.
 * The broker is this file's own (scripts/kafka/broker.js halt/resume keep its data, ports and
 * cluster id), never the shared one of jest's global setup, so the file runs whenever java and
 * mvn are there.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, missingBrokerTool } from './privateBroker';
import { mainAsync } from '../../main';
import { StagedTopic, committed, expectSameOutputs, runConfig, runToEnd, startRun, terminate, untilCommitted, untilProgress } from './runProcess';

interface BrokerHandle {
  brokers: string;
}
interface BrokerModule {
  start(opts: { writeState: boolean; port?: number }): Promise<BrokerHandle>;
  halt(handle: BrokerHandle): Promise<BrokerHandle>;
  resume(handle: BrokerHandle): Promise<BrokerHandle>;
  stop(handle: BrokerHandle): Promise<unknown>;
}
const broker = require(join(__dirname, '..', '..', 'scripts', 'kafka', 'broker.js')) as BrokerModule;



const missing = missingBrokerTool();
const describeIfTools = missing ? describe.skip : describe;
const sample = join(__dirname, '..', 'fixtures', 'sample.pcap');
const id = `${process.pid}-${Date.now()}`;

describeIfTools(`an exactly-once run and a broker restart mid-stream${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let handle: BrokerHandle;
  const input = `ctflow-restart-in-${id}`;
  const dir = mkdtempSync(join(tmpdir(), 'ctflow-restart-'));

  beforeAll(async () => {
    handle = await broker.start({ writeState: false, port: await freePort() });
    const err: string[] = [];
    const code = await mainAsync(['produce', sample, '--topic', input, '--partitions', '3', '--batch-frames', '1', '--brokers', handle.brokers, '--quiet'], { out: () => undefined, err: (l) => err.push(l) });
    expect(err).toEqual([]);
    expect(code).toBe(0);
  }, 180_000);

  afterAll(async () => {
    if (handle) await broker.stop(handle);
  }, 60_000);

  test('the run waits the outage out, restores its partitions and writes what an undisturbed run writes', async () => {
    const brokers = handle.brokers;
    const ref = runConfig(dir, input, `ctflow-restart-ref-${id}`);
    await runToEnd(ref, brokers, input);

    // Half the input written before the outage, the rest after: the outage comes mid-stream however fast the run is.
    const topic = await StagedTopic.copyOf(brokers, input, `${input}-hit`);
    await topic.upTo(0.5);
    const hit = runConfig(dir, topic.topic, `ctflow-restart-hit-${id}`);
    const p = startRun(hit.path, brokers);
    await untilProgress(brokers, hit.group, topic.topic);
    handle = await broker.halt(handle);
    await new Promise((r) => setTimeout(r, 8000));
    handle = await broker.resume(handle);
    expect((await committed(brokers, hit.group, topic.topic)).done).toBeLessThan(topic.total); // the outage came mid-stream
    await topic.upTo(1);
    await untilCommitted(brokers, hit.group, topic.topic, 300_000);
    expect(await terminate(p)).toBe(0);
    if (process.env.CTFLOW_TEST_DEBUG) console.log(p.err());
    // It noticed: a transaction failed or the consumer rejoined, and the partitions were restored again.
    expect((p.err().match(/partition \d+: restored/g) ?? []).length).toBeGreaterThan(3);

    await expectSameOutputs(brokers, ref, hit, ['transitions', 'flows']);
  }, 900_000);
});
