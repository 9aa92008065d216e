/** The command line on the embedded default (captures on disk, no Kafka). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mainAsync } from '../../main';
import { runCli as run } from './runCli';
import { makeSampleCapture } from '../../scripts/sampleTraffic';

const scenarios = join(__dirname, '..', 'fixtures', 'scenarios');
const sample = join(__dirname, '..', 'fixtures', 'sample.pcap');


/** Drops what legitimately differs from the kernel's text: the clock and the entry id. */
const normalise = (line: string): string => line.replace(/^\[\d+\.\d+\]\s+/, '').replace(/ id=\d+$/, '');

/**
 * Event lines compared with the kernel's. The timeout shown may be one second lower than the
 * kernel's: the kernel counts in jiffies whose phase against the packet clock is unknown.
 */
function expectSameEvents(ours: string[], kernel: string[]): void {
  const split = (l: string): [string, number] => {
    const m = /^(\S+ \S+\s+\d+ \S+\s+\d+ )(\d+) (.*)$/.exec(normalise(l));
    return m ? [`${m[1]}T ${m[3]}`, Number(m[2])] : [normalise(l), 0];
  };
  expect(ours.map((l) => split(l)[0])).toEqual(kernel.map((l) => split(l)[0]));
  ours.forEach((l, k) => expect(split(kernel[k])[1] - split(l)[1]).toBeGreaterThanOrEqual(0));
  ours.forEach((l, k) => expect(split(kernel[k])[1] - split(l)[1]).toBeLessThanOrEqual(1));
}

