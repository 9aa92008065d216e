/**
 * Kernel parity on the crafted scenarios (copied from the oracle into test/fixtures/scenarios):
 * every packet's ctstate and direction, and every flow's event sequence, as Linux 6.18 decided;
 * with NAT rules also every reply tuple of the kernel's final table (see scripts/parityTable.ts
 * for the ports the kernel picks at random). Scenarios needing helpers are listed as skipped.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { compareOracleDir, oracleArgs } from '../../scripts/parityLib';

const root = join(__dirname, '..', 'fixtures', 'scenarios');
const names = readdirSync(root).sort();
const supported = names.filter((n) => !('unsupported' in oracleArgs(join(root, n))));
const beyond = names.filter((n) => !supported.includes(n));
const withNat = supported.filter((n) => {
  const a = oracleArgs(join(root, n));
  return 'rules' in a && (a.rules.nat?.length ?? 0) > 0;
});

describe('crafted scenarios agree with the kernel', () => {
  test('the fixture set holds the full crafted set, NAT and NOTRACK included', () => {
    expect(names.length).toBeGreaterThanOrEqual(39);
    expect(supported.length).toBeGreaterThanOrEqual(31);
    for (const n of ['nat_dnat', 'nat_snat', 'notrack_port80', 'nat_masquerade', 'nat_snat_port_clash', 'notrack_saddr', 'nat_dnat_udp', 'nat_hairpin', 'nat_snat_icmp_errors', 'notrack_port80_icmp_errors']) expect(supported).toContain(n);
  });

  test.each(supported)('%s: every verdict and every flow event sequence', (name) => {
    const r = compareOracleDir(join(root, name), name);
    expect(r.mismatches).toEqual([]);
    expect(r.flowMismatches).toEqual([]);
    expect(r.packets).toBeGreaterThan(0);
  });

  test.each(withNat)('%s: every reply tuple of the final table', (name) => {
    const r = compareOracleDir(join(root, name), name);
    expect(r.tableMismatches).toEqual([]);
    expect(r.tableEntries).toBeGreaterThan(0);
  });

  test.each(supported)('%s: same output with 4 shards', (name) => {
    const r = compareOracleDir(join(root, name), name, 4);
    expect(r.agree).toBe(r.packets);
    expect(r.flowsAgree).toBe(r.flows);
    expect(r.tableMismatches).toEqual([]);
  });

  test.each(beyond)('%s: skipped here (needs conntrack helpers)', (name) => {
    expect('unsupported' in oracleArgs(join(root, name))).toBe(true);
  });
});
