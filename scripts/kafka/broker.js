#!/usr/bin/env node
// A real single-node Apache Kafka (KRaft, broker+controller in one JVM) for the tests and the local
// demo, built from Maven Central jars so the machine needs only a JDK and Maven: no Docker, no
// tarball download. Plain CommonJS with no build step, because jest's globalSetup and the npm
// scripts load it directly. docs/kafka.md describes how to use it.
//
//   node scripts/kafka/broker.js fetch | start [--port N] [--json] | stop | halt | resume | status [--json]
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const CACHE_DIR = path.join(ROOT, '.cache', 'kafka');
const RUNS_DIR = path.join(CACHE_DIR, 'run');
const LOGS_DIR = path.join(CACHE_DIR, 'logs');
const STATE_FILE = path.join(CACHE_DIR, 'broker.json');
const WATCHDOG = path.join(__dirname, 'watchdog.js');
const { pidAlive } = require('./processAlive');

const DEFAULT_VERSION = '4.3.1';
const DEFAULT_PORT = 19092;
const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 30_000;
const MVN_TIMEOUT_MS = 15 * 60_000;
const LOGS_KEPT = 10;
// Files in a run's data dir next to server.properties and kraft/ (java.pid and exit.json are the watchdog's).
const RUN_FILE = 'run.json'; // what resume() needs: version, ports, cluster id, heap, owner
const HALTED_FILE = 'halted.json'; // present while halted: when, and the guard's pid
const WATCHDOG_PID_FILE = 'watchdog.pid';
// What halt() adds to a handle and resume() takes away.
const HALT_KEYS = ['halted', 'graceful', 'haltMs'];

// Pinned so a fetch resolves the same jars today and next month.
const DEPENDENCY_PLUGIN = 'org.apache.maven.plugins:maven-dependency-plugin:3.8.1';
// Kafka's jars log through slf4j but its poms leave the binding to the distribution tarball (log4j2
// in 4.x, reload4j in 3.x). slf4j-simple is one binding that works for both lines and is configured
// with plain -D flags; the slf4j 2 API is declared directly so it wins over the 1.7 that Kafka pulls
// (Kafka only calls the 1.x API, which 2.x keeps).
const SLF4J_VERSION = '2.0.17';
// The storage-format tool: Scala object in core for 3.x and 4.x so far; listed in the order tried,
// so a release that moves it into the Java tools package still works once that jar is in the lib.
const STORAGE_TOOL_CLASSES = ['kafka.tools.StorageTool', 'org.apache.kafka.tools.StorageTool'];
// KafkaRaftServer logs this once the broker and controller are both up (3.9 and 4.x alike).
const STARTED_LINE = /Kafka Server started/;

class KafkaBrokerError extends Error {
  constructor(message, code) {
    super(message);
    this.name = 'KafkaBrokerError';
    this.code = code;
  }
}

function kafkaVersion(version) {
  const v = version || process.env.CTFLOW_KAFKA_VERSION || DEFAULT_VERSION;
  // The version ends up in a path and a pom: accept only what a Kafka release looks like.
  if (!/^\d+\.\d+\.\d+(?:[-.][A-Za-z0-9]+)*$/.test(v)) {
    throw new KafkaBrokerError(`not a Kafka version: "${v}" (expected e.g. ${DEFAULT_VERSION} or 3.9.1)`, 'BAD_VERSION');
  }
  return v;
}

function versionPaths(version) {
  const dir = path.join(CACHE_DIR, version);
  return { dir, lib: path.join(dir, 'lib'), pom: path.join(dir, 'pom.xml'), marker: path.join(dir, 'fetched.json'), mvnLog: path.join(dir, 'mvn.log') };
}

function rel(p) {
  return path.relative(process.cwd(), p) || '.';
}

