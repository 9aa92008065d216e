/**
 * The Kafka commands: `produce` (a capture into a captured-traffic topic), `replay --topic`
 * (reprocess a topic without touching the live group's offsets) and `run` (the live pipeline).
 */
import { Presets, SingleBar } from 'cli-progress';
import { openCapture } from '../ingest/capture/reader';
import { decodeFrame } from '../ingest/decode/index';
import { encodeFrameBatch, encodeSingleFrame, ZONE_HEADER } from '../ingest/kafka/capturedTraffic';
import type { TopicFrame } from '../ingest/kafka/capturedTraffic';
import { flowKeyHash } from '../ingest/kafka/partitionKey';
import type { InputKind } from '../ingest/kafka/inputMessages';
import { KafkaConnection, parseBrokers } from '../kafka/client';
import type { KafkaSettings, OutputMessage } from '../kafka/client';
import { makeSysctl } from '../processors/conntrack/sysctl';
import { formatEvent } from '../sinks/conntrackText';
import { eventJson } from '../sinks/jsonRecords';
import { otlpMetricsUrl } from '../sinks/otel/endpoint';
import type { Output } from './commands';
import { workerCount } from './workerCommands';
import { kafkaSettingsOf, loadConfig, rulesOf, sysctlOf } from './config';
import { mergeRules, parseRuleOptions } from './rules';
import type { RuleOptions } from './rules';
import type { ConntrackRules } from '../processors/conntrack/rules';
import { CliError, loadCapture } from './runCapture';
import { StreamPipeline } from './streamPipeline';
import { defaultStateDir } from './stateDirectory';
import { RepartitionStage } from './repartition';
import { zoneResolver } from '../processors/zones';
import type { ZonePolicy } from '../processors/zones';
import { KAFKA_ZONE_SOURCES, zonePolicyFromConfig, zonePolicyFromFlags, ZONES_CONFIG_DEFAULT } from './zoneOptions';
import type { ZoneFlags } from './zoneOptions';

export interface ConnectionOptions {
  brokers?: string;
}

export function settingsFrom(o: ConnectionOptions, io: Output): KafkaSettings {
  const brokers = parseBrokers(o.brokers ?? process.env.KAFKA_BROKERS);
  if (brokers.length === 0) throw new CliError('no Kafka brokers: give --brokers host:port or set KAFKA_BROKERS');
  // kafkajs logs each retried request as an error; for these one-shot commands a real failure
  // surfaces as the command's own error, so its log lines are shown only when asked for.
  const verbose = process.env.CTFLOW_KAFKA_LOG === '1';
  return { brokers, clientId: 'ctflow', log: (level, m) => verbose && io.err(`ctflow: ${level}: ${m}`) };
}

function positiveInt(name: string, text: string | undefined, fallback: number, max = 1 << 30): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new CliError(`${name}: '${text}' is not an integer from 1 to ${max}`);
  return n;
}

/** --from/--to: ISO 8601, or seconds since the epoch. */
export function timeMs(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = /^\d+(\.\d+)?$/.test(text) ? Number(text) * 1000 : Date.parse(text);
  if (!Number.isFinite(ms)) throw new CliError(`${name}: '${text}' is neither an ISO 8601 time nor seconds since the epoch`);
  return ms;
}

export interface ProduceOptions extends ConnectionOptions {
  topic: string;
  partitions?: string;
  singleFrames?: boolean;
  batchFrames?: string;
  rate?: string;
  quiet?: boolean;
  /** Tag every message with this zone (the ctflow-zone header) and key it by it. */
  zone?: string;
}

/** Largest batch value; Kafka's default max.message.bytes is 1 MiB. */
const MAX_BATCH_BYTES = 900 * 1024;

