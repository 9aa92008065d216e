/**
 * `ctflow run --config FILE`: the live pipeline's settings, from a YAML file, then the
 * environment, then flags (each overriding the one before). Every key is checked: an unknown or
 * misspelt key, or a value of the wrong kind, stops the start with a message naming the key path.
 * Secrets (the SASL password) come only from the environment, never from the file.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseBrokers } from '../kafka/client';
import type { KafkaSettings } from '../kafka/client';
import { makeSysctl } from '../processors/conntrack/sysctl';
import type { Sysctl } from '../processors/conntrack/sysctl';
import type { ConntrackRules } from '../processors/conntrack/rules';
import { rulesFromConfig } from './rules';
import { ZONES_CONFIG_DEFAULT, zonesConfigSchema } from './zoneOptions';
import { helperRuleOfConfig } from './helperOptions';
import { DEFAULT_MAX_IN_FLIGHT_BATCHES, DEFAULT_MAX_IN_FLIGHT_BYTES } from './backpressure';

/** One `ct helper set` rule: the helper, and the new connections it applies to (every field optional but the helper). */
const helperRule = z.strictObject({
  helper: z.string().min(1),
  /** tcp, udp, or a number; defaults to the helper's own protocol. */
  proto: z.union([z.string().min(1), z.number().int().min(0).max(255).transform(String)]).optional(),
  dport: z.number().int().min(0).max(65535).optional(),
  sport: z.number().int().min(0).max(65535).optional(),
  /** An address or CIDR prefix. */
  src: z.string().min(1).optional(),
  dst: z.string().min(1).optional(),
  zone: z.number().int().min(0).max(65535).optional(),
  family: z.enum(['ipv4', 'ipv6']).optional(),
});

const topicName = z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'a Kafka topic name: letters, digits, . _ - (at most 249)');

/** What a rule matches; every field optional, all given ones must hold (see cli/rules.ts for the checks across fields). */
const matchFields = {
  proto: z.union([z.string().min(1), z.number().int().min(0).max(255)]).optional(),
  family: z.enum(['ipv4', 'ipv6']).optional(),
  src: z.string().min(1).optional(),
  dst: z.string().min(1).optional(),
  sport: z.number().int().min(0).max(65535).optional(),
  dport: z.number().int().min(0).max(65535).optional(),
  /** Either side's port (the command line's PROTO/PORT). */
  port: z.number().int().min(0).max(65535).optional(),
  zone: z.number().int().min(0).max(65535).optional(),
};

const rulesSchema = z.strictObject({
  /** `ct helper set` rules, in order (the first rule that matches a new connection wins). */
  helpers: z.array(helperRule).default([]),
  /** The raw table's notrack rules: matching packets are UNTRACKED. */
  notrack: z.array(z.strictObject(matchFields)).default([]),
  /** The nat table's rules, bound to new connections: DNAT first (prerouting), then SNAT/MASQUERADE (postrouting). */
  nat: z
    .array(
      z.strictObject({
        kind: z.enum(['snat', 'masquerade', 'dnat']),
        ...matchFields,
        to: z.string().min(1),
        toPort: z.union([z.number().int().min(0).max(65535), z.string().regex(/^\d+(-\d+)?$/, 'a port or a range such as 1024-2047')]).optional(),
      }),
    )
    .default([]),
});