function tail(file, lines = 20) {
  try {
    const text = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    return text.slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * The first error the broker logged, in one line. On a failed start Kafka runs its whole shutdown
 * hook afterwards, so the last lines of the log rarely say what went wrong; this usually does.
 */
function firstError(file) {
  let lines;
  try {
    lines = fs.readFileSync(file, 'utf8').split('\n');
  } catch {
    return null;
  }
  const i = lines.findIndex((l) => / ERROR |^Error |^Exception in thread/.test(l));
  if (i < 0) return null;
  // The JVM's own start-up failures put the reason on the line after "Error occurred ...".
  const cause = lines[i].startsWith('Error ') ? lines[i + 1] : lines.slice(i + 1, i + 3).find((l) => /^[\w.$]+(Exception|Error)\b/.test(l));
  const head = lines[i].replace(/^\d{4}-\d\d-\d\d [\d:,]+ /, '');
  return `${head}${cause ? ` / ${cause}` : ''}`.slice(0, 400);
}

function indent(text) {
  return text
    .split('\n')
    .map((l) => `  | ${l}`)
    .join('\n');
}

// ---------------------------------------------------------------------------------------------
// Tools on the machine

function javaCommand() {
  // JAVA_HOME first, as the Kafka scripts do, so a machine with several JDKs picks the intended one.
  const home = process.env.JAVA_HOME;
  if (home && fs.existsSync(path.join(home, 'bin', 'java'))) return path.join(home, 'bin', 'java');
  return 'java';
}

/** Checks that a JDK new enough for this Kafka line is present; returns its command and major version. */
function checkJava(version) {
  const cmd = javaCommand();
  const r = spawnSync(cmd, ['-version'], { encoding: 'utf8', timeout: 30_000 });
  if (r.error) {
    const why = r.error.code === 'ENOENT' ? 'not found on PATH (and JAVA_HOME unset or without bin/java)' : r.error.message;
    throw new KafkaBrokerError(`java ${why}: Kafka needs a JDK (17+ for Kafka 4, 11+ for 3.x)`, 'NO_JAVA');
  }
  const m = /version "(\d+)(?:\.(\d+))?/.exec(r.stderr + r.stdout);
  const major = m ? (m[1] === '1' ? Number(m[2]) : Number(m[1])) : NaN;
  const needed = Number(version.split('.')[0]) >= 4 ? 17 : 11;
  if (!(major >= needed)) {
    throw new KafkaBrokerError(`java at "${cmd}" is version ${Number.isNaN(major) ? 'unknown' : major}; Kafka ${version} needs ${needed}+`, 'OLD_JAVA');
  }
  return { cmd, major };
}

let setprivWorks;
/** util-linux setpriv can give java a parent-death signal; probe once whether it is usable here. */
function hasSetpriv() {
  if (setprivWorks === undefined) {
    const r = spawnSync('setpriv', ['--pdeathsig', 'KILL', 'true'], { stdio: 'ignore', timeout: 10_000 });
    setprivWorks = !r.error && r.status === 0;
  }
  return setprivWorks;
}

// ---------------------------------------------------------------------------------------------
// fetch: resolve the broker and its runtime dependencies with Maven into .cache/kafka/<version>/lib

function pomFor(version) {
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/kafka/broker.js: only used to resolve the broker's jars. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>ctflow.local</groupId>
  <artifactId>kafka-broker-runtime</artifactId>
  <version>${version}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>${version}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-api</artifactId>
      <version>${SLF4J_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-simple</artifactId>
      <version>${SLF4J_VERSION}</version>
    </dependency>
  </dependencies>
</project>
`;
}

/** The marker is written last, so its presence with all listed jars means a complete fetch. */
function readMarker(version) {
  const p = versionPaths(version);
  try {
    const marker = JSON.parse(fs.readFileSync(p.marker, 'utf8'));
    if (!Array.isArray(marker.jars) || marker.jars.length === 0) return null;
    if (!marker.jars.every((j) => fs.existsSync(path.join(p.lib, j)))) return null;
    return marker;
  } catch {
    return null;
  }
}

function runMvn(args, logFile) {
  return new Promise((resolve, reject) => {
    const out = fs.openSync(logFile, 'w');
    const child = spawn('mvn', args, { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    const timer = setTimeout(() => child.kill('SIGKILL'), MVN_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/** The most telling line of a failed Maven run, e.g. "Could not find artifact ...". */
function mvnFailureReason(logFile) {
  let text = '';
  try {
    text = fs.readFileSync(logFile, 'utf8');
  } catch {
    return 'no output';
  }
  const errors = text.split('\n').filter((l) => l.startsWith('[ERROR]'));
  const best = errors.find((l) => /Could not (find|resolve|transfer)|Failed to|Non-resolvable/.test(l)) || errors[0];
  return best ? best.replace(/^\[ERROR\]\s*/, '').trim().slice(0, 400) : 'no [ERROR] line in the output';
}

/**
 * Makes sure the jars for `version` are in the cache; runs Maven only when the marker is missing.
 * @returns {Promise<{version: string, libDir: string, jars: number, cached: boolean}>}
 */
async function fetch(opts = {}) {
  const version = kafkaVersion(opts.version);
  const log = opts.log || (() => {});
  const p = versionPaths(version);
  const marker = readMarker(version);
  if (marker) return { version, libDir: p.lib, jars: marker.jars.length, cached: true };

  const mvnCheck = spawnSync('mvn', ['-v'], { stdio: 'ignore', timeout: 60_000 });
  if (mvnCheck.error) {
    const why = mvnCheck.error.code === 'ENOENT' ? 'not found on PATH' : mvnCheck.error.message;
    throw new KafkaBrokerError(`mvn ${why}: Maven is needed once to fetch org.apache.kafka:kafka_2.13:${version}`, 'NO_MVN');
  }

  fs.mkdirSync(p.dir, { recursive: true });
  fs.writeFileSync(p.pom, pomFor(version));
  // Resolve into a private folder and rename at the end, so a concurrent or interrupted fetch never
  // leaves a half-filled lib/ that the marker check could mistake for a complete one.
  const staging = `${p.lib}.tmp-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  log(`kafka: resolving org.apache.kafka:kafka_2.13:${version} with Maven (first time only; log: ${rel(p.mvnLog)})`);
  const r = await runMvn(
    ['-B', '-ntp', '-f', p.pom, `${DEPENDENCY_PLUGIN}:copy-dependencies`, '-DincludeScope=runtime', `-DoutputDirectory=${staging}`],
    p.mvnLog,
  );
  const kafkaJar = `kafka_2.13-${version}.jar`;
  if (r.code !== 0 || !fs.existsSync(path.join(staging, kafkaJar))) {
    fs.rmSync(staging, { recursive: true, force: true });
    const how = r.signal ? `was killed (${r.signal})` : `failed (exit ${r.code})`;
    throw new KafkaBrokerError(
      `mvn ${how} resolving org.apache.kafka:kafka_2.13:${version} (+ slf4j-simple ${SLF4J_VERSION}): ${mvnFailureReason(p.mvnLog)} [full log: ${rel(p.mvnLog)}]`,
      'MVN_FAILED',
    );
  }
  fs.rmSync(p.lib, { recursive: true, force: true });
  fs.renameSync(staging, p.lib);
  const jars = fs.readdirSync(p.lib).filter((f) => f.endsWith('.jar')).sort();
  fs.writeFileSync(p.marker, `${JSON.stringify({ version, jars, fetchedAt: new Date().toISOString() }, null, 2)}\n`);
  return { version, libDir: p.lib, jars: jars.length, cached: false };
}

// ---------------------------------------------------------------------------------------------
// start

function portIsFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: HOST, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

function anyFreePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ host: HOST, port: 0, exclusive: true }, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function choosePorts(opts, avoidDefault = false) {
  let port;
  if (opts.port != null) {
    port = Number(opts.port);
    if (!(await portIsFree(port))) throw new KafkaBrokerError(`port ${HOST}:${port} is taken: choose another or stop what holds it`, 'PORT_TAKEN');
  } else {
    port = !avoidDefault && (await portIsFree(DEFAULT_PORT)) ? DEFAULT_PORT : await anyFreePort();
  }
  let controllerPort;
  if (opts.controllerPort != null) {
    controllerPort = Number(opts.controllerPort);
    if (controllerPort === port || !(await portIsFree(controllerPort))) {
      throw new KafkaBrokerError(`controller port ${HOST}:${controllerPort} is taken`, 'PORT_TAKEN');
    }
  } else {
    do controllerPort = await anyFreePort();
    while (controllerPort === port);
  }
  return { port, controllerPort };
}

/** A random cluster id in Kafka's own text form (16 random bytes, base64url, unpadded). */
function newClusterId() {
  for (;;) {
    const id = crypto.randomBytes(16).toString('base64url');
    // Kafka refuses ids that start with '-' (they read as a command-line flag); draw again.
    if (!id.startsWith('-')) return id;
  }
}

function serverProperties({ version, port, controllerPort, logDirs, overrides }) {
  const major = Number(version.split('.')[0]);
  const props = {
    // One JVM is both the KRaft controller and the broker; a static one-voter quorum works the
    // same on 3.9 and 4.x and needs no --standalone at format time.
    'process.roles': 'broker,controller',
    'node.id': '1',
    'controller.quorum.voters': `1@${HOST}:${controllerPort}`,
    'controller.listener.names': 'CONTROLLER',
    listeners: `PLAINTEXT://${HOST}:${port},CONTROLLER://${HOST}:${controllerPort}`,
    'advertised.listeners': `PLAINTEXT://${HOST}:${port}`,
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'log.dirs': logDirs,
    // Topics are created on purpose (admin in tests, the pipeline's own topic setup), as in a real
    // cluster; silently auto-created single-partition topics would hide a missing create step.
    'auto.create.topics.enable': 'false',
    'num.partitions': '1',
    'default.replication.factor': '1',
    'min.insync.replicas': '1',
    // Internal topics default to replication factor 3, which one node can never satisfy.
    'offsets.topic.replication.factor': '1',
    'transaction.state.log.replication.factor': '1',
    'transaction.state.log.min.isr': '1',
    // Few internal partitions: they are created lazily on first group/transaction use, and 50 of
    // each would make that first use slow on a 2-core machine.
    'offsets.topic.num.partitions': '4',
    'transaction.state.log.num.partitions': '4',
    // A test's consumer group should not wait 3 s for more members that never come.
    'group.initial.rebalance.delay.ms': '0',
    // No time-based retention: replayed captures and test messages carry their original, possibly
    // years-old timestamps, and the periodic retention check would delete them mid-test (the data
    // dir is thrown away at stop anyway).
    'log.retention.ms': '-1',
    // Small segments and indexes: test data is tiny and the data dir is thrown away.
    'log.segment.bytes': String(16 * 1024 * 1024),
    'log.index.size.max.bytes': String(1024 * 1024),
    'offsets.topic.segment.bytes': String(16 * 1024 * 1024),
    'transaction.state.log.segment.bytes': String(16 * 1024 * 1024),
    'num.network.threads': '2',
    'num.io.threads': '4',
    'num.recovery.threads.per.data.dir': '1',
  };
  if (major >= 4) {
    // Share groups (4.x) keep state in another internal topic, again replicated 3 by default.
    props['share.coordinator.state.topic.replication.factor'] = '1';
    props['share.coordinator.state.topic.min.isr'] = '1';
  }
  Object.assign(props, overrides || {});
  return `# Generated by scripts/kafka/broker.js for Kafka ${version}\n${Object.entries(props)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n`;
}

function slf4jFlags(level) {
  return [
    `-Dorg.slf4j.simpleLogger.defaultLogLevel=${level}`,
    '-Dorg.slf4j.simpleLogger.showDateTime=true',
    '-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd HH:mm:ss,SSS',
    '-Dorg.slf4j.simpleLogger.logFile=System.out',
  ];
}

function formatStorage({ java, libDir, propsFile, clusterId, logFile }) {
  const classpath = path.join(libDir, '*');
  for (const cls of STORAGE_TOOL_CLASSES) {
    const r = spawnSync(java, ['-Xmx256m', ...slf4jFlags('warn'), '-cp', classpath, cls, 'format', '-t', clusterId, '-c', propsFile], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    const out = `${r.stdout || ''}${r.stderr || ''}`;
    fs.appendFileSync(logFile, `[ctflow] ${cls} format -t ${clusterId}\n${out}\n`);
    if (/Could not find or load main class|ClassNotFoundException/.test(out) && r.status !== 0) continue;
    if (r.error || r.status !== 0) {
      const how = r.error ? r.error.message : `exit ${r.status}`;
      throw new KafkaBrokerError(`formatting the KRaft storage failed (${cls}, ${how}):\n${indent(out.trimEnd().split('\n').slice(-20).join('\n'))}`, 'FORMAT_FAILED');
    }
    return cls;
  }
  throw new KafkaBrokerError(`no storage-format tool (${STORAGE_TOOL_CLASSES.join(' or ')}) in ${rel(libDir)}`, 'FORMAT_FAILED');
}

function javaArgs({ heap, libDir, propsFile }) {
  return [
    `-Xmx${heap}`,
    '-Xms128m',
    // Throughput is irrelevant here, start-up time and a small footprint on 2 cores are not.
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    '-Djava.awt.headless=true',
    ...slf4jFlags('info'),
    '-cp',
    path.join(libDir, '*'),
    'kafka.Kafka',
    propsFile,
  ];
}

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

function cmdline(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return null;
  }
}

/** True when `pid` is alive and (where /proc exists) still the process started for `dataDir`. */
function isOurs(pid, dataDir) {
  if (!pidAlive(pid)) return false;
  const cmd = cmdline(pid);
  return cmd === null ? true : cmd.includes(dataDir);
}

function processStartTime(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return null;
  }
}

/** Run folders whose broker is gone (crash, SIGKILL of everything) are deleted on the next start. */
function pruneStaleRuns() {
  let entries = [];
  try {
    entries = fs.readdirSync(RUNS_DIR);
  } catch {
    return;
  }
  for (const name of entries) {
    const dir = path.join(RUNS_DIR, name);
    if (fs.existsSync(path.join(dir, HALTED_FILE))) {
      // Halted on purpose: kept for resume() while its owner lives (without an owner, until stop()).
      const run = readJson(path.join(dir, RUN_FILE));
      if (!run || (run.watchPid && !ownerAlive(run))) fs.rmSync(dir, { recursive: true, force: true });
      continue;
    }
    const javaPid = Number(readFileOr(path.join(dir, 'java.pid'), '0'));
    const exited = fs.existsSync(path.join(dir, 'exit.json'));
    let oldEnough = false;
    try {
      oldEnough = Date.now() - fs.statSync(dir).mtimeMs > 10 * 60_000;
    } catch {
      /* vanished meanwhile */
    }
    if (exited || (javaPid && !isOurs(javaPid, dir)) || (!javaPid && oldEnough)) {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  try {
    const logs = fs.readdirSync(LOGS_DIR).filter((f) => f.endsWith('.log')).sort();
    for (const f of logs.slice(0, Math.max(0, logs.length - LOGS_KEPT))) fs.rmSync(path.join(LOGS_DIR, f), { force: true });
  } catch {
    /* no logs yet */
  }
}

function readFileOr(file, fallback) {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return fallback;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Whether the broker answers a real client: a kafkajs admin connection and a metadata request. */
async function brokerAnswers(brokers) {
  let kafkajs;
  try {
    kafkajs = require('kafkajs');
  } catch {
    // Without kafkajs (e.g. used from another project), an accepted TCP connection has to do.
    return new Promise((resolve) => {
      const [host, port] = brokers.split(':');
      const sock = net.connect({ host, port: Number(port) }, () => {
        sock.destroy();
        resolve(true);
      });
      sock.on('error', () => resolve(false));
      sock.setTimeout(2000, () => {
        sock.destroy();
        resolve(false);
      });
    });
  }
  const kafka = new kafkajs.Kafka({
    clientId: 'ctflow-broker-ready-check',
    brokers: [brokers],
    logLevel: kafkajs.logLevel.NOTHING,
    connectionTimeout: 2000,
    requestTimeout: 5000,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** Waits up to `timeoutMs` for `pid` to exit; true when it did. */
async function waitGone(pid, timeoutMs) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until && pidAlive(pid)) await sleep(50);
  return !pidAlive(pid);
}

async function killAndWait(pid, timeoutMs) {
  // Returns true when the process ended on SIGTERM, false when it took a SIGKILL.
  if (!pidAlive(pid)) return true;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return true;
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) return true;
    await sleep(100);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* just exited */
  }
  const hard = Date.now() + 5000;
  while (Date.now() < hard && pidAlive(pid)) await sleep(100);
  return false;
}

/**
 * Starts one KRaft broker+controller bound to 127.0.0.1 and waits until it serves clients.
 * @param {object} [opts]
 * @param {string} [opts.version]  Kafka version (default: $CTFLOW_KAFKA_VERSION or 4.3.1)
 * @param {number} [opts.port]  broker port; must be free. Default: 19092 if free, else any free port
 * @param {number} [opts.controllerPort]  KRaft controller port (default: any free port)
 * @param {string} [opts.heap]  JVM -Xmx (default "512m")
 * @param {number} [opts.readyTimeoutMs]  give up after this long (default 90 000)
 * @param {number|null} [opts.watchPid]  the broker is stopped when this process goes away
 *   (default: the calling process; null: keep running until stop())
 * @param {boolean} [opts.writeState]  record it in .cache/kafka/broker.json for `stop`/`status` (default true)
 * @param {Record<string,string>} [opts.overrides]  extra server.properties entries
 * @param {(line: string) => void} [opts.log]  progress lines (default: silent)
 * @returns {Promise<{brokers: string, pid: number, dataDir: string, logFile: string, version: string,
 *   port: number, controllerPort: number, clusterId: string, watchPid: number|null, watchdogPid: number,
 *   startupMs: number}>}  halt()/resume()/restart() take this handle; stop() takes it or theirs
 */
async function start(opts = {}) {
  const t0 = Date.now();
  const version = kafkaVersion(opts.version);
  const log = opts.log || (() => {});
  const writeState = opts.writeState !== false;
  const java = checkJava(version).cmd;

  if (writeState) {
    const current = await status();
    if (current.running) {
      throw new KafkaBrokerError(
        `a broker is already running at ${current.brokers} (pid ${current.pid}, Kafka ${current.version}); stop it first: node scripts/kafka/broker.js stop`,
        'ALREADY_RUNNING',
      );
    }
    if (current.halted) {
      throw new KafkaBrokerError(
        `a broker is halted with its data (${current.brokers}, Kafka ${current.version}); resume or stop it first: node scripts/kafka/broker.js resume | stop`,
        'ALREADY_RUNNING',
      );
    }
    if (current.stale) fs.rmSync(STATE_FILE, { force: true });
  }

  const { libDir } = await fetch({ version, log });
  pruneStaleRuns();
  // A port can be free when checked and taken seconds later when Kafka binds it (another test run
  // starting its broker at the same moment); ports we picked ourselves are simply picked again.
  const ownPorts = opts.port == null && opts.controllerPort == null;
  for (let attempt = 1; ; attempt++) {
    const ports = await choosePorts(opts, attempt > 1);
    try {
      const result = await launch({ ...opts, version, java, libDir, writeState, ...ports });
      result.startupMs = Date.now() - t0;
      if (writeState) fs.writeFileSync(STATE_FILE, `${JSON.stringify({ ...result, startedAt: new Date().toISOString() }, null, 2)}\n`);
      return result;
    } catch (err) {
      if (!(err instanceof KafkaBrokerError && err.code === 'PORT_TAKEN' && ownPorts && attempt < 3)) throw err;
      log(`kafka: ${err.message.split('\n')[0].slice(0, 160)}... trying other ports`);
    }
  }
}

/** One start attempt on the given ports: format a fresh data dir, spawn, wait until ready. */
async function launch({ version, java, libDir, writeState, port, controllerPort, ...opts }) {
  const brokers = `${HOST}:${port}`;

  const runId = `${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${process.pid}-${crypto.randomBytes(2).toString('hex')}`;
  const dataDir = path.join(RUNS_DIR, runId);
  const logDirs = path.join(dataDir, 'kraft');
  const propsFile = path.join(dataDir, 'server.properties');
  const logFile = path.join(LOGS_DIR, `broker-${runId}.log`);
  fs.mkdirSync(logDirs, { recursive: true });
  fs.mkdirSync(LOGS_DIR, { recursive: true });
  fs.writeFileSync(propsFile, serverProperties({ version, port, controllerPort, logDirs, overrides: opts.overrides }));
  fs.writeFileSync(logFile, `[ctflow] Kafka ${version}, ${brokers} (controller ${HOST}:${controllerPort}), data ${dataDir}\n`);

  const clusterId = newClusterId();
  formatStorage({ java, libDir, propsFile, clusterId, logFile });

  // Everything resume() needs to run this broker again as it was, next to its data.
  const watchPid = opts.watchPid === undefined ? process.pid : opts.watchPid;
  const run = {
    version,
    port,
    controllerPort,
    clusterId,
    heap: opts.heap || '512m',
    logFile,
    watchPid,
    watchStart: watchPid ? processStartTime(watchPid) : null,
  };
  fs.writeFileSync(path.join(dataDir, RUN_FILE), `${JSON.stringify(run, null, 2)}\n`);

  const { javaPid, watchdogPid } = await spawnBroker({
    java,
    libDir,
    dataDir,
    run,
    stateFile: writeState ? STATE_FILE : null,
    readyTimeoutMs: opts.readyTimeoutMs,
    keepData: false,
  });
  return { brokers, pid: javaPid, dataDir, logFile, version, port, controllerPort, clusterId, watchPid, watchdogPid, startupMs: 0 };
}

/**
 * Runs java on an already formatted data dir under a fresh watchdog and waits until the broker
 * serves clients: the log says it started and a kafkajs admin gets metadata. On failure java and
 * the watchdog are stopped, and the data dir is deleted unless `keepData` (a resume must not lose
 * what the halted broker held).
 */
async function spawnBroker({ java, libDir, dataDir, run, stateFile, readyTimeoutMs = READY_TIMEOUT_MS, keepData }) {
  const { version, port, controllerPort, logFile } = run;
  const brokers = `${HOST}:${port}`;
  const propsFile = path.join(dataDir, 'server.properties');
  const pidFile = path.join(dataDir, 'java.pid');
  const exitFile = path.join(dataDir, 'exit.json');
  const jargs = javaArgs({ heap: run.heap, libDir, propsFile });
  const [command, args] = hasSetpriv() ? ['setpriv', ['--pdeathsig', 'KILL', java, ...jargs]] : [java, jargs];
  // The watchdog's own stderr goes to the broker log too, so a crash of it is not lost.
  const watchdogErr = fs.openSync(logFile, 'a');
  const watchdog = spawn(
    process.execPath,
    [
      WATCHDOG,
      JSON.stringify({
        command,
        args,
        cwd: dataDir,
        logFile,
        pidFile,
        exitFile,
        watchPid: run.watchPid,
        watchStart: run.watchStart,
        graceMs: 15_000,
        cleanupDir: dataDir,
        stateFile,
      }),
    ],
    // Own session and no shared pipes: the CLI can exit and leave it running, and a Ctrl-C meant
    // for jest does not reach it directly (it notices jest is gone instead).
    { detached: true, stdio: ['ignore', 'ignore', watchdogErr], cwd: dataDir },
  );
  fs.closeSync(watchdogErr);
  watchdog.unref();
  // So that stop() and halt() find the current watchdog even from a handle older than a resume.
  fs.writeFileSync(path.join(dataDir, WATCHDOG_PID_FILE), String(watchdog.pid));

  const deadline = Date.now() + readyTimeoutMs;
  let javaPid = 0;
  let sawStarted = false;
  const fail = async (message, code) => {
    if (javaPid) await killAndWait(javaPid, 5000);
    else if (pidAlive(watchdog.pid)) process.kill(watchdog.pid, 'SIGKILL');
    if (keepData) {
      // Back to the halted state the caller started from: no java, no watchdog, data as it was.
      await waitGone(watchdog.pid, 3000);
      for (const f of [pidFile, exitFile, path.join(dataDir, WATCHDOG_PID_FILE)]) fs.rmSync(f, { force: true });
    } else {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
    throw new KafkaBrokerError(message, code);
  };
  for (;;) {
    if (!javaPid) javaPid = Number(readFileOr(pidFile, '0'));
    const exit = readJson(exitFile);
    if (exit) {
      const logTail = tail(logFile, 20);
      const cause = firstError(logFile);
      if (/Address already in use|BindException/.test(cause || logTail)) {
        // Someone took a port between our check and Kafka's bind.
        await fail(`port taken: Kafka could not bind ${brokers} or ${HOST}:${controllerPort}: ${cause} (log: ${rel(logFile)})`, 'PORT_TAKEN');
      }
      const how = exit.error ? `could not be started (${exit.error})` : exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
      await fail(
        `Kafka ${version} broker ${how} during startup${cause ? `: ${cause}` : ''}; last lines of ${rel(logFile)}:\n${indent(logTail)}`,
        'EXITED',
      );
    }
    if (!javaPid && !pidAlive(watchdog.pid)) {
      await fail(`the broker's watchdog process died before starting java (log: ${rel(logFile)})`, 'EXITED');
    }
    if (!sawStarted) sawStarted = STARTED_LINE.test(readFileOr(logFile, ''));
    if (sawStarted && (await brokerAnswers(brokers))) break;
    if (Date.now() > deadline) {
      await fail(
        `Kafka ${version} broker not ready within ${Math.round(readyTimeoutMs / 1000)} s at ${brokers}; last lines of ${rel(logFile)}:\n${indent(tail(logFile, 20))}`,
        'TIMEOUT',
      );
    }
    await sleep(sawStarted ? 200 : 250);
  }
  return { javaPid, watchdogPid: watchdog.pid };
}

// ---------------------------------------------------------------------------------------------
// halt / resume: an operator's restart of the same broker (same data, ports and cluster id)

/** What launch() recorded next to the data; only brokers started by this version of the script have it. */
function readRun(dataDir) {
  const run = readJson(path.join(dataDir, RUN_FILE));
  if (!run || !fs.existsSync(path.join(dataDir, 'kraft', 'meta.properties'))) {
    throw new KafkaBrokerError(`no resumable broker data in ${rel(dataDir)} (deleted by stop(), or started by an older broker.js)`, 'NO_DATA');
  }
  return run;
}

/** Whether the process a broker was started for is still that same process (a reused pid is not). */
function ownerAlive(run) {
  if (!pidAlive(run.watchPid)) return false;
  return run.watchStart == null || processStartTime(run.watchPid) === run.watchStart;
}

/** The java currently serving `dataDir`, if any: the handle's pid, or the one the watchdog recorded. */
function liveJava(pid, dataDir) {
  for (const p of [pid, Number(readFileOr(path.join(dataDir, 'java.pid'), '0'))]) if (p && isOurs(p, dataDir)) return p;
  return 0;
}

/** The state file follows a halt or resume of the broker it records (`npm run kafka:start`'s). */
function syncState(handle) {
  const state = readJson(STATE_FILE);
  if (state && path.resolve(state.dataDir) === path.resolve(handle.dataDir)) {
    const next = { ...state, ...handle };
    // What only a halted broker has must not stay behind once it is resumed.
    if (!handle.halted) for (const k of HALT_KEYS) delete next[k];
    fs.writeFileSync(STATE_FILE, `${JSON.stringify(next, null, 2)}\n`);
  }
}

function stateNames(dataDir) {
  const state = readJson(STATE_FILE);
  return Boolean(state && path.resolve(state.dataDir) === path.resolve(dataDir));
}

/** A watchdog without java: deletes the halted broker's data if its owner goes away before resume/stop. */
function spawnGuard(dataDir, run) {
  const err = fs.openSync(run.logFile, 'a');
  const guard = spawn(
    process.execPath,
    [
      WATCHDOG,
      JSON.stringify({
        logFile: run.logFile,
        watchPid: run.watchPid,
        watchStart: run.watchStart,
        cleanupDir: dataDir,
        stateFile: stateNames(dataDir) ? STATE_FILE : null,
      }),
    ],
    { detached: true, stdio: ['ignore', 'ignore', err], cwd: dataDir },
  );
  fs.closeSync(err);
  guard.unref();
  return guard.pid;
}

/**
 * Which process listens on 127.0.0.1:`port`, from /proc (Linux; null elsewhere or when the
 * socket belongs to another user). For the error message when a resume finds its port taken.
 */
function portHolder(port) {
  const inodes = new Set();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileOr(table, '').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT; state 0A is LISTEN; field 9 is the socket inode.
      if (f.length > 9 && f[3] === '0A' && parseInt(f[1].split(':')[1], 16) === port) inodes.add(f[9]);
    }
  }
  if (inodes.size === 0) return null;
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let fds = [];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link = '';
      try {
        link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1])) return `pid ${pid} (${(cmdline(Number(pid)) || '?').slice(0, 120)})`;
    }
  }
  return null;
}