export async function produce(path: string, o: ProduceOptions, io: Output): Promise<void> {
  const capture = (() => {
    try {
      return openCapture(loadCapture(path));
    } catch (err) {
      throw new CliError((err as Error).message);
    }
  })();
  const batchFrames = positiveInt('--batch-frames', o.batchFrames, 1024, 1 << 20);
  const rate = o.rate === undefined ? 0 : positiveInt('--rate', o.rate, 0);
  const zone = o.zone === undefined ? undefined : zoneNumber('--zone', o.zone);
  const zoneHeaders = zone === undefined ? undefined : { [ZONE_HEADER]: String(zone) };
  const conn = new KafkaConnection(settingsFrom(o, io));
  try {
    const admin = await conn.admin();
    // Message times are packet times, which may lie far in the past (or ahead of the broker's
    // clock): a topic made here keeps them, rather than deleting old captures at once or refusing
    // future ones (Kafka's retention and message.timestamp.after.max.ms look at message times).
    await admin.ensureTopics([
      {
        topic: o.topic,
        partitions: positiveInt('--partitions', o.partitions, 4, 10000),
        config: { 'retention.ms': '-1', 'message.timestamp.after.max.ms': '9223372036854775807' },
      },
    ]);
    const partitions = await admin.partitionCount(o.topic);
    const producer = await conn.producer();
    const pending = new Map<number, { frames: TopicFrame[]; bytes: number }>();
    let queue: OutputMessage[] = [];
    let frames = 0;
    let messages = 0;
    const started = Date.now();
    const bar = !o.quiet && process.stderr.isTTY ? new SingleBar({ format: 'produce |{bar}| {value} frames', stream: process.stderr }, Presets.shades_classic) : null;
    bar?.start(1, 0);

    const flushPartition = (partition: number) => {
      const b = pending.get(partition);
      if (!b || b.frames.length === 0) return;
      queue.push({ topic: o.topic, partition, value: encodeFrameBatch(b.frames), timestampMs: Math.floor(b.frames[0].tsUs / 1000), headers: zoneHeaders });
      pending.delete(partition);
    };
    const send = async (force: boolean) => {
      if (!force && queue.length < 64) return;
      messages += queue.length;
      const q = queue;
      queue = [];
      await producer.send(q);
      bar?.setTotal(frames + 1);
      bar?.update(frames);
    };

    for (const f of capture) {
      // The key is the flow's (zone, unordered address pair); frames without IP go to partition 0.
      const d = decodeFrame(f);
      const hash = d.kind === 'ip' ? flowKeyHash(d.packet.ip, zone ?? 0) : 0;
      const partition = hash % partitions;
      const frame: TopicFrame = { tsUs: f.tsUs, linkType: f.linkType, interfaceId: f.interfaceId, data: f.data, origLength: f.origLength };
      frames++;
      if (rate) {
        const due = started + (frames / rate) * 1000;
        if (due - Date.now() > 2) {
          for (const p of [...pending.keys()]) flushPartition(p);
          await send(true);
          await new Promise((r) => setTimeout(r, due - Date.now()));
        }
      }
      if (o.singleFrames) {
        const m = encodeSingleFrame(frame);
        if (zoneHeaders) Object.assign(m.headers, zoneHeaders);
        queue.push({ topic: o.topic, partition, key: hash.toString(16).padStart(8, '0'), value: m.value, headers: m.headers, timestampMs: Math.floor(f.tsUs / 1000) });
      } else {
        let b = pending.get(partition);
        if (b && b.bytes + 20 + f.data.length > MAX_BATCH_BYTES) {
          flushPartition(partition);
          b = undefined;
        }
        if (!b) pending.set(partition, (b = { frames: [], bytes: 12 }));
        b.frames.push(frame);
        b.bytes += 20 + f.data.length;
        if (b.frames.length >= batchFrames) flushPartition(partition);
      }
      await send(false);
    }
    for (const p of [...pending.keys()]) flushPartition(p);
    await send(true);
    bar?.stop();
    if (capture.problem) io.err(`ctflow: frame ${capture.problem.frame}: ${capture.problem.reason}; the capture ends there`);
    if (!o.quiet) io.err(`produced ${frames} frames in ${messages} messages to ${o.topic} (${partitions} partitions) in ${((Date.now() - started) / 1000).toFixed(2)}s`);
  } finally {
    await conn.close();
  }
}

/** A zone id: 0..65535, as the kernel's 16-bit zone. */
function zoneNumber(name: string, text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 0xffff) throw new CliError(`${name}: '${text}' is not a zone (an integer from 0 to 65535)`);
  return Number(text);
}

const zoneFlagsGiven = (o: ZoneFlags): boolean => o.zoneFrom !== undefined || (o.zoneMap?.length ?? 0) > 0 || o.zoneDefault !== undefined;
const FLOW_EVENTS_ZONES = "--zone-*: flow events carry their hosts' zones (each host is a zone); the options apply to captured-traffic and packet-events";

/** What the zone of a topic's packets will be, for the log when it is one zone for the whole topic. */
function topicZoneNote(policy: ZonePolicy, topic: string): string | undefined {
  if (policy.source !== 'topic') return undefined;
  const zone = policy.map.get(topic);
  return zone === undefined ? `topic ${topic} is not in the zone map: its packets are in the default zone ${policy.defaultZone}` : `every packet of ${topic} is in zone ${zone}`;
}

