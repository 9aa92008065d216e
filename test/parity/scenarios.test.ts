/**
 * Kernel parity on the crafted scenarios (copied from the oracle into test/fixtures/scenarios):
 * every packet's ctstate and direction, and every flow's event sequence, as Linux 6.18 decided.
 * Scenarios needing helpers, NAT or NOTRACK belong to the semantics issue and are listed as such.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { compareOracleDir, oracleArgs } from '../../scripts/parityLib';

const root = join(__dirname, '..', 'fixtures', 'scenarios');
const names = readdirSync(root).sort();
const core = names.filter((n) => !('unsupported' in oracleArgs(join(root, n))));
const beyondCore = names.filter((n) => !core.includes(n));

describe('crafted scenarios agree with the kernel', () => {
  test('the fixture set is the full crafted set', () => {
    expect(names.length).toBe(39);
    expect(core.length).toBeGreaterThanOrEqual(31);
  });

  test.each(core)('%s: every verdict and every flow event sequence', (name) => {
    const r = compareOracleDir(join(root, name), name);
    expect(r.mismatches).toEqual([]);
    expect(r.flowMismatches).toEqual([]);
    expect(r.packets).toBeGreaterThan(0);
  });

  test.each(core)('%s: same output with 4 shards', (name) => {
    const r = compareOracleDir(join(root, name), name, 4);
    expect(r.agree).toBe(r.packets);
    expect(r.flowsAgree).toBe(r.flows);
  });

  test.each(beyondCore)('%s: skipped here (needs helpers, NAT or NOTRACK: issue 5)', (name) => {
    expect('unsupported' in oracleArgs(join(root, name))).toBe(true);
  });
});