/**
 * Waits until both ports can be bound again. Lingering TIME_WAIT connections do not count: Node
 * and Kafka (Java NIO server sockets) both bind with SO_REUSEADDR. Only a listener does.
 */
async function awaitPorts(run, waitMs) {
  const until = Date.now() + waitMs;
  for (;;) {
    const taken = [];
    for (const [what, port] of [['broker', run.port], ['controller', run.controllerPort]]) {
      if (!(await portIsFree(port))) taken.push({ what, port });
    }
    if (taken.length === 0) return;
    if (Date.now() >= until) {
      const which = taken.map(({ what, port }) => `${what} port ${HOST}:${port} (held by ${portHolder(port) || 'an unknown process'})`);
      throw new KafkaBrokerError(
        `cannot resume the broker: ${which.join(' and ')} still taken after ${Math.round(waitMs / 1000)} s; ` +
          'it must come back on the same ports. It stays halted with its data: stop what holds the port and resume() again, or stop() it',
        'PORT_TAKEN',
      );
    }
    await sleep(200);
  }
}

/**
 * Stops a running broker the way an operator takes one down for maintenance, keeping everything
 * resume() needs to bring the same broker back: the data dir (topics, messages, committed group
 * offsets, transaction and producer state, the cluster id) and the ports. SIGTERM gives Kafka its
 * controlled shutdown and a clean log; SIGKILL follows after `timeoutMs`. While halted, a guard (the
 * watchdog without java) still watches the owner and deletes the data if the owner goes away first,
 * so a halted broker leaves nothing behind either.
 * @param {{dataDir: string, pid: number, watchdogPid?: number}} handle  what start() or resume() returned
 * @param {object} [opts]
 * @param {number} [opts.timeoutMs]  SIGKILL after this long (default 30 000)
 * @returns {Promise<object>}  the handle with `halted: true`, `pid: 0`, `watchdogPid` the guard's
 *   (0 without an owner), `graceful` (false: needed SIGKILL) and `haltMs`
 */
