import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { kafkaSettingsOf, loadConfig, rulesOf } from '../../cli/config';

function file(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'ctflow-config-'));
  const path = join(dir, 'ctflow.yaml');
  writeFileSync(path, text);
  return path;
}

describe('ctflow run --config', () => {
  test('no file gives the documented defaults', () => {
    const c = loadConfig();
    expect(c.input).toEqual({ topic: 'ctflow.captured-traffic', kind: 'captured-traffic', group: 'ctflow', repartition: false });
    expect(c.outputs.verdicts).toBeNull();
    expect(c.engine.activeTimeout).toBe(1800);
  });

  test('every wrong key or value is named with its path', () => {
    expect(() => loadConfig(file('input:\n  topik: x\n'))).toThrow(/input: .*'topik'/);
    expect(() => loadConfig(file('pipeline:\n  maxInFlightBatches: lots\n'))).toThrow(/pipeline\.maxInFlightBatches/);
    expect(() => loadConfig(file('outputs:\n  flows: "bad topic name!"\n'))).toThrow(/outputs\.flows: a Kafka topic name/);
    expect(() => loadConfig(file('engine:\n  sysctl:\n    nf_conntrack_tcp_loos: 0\n'))).toThrow(/engine\.sysctl: .*nf_conntrack_tcp_loos/);
    expect(() => loadConfig(file('telemetry:\n  zone: 70000\n'))).toThrow(/telemetry\.zone/);
    expect(loadConfig(file('telemetry:\n  zone: 3\n')).telemetry.zone).toBe(3);
    expect(() => loadConfig(file('input: [\n'))).toThrow(/not valid YAML/);
    expect(() => loadConfig('/nonexistent/ctflow.yaml')).toThrow(/cannot read config '\/nonexistent\/ctflow.yaml': ENOENT/);
  });

  test('pipeline.stateDir: a path, false for none, or absent for the default; anything else is named', () => {
    expect(loadConfig().pipeline.stateDir).toBeUndefined();
    expect(loadConfig(file('pipeline:\n  stateDir: /var/lib/ctflow\n')).pipeline.stateDir).toBe('/var/lib/ctflow');
    expect(loadConfig(file('pipeline:\n  stateDir: false\n')).pipeline.stateDir).toBe(false);
    expect(() => loadConfig(file('pipeline:\n  stateDir: ""\n'))).toThrow(/pipeline\.stateDir/);
    expect(() => loadConfig(file('pipeline:\n  stateDir: true\n'))).toThrow(/pipeline\.stateDir/);
  });

  test('pipeline.workers: a thread count from 1 to 64 or auto, auto (one per core) by default; anything else is named', () => {
    expect(loadConfig().pipeline.workers).toBe('auto');
    expect(loadConfig(file('pipeline:\n  workers: 2\n')).pipeline.workers).toBe(2);
    expect(loadConfig(file('pipeline:\n  workers: auto\n')).pipeline.workers).toBe('auto');
    for (const bad of ['0', '65', '1.5', 'many']) expect(() => loadConfig(file(`pipeline:\n  workers: ${bad}\n`))).toThrow(/pipeline\.workers/);
  });

  test('pipeline.fetchMinBytes and fetchMaxWaitMs: Kafka\'s fetch.min.bytes and fetch.max.wait.ms, 1 byte and 100 ms by default; a bad value is named', () => {
    expect(loadConfig().pipeline).toMatchObject({ fetchMinBytes: 1, fetchMaxWaitMs: 100 });
    expect(loadConfig(file('pipeline:\n  fetchMinBytes: 65536\n  fetchMaxWaitMs: 50\n')).pipeline).toMatchObject({ fetchMinBytes: 65536, fetchMaxWaitMs: 50 });
    for (const bad of ['0', '-1', '1.5', 'lots']) expect(() => loadConfig(file(`pipeline:\n  fetchMinBytes: ${bad}\n`))).toThrow(/pipeline\.fetchMinBytes/);
    for (const bad of ['0', '10001', 'soon']) expect(() => loadConfig(file(`pipeline:\n  fetchMaxWaitMs: ${bad}\n`))).toThrow(/pipeline\.fetchMaxWaitMs/);
  });

  test('zones: the default takes the zone each message carries; a bad key is named with the problem', () => {
    expect(loadConfig().zones).toEqual({ source: 'header', map: {}, default: 0 });
    // YAML numbers as map keys arrive as strings, the way the interface and topic names do.
    expect(loadConfig(file('zones:\n  source: vlan\n  map: {100: 1, 200: 2}\n  default: 9\n')).zones).toEqual({ source: 'vlan', map: { '100': 1, '200': 2 }, default: 9 });
    expect(() => loadConfig(file('zones:\n  source: vlan\n  map:\n    eth1: 1\n'))).toThrow(/ctflow\.yaml: zones\.map\.eth1: a VLAN id is a number from 0 to 4095/);
    expect(() => loadConfig(file('zones:\n  source: topic\n'))).toThrow(/zones\.map: the topic source needs a map/);
    expect(() => loadConfig(file('zones:\n  source: iif\n'))).toThrow(/zones\.source: /);
    expect(() => loadConfig(file('zones:\n  map:\n    "7": 65536\n'))).toThrow(/zones\.map\.7: /);
  });

  test('brokers: flag over environment over file; the SASL password only from the environment', () => {
    const c = loadConfig(file('kafka:\n  brokers: [a:1, b:2]\n  sasl:\n    mechanism: scram-sha-512\n    username: ctflow\n'));
    expect(() => kafkaSettingsOf(c, {})).toThrow(/\$CTFLOW_KAFKA_PASSWORD, which is not set/);
    const env = { CTFLOW_KAFKA_PASSWORD: 'secret' };
    expect(kafkaSettingsOf(c, env).brokers).toEqual(['a:1', 'b:2']);
    expect(kafkaSettingsOf(c, { ...env, KAFKA_BROKERS: 'c:3' }).brokers).toEqual(['c:3']);
    expect(kafkaSettingsOf(c, { ...env, KAFKA_BROKERS: 'c:3' }, 'd:4').brokers).toEqual(['d:4']);
    expect(kafkaSettingsOf(c, env).sasl).toEqual({ mechanism: 'scram-sha-512', username: 'ctflow', password: 'secret' });
    expect(() => kafkaSettingsOf(loadConfig(), {})).toThrow(/no Kafka brokers/);
    expect(() => kafkaSettingsOf(loadConfig(), {}, 'nohostport')).toThrow(/'nohostport' is not host:port/);
  });

  test('engine.rules: NOTRACK and NAT rules richer than the command line (addresses, zones, IPv6, port ranges)', () => {
    const c = loadConfig(
      file(
        [
          'engine:',
          '  rules:',
          '    notrack:',
          '      - { proto: udp, port: 53 }',
          '      - { src: 198.18.0.9, zone: 2 }',
          '    nat:',
          '      - { kind: dnat, proto: tcp, dst: 2001:db8:100::1, dport: 80, to: "2001:db8:0:0::2", toPort: 8080 }',
          '      - { kind: snat, src: 10.0.0.0/8, to: 192.0.2.1, proto: udp, toPort: "20000-20999" }',
          '',
        ].join('\n'),
      ),
    );
    const rules = rulesOf(c);
    expect(rules.notrack?.map((r) => r.match)).toEqual([{ proto: 17, port: 53 }, expect.objectContaining({ family: 4, zone: 2 })]);
    expect(rules.nat?.[0]).toMatchObject({ kind: 'dnat', family: 6, toAddr: '2001:db8::2', toPorts: { min: 8080, max: 8080 } });
    expect(rules.nat?.[1]).toMatchObject({ kind: 'snat', family: 4, toPorts: { min: 20000, max: 20999 } });
    expect(rulesOf(loadConfig())).toEqual({});
  });

  test('every rule error names the rule by its index and says what is wrong', () => {
    const first = { notrack: '{ proto: tcp }', nat: '{ kind: masquerade, src: 10.0.0.0/8, to: 192.0.2.1 }' };
    const rule = (kind: 'notrack' | 'nat', text: string): string => file(`engine:\n  rules:\n    ${kind}:\n      - ${first[kind]}\n      - ${text}\n`);
    expect(() => loadConfig(rule('notrack', '{ dport: 80 }'))).toThrow(/engine\.rules\.notrack\[1\]: dport needs proto/);
    expect(() => loadConfig(rule('notrack', '{ src: 10.0.0.0/40 }'))).toThrow(/engine\.rules\.notrack\[1\]: '10\.0\.0\.0\/40' is not an IP address or CIDR prefix/);
    expect(() => loadConfig(rule('notrack', '{ family: ipv6, src: 10.0.0.1 }'))).toThrow(/notrack\[1\]: src 10\.0\.0\.1 is not an IPv6 prefix/);
    expect(() => loadConfig(rule('notrack', '{ prot: tcp }'))).toThrow(/engine\.rules\.notrack\.1: .*'prot'/);
    expect(() => loadConfig(rule('nat', '{ kind: snat, src: 10.0.0.0/8, to: 2001:db8::1 }'))).toThrow(/engine\.rules\.nat\[1\]: to 2001:db8::1 is not of the family/);
    expect(() => loadConfig(rule('nat', '{ kind: dnat, dst: 10.0.0.1, to: 10.0.0.2, toPort: 80 }'))).toThrow(/nat\[1\]: toPort needs proto/);
    expect(() => loadConfig(rule('nat', '{ kind: snat, proto: udp, to: 10.0.0.2, toPort: "2000-1000" }'))).toThrow(/nat\[1\]: toPort '2000-1000': the range ends before it starts/);
    expect(() => loadConfig(rule('nat', '{ kind: redirect, to: 10.0.0.2 }'))).toThrow(/engine\.rules\.nat\.1\.kind/);
  });
});
