/**
 * Kernel parity of NAT bindings: each entry of the kernel's final table (table.txt) against
 * ctflow's entry with the same original tuple, on the reply tuple. Everything the kernel decides
 * deterministically must be equal: the addresses, the server's port, and the translated source
 * port (or ICMP id) wherever the kernel kept the original one. Where the kernel had to pick another
 * port, it picked at random (nf_nat_l4proto_unique_tuple), so ctflow must also have moved it, into
 * the same class (1-511, 600-1023, 1024-65535; any id for ICMP), and consistently: entries that
 * share the kernel's port (find_appropriate_src reusing a mapping) share ctflow's too, and
 * entries with different kernel ports have different ctflow ports.
 */
import type { FlowRecord, Tuple } from '../processors/flow';
import type { ParsedCtLine } from '../ingest/flowEvents/conntrackText';

export interface TableMismatch {
  flow: string;
  kernel: string;
  ctflow: string;
  why: string;
}

const originalKey = (proto: number, o: Tuple): string =>
  `${proto} ${o.src} ${o.dst} ${o.icmp ? `${o.icmp.type}/${o.icmp.code}/${o.icmp.id}` : `${o.sport}/${o.dport}`}`;

/** The part of the reply tuple a source NAT may have moved: the port it is sent back to, or the ICMP id. */
const translatedPort = (t: Tuple): number => (t.icmp ? t.icmp.id : t.dport);
const sourcePort = (t: Tuple): number => (t.icmp ? t.icmp.id : t.sport);
const fixedPart = (t: Tuple): string => (t.icmp ? `${t.src} ${t.dst} ${t.icmp.type}/${t.icmp.code}` : `${t.src} ${t.dst} ${t.sport}`);
const replyText = (t: Tuple): string => `${fixedPart(t)} -> ${translatedPort(t)}`;

function portClass(proto: number, t: Tuple): string {
  if (t.icmp) return 'icmp id';
  const p = translatedPort(t);
  return p < 512 ? `${proto}: 1-511` : p < 1024 ? `${proto}: 600-1023` : `${proto}: 1024-65535`;
}

export function compareNatTable(kernel: ParsedCtLine[], ours: FlowRecord[]): { entries: number; mismatches: TableMismatch[] } {
  const byOrig = new Map(ours.map((f) => [originalKey(f.proto, f.orig), f]));
  const mismatches: TableMismatch[] = [];
  // The kernel's random choices, renamed to ctflow's: one-to-one per reply address and protocol.
  const renamed = new Map<string, number>();
  const renamedBack = new Map<string, number>();
  for (const k of kernel) {
    const flow = originalKey(k.proto, k.orig);
    const f = byOrig.get(flow);
    const miss = (why: string): void => {
      mismatches.push({ flow, kernel: replyText(k.reply), ctflow: f ? replyText(f.reply) : 'no entry', why });
    };
    if (!f) {
      miss('ctflow has no entry with this original tuple');
      continue;
    }
    if (fixedPart(f.reply) !== fixedPart(k.reply)) {
      miss('reply addresses or server port differ');
      continue;
    }
    const kernelPort = translatedPort(k.reply);
    const ourPort = translatedPort(f.reply);
    if (kernelPort === sourcePort(k.orig)) {
      if (ourPort !== kernelPort) miss('the kernel kept the source port');
      continue;
    }
    if (ourPort === sourcePort(f.orig)) {
      miss('the kernel moved the source port, ctflow kept it');
      continue;
    }
    if (portClass(k.proto, k.reply) !== portClass(f.proto, f.reply)) {
      miss(`ctflow's port is not in the kernel's range (${portClass(k.proto, k.reply)})`);
      continue;
    }
    const scope = `${k.proto} ${k.reply.dst}`;
    const forward = renamed.get(`${scope} ${kernelPort}`);
    const backward = renamedBack.get(`${scope} ${ourPort}`);
    if ((forward !== undefined && forward !== ourPort) || (backward !== undefined && backward !== kernelPort)) {
      miss('entries that share a translated port in one table do not share it in the other');
      continue;
    }
    renamed.set(`${scope} ${kernelPort}`, ourPort);
    renamedBack.set(`${scope} ${ourPort}`, kernelPort);
  }
  return { entries: kernel.length, mismatches };
}
