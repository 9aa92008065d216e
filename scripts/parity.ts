/**
 * `npm run parity [-- FOLDER...]`: per-capture and overall agreement of ctflow with the kernel
 * oracle. Defaults to the crafted scenarios and the public captures' oracle outputs in ../shared.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { compareOracleDir } from './parityLib';

const shared = resolve(__dirname, '..', '..', '..', 'shared');
const roots = process.argv.slice(2).length
  ? process.argv.slice(2)
  : [join(shared, 'oracle', 'scenarios'), join(shared, 'captures', 'public-oracle')];
const verbose = process.env.PARITY_VERBOSE === '1';

for (const root of roots) {
  if (!existsSync(root)) {
    console.log(`${root}: absent, nothing compared`);
    continue;
  }
  let packets = 0, agree = 0, flows = 0, flowsAgree = 0, entries = 0, entriesAgree = 0;
  console.log(`\n${root}`);
  for (const name of readdirSync(root).sort()) {
    const dir = join(root, name);
    if (!statSync(dir).isDirectory() || !existsSync(join(dir, 'verdicts.jsonl'))) continue;
    const r = compareOracleDir(dir, name);
    if (r.skipped) {
      console.log(`  ${name.padEnd(60)} skipped (${r.skipped})`);
      continue;
    }
    packets += r.packets; agree += r.agree; flows += r.flows; flowsAgree += r.flowsAgree;
    entries += r.tableEntries; entriesAgree += r.tableEntries - r.tableMismatches.length;
    const pct = (a: number, n: number): string => (n ? ((100 * a) / n).toFixed(2) : '100.00');
    const expect = r.expectEvents || r.expectTableMismatches.length ? `  expect ${r.expectEvents - r.expectMismatches.length}/${r.expectEvents}${r.expectTableMismatches.length ? ' (table differs)' : ''}` : '';
    console.log(`  ${name.padEnd(60)} packets ${pct(r.agree, r.packets).padStart(6)}% (${r.agree}/${r.packets})  flows ${pct(r.flowsAgree, r.flows).padStart(6)}% (${r.flowsAgree}/${r.flows})${r.tableEntries ? `  NAT reply tuples ${r.tableEntries - r.tableMismatches.length}/${r.tableEntries}` : ''}${expect}`);
    if (verbose) {
      for (const m of r.mismatches.slice(0, 10)) console.log(`      packet ${m.i}: kernel ${m.kernel} ctflow ${m.ctflow}${m.reason ? ` (${m.reason})` : ''}`);
      for (const f of r.flowMismatches.slice(0, 5)) console.log(`      flow ${f.flow}\n        kernel ${f.kernel.join(' ')}\n        ctflow ${f.ctflow.join(' ')}`);
      for (const t of r.tableMismatches.slice(0, 5)) console.log(`      entry ${t.flow}: kernel reply ${t.kernel}, ctflow ${t.ctflow} (${t.why})`);
      for (const x of r.expectMismatches.slice(0, 5)) console.log(`      expect event ${x.at}\n        kernel ${x.kernel}\n        ctflow ${x.ctflow}`);
      for (const x of r.expectTableMismatches.slice(0, 5)) console.log(`      expect table\n        kernel ${x.kernel}\n        ctflow ${x.ctflow}`);
    }
  }
  const total = packets ? ((100 * agree) / packets).toFixed(3) : 'n/a';
  const ftotal = flows ? ((100 * flowsAgree) / flows).toFixed(3) : 'n/a';
  console.log(`  OVERALL packets ${total}% (${agree}/${packets})  flows ${ftotal}% (${flowsAgree}/${flows})${entries ? `  NAT reply tuples ${entriesAgree}/${entries}` : ''}`);
}
