#!/usr/bin/env node
/**
 * ctflow's composition root: the command line. The only module that wires ingest/, processors/
 * and sinks/ together; everything below it takes its settings as parameters.
 */
import { Command, CommanderError, Option } from 'commander';
import * as commands from './cli/commands';
import * as flowEvents from './cli/flowEvents';
import type { Output } from './cli/commands';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function buildProgram(io: Output): Command {
  const program = new Command('ctflow')
    .description('Linux conntrack, out of the kernel: classify, list and replay captured traffic as nf_conntrack would')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });

  const common = (cmd: Command): Command =>
    cmd
      .addOption(new Option('--sysctl <name=value>', 'set a net.netfilter.nf_conntrack_* knob (repeatable)').default([]).argParser(collect))
      .addOption(new Option('--shards <n>', 'number of engine shards (output is the same for any n)').default('1'));

  common(program.command('classify <capture>').description('one JSON line per IP packet: ctstate, direction, TCP state, INVALID reason'))
    .action((path: string, o) => commands.classify(path, o, io));
  common(program.command('events <capture>').description('the event stream, like conntrack -E -o timestamp,extended,id'))
    .option('--json', 'JSON lines instead of conntrack text')
    .action((path: string, o) => commands.events(path, o, io));
  common(program.command('list [capture]').description('the table after the last packet, like conntrack -L -o extended,id'))
    .option('--json', 'JSON lines instead of conntrack text')
    .addOption(new Option('--flow-events <file>', "instead of a capture: hosts' conntrack events (text, XML or JSON; '-' = stdin; repeat: one host per file)").default([]).argParser(collect))
    .action((path: string | undefined, o) => flowEvents.list(path, o, io));
  common(program.command('stats <capture>').description('the counters, like conntrack -S'))
    .option('--json', 'JSON instead of conntrack text')
    .action((path: string, o) => commands.stats(path, o, io));
  common(program.command('whatif <capture>').description('replay with default and changed knobs; report verdicts and flows that change'))
    .option('--json', 'JSON report')
    .action((path: string, o) => commands.whatif(path, o, io));
  common(program.command('replay <capture>').description('run the whole in-process pipeline on a capture, with progress and a summary'))
    .option('--quiet', 'print neither progress nor summary')
    .option('--json', 'print the summary as JSON')
    .action((path: string, o) => commands.replay(path, o, io));
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

/** Runs the CLI on this process's arguments and streams. */
export function runCli(): void {
  // A closed pipe (`ctflow events x | head`) ends the output quietly.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  const io: Output = { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) };
  process.exitCode = main(process.argv.slice(2), io);
}

if (require.main === module) runCli();
