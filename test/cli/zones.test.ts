/**
 * Zones on the capture commands: one capture carries the same handshake on two interfaces (or
 * VLANs), and the zone options decide whether that is one connection or two.
 *
 * The kernel oracle (ct-oracle) replays captures into one network namespace with no raw-table
 * rules, so it cannot set zones; these tests hold ctflow to the kernel's documented behaviour
 * instead: the zone is part of the conntrack lookup (nf_ct_zone_equal in
 * __nf_conntrack_find_get), so equal tuples in different zones are separate entries; a packet no
 * `ct zone set` rule touched is in zone 0 (NF_CT_DEFAULT_ZONE_ID); a VLAN tag alone sets no zone;
 * `conntrack -L` prints `zone=N` for entries outside zone 0 and nothing for zone 0.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mainAsync } from '../../main';
import { runCli as run } from './runCli';
import { twoInterfaceCapture, vlanCapture, CLIENT, SERVER } from './zoneCaptures';
import { loadCapture } from '../../cli/runCapture';
import { runCaptureObserved } from '../../cli/observedReplay';
import { settings } from '../../cli/commands';
import { PipelineTelemetry } from '../../sinks/telemetry/telemetry';
import { prometheusRegistry } from '../../sinks/metrics/prometheus';

const dir = mkdtempSync(join(tmpdir(), 'ctflow-zones-'));
const twoIfaces = join(dir, 'two-interfaces.pcapng');
const vlans = join(dir, 'vlans.pcapng');
writeFileSync(twoIfaces, twoInterfaceCapture());
writeFileSync(vlans, vlanCapture([100, 200]));


const listJson = (...argv: string[]) => {
  const r = run('list', ...argv, '--json');
  expect(r.err.slice(0, -1)).toEqual([]);
  return r.out.map((l) => JSON.parse(l) as { zone: number; state: string; orig: { src: string; sport: number } });
};

describe('interfaces as zones (nft: ct zone set iif map { ... })', () => {
  test('without zone options both copies are one connection in zone 0', () => {
    const flows = listJson(twoIfaces);
    expect(flows.map((f) => [f.zone, f.state])).toEqual([[0, 'ESTABLISHED']]);
    // The second SYN is a retransmission on the same entry (still NEW: no reply seen yet, as in the kernel).
    const verdicts = run('classify', twoIfaces).out.map((l) => JSON.parse(l));
    expect(new Set(verdicts.map((v) => v.flow)).size).toBe(1);
  });

  test('mapped by interface name, the same tuple is two entries, each ESTABLISHED in its zone', () => {
    const flows = listJson(twoIfaces, '--zone-map', 'iface:eth1=1', '--zone-map', 'iface:eth2=2');
    expect(flows.map((f) => [f.zone, f.state, f.orig.src, f.orig.sport]).sort()).toEqual([
      [1, 'ESTABLISHED', CLIENT.addr, CLIENT.port],
      [2, 'ESTABLISHED', CLIENT.addr, CLIENT.port],
    ]);
    // Every packet now opens or continues its own zone's connection: two NEWs, both handshakes complete.
    const verdicts = run('classify', twoIfaces, '--zone-map', 'iface:eth1=1', '--zone-map', 'iface:eth2=2').out.map((l) => JSON.parse(l));
    expect(verdicts.map((v) => v.ctstate)).toEqual(['NEW', 'NEW', 'ESTABLISHED', 'ESTABLISHED', 'ESTABLISHED', 'ESTABLISHED']);
    expect(verdicts.map((v) => v.state)).toEqual(['SYN_SENT', 'SYN_SENT', 'SYN_RECV', 'SYN_RECV', 'ESTABLISHED', 'ESTABLISHED']);
    expect(new Set(verdicts.map((v) => v.flow)).size).toBe(2);
  });

  test('conntrack -L text prints zone=N as the kernel does, before use=', () => {
    const r = run('list', twoIfaces, '--zone-map', 'iface:eth1=1', '--zone-map', 'iface:eth2=2');
    expect(r.code).toBe(0);
    expect(r.out).toHaveLength(2);
    for (const zone of [1, 2]) expect(r.out.find((l) => l.includes(`zone=${zone} `))).toMatch(new RegExp(`src=${SERVER.addr} dst=${CLIENT.addr} sport=${SERVER.port} dport=${CLIENT.port} \\[ASSURED\\] mark=0 zone=${zone} use=1 id=\\d+$`));
    expect(r.err.pop()).toBe('conntrack v1.4 (conntrack-tools): 2 flow entries have been shown.');
    // Zone 0 is not printed.
    expect(run('list', twoIfaces).out[0]).not.toMatch(/zone=/);
  });

  test('by index with --zone-from interface; an unmapped interface falls to --zone-default', () => {
    expect(listJson(twoIfaces, '--zone-from', 'interface').map((f) => f.zone).sort()).toEqual([0, 1]);
    expect(listJson(twoIfaces, '--zone-map', 'iface:1=5', '--zone-default', '9').map((f) => f.zone).sort()).toEqual([5, 9]);
  });

  test('two interfaces mapped to one zone (both sides of one tenant) stay one connection', () => {
    expect(listJson(twoIfaces, '--zone-map', 'iface:eth1=3', '--zone-map', 'iface:eth2=3').map((f) => f.zone)).toEqual([3]);
  });

  test('events, stats, whatif and replay see the zones too', () => {
    const zoneArgs = ['--zone-map', 'iface:eth1=1', '--zone-map', 'iface:eth2=2'];
    const events = run('events', twoIfaces, '--json', ...zoneArgs).out.map((l) => JSON.parse(l));
    expect(events.filter((e) => e.type === 'NEW').map((e) => e.zone).sort()).toEqual([1, 2]);
    expect(JSON.parse(run('stats', twoIfaces, '--json', ...zoneArgs).out[0]).entries).toBe(2);
    expect(JSON.parse(run('stats', twoIfaces, '--json').out[0]).entries).toBe(1);
    const replay = JSON.parse(run('replay', twoIfaces, '--json', ...zoneArgs).out[0]);
    expect([replay.entriesAtEnd, replay.ctstate.NEW]).toEqual([2, 2]);
    // whatif compares flows by zone and tuple: a knob that kills both handshakes changes two flows.
    const report = JSON.parse(run('whatif', twoIfaces, '--json', '--sysctl', 'nf_conntrack_max=1', ...zoneArgs).out[0]);
    expect(report.flowChanges.map((c: { flow: string }) => c.flow.split('/')[0]).sort()).toEqual(['1', '2']);
  });
});

describe('VLANs as zones (nft: ct zone set vlan id)', () => {
  test('a VLAN tag alone is no zone: all three copies share zone 0', () => {
    expect(listJson(vlans).map((f) => f.zone)).toEqual([0]);
  });

  test('--zone-from vlan: the VLAN id is the zone; the untagged copy keeps the default', () => {
    expect(listJson(vlans, '--zone-from', 'vlan').map((f) => f.zone).sort((a, b) => a - b)).toEqual([0, 100, 200]);
    expect(listJson(vlans, '--zone-from', 'vlan', '--zone-default', '7').map((f) => f.zone).sort((a, b) => a - b)).toEqual([7, 100, 200]);
  });

  test('a VLAN map: mapped ids get their zone, other tags and untagged frames the default', () => {
    expect(listJson(vlans, '--zone-map', 'vlan:100=1', '--zone-default', '7').map((f) => f.zone).sort()).toEqual([1, 7]);
  });
});

test('metrics count flows and packets by zone', async () => {
  const telemetry = new PipelineTelemetry();
  const { sysctl, shards, zoneOf } = settings({ sysctl: [], shards: '1', zoneMap: ['iface:eth1=1', 'iface:eth2=2'] });
  await runCaptureObserved(loadCapture(twoIfaces), { sysctl, shards, zoneOf, observer: telemetry });
  await telemetry.refresh();
  const text = await prometheusRegistry(telemetry).metrics();
  for (const zone of ['1', '2']) {
    expect(text).toContain(`ctflow_flows_created_total{zone="${zone}",proto="tcp"} 1`);
    expect(text).toContain(`ctflow_packets_total{zone="${zone}",proto="tcp",ctstate="ESTABLISHED"} 2`);
    expect(text).toMatch(new RegExp(`ctflow_nf_conntrack_entries\\{partition="0",zone="${zone}",proto="tcp",state="ESTABLISHED"\\} 1`));
  }
  expect(text).not.toMatch(/zone="0"/);
});

test('bad zone options are refused with the option and the value', () => {
  const r = run('list', twoIfaces, '--zone-map', 'vlan:9999=1');
  expect(r.code).toBe(1);
  expect(r.err).toEqual(["ctflow: --zone-map: 'vlan:9999=1': a VLAN id is a number from 0 to 4095"]);
  expect(run('classify', twoIfaces, '--zone-from', 'header').err).toEqual(["ctflow: --zone-from: 'header' is not one of interface, vlan (header and topic apply to Kafka input)"]);
  expect(run('replay', twoIfaces, '--zone-from', 'topic', '--zone-map', 'topic:x=1').err).toEqual(["ctflow: --zone-from: 'topic' is not one of interface, vlan (header and topic apply to Kafka input)"]);
  expect(run('list', '--flow-events', twoIfaces, '--zone-from', 'vlan').err).toEqual(['ctflow: list --flow-events: the --zone-* options apply to captures; each host is a zone of its own']);
});

test('Kafka replays refuse zone options that cannot apply, before connecting', async () => {
  const err: string[] = [];
  const io = { out: () => undefined, err: (l: string) => err.push(l) };
  const replay = (...args: string[]) => mainAsync(['replay', '--topic', 't', '--brokers', '127.0.0.1:1', ...args], io);
  expect(await replay('--kind', 'flow-events', '--zone-from', 'vlan')).toBe(1);
  expect(err.pop()).toBe("ctflow: --zone-*: flow events carry their hosts' zones (each host is a zone); the options apply to captured-traffic and packet-events");
  expect(await replay('--zone-from', 'topic')).toBe(1);
  expect(err.pop()).toBe('ctflow: --zone-from: the topic source needs a map from topic name to zone (a topic name is no zone number)');
});