async function halt(handle, opts = {}) {
  const t0 = Date.now();
  const dataDir = path.resolve(handle.dataDir);
  const run = readRun(dataDir);
  const javaPid = liveJava(handle.pid, dataDir);
  if (!javaPid) {
    const already = fs.existsSync(path.join(dataDir, HALTED_FILE));
    throw new KafkaBrokerError(`no broker is running on ${rel(dataDir)}${already ? ': it is halted already' : ''}`, 'NOT_RUNNING');
  }
  const watchdogPid = Number(readFileOr(path.join(dataDir, WATCHDOG_PID_FILE), '0')) || handle.watchdogPid;
  fs.appendFileSync(run.logFile, `\n[ctflow] halting the broker (pid ${javaPid}); its data is kept for resume()\n`);
  const graceful = await killAndWait(javaPid, opts.timeoutMs || STOP_TIMEOUT_MS);
  // The watchdog exits right after java; its owner being alive, it leaves the data alone.
  if (watchdogPid && !(await waitGone(watchdogPid, 3000)) && isOurs(watchdogPid, dataDir)) await killAndWait(watchdogPid, 2000);
  if (!fs.existsSync(dataDir)) {
    throw new KafkaBrokerError(`the data of the broker on ${rel(dataDir)} is gone: its owner ${run.watchPid} exited and its watchdog deleted it`, 'NO_DATA');
  }
  for (const f of ['java.pid', 'exit.json', WATCHDOG_PID_FILE]) fs.rmSync(path.join(dataDir, f), { force: true });
  const guardPid = run.watchPid ? spawnGuard(dataDir, run) : 0;
  fs.writeFileSync(path.join(dataDir, HALTED_FILE), `${JSON.stringify({ at: new Date().toISOString(), graceful, guardPid })}\n`);
  const halted = { ...handle, pid: 0, watchdogPid: guardPid, halted: true, graceful, haltMs: Date.now() - t0 };
  syncState(halted);
  return halted;
}