export const configSchema = z.strictObject({
  kafka: z
    .strictObject({
      brokers: z.union([z.string(), z.array(z.string())]).optional(),
      clientId: z.string().min(1).default('ctflow'),
      tls: z
        .strictObject({
          enabled: z.boolean().default(true),
          caFile: z.string().optional(),
          certFile: z.string().optional(),
          keyFile: z.string().optional(),
          rejectUnauthorized: z.boolean().default(true),
        })
        .optional(),
      sasl: z
        .strictObject({
          mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
          username: z.string().min(1),
          /** Name of the environment variable holding the password. */
          passwordEnv: z.string().min(1).default('CTFLOW_KAFKA_PASSWORD'),
        })
        .optional(),
    })
    .default({ clientId: 'ctflow' }),
  input: z
    .strictObject({
      topic: topicName.default('ctflow.captured-traffic'),
      kind: z.enum(['captured-traffic', 'packet-events', 'flow-events']).default('captured-traffic'),
      group: z.string().min(1).default('ctflow'),
      /** The topic is not keyed by flow (see docs/topics.md): route it through `<group>-repartition` first. */
      repartition: z.boolean().default(false),
    })
    .default({ topic: 'ctflow.captured-traffic', kind: 'captured-traffic', group: 'ctflow', repartition: false }),
  outputs: z
    .strictObject({
      transitions: topicName.default('ctflow.transitions'),
      flows: topicName.default('ctflow.flows'),
      verdicts: topicName.nullable().default(null),
      deadLetter: topicName.default('ctflow.dead-letter'),
    })
    .default({ transitions: 'ctflow.transitions', flows: 'ctflow.flows', verdicts: null, deadLetter: 'ctflow.dead-letter' }),
  engine: z
    .strictObject({
      /** net.netfilter knobs by their sysctl names, checked against the known set. */
      sysctl: z.record(z.string(), z.number()).default({}),
      /** Seconds between accounting records of a long flow (NetFlow's active timeout); 0 = only at the end. */
      activeTimeout: z.number().min(0).default(1800),
      /** NOTRACK, NAT and helper rules (docs/config.md); the command line's --notrack, --nat and --helper add to them. */
      rules: rulesSchema.default({ notrack: [], nat: [], helpers: [] }),
    })
    .default({ sysctl: {}, activeTimeout: 1800, rules: { notrack: [], nat: [], helpers: [] } }),
  telemetry: z
    .strictObject({
      /** Listen address of /metrics and the live API (PORT, HOST:PORT); 127.0.0.1 unless a host is given. */
      http: z.string().min(1).nullable().default(null),
      /** OTLP/HTTP metrics endpoint (else $OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, else none). */
      otlp: z.string().url().nullable().default(null),
      topFlows: z.number().int().min(1).max(10000).default(20),
      /** The zone this deployment serves, exported as the OTLP resource attribute ctflow.zone. */
      zone: z.number().int().min(0).max(65535).nullable().default(null),
      /**
       * Seconds a counter series that has just appeared shows 0 before its value: at least one
       * scrape interval, so rate() and the INVALID alerts count a new reason's first burst.
       */
      newSeriesHoldSeconds: z.number().min(0).max(3600).default(30),
    })
    .default({ http: null, otlp: null, topFlows: 20, zone: null, newSeriesHoldSeconds: 30 }),
  pipeline: z
    .strictObject({
      /** Backpressure: past either bound of batches fetched and not yet written, the consumer pauses (cli/streamPipeline.ts). */
      maxInFlightBatches: z.number().int().min(1).max(100_000).default(DEFAULT_MAX_IN_FLIGHT_BATCHES),
      maxInFlightBytes: z.number().int().min(1 << 16).max(2 ** 40).default(DEFAULT_MAX_IN_FLIGHT_BYTES),
      /** Most bytes fetched per partition per request (max.partition.fetch.bytes). */
      fetchMaxBytes: z.number().int().min(1024).max(1 << 30).default(1 << 20),
      /**
       * fetch.min.bytes and fetch.max.wait.ms: the broker answers a fetch once this many bytes are
       * there or this long has passed. The wait is also how long the consumer sleeps while every
       * partition is paused (backpressure), so it stays short.
       */
      fetchMinBytes: z.number().int().min(1).max(1 << 30).default(1),
      fetchMaxWaitMs: z.number().int().min(1).max(10_000).default(100),
      commitIntervalMs: z.number().int().min(0).default(1000),
      /** A partition with no input for this long follows wall time (live mode), so its timeouts fire. */
      idleMs: z.number().int().min(100).default(5000),
      /**
       * at-least-once: offsets committed after the outputs are acknowledged, a restart reads again
       * from the oldest open flow. exactly-once: outputs, a state changelog and offsets in one
       * transaction per input partition (readers use read_committed); a partition's new owner
       * restores its state from `<group>-state-changelog`.
       */
      guarantee: z.enum(['at-least-once', 'exactly-once']).default('at-least-once'),
      /**
       * The consumer group's session timeout: how long the group waits for a member that stopped
       * heartbeating (a crash, a broker outage) before its partitions move. Brokers accept 6 s to
       * 300 s by default (group.min/max.session.timeout.ms).
       */
      sessionTimeoutMs: z.number().int().min(1000).max(3_600_000).default(30_000),
      /**
       * exactly-once: the local state directory, as Kafka Streams' state.dir (docs/state-dir.md):
       * a partition given up cleanly leaves a checkpoint there, so its next restore on this machine
       * reads only the changelog after it. Absent: `<os temp dir>/ctflow-state`; false: none (every
       * restore reads the whole changelog).
       */
      stateDir: z.union([z.string().min(1), z.literal(false)]).optional(),
      /**
       * Threads running the partitions' engines (cli/workers/partitionWorkers.ts), or 'auto' for
       * one per core (the default: one thread does not carry a gateway's traffic, and two workers
       * cut the live p99 latency at 50k packets/s by x4 on this 2-core machine; README); the
       * outputs are the same for any number. 1: the pipeline's own thread.
       */
      workers: z.union([z.number().int().min(1).max(64), z.literal('auto')]).default('auto'),
    })
    .default({ maxInFlightBatches: DEFAULT_MAX_IN_FLIGHT_BATCHES, maxInFlightBytes: DEFAULT_MAX_IN_FLIGHT_BYTES, fetchMaxBytes: 1 << 20, fetchMinBytes: 1, fetchMaxWaitMs: 100, commitIntervalMs: 1000, idleMs: 5000, guarantee: 'at-least-once', sessionTimeoutMs: 30_000, workers: 'auto' }),
  /** Where a packet's conntrack zone comes from (docs/zones.md). */
  zones: zonesConfigSchema.default(ZONES_CONFIG_DEFAULT),
});

