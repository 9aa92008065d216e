/**
 * `node dist/bench/kafkaOutput.bench.js [--packets N] [--runs N]`: the CPU the live pipeline spends
 * per packet with the verdicts topic on, without a broker, split in two: (1) decode, engine and
 * the output records (OutputEncoder), as StreamPipeline.process() and collect() run them; (2) the
 * way from those records to the bytes a socket is given: OutputProducer.send() into kafkajs's
 * own producer code (sendMessages.js, with ctflow's grouping and produce request encoder from
 * kafkajsProduceSeam.ts) and kafkajs's request framing, with a stand-in broker that answers at
 * once. The `codec` case of kafka.bench.ts leaves out verdicts and the produce path; this is the
 * part of the latency case's CPU that does not need a broker, to compare builds in seconds.
 *
 * Prints packets per CPU-second for each part and for both; run it alternately against two
 * builds (the machine is shared: compare medians of interleaved runs).
 */
import { createHash } from 'node:crypto';
import { OutputProducer } from '../kafka/client';
import type { InputMessage, OutputMessage } from '../kafka/client';
import { decodeInputMessage } from '../ingest/kafka/inputMessages';
import { makeSysctl } from '../processors/conntrack/sysctl';
import { PartitionProcessor } from '../processors/stream/partitionProcessor';
import { OutputEncoder } from '../sinks/kafka/outputTopics';
import { benchCapture, topicMessages } from './kafkaTraffic';

const ACTIVE_TIMEOUT_US = 1800e6;
const PARTITIONS = 4;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

interface KafkajsInternals {
  sendMessages: (o: object) => (req: object) => Promise<unknown>;
  encodeRequest: (o: { correlationId: number; clientId: string; request: { apiKey: number; apiVersion: number; encode(): Promise<unknown> } }) => Promise<{ buffer: Buffer }>;
  produce: { protocol(o: { version: number }): (args: object) => { request: { apiKey: number; apiVersion: number; encode(): Promise<unknown> } } };
}

