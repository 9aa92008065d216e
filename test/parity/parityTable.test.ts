/** The NAT table comparison must catch what it claims to check, and allow only the kernel's random port choice. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConntrackLine } from '../../ingest/flowEvents/conntrackText';
import type { FlowRecord } from '../../processors/flow';
import { compareNatTable } from '../../scripts/parityTable';
import { shellWords } from '../../scripts/parityLib';

const table = readFileSync(join(__dirname, '..', 'fixtures', 'scenarios', 'nat_snat_port_clash', 'table.txt'), 'utf8')
  .trim()
  .split('\n')
  .map(parseConntrackLine);

/** ctflow's table as a copy of the kernel's, with `change` applied to the entry from `src`:`sport`. */
function ours(change?: { src: string; sport: number; replyPort: number }): FlowRecord[] {
  return table.map((k) => {
    const reply = { ...k.reply };
    if (change && k.orig.src === change.src && k.orig.sport === change.sport) reply.dport = change.replyPort;
    return { proto: k.proto, orig: k.orig, reply } as FlowRecord;
  });
}

/** The kernel's port for the second host's 40000 (random: read it from the fixture). */
const movedHigh = table.find((k) => k.orig.src === '198.18.0.3' && k.orig.sport === 40000)!.reply.dport;

describe('compareNatTable', () => {
  test('the kernel table against itself agrees', () => {
    expect(compareNatTable(table, ours())).toEqual({ entries: table.length, mismatches: [] });
  });

  test('a port the kernel kept must be kept', () => {
    expect(compareNatTable(table, ours({ src: '198.18.0.1', sport: 40000, replyPort: 40001 })).mismatches).toEqual([expect.objectContaining({ why: 'the kernel kept the source port' })]);
  });

  test('a port the kernel moved must move, into the same class, consistently across entries', () => {
    expect(movedHigh).not.toBe(40000);
    const kept = compareNatTable(table, ours({ src: '198.18.0.3', sport: 700, replyPort: 700 })).mismatches;
    expect(kept.map((m) => m.why)).toEqual(['the kernel moved the source port, ctflow kept it']);
    const outOfClass = compareNatTable(table, ours({ src: '198.18.0.3', sport: 700, replyPort: 2000 })).mismatches;
    expect(outOfClass.map((m) => m.why)).toEqual([expect.stringMatching(/not in the kernel's range/)]);
    // Both of the second host's 40000 entries share the kernel's port; ctflow moving only one breaks that.
    const other = movedHigh === 65535 ? 1024 : movedHigh + 1;
    const split = table.map((k) => ({ proto: k.proto, orig: k.orig, reply: k.orig.src === '198.18.0.3' && k.orig.sport === 40000 && k.orig.dst === '198.18.9.9' ? { ...k.reply, dport: other } : k.reply }) as FlowRecord);
    expect(compareNatTable(table, split).mismatches.map((m) => m.why)).toEqual([expect.stringMatching(/share a translated port/)]);
    // Any other in-class port, used consistently, is the kernel's choice renamed: accepted.
    const renamed = table.map((k) => ({ proto: k.proto, orig: k.orig, reply: k.orig.src === '198.18.0.3' && k.orig.sport === 40000 ? { ...k.reply, dport: other } : k.reply }) as FlowRecord);
    expect(compareNatTable(table, renamed).mismatches).toEqual([]);
  });

  test('a missing entry or other reply addresses are mismatches', () => {
    expect(compareNatTable(table, ours().slice(1)).mismatches).toHaveLength(1);
    const moved = ours().map((f, k) => (k === 0 ? { ...f, reply: { ...f.reply, dst: '198.18.200.9' } } : f));
    expect(compareNatTable(table, moved).mismatches.map((m) => m.why)).toEqual(['reply addresses or server port differ']);
  });
});

test('shellWords splits an arguments file like the shell', () => {
  expect(shellWords(`--notrack 'ip saddr 198.18.0.9' --nat "snat:10.0.0.0/8->1.2.3.4" --sysctl a=b`)).toEqual(['--notrack', 'ip saddr 198.18.0.9', '--nat', 'snat:10.0.0.0/8->1.2.3.4', '--sysctl', 'a=b']);
  expect(shellWords(`  x'y z'w  `)).toEqual(['xy zw']);
});