export type CtflowConfig = z.output<typeof configSchema>;

export class ConfigError extends Error {}

function issueText(err: z.ZodError, source: string): string {
  return err.issues
    .map((i) => {
      const path = i.path.join('.') || '(top level)';
      const keys = 'keys' in i && Array.isArray(i.keys) ? `: ${i.keys.map((k) => `'${k}'`).join(', ')}` : '';
      return `${source}: ${path}: ${i.message}${keys}`;
    })
    .join('\n');
}

/** Reads and checks a config file (YAML or JSON); an absent path gives the defaults. */
export function loadConfig(path?: string): CtflowConfig {
  let raw: unknown = {};
  if (path) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config '${path}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      raw = parseYaml(text) ?? {};
    } catch (err) {
      throw new ConfigError(`config '${path}' is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  const r = configSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(issueText(r.error, path ?? 'config'));
  // The knob names are checked here too, so a typo stops the start rather than the first packet.
  try {
    sysctlOf(r.data);
  } catch (err) {
    throw new ConfigError(`${path ?? 'config'}: engine.sysctl: ${(err as Error).message}`);
  }
  // So are the rules, each error naming the rule by its index (a bad prefix, a helper on the wrong protocol).
  try {
    rulesOf(r.data);
  } catch (err) {
    throw new ConfigError(`${path ?? 'config'}: ${(err as Error).message}`);
  }
  return r.data;
}

export function rulesOf(c: CtflowConfig): ConntrackRules {
  const rules = rulesFromConfig(c.engine.rules);
  if (c.engine.rules.helpers.length) rules.helpers = c.engine.rules.helpers.map((h, i) => helperRuleOfConfig(h, i));
  return rules;
}

export function sysctlOf(c: CtflowConfig, extra: string[] = []): Sysctl {
  return makeSysctl([...Object.entries(c.engine.sysctl).map(([k, v]) => `${k}=${v}`), ...extra]);
}

/**
 * Connection settings: brokers from the flag, else KAFKA_BROKERS, else the file; the SASL
 * password from the environment variable the file names.
 */
export function kafkaSettingsOf(c: CtflowConfig, env: NodeJS.ProcessEnv, brokersFlag?: string): KafkaSettings {
  const fromFile = Array.isArray(c.kafka.brokers) ? c.kafka.brokers.join(',') : c.kafka.brokers;
  const brokers = parseBrokers(brokersFlag ?? env.KAFKA_BROKERS ?? fromFile);
  if (brokers.length === 0) throw new ConfigError('no Kafka brokers: give --brokers, set KAFKA_BROKERS, or kafka.brokers in the config');
  const s: KafkaSettings = { brokers, clientId: c.kafka.clientId };
  if (c.kafka.tls?.enabled) s.tls = { caFile: c.kafka.tls.caFile, certFile: c.kafka.tls.certFile, keyFile: c.kafka.tls.keyFile, rejectUnauthorized: c.kafka.tls.rejectUnauthorized };
  if (c.kafka.sasl) {
    const password = env[c.kafka.sasl.passwordEnv];
    if (password === undefined) throw new ConfigError(`kafka.sasl: the password is read from $${c.kafka.sasl.passwordEnv}, which is not set`);
    s.sasl = { mechanism: c.kafka.sasl.mechanism, username: c.kafka.sasl.username, password };
  }
  return s;
}
