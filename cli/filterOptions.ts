/**
 * conntrack(8)'s filter options on `ctflow list` and `ctflow events`, with conntrack's names
 * (long aliases such as --orig-src are hidden options folded into their main name). Each value
 * is checked as commander parses it, so a bad one is reported with the option and the value; the
 * checks between options (a mask needs its address, one family, per-protocol options) run when
 * the filter is built.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { matchesFlow, selectsEvent } from '../processors/filter/flowFilter';
import type { EventMask, FlowFilter } from '../processors/filter/flowFilter';
import { checkFilterValue, FilterValueError, parseEventMask, parseFlowFilter } from '../processors/filter/parseFilter';
import type { FilterField, FilterInput } from '../processors/filter/parseFilter';
import type { FlowEvent, FlowRecord } from '../processors/flow';

/** Each filter: its flags, its value placeholder, help, and hidden conntrack aliases. */
const FILTERS: Array<{ field: FilterField; flags: string; help: string; aliases?: string[] }> = [
  { field: 'proto', flags: '-p, --proto <proto>', help: 'layer 4 protocol: tcp, udp, udplite, icmp, icmpv6, sctp, gre, dccp or a number', aliases: ['--protonum'] },
  { field: 'family', flags: '-f, --family <family>', help: 'ipv4 or ipv6' },
  { field: 'src', flags: '-s, --src <ip[/len]>', help: 'original source address or CIDR prefix', aliases: ['--orig-src'] },
  { field: 'dst', flags: '-d, --dst <ip[/len]>', help: 'original destination address or CIDR prefix', aliases: ['--orig-dst'] },
  { field: 'replySrc', flags: '-r, --reply-src <ip[/len]>', help: 'reply source address (or prefix)' },
  { field: 'replyDst', flags: '-q, --reply-dst <ip[/len]>', help: 'reply destination address (or prefix)' },
  { field: 'maskSrc', flags: '--mask-src <mask>', help: 'mask for --src (255.255.255.0, ffff:ffff::)' },
  { field: 'maskDst', flags: '--mask-dst <mask>', help: 'mask for --dst' },
  { field: 'sport', flags: '--sport <port>', help: 'original source port', aliases: ['--orig-port-src'] },
  { field: 'dport', flags: '--dport <port>', help: 'original destination port', aliases: ['--orig-port-dst'] },
  { field: 'replySport', flags: '--reply-port-src <port>', help: 'reply source port' },
  { field: 'replyDport', flags: '--reply-port-dst <port>', help: 'reply destination port' },
  { field: 'state', flags: '--state <state>', help: 'TCP/SCTP/DCCP state (ESTABLISHED, TIME_WAIT, ...); UNREPLIED/REPLIED/ASSURED for others' },
  { field: 'status', flags: '-u, --status <list>', help: 'status bits that must all be set: ASSURED,SEEN_REPLY,EXPECTED,... (UNREPLIED: no reply yet)' },
  { field: 'zone', flags: '-w, --zone <zone>', help: 'conntrack zone' },
  { field: 'icmpType', flags: '--icmp-type <type>', help: 'ICMP type (numeric)' },
  { field: 'icmpCode', flags: '--icmp-code <code>', help: 'ICMP code (numeric)' },
  { field: 'icmpId', flags: '--icmp-id <id>', help: 'ICMP id (numeric)' },
  { field: 'srcNat', flags: '-n, --src-nat [ip[:port]]', help: 'source-NATed entries (to that address)' },
  { field: 'dstNat', flags: '-g, --dst-nat [ip[:port]]', help: 'destination-NATed entries (from that address)' },
  { field: 'anyNat', flags: '-j, --any-nat [ip[:port]]', help: 'NATed entries either way (to or from that address)' },
];

/** The attribute commander stores a long flag's value under (--reply-port-src: replyPortSrc). */
const aliasKey = (flag: string): string => flag.replace(/^--/, '').replace(/-(\w)/g, (_, c: string) => c.toUpperCase());

/** Checks one value alone, so commander reports it as an invalid argument of its option. */
function checked(field: FilterField) {
  return (value: string): string => {
    try {
      checkFilterValue(field, value);
    } catch (err) {
      // --src-nat and its siblings take an optional value, so a capture named after them is read as one.
      const hint = field === 'srcNat' || field === 'dstNat' || field === 'anyNat' ? ' (without an address, give the capture before this option)' : '';
      throw new InvalidArgumentError(`${(err as Error).message}${hint}`);
    }
    return value;
  };
}

/** Adds the filter options (and `-e` with `events`) to a command. */
export function addFilterOptions(cmd: Command, o: { eventMask?: boolean } = {}): Command {
  for (const { field, flags, help, aliases } of FILTERS) {
    cmd.addOption(new Option(flags, help).argParser(checked(field)));
    for (const alias of aliases ?? []) cmd.addOption(new Option(`${alias} <value>`).hideHelp().argParser(checked(field)));
  }
  if (o.eventMask) {
    cmd.addOption(
      new Option('-e, --event-mask <list>', 'event types to show: ALL, NEW, UPDATES, DESTROY (comma list)').argParser((v: string) => {
        try {
          parseEventMask(v);
        } catch (err) {
          throw new InvalidArgumentError((err as Error).message);
        }
        return v;
      }),
    );
  }
  return cmd;
}

/** The long flag a field is reported under. */
function flagOf(field: FilterField): string {
  return /--[\w-]+/.exec(FILTERS.find((d) => d.field === field)!.flags)![0];
}

/** What commander parsed for the filter options. */
export type FilterOptionValues = Record<string, string | boolean | undefined>;

/** The filter the options describe; throws naming the option on a conflict between options. */
export function flowFilterOf(o: FilterOptionValues): FlowFilter {
  const input: Record<string, string | true> = {};
  for (const { field, aliases } of FILTERS) {
    const given = [flagOf(field), ...(aliases ?? [])].map((flag) => [flag, o[aliasKey(flag)]]).filter(([, v]) => v !== undefined);
    if (given.length > 1) throw new Error(`${given.map(([f]) => f).join(' and ')} are the same filter: give it once`);
    if (given.length) input[field] = given[0][1] as string | true;
  }
  try {
    return parseFlowFilter(input as FilterInput);
  } catch (err) {
    if (err instanceof FilterValueError) throw new Error(`${flagOf(err.field)}: ${err.message}`);
    throw err;
  }
}

export function eventMaskOf(o: FilterOptionValues): EventMask | undefined {
  return typeof o.eventMask === 'string' ? parseEventMask(o.eventMask) : undefined;
}

/** The filters as predicates for the commands. */
export function flowSelector(o: FilterOptionValues): (f: FlowRecord) => boolean {
  const filter = flowFilterOf(o);
  return (f) => matchesFlow(filter, f);
}

export function eventSelector(o: FilterOptionValues): (e: FlowEvent) => boolean {
  const filter = flowFilterOf(o);
  const mask = eventMaskOf(o);
  return (e) => selectsEvent(filter, mask, e);
}
