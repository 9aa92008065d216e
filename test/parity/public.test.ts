/**
 * Kernel parity on the real captures in ../shared/captures (written by other people, so never
 * copied into the project): at least 99.5% of packets get the kernel's ctstate and direction and
 * at least 99% of flows the kernel's event sequence.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { compareOracleDir } from '../../scripts/parityLib';

const root = resolve(__dirname, '..', '..', '..', 'shared', 'captures', 'public-oracle');
const present = existsSync(root);
const maybe = present ? test : test.skip;
const label = present ? '' : ' (skipped: ../shared/captures/public-oracle is absent)';

maybe(`public captures: >= 99.5% of packets and >= 99% of flows agree with the kernel${label}`, () => {
  let packets = 0, agree = 0, flows = 0, flowsAgree = 0, compared = 0;
  const worst: string[] = [];
  for (const name of readdirSync(root).sort()) {
    const dir = join(root, name);
    if (!statSync(dir).isDirectory() || !existsSync(join(dir, 'packets.pcap'))) continue;
    const r = compareOracleDir(dir, name);
    if (r.skipped) continue;
    compared++;
    packets += r.packets;
    agree += r.agree;
    flows += r.flows;
    flowsAgree += r.flowsAgree;
    if (r.agree < r.packets) worst.push(`${name}: ${r.packets - r.agree} packets differ`);
  }
  expect(compared).toBeGreaterThan(50);
  expect(packets).toBeGreaterThan(10000);
  if (agree / packets < 0.995) throw new Error(`packet agreement ${(agree / packets).toFixed(4)} < 0.995:\n${worst.join('\n')}`);
  expect(agree / packets).toBeGreaterThanOrEqual(0.995);
  expect(flowsAgree / flows).toBeGreaterThanOrEqual(0.99);
});