/** kafkajs's producer path from sendBatch() down to the framed request bytes, against a broker stand-in that accepts everything. */
function kafkajsProducer(sink: (bytes: Buffer) => void): unknown {
  const k: KafkajsInternals = {
    sendMessages: require('kafkajs/src/producer/sendMessages'),
    encodeRequest: require('kafkajs/src/protocol/request'),
    produce: require('kafkajs/src/protocol/requests/produce'),
  };
  const build = k.produce.protocol({ version: 7 });
  let correlationId = 0;
  const broker = {
    nodeId: 0,
    async produce(args: object) {
      const { request } = build(args);
      const framed = await k.encodeRequest({ correlationId: correlationId++, clientId: 'ctflow-bench', request });
      sink(framed.buffer);
      return { topics: [] };
    },
  };
  const partitionMetadata = Array.from({ length: PARTITIONS }, (_, p) => ({ partitionId: p, leader: 0 }));
  const cluster = {
    refreshMetadataIfNecessary: async () => undefined,
    addMultipleTargetTopics: async () => undefined,
    findTopicPartitionMetadata: () => partitionMetadata,
    findLeaderForPartitions: (_t: string, partitions: string[]) => ({ 0: partitions.map(Number) }),
    findBroker: async () => broker,
    isConnected: () => true,
  };
  const sequences = new Map<string, number>();
  const eosManager = {
    acquireBrokerLock: async () => undefined,
    releaseBrokerLock: async () => undefined,
    isTransactional: () => false,
    getTransactionalId: () => undefined,
    getProducerId: () => '1000',
    getProducerEpoch: () => 0,
    getSequence: (t: string, p: number) => sequences.get(`${t}/${p}`) ?? 0,
    updateSequence: (t: string, p: number, n: number) => sequences.set(`${t}/${p}`, (sequences.get(`${t}/${p}`) ?? 0) + n),
  };
  const retrier = (fn: (bail: (e: Error) => never, n: number, t: number) => Promise<unknown>) => fn((e) => { throw e; }, 0, 0);
  const partitioner = ({ message }: { message: { partition: number } }) => message.partition;
  const send = k.sendMessages({ logger: {}, cluster, partitioner, eosManager, retrier });
  return {
    sendBatch: ({ acks, compression, topicMessages }: { acks: number; compression: number; topicMessages: Array<{ topic: string; messages: unknown[] }> }) =>
      send({ acks, timeout: 30000, compression, topicMessages }),
  };
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function run(packets: number): Promise<{ encode: number; send: number; packets: number; outputs: number; bytes: number; digest: string }> {
  const cap = benchCapture(packets);
  const parts = topicMessages(cap.pcap, PARTITIONS, false).map((list, p) =>
    list.map((m, offset): InputMessage => ({ topic: 'in', partition: p, offset: String(offset), key: m.key === null ? null : Buffer.from(m.key), value: m.value, timestampMs: m.timestampMs, headers: m.headers })),
  );
  const enc = new OutputEncoder(
    { transitions: 'out.transitions', flows: 'out.flows', verdicts: 'out.verdicts', deadLetter: 'out.dead-letter' },
    { transitions: PARTITIONS, flows: PARTITIONS, verdicts: PARTITIONS, deadLetter: PARTITIONS },
  );
  const procs = parts.map(() => new PartitionProcessor({ sysctl: makeSysctl(), activeTimeoutUs: ACTIVE_TIMEOUT_US, verdicts: true }));
  let bytes = 0;
  // With --hash, a digest of every request's bytes: two builds must give the same one.
  const hash = process.argv.includes('--hash') ? createHash('sha256') : undefined;
  const producer = new OutputProducer(kafkajsProducer((b) => { bytes += b.length; hash?.update(b); }) as ConstructorParameters<typeof OutputProducer>[0], { brokers: ['bench:1'], clientId: 'bench' });
  const at = parts.map(() => 0);
  let encode = 0;
  let send = 0;
  let outputs = 0;
  let n = 0;
  for (let busy = true; busy; ) {
    busy = false;
    // One input message per partition per round, then one send of everything, as a live
    // pipeline's write() takes what was processed since its previous write.
    const c0 = cpuSeconds();
    const out: OutputMessage[] = [];
    for (let p = 0; p < parts.length; p++) {
      const list = parts[p];
      if (at[p] >= list.length) continue;
      busy = true;
      const m = list[at[p]++];
      const proc = procs[p];
      decodeInputMessage('captured-traffic', m, { packet: (pk) => proc.push(pk), dead: (reason, part) => enc.deadLetter(m, reason, out, part), skipped: () => undefined });
      if (at[p] >= list.length) proc.end();
      const r = proc.drain();
      enc.transitions(r.events, p, out);
      enc.invalid(r.invalid, p, out);
      enc.flowRecords(r.records, p, out);
      enc.verdicts(r.verdicts, p, out);
      n += r.verdicts.length;
    }
    const c1 = cpuSeconds();
    if (out.length) await producer.send(out);
    const c2 = cpuSeconds();
    encode += c1 - c0;
    send += c2 - c1;
    outputs += out.length;
  }
  return { encode, send, packets: n, outputs, bytes, digest: hash?.digest('hex').slice(0, 16) ?? '-' };
}

async function main(): Promise<void> {
  const packets = arg('--packets', 300_000);
  const runs = arg('--runs', 3);
  for (let i = 0; i < runs; i++) {
    const r = await run(packets);
    const pps = (s: number) => Math.round(r.packets / s).toLocaleString('en-US');
    console.log(
      `packets ${r.packets} outputs ${r.outputs} request bytes ${r.bytes} (${r.digest}): engine+records ${pps(r.encode)} /cpu-s, send path ${pps(r.send)} /cpu-s, both ${pps(r.encode + r.send)} /cpu-s (cpu ${r.encode.toFixed(2)} + ${r.send.toFixed(2)} s)`,
    );
  }
}

void main();