export interface ReplayTopicOptions extends ConnectionOptions, ZoneFlags {
  topic: string;
  kind?: string;
  from?: string;
  to?: string;
  speed?: string;
  eventsOut?: string;
  json?: boolean;
  outPrefix?: string;
  verdicts?: boolean;
  activeTimeout?: string;
  sysctl: string[];
  notrack?: string[];
  nat?: string[];
  helper?: string[];
  quiet?: boolean;
  repartition?: boolean;
  /** Threads for the partitions' engines: a count or `auto`. */
  workers?: string;
  /** Serve the telemetry while the replay runs (as `replay CAPTURE --http` does), and its final state for --linger seconds. */
  http?: string;
  otlp?: string;
  linger?: string;
  topFlows?: string;
}

function inputKind(text: string | undefined): InputKind | 'flow-events' {
  const k = text ?? 'captured-traffic';
  if (k !== 'captured-traffic' && k !== 'packet-events' && k !== 'flow-events') throw new CliError(`--kind: '${k}' is not captured-traffic, packet-events or flow-events`);
  return k;
}

function seconds(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new CliError(`${name}: '${text}' is not a number of seconds`);
  return n;
}

export async function replayTopic(o: ReplayTopicOptions, io: Output): Promise<void> {
  // Each partition has its own engine, so --nat needs no single thread here (unlike a capture's
  // shares). One per core unless --workers says otherwise, as `run`'s pipeline.workers.
  const workers = workerCount(o.workers ?? 'auto');
  if (o.eventsOut !== undefined && o.eventsOut !== '-') throw new CliError(`--events-out: only '-' (stdout) is supported, not '${o.eventsOut}'`);
  const sysctl = makeSysctl(o.sysctl);
  const rules = parseRuleOptions(o);
  const speed = o.speed === undefined ? 0 : Number(o.speed);
  if (!Number.isFinite(speed) || speed < 0) throw new CliError(`--speed: '${o.speed}' is not a non-negative number (0 = as fast as possible)`);
  const prefix = o.outPrefix ?? `${o.topic}.replay.`;
  const text = { acct: sysctl.nf_conntrack_acct !== 0 };
  const kind = inputKind(o.kind);
  const zones = zonePolicyFromFlags(o, KAFKA_ZONE_SOURCES, zonePolicyFromConfig(ZONES_CONFIG_DEFAULT));
  if (kind === 'flow-events' && zoneFlagsGiven(o)) throw new CliError(FLOW_EVENTS_ZONES);
  // The topic source is the topic named here, also when packets go through an internal topic first.
  const zoneOf = zoneResolver(zones, o.topic);
  const zoneSource = { policy: zones, topic: o.topic };
  const note = topicZoneNote(zones, o.topic);
  if (note && !o.quiet) io.err(`ctflow: ${note}`);
  const started = Date.now();
  let inputTopic = o.topic;
  if (o.repartition) {
    if (kind === 'flow-events') throw new CliError('--repartition: flow events are keyed by host already; it applies to captured-traffic and packet-events');
    inputTopic = `${prefix}repartition-${process.pid}-${Date.now()}`;
    const rconn = new KafkaConnection(settingsFrom(o, io));
    const stage = new RepartitionStage(rconn, { kind, inputTopic: o.topic, internalTopic: inputTopic, deadLetterTopic: `${prefix}dead-letter`, groupId: `ctflow-replay-repartition-${process.pid}-${Date.now()}`, bounded: true, zoneOf });
    try {
      await stage.run();
    } finally {
      await rconn.close();
    }
  }
  const served = o.http !== undefined || o.otlp !== undefined || otlpMetricsUrl(undefined) !== undefined ? await import('./replayServe') : undefined;
  const linger = served ? served.parseLinger(o.linger) : 0;
  // Metrics, OTLP and the live API load only when asked for (they pull in prom-client and OpenTelemetry).
  const svc = served
    ? await (await import('./telemetryServe')).startTelemetry({ http: o.http, otlp: o.otlp, topFlows: positiveInt('--top-flows', o.topFlows, 20, 10000), mode: 'replay', log: io.err })
    : undefined;
  if (svc?.server) io.err(`ctflow: serving ${svc.server.url} (/metrics /flows /stats /healthz /readyz)`);
  svc?.setReadiness({ ready: false, status: `replaying ${o.topic}` });
  const conn = new KafkaConnection(settingsFrom(o, io));
  const pipeline = new StreamPipeline(conn, {
    observer: svc?.telemetry,
    // Served, the tables (in their workers too) stay readable until the server closes.
    keepTables: svc !== undefined,
    kind,
    inputTopic,
    outputs: { transitions: `${prefix}transitions`, flows: `${prefix}flows`, deadLetter: `${prefix}dead-letter`, verdicts: o.verdicts ? `${prefix}verdicts` : undefined },
    sysctl,
    rules,
    zoneOf,
    zoneSource,
    workers,
    activeTimeoutUs: seconds('--active-timeout', o.activeTimeout, 1800) * 1e6,
    mode: 'replay',
    groupId: '',
    fromMs: timeMs('--from', o.from),
    toMs: timeMs('--to', o.to),
    speed,
    onEvents: o.eventsOut === '-' ? (events) => events.forEach((e) => io.out(o.json ? JSON.stringify(eventJson(e)) : formatEvent(e, text))) : undefined,
    log: (level, m) => level !== 'info' && io.err(`ctflow: ${m}`),
  });
  try {
    await pipeline.run();
    if (o.repartition) {
      const cleanup = new KafkaConnection(settingsFrom(o, io));
      await (await cleanup.admin()).deleteTopics([inputTopic]);
      await cleanup.close();
    }
    const c = pipeline.counters;
    if (!o.quiet) {
      io.err(
        `replayed ${o.topic}: ${c.messages} messages, ${c.packets} packets, ${c.events} transitions, ${c.flowRecords} flow records, ` +
          `${c.deadLetters} dead letters, ${c.skipped} non-IP frames in ${((Date.now() - started) / 1000).toFixed(2)}s -> ${prefix}*`,
      );
    }
    if (svc && served) await served.serveFinalState(svc, o.topic, linger, o.quiet, io);
  } finally {
    await svc?.close();
    await pipeline.close();
  }
}