/**
 * Brings a halted broker back: java again on the same server.properties and data dir (no storage
 * format, so the same cluster id and everything the broker held), on the same ports, under a new
 * watchdog that watches the same owner as before. Waits until ready exactly as start() does.
 * Fails with code PORT_TAKEN if a port is still held after `portWaitMs`; the broker then stays
 * halted with its data, so resume() can be tried again, or stop() called.
 * @param {{dataDir: string}} handle  what halt() returned
 * @param {object} [opts]
 * @param {number} [opts.readyTimeoutMs]  give up after this long (default 90 000)
 * @param {number} [opts.portWaitMs]  how long a taken port is waited for (default 10 000)
 * @param {(line: string) => void} [opts.log]  progress lines (default: silent)
 * @returns {Promise<object>}  the handle with the new `pid` and `watchdogPid`, and `resumeMs`
 */
async function resume(handle, opts = {}) {
  const t0 = Date.now();
  const dataDir = path.resolve(handle.dataDir);
  const run = readRun(dataDir);
  const halted = readJson(path.join(dataDir, HALTED_FILE));
  if (!halted) {
    const running = liveJava(handle.pid, dataDir);
    throw new KafkaBrokerError(
      running ? `the broker on ${rel(dataDir)} is running (pid ${running}): halt() it first` : `no halted broker in ${rel(dataDir)}`,
      'NOT_HALTED',
    );
  }
  if (run.watchPid && !ownerAlive(run)) {
    throw new KafkaBrokerError(`the broker's owner (pid ${run.watchPid}) is gone: a resumed broker would be stopped at once`, 'OWNER_GONE');
  }
  const java = checkJava(run.version).cmd;
  const { libDir } = await fetch({ version: run.version, log: opts.log });
  await awaitPorts(run, opts.portWaitMs == null ? 10_000 : opts.portWaitMs);
  fs.appendFileSync(run.logFile, `\n[ctflow] resuming the broker: same data, ${HOST}:${run.port}, cluster id ${run.clusterId} (halted at ${halted.at})\n`);
  const { javaPid, watchdogPid } = await spawnBroker({
    java,
    libDir,
    dataDir,
    run,
    stateFile: stateNames(dataDir) ? STATE_FILE : null,
    readyTimeoutMs: opts.readyTimeoutMs,
    keepData: true,
  });
  // The new watchdog guards the data now; the halt's guard can go (SIGTERM: it exits, deleting nothing).
  if (halted.guardPid && isOurs(halted.guardPid, dataDir)) await killAndWait(halted.guardPid, 2000);
  fs.rmSync(path.join(dataDir, HALTED_FILE), { force: true });
  const resumed = { ...handle, pid: javaPid, watchdogPid, resumeMs: Date.now() - t0 };
  for (const k of HALT_KEYS) delete resumed[k];
  syncState(resumed);
  return resumed;
}

