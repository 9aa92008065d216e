/**
 * Reads a V8 .cpuprofile (what `node --cpu-prof` writes) and says where the time went in the
 * Kafka pipeline's terms: decode, engine, JSON encoding of outputs, kafkajs, RxJS, GC, idle.
 *
 * Self time is taken from the sample deltas (more exact than hit counts). A frame is put in a
 * category by its script: ctflow's own files by folder, kafkajs and RxJS by package. Frames with
 * no category of their own (native builtins such as JSON.stringify or Buffer.concat, node's
 * internal modules) inherit their caller's, so JSON.stringify called from the output encoder
 * counts as output encoding and a Buffer copy made by kafkajs counts as kafkajs; only what has no
 * categorised caller at all (socket reads and timers straight from the event loop) stays "node
 * runtime".
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileShare {
  name: string;
  ms: number;
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  categories: ProfileShare[];
  /** Functions by self time. */
  self: Array<ProfileShare & { category: string }>;
  /** Selected pipeline stages by inclusive time (time in the function and everything it calls). */
  stages: ProfileShare[];
}

/** Ordered: the first rule that matches a script URL names its category. */
const RULES: Array<[RegExp, string]> = [
  [/\/node_modules\/kafkajs\//, 'kafkajs (protocol encode/decode, fetch, produce)'],
  [/\/node_modules\/rxjs\//, 'RxJS'],
  [/\/dist\/sinks\//, 'JSON encoding of outputs (sinks/)'],
  [/\/dist\/ingest\/kafka\//, 'input message decoding (ingest/kafka/)'],
  [/\/dist\/ingest\//, 'frame decoding (ingest/decode/)'],
  [/\/dist\/processors\/stream\//, 'partition processor (flow records, commit points)'],
  [/\/dist\/processors\//, 'conntrack engine (processors/)'],
  [/\/dist\/cli\//, 'StreamPipeline glue (cli/streamPipeline.ts)'],
  [/\/dist\/kafka\/(produceRequest|crc32c)\.js$/, 'produce request encoding (kafka/produceRequest.ts)'],
  [/\/dist\/kafka\//, 'kafka/client.ts wrapper (message conversion)'],
  [/\/dist\/bench\//, 'bench harness'],
];

/** V8's pseudo-frames. A Map, not an object literal: a function named "toString" must not find Object.prototype's. */
const SPECIAL = new Map<string, string>([
  ['(garbage collector)', 'GC'],
  ['(idle)', 'idle (waiting for the broker / network)'],
  ['(program)', 'V8 / native, unattributed'],
  ['(root)', 'V8 / native, unattributed'],
]);

/**
 * Pipeline stages worth a line of inclusive time: [label, function name, script pattern, and
 * optionally the index of a stage nested in it whose time is left out]. The engine runs inside
 * decodeInputMessage (its packet callback pushes into the partition processor), so "decode" is
 * decodeInputMessage minus PartitionProcessor.push.
 */
const STAGES: Array<[string, string, RegExp, number?]> = [
  ['StreamPipeline.process (decode + engine + encode, synchronous)', 'process', /\/dist\/cli\/streamPipeline\.js$/],
  ['  decodeInputMessage without the engine (CTFB/headers + frame decode)', 'decodeInputMessage', /\/dist\/ingest\/kafka\/inputMessages\.js$/, 2],
  ['  PartitionProcessor.push (engine + flow accounting)', 'push', /\/dist\/processors\/stream\/partitionProcessor\.js$/],
  ['  StreamPipeline.collect (drain + JSON encode outputs)', 'collect', /\/dist\/cli\/streamPipeline\.js$/],
  ['OutputProducer.send (building the produce request; the wait for acks costs no CPU)', 'send', /\/dist\/kafka\/client\.js$/],
  ['kafka/client toInput (kafkajs message -> InputMessage)', 'toInput', /\/dist\/kafka\/client\.js$/],
  ['kafkajs Fetch response decode', 'decode', /\/node_modules\/kafkajs\/src\/protocol\/requests\/fetch\/v\d+\/response\.js$/],
  ['  kafkajs RecordBatch decode', 'module.exports', /\/node_modules\/kafkajs\/src\/protocol\/recordBatch\/v0\/decoder\.js$/],
  ['    kafkajs Record decode (once per Kafka record)', 'module.exports', /\/node_modules\/kafkajs\/src\/protocol\/recordBatch\/record\/v0\/decoder\.js$/],
  ['kafkajs Produce request encode', 'encode', /\/node_modules\/kafkajs\/src\/protocol\/requests\/produce\/v\d+\/request\.js$/],
  ['ctflow Produce request encode (kafka/produceRequest.ts, in kafkajs)', 'encodeProduceRequest', /\/dist\/kafka\/produceRequest\.js$/],
  ["grouping a produce's messages per partition (kafkajs's)", 'module.exports', /\/node_modules\/kafkajs\/src\/producer\/groupMessagesPerPartition\.js$/],
  ["grouping a produce's messages per partition (ctflow's, in kafkajs)", 'groupMessagesPerPartition', /\/dist\/kafka\/kafkajsProduceSeam\.js$/],
];

function categoryOf(url: string): string | undefined {
  for (const [re, name] of RULES) if (re.test(url)) return name;
  return undefined;
}

function shortUrl(url: string): string {
  const m = /\/(dist|node_modules)\/(.*)$/.exec(url);
  if (m) return m[1] === 'dist' ? m[2].replace(/\.js$/, '.ts') : m[2];
  return url.replace(/^file:\/\//, '') || 'native';
}

export function summarizeProfile(path: string, top = 15): ProfileSummary {
  const prof = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of prof.nodes) byId.set(n.id, n);
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  // Categories top-down, so a node without its own inherits the caller's.
  const cat = new Map<number, string>();
  const resolve = (id: number): string => {
    const known = cat.get(id);
    if (known) return known;
    const n = byId.get(id)!;
    const special = SPECIAL.get(n.callFrame.functionName);
    let c = special ?? categoryOf(n.callFrame.url);
    if (!c) {
      const p = parent.get(id);
      const inherited = p !== undefined ? resolve(p) : undefined;
      c = inherited && ![...SPECIAL.values()].includes(inherited) ? inherited : 'node runtime (sockets, timers, streams)';
    }
    cat.set(id, c);
    return c;
  };

  const selfMs = new Map<number, number>();
  let totalMs = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    // A sample's delta is the time until the next one; the first delta is from the profile start.
    const ms = (prof.timeDeltas[i + 1] ?? 0) / 1000;
    selfMs.set(prof.samples[i], (selfMs.get(prof.samples[i]) ?? 0) + ms);
    totalMs += ms;
  }

  const catMs = new Map<string, number>();
  const fnMs = new Map<string, { ms: number; category: string }>();
  for (const [id, ms] of selfMs) {
    const c = resolve(id);
    catMs.set(c, (catMs.get(c) ?? 0) + ms);
    const f = byId.get(id)!.callFrame;
    const label = `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    const e = fnMs.get(label) ?? { ms: 0, category: c };
    e.ms += ms;
    fnMs.set(label, e);
  }

  // Inclusive time per stage: each sample counted once per stage found among its ancestors.
  const stageMs = STAGES.map(() => 0);
  const stageOf = new Map<number, number[]>();
  const stagesOnPath = (id: number): number[] => {
    const known = stageOf.get(id);
    if (known) return known;
    const f = byId.get(id)!.callFrame;
    const own = STAGES.flatMap(([, fn, re], k) => (f.functionName === fn && re.test(f.url) ? [k] : []));
    const p = parent.get(id);
    const list = [...new Set([...(p !== undefined ? stagesOnPath(p) : []), ...own])];
    stageOf.set(id, list);
    return list;
  };
  for (const [id, ms] of selfMs) {
    const on = stagesOnPath(id);
    for (const k of on) {
      const unless = STAGES[k][3];
      if (unless === undefined || !on.includes(unless)) stageMs[k] += ms;
    }
  }

  const share = (ms: number) => (totalMs > 0 ? ms / totalMs : 0);
  return {
    totalMs,
    categories: [...catMs].map(([name, ms]) => ({ name, ms, share: share(ms) })).sort((a, b) => b.ms - a.ms),
    self: [...fnMs]
      .map(([name, e]) => ({ name, ms: e.ms, share: share(e.ms), category: e.category }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top),
    stages: STAGES.map(([label], k) => ({ name: label, ms: stageMs[k], share: share(stageMs[k]) })).filter((s) => s.ms > 0),
  };
}