describe('ctflow classify', () => {
  test('one JSON line per IP packet, with the INVALID reason and the window values behind it', () => {
    const r = run('classify', join(scenarios, 'tcp_out_of_window', 'packets.pcap'));
    expect(r.code).toBe(0);
    const kernel = readFileSync(join(scenarios, 'tcp_out_of_window', 'verdicts.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const ours = r.out.map((l) => JSON.parse(l));
    expect(ours.map((v) => [v.i, v.ctstate, v.dir])).toEqual(kernel.map((v) => [v.i, v.ctstate, v.dir]));
    const bad = ours.filter((v) => v.ctstate === 'INVALID');
    expect(bad.length).toBeGreaterThan(0);
    for (const v of bad) {
      expect(v.reason).toMatch(/^tcp_/);
      if (v.reason === 'tcp_out_of_window') expect(Object.keys(v.detail)).toEqual(expect.arrayContaining(['seq', 'td_end', 'td_maxend', 'td_maxwin', 'td_scale']));
    }
    expect(ours.find((v) => v.ctstate === 'ESTABLISHED').state).toBeDefined();
  });

  test('--sysctl changes the verdicts (nf_conntrack_tcp_loose=0 refuses a mid-stream pickup)', () => {
    const loose = run('classify', join(scenarios, 'tcp_midstream_loose', 'packets.pcap')).out.map((l) => JSON.parse(l));
    const strict = run('classify', join(scenarios, 'tcp_midstream_loose', 'packets.pcap'), '--sysctl', 'nf_conntrack_tcp_loose=0').out.map((l) => JSON.parse(l));
    expect(loose[0].ctstate).toBe('NEW');
    expect(strict[0].ctstate).toBe('INVALID');
    expect(strict[0].reason).toBe('tcp_midstream_pickup_disabled');
  });
});

describe('ctflow events and list speak conntrack', () => {
  test.each(['tcp_full_session', 'icmp_echo', 'udp_request_response', 'tcp_refused', 'sctp_association', 'gre_generic', 'many_protocols_unknown', 'ipv6_tcp_icmpv6'])(
    '%s: events are the kernel\'s conntrack -E lines (clock and id aside)',
    (name) => {
      const r = run('events', join(scenarios, name, 'packets.pcap'));
      const kernel = readFileSync(join(scenarios, name, 'events.txt'), 'utf8').trim().split('\n');
      expectSameEvents(r.out, kernel);
    },
  );

  test('list prints conntrack -L -o extended,id lines for the same entries as the kernel table', () => {
    const name = 'icmp_errors_related';
    const r = run('list', join(scenarios, name, 'packets.pcap'));
    const timeoutless = (l: string): string => normalise(l).replace(/^(\S+\s+\d+\s+\S+\s+\d+) \d+ /, '$1 T ');
    const kernel = readFileSync(join(scenarios, name, 'table.txt'), 'utf8').trim().split('\n');
    expect(r.out.map(timeoutless).sort()).toEqual(kernel.map(timeoutless).sort());
  });

  test('--json output parses and carries the flow', () => {
    const r = run('events', join(scenarios, 'tcp_refused', 'packets.pcap'), '--json');
    const events = r.out.map((l) => JSON.parse(l));
    expect(events.map((e) => e.type)).toEqual(['NEW', 'DESTROY']);
    expect(events[1].reason).toBe('rst');
    expect(events[1].orig.dport).toBe(81);
  });

  test('stats counts the INVALID packets like conntrack -S', () => {
    const r = run('stats', join(scenarios, 'tcp_bad_flags', 'packets.pcap'), '--json');
    expect(JSON.parse(r.out[0]).invalid).toBe(3);
  });
});

describe('--notrack and --nat give the kernel\'s answers with the oracle\'s rules', () => {
  const argsOf = (name: string): string[] => {
    const words = readFileSync(join(scenarios, name, 'ctflow-args'), 'utf8').trim();
    // The arguments files quote an nft expression with single quotes; they hold nothing else that needs a shell.
    return [...words.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]);
  };
  const timeoutless = (l: string): string => normalise(l).replace(/^(\S+\s+\d+\s+\S+\s+\d+) \d+ /, '$1 T ');

  test.each(['notrack_port80', 'notrack_saddr', 'nat_snat', 'nat_dnat_udp'])('%s: classify gives every verdict of the kernel', (name) => {
    const r = run('classify', join(scenarios, name, 'packets.pcap'), ...argsOf(name));
    expect(r.code).toBe(0);
    const kernel = readFileSync(join(scenarios, name, 'verdicts.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(r.out.map((l) => JSON.parse(l)).map((v) => [v.ctstate, v.dir])).toEqual(kernel.map((v) => [v.ctstate, v.dir]));
  });

  test.each(['nat_snat', 'nat_dnat'])('%s: events and list print the NAT\'d reply tuples exactly as conntrack does', (name) => {
    const events = run('events', join(scenarios, name, 'packets.pcap'), ...argsOf(name));
    expectSameEvents(events.out, readFileSync(join(scenarios, name, 'events.txt'), 'utf8').trim().split('\n'));
    const list = run('list', join(scenarios, name, 'packets.pcap'), ...argsOf(name), '--shards', '4');
    const kernel = readFileSync(join(scenarios, name, 'table.txt'), 'utf8').trim().split('\n');
    expect(list.out.map(timeoutless).sort()).toEqual(kernel.map(timeoutless).sort());
  });

  test('stats --json and the replay summary count the untracked packets (ctflow\'s own counter)', () => {
    const pcap = join(scenarios, 'notrack_port80', 'packets.pcap');
    const stats = JSON.parse(run('stats', pcap, '--notrack', 'tcp/80', '--json').out[0]);
    expect(stats.untracked).toBe(4);
    expect(run('stats', pcap, '--notrack', 'tcp/80').out[0]).not.toMatch(/untracked/);
    const summary = JSON.parse(run('replay', pcap, '--notrack', 'tcp/80', '--json').out[0]);
    expect(summary.ctstate.UNTRACKED).toBe(4);
    expect(summary.untracked).toBe(4);
    expect(JSON.parse(run('stats', pcap, '--json').out[0]).untracked).toBe(0);
  });

  test('a bad rule stops the command with the option, the rule and the syntax', () => {
    const nat = run('classify', sample, '--nat', 'snat:10.0.0.0/8');
    expect(nat.code).toBe(1);
    expect(nat.err[0]).toBe("ctflow: --nat: 'snat:10.0.0.0/8' is not KIND:MATCH->TO (snat:SRC_CIDR->ADDR, masquerade:SRC_CIDR->ADDR or dnat:PROTO/ADDR:PORT->ADDR:PORT)");
    expect(run('list', sample, '--notrack', 'tcp/http').err[0]).toBe("ctflow: --notrack: 'tcp/http' is not PROTO/PORT (such as tcp/80 or udp/53)");
    expect(run('list', '--flow-events', '-', '--nat', 'snat:10.0.0.0/8->192.0.2.1').err[0]).toMatch(/--notrack and --nat apply to captures only/);
  });

  test('the Kafka commands (run, replay --topic) check their rules before connecting', async () => {
    for (const argv of [['run', '--nat', 'dnat:tcp/10.0.0.1->10.0.0.2:80'], ['replay', '--topic', 't', '--brokers', '127.0.0.1:1', '--nat', 'dnat:tcp/10.0.0.1->10.0.0.2:80']]) {
      const err: string[] = [];
      expect(await mainAsync(argv, { out: () => undefined, err: (l) => err.push(l) })).toBe(1);
      expect(err[0]).toMatch(/^ctflow: --nat: 'dnat:tcp\/10\.0\.0\.1->10\.0\.0\.2:80': a DNAT rule is dnat:PROTO\/ADDR:PORT->ADDR:PORT/);
    }
  });
});

describe('the bundled sample and the main job', () => {
  test('the committed sample is exactly what the generator makes', () => {
    expect(Buffer.compare(readFileSync(sample), Buffer.from(makeSampleCapture()))).toBe(0);
  });

  test('replay summarises every ctstate the sample exercises', () => {
    const r = run('replay', sample, '--json');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out[0]);
    expect(s.packets).toBe(s.frames);
    for (const state of ['NEW', 'ESTABLISHED', 'RELATED', 'INVALID']) expect(s.ctstate[state]).toBeGreaterThan(0);
    expect(s.invalidReasons.tcp_out_of_window).toBe(1);
    expect(s.events.NEW).toBe(s.stats.insert);
  });

  test('--quiet prints nothing', () => {
    expect(run('replay', sample, '--quiet').out).toEqual([]);
  });

  test('whatif shows what nf_conntrack_tcp_be_liberal=1 lets through', () => {
    const r = run('whatif', sample, '--sysctl', 'nf_conntrack_tcp_be_liberal=1', '--json');
    const report = JSON.parse(r.out[0]);
    expect(report.changed).toEqual({ nf_conntrack_tcp_be_liberal: 1 });
    expect(report.verdictChanges).toEqual([expect.objectContaining({ before: 'INVALID', after: 'ESTABLISHED', beforeReason: 'tcp_out_of_window' })]);
  });
});

describe('bad input gets a one-line error naming the problem and a non-zero exit', () => {
  test('unknown flag', () => {
    const r = run('list', sample, '--frobnicate');
    expect(r.code).not.toBe(0);
    expect(r.err.join('\n')).toMatch(/unknown option '--frobnicate'/);
  });
  test('unreadable file', () => {
    const r = run('list', '/nonexistent/x.pcap');
    expect(r.code).toBe(1);
    expect(r.err).toEqual(["ctflow: cannot read capture '/nonexistent/x.pcap': ENOENT"]);
  });
  test('unsupported format', () => {
    const r = run('classify', join(__dirname, '..', '..', 'package.json'));
    expect(r.code).toBe(1);
    expect(r.err[0]).toMatch(/^ctflow: unsupported capture format: magic 0x/);
  });
  test('unknown or malformed sysctl', () => {
    expect(run('stats', sample, '--sysctl', 'nf_conntrack_nonsense=1').err[0]).toMatch(/unknown sysctl 'nf_conntrack_nonsense'/);
    expect(run('stats', sample, '--sysctl', 'nf_conntrack_max=-3').err[0]).toMatch(/not a non-negative integer/);
  });
  test('a packet whose TCP header is cut short keeps its place and is INVALID with the decoder\'s reason', () => {
    const { ipv4Packet, tcpSegment } = require('../../ingest/capture/frameBuilders');
    const { writePcap } = require('../../ingest/capture/pcapWriter');
    const syn = ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6, payload: tcpSegment({ sport: 1, dport: 2, seq: 1, flags: 0x02 }) });
    const cutTcp = syn.subarray(0, 30);
    const file = join(require('node:os').tmpdir(), `ctflow-cut-tcp-${process.pid}.pcap`);
    require('node:fs').writeFileSync(file, writePcap([cutTcp, syn].map((data: Uint8Array, k: number) => ({ tsUs: 1e15 + k, data })), 101));
    const lines = run('classify', file).out.map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.i, l.ctstate])).toEqual([[0, 'INVALID'], [1, 'NEW']]);
    expect(lines[0]).toMatchObject({ reason: 'tcp_header_missing', note: 'truncated tcp header: 10 of 20 bytes' });
  });

  test('a truncated capture keeps the frames before the cut and reports the cut', () => {
    const bytes = readFileSync(join(scenarios, 'tcp_full_session', 'packets.pcap'));
    const cut = join(require('node:os').tmpdir(), `ctflow-cut-${process.pid}.pcap`);
    require('node:fs').writeFileSync(cut, bytes.subarray(0, bytes.length - 10));
    const r = run('classify', cut);
    expect(r.code).toBe(0);
    expect(r.out.length).toBe(8);
    expect(r.err.join('\n')).toMatch(/frame 8/);
  });
});