/**
 * halt() then resume(), optionally staying down `downMs` in between (clients see a broker that is
 * gone for that long). Returns the resumed handle, with `haltMs`, `downMs` and `resumeMs`.
 */
async function restart(handle, opts = {}) {
  const halted = await halt(handle, opts);
  if (opts.downMs) await sleep(opts.downMs);
  const resumed = await resume(halted, opts);
  return { ...resumed, haltMs: halted.haltMs, downMs: opts.downMs || 0 };
}

// ---------------------------------------------------------------------------------------------
// stop / status

/**
 * Stops a broker: the one described by `handle` (what start(), halt() or resume() returned), else
 * the one in the state file. SIGTERM, then SIGKILL after `timeoutMs`; then removes its data dir.
 * A halted broker has no java to stop: its guard is ended and its data deleted.
 * @returns {Promise<{stopped: boolean, pid?: number, graceful?: boolean, ms?: number, reason?: string}>}
 */
async function stop(handle, opts = {}) {
  const t0 = Date.now();
  const fromState = !handle;
  const target = handle || readJson(STATE_FILE);
  if (!target) return { stopped: false, reason: `no broker recorded in ${rel(STATE_FILE)}` };
  const dataDir = path.resolve(target.dataDir);
  // Never delete anything outside our own run folder, whatever a state file says.
  const removable = dataDir.startsWith(RUNS_DIR + path.sep);
  // The handle may predate a halt or resume: the data dir records the current processes too.
  const halted = readJson(path.join(dataDir, HALTED_FILE));
  const javaPid = liveJava(target.pid, dataDir);
  let graceful = true;
  let wasRunning = false;
  if (javaPid) {
    wasRunning = true;
    graceful = await killAndWait(javaPid, opts.timeoutMs || STOP_TIMEOUT_MS);
  }
  const watchdogs = new Set([target.watchdogPid, Number(readFileOr(path.join(dataDir, WATCHDOG_PID_FILE), '0')), halted && halted.guardPid]);
  for (const pid of watchdogs) {
    if (!pid || !isOurs(pid, dataDir)) continue;
    // java is gone; its watchdog exits right after it. Wait briefly so it is not mid-write below.
    // A halt's guard has no java and only leaves when told.
    if (wasRunning) await waitGone(pid, 3000);
    if (pidAlive(pid)) await killAndWait(pid, 2000);
  }
  if (removable) fs.rmSync(dataDir, { recursive: true, force: true });
  const state = readJson(STATE_FILE);
  if (state && (fromState || state.pid === target.pid || path.resolve(state.dataDir) === dataDir)) fs.rmSync(STATE_FILE, { force: true });
  if (!wasRunning) {
    return { stopped: false, pid: target.pid, reason: halted ? 'it was halted (its data is deleted now)' : 'it was not running (state cleaned up)' };
  }
  return { stopped: true, pid: javaPid, graceful, ms: Date.now() - t0 };
}

