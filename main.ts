#!/usr/bin/env node
/**
 * ctflow's composition root: the command line. The only module that wires ingest/, processors/
 * and sinks/ together; everything below it takes its settings as parameters.
 */
import { Command, CommanderError, Option } from 'commander';
import * as commands from './cli/commands';
import { addFilterOptions } from './cli/filterOptions';
import * as flowEvents from './cli/flowEvents';
import * as kafka from './cli/kafkaCommands';
import * as report from './cli/report';
import { otlpMetricsUrl } from './sinks/otel/endpoint';
import { NAT_HELP, NOTRACK_HELP } from './cli/rules';
import { addZoneOptions, CAPTURE_ZONE_SOURCES, KAFKA_ZONE_SOURCES } from './cli/zoneOptions';
import type { Output } from './cli/commands';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

const helperOption = (): Option =>
  new Option('--helper <name:proto/port>', 'assign a conntrack helper (ftp:tcp/21, tftp:udp/69) to new connections to that port, like nft ct helper set (repeatable)').default([]).argParser(collect);

export function buildProgram(io: Output): Command {
  const program = new Command('ctflow')
    .description('Linux conntrack, out of the kernel: classify, list and replay captured traffic as nf_conntrack would')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });

  const common = (cmd: Command): Command =>
    cmd
      .addOption(new Option('--sysctl <name=value>', 'set a net.netfilter.nf_conntrack_* knob (repeatable)').default([]).argParser(collect))
      .addOption(new Option('--shards <n>', 'number of engine shards (output is the same for any n; one with --nat)').default('1'))
      .option('--workers <n>', "worker threads for the engine, or 'auto' for one per core (output is the same; one with --nat); default: auto for captures of 128 MiB or more, 1 below that, 1 for report; auto for replay --topic")
      .addOption(new Option('--notrack <rule>', NOTRACK_HELP).default([]).argParser(collect))
      .addOption(new Option('--nat <rule>', NAT_HELP).default([]).argParser(collect))
      .addOption(helperOption());

  common(program.command('classify <capture>').description('one JSON line per IP packet: ctstate, direction, TCP state, INVALID reason'))
    .action((path: string, o) => commands.classify(path, o, io));
  addFilterOptions(common(program.command('events <capture>').description('the event stream, like conntrack -E -o timestamp,extended,id')), { eventMask: true })
    .option('--json', 'JSON lines instead of conntrack text')
    .option('--expect', 'expectation events instead, like conntrack -E expect (with --helper)')
    .action((path: string, o) => commands.events(path, o, io));
  addFilterOptions(common(program.command('list [capture]').description('the table after the last packet, like conntrack -L -o extended,id')))
    .option('--json', 'JSON lines instead of conntrack text')
    .option('--expect', 'the expectation table instead, like conntrack -L expect (with --helper)')
    .addOption(new Option('--flow-events <file>', "instead of a capture: hosts' conntrack events (text, XML or JSON; '-' = stdin; repeat: one host per file)").default([]).argParser(collect))
    .action((path: string | undefined, o) => flowEvents.list(path, o, io));
  common(program.command('stats <capture>').description('the counters, like conntrack -S'))
    .option('--json', 'JSON instead of conntrack text')
    .action((path: string, o) => commands.stats(path, o, io));
  common(program.command('whatif <capture>').description('replay with default and changed knobs; report verdicts and flows that change'))
    .option('--json', 'JSON report')
    .action((path: string, o) => commands.whatif(path, o, io));
  common(program.command('report [capture]').description('a self-contained HTML report of a replay: charts, flow table, per-flow stories'))
    .option('-o, --output <file>', 'the HTML file to write')
    .addOption(new Option('--whatif <name=value>', 'also replay with this knob changed and show what changes (repeatable)').default([]).argParser(collect))
    .option('--topic <topic>', 'report a captured-traffic Kafka topic instead of a capture file')
    .option('--brokers <list>', 'with --topic: Kafka brokers host:port,... (default: $KAFKA_BROKERS)')
    .option('--from <time>', 'with --topic: start at this packet time (ISO 8601 or epoch seconds)')
    .option('--to <time>', 'with --topic: stop before this packet time')
    .option('--quiet', 'print nothing but errors')
    .action((path: string | undefined, o) => {
      // A capture report with one thread is written (or fails) before this returns; with
      // --workers, and for a topic, it finishes later.
      const written = o.topic !== undefined ? report.reportTopic(path, o, io) : report.report(path, o, io);
      return written instanceof Promise ? written.then(() => undefined) : undefined;
    });
  common(program.command('replay [capture]').description('run the whole pipeline on a capture (in process), or on a Kafka topic with --topic'))
    .option('--quiet', 'print neither progress nor summary')
    .option('--json', 'print the summary (or, with --events-out, the transitions) as JSON')
    .option('--topic <topic>', 'replay this captured-traffic topic from Kafka instead of a capture file')
    .option('--brokers <list>', 'Kafka brokers host:port,... (default: $KAFKA_BROKERS)')
    .option('--kind <kind>', 'what the topic holds: captured-traffic, packet-events or flow-events', 'captured-traffic')
    .option('--from <time>', 'start at this message time (ISO 8601 or epoch seconds)')
    .option('--to <time>', 'stop before this message time')
    .option('--speed <n>', 'pace at n x real time (0: as fast as possible)', '0')
    .option('--events-out <dest>', "also print the transitions ('-' = stdout), as ctflow events does")
    .option('--out-prefix <prefix>', 'output topics are <prefix>transitions, flows, dead-letter, verdicts (default: <topic>.replay.)')
    .option('--verdicts', 'also write per-packet verdicts to <prefix>verdicts')
    .option('--repartition', 'the topic is not keyed by flow: route it through an internal topic first')
    .option('--active-timeout <s>', 'seconds between accounting records of long flows', '1800')
    .option('--http <addr>', 'serve /metrics, /flows, /stats, /healthz, /readyz on PORT or HOST:PORT (bearer token: $CTFLOW_HTTP_TOKEN)')
    .option('--linger <seconds>', 'with --http or --otlp: keep serving the final state this long after the replay')
    .option('--otlp <url>', 'export metrics over OTLP/HTTP to this URL (default: $OTEL_EXPORTER_OTLP_METRICS_ENDPOINT)')
    .option('--top-flows <n>', 'flows in the top-flows-by-bytes series', '20')
    .action((path: string | undefined, o) => {
      if (o.topic !== undefined) {
        if (path !== undefined) throw new Error('replay: give a capture file or --topic, not both');
        return kafka.replayTopic(o, io);
      }
      if (path === undefined) throw new Error('replay: give a capture file, or --topic to replay a Kafka topic');
      if (o.http !== undefined || o.otlp !== undefined || otlpMetricsUrl(undefined) !== undefined) return import('./cli/replayServe').then((m) => m.replayServed(path, o, io)); // the metrics libraries load only here
      // Pacing a capture only makes sense while something watches it; unwatched, say so rather than ignore it.
      if (o.speed !== '0') throw new Error('replay: --speed paces a capture for whoever watches it: give --http or --otlp too (or replay a --topic)');
      return commands.replay(path, o, io);
    });
  program
    .command('produce <capture>')
    .description('publish a capture into a captured-traffic topic, keyed by flow (message time = packet time)')
    .requiredOption('--topic <topic>', 'the topic to write (created with --partitions if missing)')
    .option('--brokers <list>', 'Kafka brokers host:port,... (default: $KAFKA_BROKERS)')
    .option('--partitions <n>', 'partitions when the topic is created', '4')
    .option('--single-frames', 'one frame per message (headers carry link type and time) instead of frame batches')
    .option('--batch-frames <n>', 'frames per batch message at most', '1024')
    .option('--rate <pps>', 'send at most this many frames per second')
    .option('--zone <n>', 'conntrack zone of every frame: sent as the ctflow-zone header, and part of the key')
    .option('--quiet', 'no progress bar or summary')
    .action((path: string, o) => kafka.produce(path, o, io));
  program
    .command('run')
    .description('the live pipeline: consume, track, write transitions and flow records; SIGINT/SIGTERM drain and commit')
    .option('--config <file>', 'YAML settings (see docs/config.md)')
    .option('--brokers <list>', 'Kafka brokers host:port,... (default: $KAFKA_BROKERS, then the config)')
    .option('--group <id>', 'consumer group (default: input.group)')
    .option('--input-topic <topic>', 'input topic (default: input.topic)')
    .addOption(new Option('--guarantee <g>', 'processing guarantee (default: pipeline.guarantee): exactly-once commits outputs, a state changelog and offsets in one transaction').choices(['at-least-once', 'exactly-once']))
    .option('--state-dir <dir>', 'exactly-once: local state directory for checkpoints (default: pipeline.stateDir, else <temp dir>/ctflow-state)')
    .option('--workers <n>', "threads for the partitions' engines, or 'auto' for one per core (default: pipeline.workers, itself auto; outputs, API and metrics are the same)")
    .addOption(new Option('--sysctl <name=value>', 'set a net.netfilter.nf_conntrack_* knob (repeatable)').default([]).argParser(collect))
    .addOption(new Option('--notrack <rule>', `${NOTRACK_HELP}; added to engine.rules.notrack`).default([]).argParser(collect))
    .addOption(new Option('--nat <rule>', `${NAT_HELP}; added to engine.rules.nat`).default([]).argParser(collect))
    .addOption(helperOption())
    .option('--events-out <dest>', "also print the transitions ('-' = stdout)")
    .option('--json', 'transitions as JSON lines')
    .option('--http <addr>', 'serve /metrics, /flows, /stats, /healthz, /readyz on PORT or HOST:PORT (bearer token: $CTFLOW_HTTP_TOKEN)')
    .option('--otlp <url>', 'export metrics over OTLP/HTTP to this URL')
    .option('--top-flows <n>', 'flows in the top-flows-by-bytes series')
    .action((o) => kafka.run(o, io));
  // Zones (docs/zones.md) on every command that tracks packets: replay and run can read Kafka too.
  for (const cmd of program.commands) {
    if (['classify', 'events', 'list', 'stats', 'whatif'].includes(cmd.name())) addZoneOptions(cmd, CAPTURE_ZONE_SOURCES);
    if (['replay', 'run', 'report'].includes(cmd.name())) addZoneOptions(cmd, KAFKA_ZONE_SOURCES);
  }
  return program;
}

export function main(argv: string[], io: Output): number {
  try {
    buildProgram(io).parse(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    io.err(`ctflow: ${(err as Error).message}`);
    return 1;
  }
}

/** Like main, for commands that talk to Kafka: resolves with the exit code once they finish. */
export async function mainAsync(argv: string[], io: Output): Promise<number> {
  try {
    await buildProgram(io).parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    io.err(`ctflow: ${(err as Error).message}`);
    return 1;
  }
}

/** Runs the CLI on this process's arguments and streams. */
export function runCli(): void {
  // A closed pipe (`ctflow events x | head`) ends the output quietly.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  const io: Output = { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) };
  void mainAsync(process.argv.slice(2), io).then((code) => {
    process.exitCode = code;
  });
}

if (require.main === module) runCli();