export interface RunOptions extends ConnectionOptions, RuleOptions, ZoneFlags {
  config?: string;
  http?: string;
  otlp?: string;
  topFlows?: string;
  group?: string;
  inputTopic?: string;
  sysctl: string[];
  helper?: string[];
  eventsOut?: string;
  json?: boolean;
  guarantee?: 'at-least-once' | 'exactly-once';
  stateDir?: string;
  /** Threads for the partitions' engines (default: pipeline.workers). */
  workers?: string;
}

/** The live pipeline, until SIGINT or SIGTERM: then it drains, writes, commits and exits. */
export async function run(o: RunOptions, io: Output): Promise<void> {
  const cfg = loadConfig(o.config);
  const sysctl = sysctlOf(cfg, o.sysctl);
  // The configuration's rules first, then the command line's (for helpers the first match wins, as in nft).
  const rules: ConntrackRules = mergeRules(rulesOf(cfg), parseRuleOptions(o));
  const settings = { ...kafkaSettingsOf(cfg, process.env, o.brokers), log: (level: string, m: string) => io.err(`ctflow: ${level}: ${m}`) };
  const text = { acct: sysctl.nf_conntrack_acct !== 0 };
  const topic = o.inputTopic ?? cfg.input.topic;
  const group = o.group ?? cfg.input.group;
  const zones = zonePolicyFromFlags(o, KAFKA_ZONE_SOURCES, zonePolicyFromConfig(cfg.zones));
  if (cfg.input.kind === 'flow-events' && zoneFlagsGiven(o)) throw new CliError(FLOW_EVENTS_ZONES);
  // The topic source is the input topic, also when packets go through `<group>-repartition` first.
  const zoneOf = zoneResolver(zones, topic);
  const note = topicZoneNote(zones, topic);
  if (note) io.err(`ctflow: ${note}`);
  const workers = workerCount(o.workers ?? String(cfg.pipeline.workers));
  // A topic-sourced zone is the one zone this process serves: the OTLP resource says so unless configured.
  const servedZone = cfg.telemetry.zone ?? (zones.source === 'topic' ? zoneOf({ interfaceId: 0 }) : undefined);
  let stage: RepartitionStage | undefined;
  if (cfg.input.repartition) {
    if (cfg.input.kind === 'flow-events') throw new CliError('input.repartition: flow events are keyed by host already');
    stage = new RepartitionStage(new KafkaConnection(settings), { kind: cfg.input.kind, inputTopic: topic, internalTopic: `${group}-repartition`, deadLetterTopic: cfg.outputs.deadLetter, groupId: `${group}-repartition`, bounded: false, zoneOf });
    await stage.run();
  }
  // Metrics, OTLP and the live API load only when asked for (they pull in prom-client and OpenTelemetry).
  const http = o.http ?? cfg.telemetry.http ?? undefined;
  const otlp = o.otlp ?? cfg.telemetry.otlp ?? undefined;
  const svc = http !== undefined || otlp !== undefined
    ? await (await import('./telemetryServe')).startTelemetry({ http, otlp, topFlows: o.topFlows === undefined ? cfg.telemetry.topFlows : positiveInt('--top-flows', o.topFlows, 20, 10000), mode: 'live', zone: servedZone, newSeriesHoldSeconds: cfg.telemetry.newSeriesHoldSeconds, log: io.err })
    : undefined;
  if (svc?.server) io.err(`ctflow: serving ${svc.server.url} (/metrics /flows /stats /healthz /readyz)`);
  svc?.setReadiness({ ready: false, status: 'joining the consumer group' });
  const pipeline = new StreamPipeline(new KafkaConnection(settings), {
    observer: svc?.telemetry,
    kind: cfg.input.kind,
    inputTopic: stage ? `${group}-repartition` : topic,
    outputs: { ...cfg.outputs, verdicts: cfg.outputs.verdicts ?? undefined },
    sysctl,
    rules,
    zoneOf,
    zoneSource: { policy: zones, topic },
    workers,
    activeTimeoutUs: cfg.engine.activeTimeout * 1e6,
    mode: 'live',
    groupId: group,
    maxInFlightBatches: cfg.pipeline.maxInFlightBatches,
    maxInFlightBytes: cfg.pipeline.maxInFlightBytes,
    fetchMaxBytes: cfg.pipeline.fetchMaxBytes,
    fetchMinBytes: cfg.pipeline.fetchMinBytes,
    fetchMaxWaitMs: cfg.pipeline.fetchMaxWaitMs,
    sessionTimeoutMs: cfg.pipeline.sessionTimeoutMs,
    commitIntervalMs: cfg.pipeline.commitIntervalMs,
    idleMs: cfg.pipeline.idleMs,
    guarantee: o.guarantee ?? cfg.pipeline.guarantee,
    stateDir: o.stateDir ?? (cfg.pipeline.stateDir === false ? undefined : cfg.pipeline.stateDir ?? defaultStateDir()),
    onEvents: o.eventsOut === '-' ? (events) => events.forEach((e) => io.out(o.json ? JSON.stringify(eventJson(e)) : formatEvent(e, text))) : undefined,
    log: (level, m) => io.err(`ctflow: ${level}: ${m}`),
  });
  await pipeline.run();
  svc?.setReadiness({ ready: true, status: `consuming ${topic} as group ${group}` });
  const failed = await new Promise<Error | undefined>((resolve) => {
    let stopping = false;
    const stop = (why: string, failure?: Error) => {
      if (stopping) return;
      stopping = true;
      io.err(`ctflow: ${why}`);
      svc?.setReadiness({ ready: false, status: failure ? `failed: ${failure.message}` : 'draining' });
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      (stage ? stage.stop() : Promise.resolve()).then(() => pipeline.stop()).then(
        () => resolve(failure),
        (err: Error) => {
          if (!failure) io.err(`ctflow: ${err.message}`);
          resolve(failure ?? err);
        },
      );
    };
    const onInt = () => stop('SIGINT: draining');
    const onTerm = () => stop('SIGTERM: draining');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    // A pipeline that can write nothing more ends the run (exit non-zero) instead of idling until
    // a signal: a supervisor then sees it and restarts it, and the group hands its partitions on.
    void pipeline.failure.then((err) => stop('stopping after the error above', err));
    // Said once the handlers are in place: whoever waits for this line may signal at once.
    io.err(`ctflow: consuming ${topic}${stage ? ` through ${group}-repartition` : ''} as group ${group}; SIGINT or SIGTERM drains and stops`);
  });
  await svc?.close();
  const c = pipeline.counters;
  if (failed) throw new CliError(`stopped after ${c.messages} messages, ${c.packets} packets: ${failed.message}; offsets committed only for what was written`);
  const eos = c.restores > 0 ? `, ${c.restores} partition restores (${c.checkpointRestores} from a checkpoint, ${c.changelogMessagesRead} changelog messages read), ${c.checkpointsWritten} checkpoints written` : '';
  io.err(`ctflow: stopped after ${c.messages} messages, ${c.packets} packets, ${c.events} transitions, ${c.flowRecords} flow records, ${c.deadLetters} dead letters${eos}; offsets committed`);
}
