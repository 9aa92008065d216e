/**
 * Kernel parity on the crafted scenarios (copied from the oracle into test/fixtures/scenarios):
 * every packet's ctstate and direction, and every flow's event sequence, as Linux 6.18 decided;
 * with NAT rules also every reply tuple of the kernel's final table (see scripts/parityTable.ts
 * for the ports the kernel picks at random); with helpers also every expectation event
 * (conntrack -E expect) and the final expectation table. Every crafted scenario is compared.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { compareOracleDir, oracleArgs } from '../../scripts/parityLib';

const root = join(__dirname, '..', 'fixtures', 'scenarios');
const names = readdirSync(root).sort();
const supported = names.filter((n) => !('unsupported' in oracleArgs(join(root, n))));
const withNat = supported.filter((n) => {
  const a = oracleArgs(join(root, n));
  return 'rules' in a && (a.rules.nat?.length ?? 0) > 0;
});
const withHelpers = supported.filter((n) => /^(ftp_|tftp_)/.test(n) && !n.endsWith('_no_helper'));

describe('crafted scenarios agree with the kernel', () => {
  test('the fixture set holds the full crafted set, NAT, NOTRACK and helpers included, and ctflow compares every one', () => {
    expect(names.length).toBeGreaterThanOrEqual(39);
    expect(supported).toEqual(names);
    for (const n of ['nat_dnat', 'nat_snat', 'notrack_port80', 'nat_masquerade', 'nat_snat_port_clash', 'notrack_saddr', 'nat_dnat_udp', 'nat_hairpin', 'nat_snat_icmp_errors', 'notrack_port80_icmp_errors']) expect(supported).toContain(n);
    // NAT with helpers (nf_nat_ftp, nf_nat_tftp): expectations for the NAT'd tuples, seqadj, nf_nat_follow_master
    for (const n of ['ftp_nat_active_snat', 'ftp_nat_active_snat_unmangled_acks', 'ftp_nat_active_dnat', 'ftp_nat_passive_dnat', 'ftp_nat_passive_snat', 'ftp_nat_eprt_epsv_snat', 'ftp_nat_port_twice_snat', 'ftp_nat_port_shrinks', 'ftp_nat_same_port_two_clients', 'tftp_nat_snat']) {
      expect(supported).toContain(n);
      expect(withNat).toContain(n);
    }
  });

  test.each(supported)('%s: every verdict and every flow event sequence', (name) => {
    const r = compareOracleDir(join(root, name), name);
    expect(r.mismatches).toEqual([]);
    expect(r.flowMismatches).toEqual([]);
    expect(r.expectMismatches).toEqual([]);
    expect(r.expectTableMismatches).toEqual([]);
    expect(r.packets).toBeGreaterThan(0);
  });

  test.each(withNat)('%s: every reply tuple of the final table', (name) => {
    const r = compareOracleDir(join(root, name), name);
    expect(r.tableMismatches).toEqual([]);
    expect(r.tableEntries).toBeGreaterThan(0);
  });

  test('the helper scenarios are compared, expectations included', () => {
    expect(withHelpers).toEqual(expect.arrayContaining(['ftp_active', 'ftp_active_port_is_first_line', 'ftp_epsv_ipv6', 'ftp_passive', 'ftp_eprt_ipv4', 'ftp_eprt_ipv6', 'ftp_pasv_replaced', 'tftp_rrq']));
    const kernelLines = (n: string): number => readFileSync(join(root, n, 'expect-events.txt'), 'utf8').split('\n').filter((l) => l.trim()).length;
    // ctflow made as many expectation events as the kernel (their content is compared above)...
    for (const n of withHelpers) expect([n, compareOracleDir(join(root, n), n).expectEvents]).toEqual([n, kernelLines(n)]);
    // ...and where the kernel's helper ignored a command, so did ctflow's.
    const none = withHelpers.filter((n) => kernelLines(n) === 0);
    expect(none.sort()).toEqual(['ftp_active_port_is_first_line', 'ftp_port_other_address', 'ftp_port_split']);
  });

  test.each(supported)('%s: same output with 4 shards', (name) => {
    const r = compareOracleDir(join(root, name), name, 4);
    expect(r.agree).toBe(r.packets);
    expect(r.flowsAgree).toBe(r.flows);
    expect(r.tableMismatches).toEqual([]);
    expect(r.expectMismatches).toEqual([]);
  });
});