/**
 * What the state file says, checked against the live process.
 * @returns {Promise<{running: boolean, stale?: boolean, halted?: boolean, brokers?: string, pid?: number, version?: string,
 *   dataDir?: string, logFile?: string, startedAt?: string}>}
 */
async function status() {
  const state = readJson(STATE_FILE);
  if (!state) return { running: false };
  if (state.halted && fs.existsSync(path.join(state.dataDir, HALTED_FILE))) return { running: false, ...state };
  if (!isOurs(state.pid, state.dataDir)) return { running: false, stale: true, ...state };
  return { running: true, ...state };
}

// ---------------------------------------------------------------------------------------------
// CLI

async function main(argv) {
  const [cmd, ...rest] = argv;
  const json = rest.includes('--json');
  const portAt = rest.indexOf('--port');
  const port = portAt >= 0 ? Number(rest[portAt + 1]) : undefined;
  if (portAt >= 0 && !Number.isInteger(port)) throw new KafkaBrokerError('--port needs a number', 'USAGE');
  const say = (line) => process.stderr.write(`${line}\n`);
  switch (cmd) {
    case 'fetch': {
      const r = await fetch({ log: say });
      say(`kafka: ${r.version}: ${r.jars} jars in ${rel(r.libDir)} (${r.cached ? 'cached, Maven not run' : 'fetched with Maven'})`);
      if (json) process.stdout.write(`${JSON.stringify(r)}\n`);
      return 0;
    }
    case 'start': {
      // From the command line the broker outlives this process, until `stop`.
      const r = await start({ port, watchPid: null, log: say });
      say(`kafka: Kafka ${r.version} ready at ${r.brokers} in ${(r.startupMs / 1000).toFixed(1)} s (pid ${r.pid}, log ${rel(r.logFile)}); stop with: npm run kafka:stop`);
      process.stdout.write(json ? `${JSON.stringify(r)}\n` : `KAFKA_BROKERS=${r.brokers}\n`);
      return 0;
    }
    case 'stop': {
      const r = await stop();
      say(r.stopped ? `kafka: stopped pid ${r.pid} in ${(r.ms / 1000).toFixed(1)} s${r.graceful ? '' : ' (needed SIGKILL)'}` : `kafka: nothing to stop: ${r.reason}`);
      return 0;
    }
    case 'halt':
    case 'resume': {
      // The broker from `start`, taken down keeping its data, then brought back on the same ports.
      const state = readJson(STATE_FILE);
      if (!state) throw new KafkaBrokerError(`no broker recorded in ${rel(STATE_FILE)}`, 'USAGE');
      if (cmd === 'halt') {
        const r = await halt(state);
        say(`kafka: halted pid ${state.pid} in ${(r.haltMs / 1000).toFixed(1)} s${r.graceful ? '' : ' (needed SIGKILL)'}; data kept in ${rel(r.dataDir)}; bring it back with: node scripts/kafka/broker.js resume`);
      } else {
        const r = await resume(state, { log: say });
        say(`kafka: resumed Kafka ${r.version} at ${r.brokers} in ${(r.resumeMs / 1000).toFixed(1)} s (pid ${r.pid})`);
      }
      return 0;
    }
    case 'status': {
      const r = await status();
      if (json) process.stdout.write(`${JSON.stringify(r)}\n`);
      else if (r.halted) say(`kafka: Kafka ${r.version} halted, data kept in ${rel(r.dataDir)} (resume: node scripts/kafka/broker.js resume)`);
      else say(r.running ? `kafka: Kafka ${r.version} running at ${r.brokers} (pid ${r.pid}, since ${r.startedAt})` : `kafka: not running${r.stale ? ' (stale state file)' : ''}`);
      return r.running ? 0 : 3;
    }
    default:
      say('usage: node scripts/kafka/broker.js fetch | start [--port N] [--json] | stop | halt | resume | status [--json]');
      say(`  version: $CTFLOW_KAFKA_VERSION (default ${DEFAULT_VERSION}); cache: ${rel(CACHE_DIR)}`);
      return cmd ? 2 : 0;
  }
}

module.exports = { fetch, start, stop, halt, resume, restart, status, kafkaVersion, KafkaBrokerError, DEFAULT_VERSION, CACHE_DIR, STATE_FILE };

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`kafka: ${err instanceof KafkaBrokerError ? err.message : err.stack || err}\n`);
      process.exit(1);
    },
  );
}
