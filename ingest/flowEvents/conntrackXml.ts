/**
 * Reader for conntrack-tools' XML: `conntrack -E -o xml[,timestamp]` and `conntrack -L -o xml`.
 *
 * The document is `<?xml ...?>`, `<conntrack>`, then one `<flow>` per line (the listener prints
 * `</conntrack>` when it is stopped by a signal, so the end may be missing). libnetfilter_conntrack's
 * XML printer writes a fixed, shallow shape, so a small hand-written reader is enough:
 *
 *   <flow type="new|update|destroy">            (no type in a listing)
 *     <meta direction="original|reply">
 *       <layer3 protonum="2|10" protoname="ipv4|ipv6"><src/><dst/></layer3>
 *       <layer4 protonum="N" protoname="tcp|..."><sport/><dport/> or <srckey/><dstkey/> (GRE, hex)</layer4>
 *       [<zone/>] [<counters><packets/><bytes/></counters>]
 *     </meta>
 *     <meta direction="independent">
 *       [<state/>] [<timeout/>] [<mark/>] [<labels/>] [<secmark/>] [<secctx/>] [<zone/>] [<use/>] [<id/>]
 *       [<assured/>] [<unreplied/>] [<timestamp><start/><stop/></timestamp>] [<deltatime/>]
 *     </meta>
 *     [<when><hour/><min/><sec/><wday/><day/><month/><year/></when>] [<helper/>]
 *   </flow>
 *
 * Two quirks of that printer, checked against conntrack 1.4.7 / libnetfilter_conntrack 1.0.9
 * output (test/fixtures/flowEvents/events.xml):
 * - ICMP and ICMPv6 tuples carry no type, code or id (layer4 is empty), so such an entry can
 *   only be told apart from another between the same two hosts by its `<id>`.
 * - SCTP and DCCP states are looked up in the TCP name table by number: SCTP CLOSED prints as
 *   SYN_SENT, COOKIE_WAIT as SYN_RECV, COOKIE_ECHOED as ESTABLISHED, ESTABLISHED as FIN_WAIT.
 *   The reader maps them back by number. A TCP-table name is always taken as mislabelled, so an
 *   SCTP `ESTABLISHED` reads as COOKIE_ECHOED; names that are not in the TCP table pass through.
 * A program's deletion appends ` [USERSPACE] portid=N progname=X` after `</flow>` on the same
 * line; it is skipped. `<when>` is the listener's local time to the second; it is read as UTC
 * (run the listener with TZ=UTC).
 */
import type { Tuple } from '../../processors/flow';
import type { FlowSnapshot, HostFlowEvent } from '../../processors/fleet/hostFlowEvent';
import { FlowEventFormatError, checkAddress, excerpt, impliedStatus, parseIntField, withSource } from './common';
import type { FlowEventOptions } from './common';

interface XNode {
  name: string;
  attrs: Record<string, string>;
  children: XNode[];
  text: string;
}

const ENTITIES: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decode(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (all, name: string) => {
    if (name.startsWith('#x')) return String.fromCodePoint(parseInt(name.slice(2), 16));
    if (name.startsWith('#')) return String.fromCodePoint(parseInt(name.slice(1), 10));
    return ENTITIES[name] ?? all;
  });
}

/** Parses one element (and what is inside it) into a tree. Throws FlowEventFormatError. */
function parseElement(xml: string): XNode {
  const root: XNode = { name: '#root', attrs: {}, children: [], text: '' };
  const stack: XNode[] = [root];
  const tag = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[\w.:-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/y;
  let i = 0;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const text = xml.slice(i, lt < 0 ? xml.length : lt);
    if (text.trim()) {
      if (stack.length === 1) throw new FlowEventFormatError(`text outside the element: '${excerpt(text, 40)}'`);
      stack[stack.length - 1].text += decode(text);
    }
    if (lt < 0) break;
    if (xml.startsWith('<!--', lt)) {
      const end = xml.indexOf('-->', lt);
      if (end < 0) throw new FlowEventFormatError('unterminated comment');
      i = end + 3;
      continue;
    }
    tag.lastIndex = lt;
    const m = tag.exec(xml);
    if (!m) throw new FlowEventFormatError(`malformed tag at '${excerpt(xml.slice(lt), 40)}'`);
    const [, closing, name, attrText, selfClosing] = m;
    i = tag.lastIndex;
    const top = stack[stack.length - 1];
    if (closing) {
      if (top.name !== name) throw new FlowEventFormatError(`</${name}> closes <${top.name}>`);
      stack.pop();
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of attrText.matchAll(/([\w.:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) attrs[a[1]] = decode(a[2] ?? a[3]);
    const node: XNode = { name, attrs, children: [], text: '' };
    if (stack.length === 1 && root.children.length) throw new FlowEventFormatError(`a second element <${name}> after <${root.children[0].name}>`);
    top.children.push(node);
    if (!selfClosing) stack.push(node);
  }
  if (stack.length > 1) throw new FlowEventFormatError(`<${stack[stack.length - 1].name}> is not closed`);
  if (!root.children.length) throw new FlowEventFormatError('no element');
  return root.children[0];
}

const child = (n: XNode, name: string): XNode | undefined => n.children.find((c) => c.name === name);
const has = (n: XNode, name: string): boolean => n.children.some((c) => c.name === name);

function num(n: XNode, name: string, what: string, max: number): number | undefined {
  const c = child(n, name);
  return c === undefined ? undefined : parseIntField(c.text.trim(), what, 0, max);
}

const U32 = 0xffffffff;
const TCP_NAMES = ['NONE', 'SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE_WAIT', 'LAST_ACK', 'TIME_WAIT', 'CLOSE', 'SYN_SENT2'];
/** Index 9 of the TCP table was LISTEN in older libnetfilter_conntrack releases. */
const OLD_TCP_NAME_9 = 'LISTEN';
const SCTP_NAMES = ['NONE', 'CLOSED', 'COOKIE_WAIT', 'COOKIE_ECHOED', 'ESTABLISHED', 'SHUTDOWN_SENT', 'SHUTDOWN_RECD', 'SHUTDOWN_ACK_SENT', 'HEARTBEAT_SENT', 'HEARTBEAT_ACKED'];
const DCCP_NAMES = ['NONE', 'REQUEST', 'RESPOND', 'PARTOPEN', 'OPEN', 'CLOSEREQ', 'CLOSING', 'TIMEWAIT', 'IGNORE', 'INVALID'];

/** Undoes the printer's TCP-table lookup for SCTP (132) and DCCP (33) states. */
function stateName(printed: string, proto: number): string {
  const table = proto === 132 ? SCTP_NAMES : proto === 33 ? DCCP_NAMES : undefined;
  if (!table) return printed;
  const index = printed === OLD_TCP_NAME_9 ? 9 : TCP_NAMES.indexOf(printed);
  return index >= 0 && index < table.length ? table[index] : printed;
}

interface XmlTuple {
  family: 4 | 6;
  proto: number;
  tuple: Tuple;
  counters?: { packets: number; bytes: number };
}

function readTuple(meta: XNode | undefined, dir: 'original' | 'reply'): XmlTuple {
  if (!meta) throw new FlowEventFormatError(`no <meta direction="${dir}">`);
  const l3 = child(meta, 'layer3');
  const l4 = child(meta, 'layer4');
  if (!l3 || !l4) throw new FlowEventFormatError(`${dir}: <layer3> and <layer4> are required`);
  const l3num = l3.attrs.protonum;
  const family = l3num === '2' ? 4 : l3num === '10' ? 6 : undefined;
  if (family === undefined) throw new FlowEventFormatError(`${dir}: layer3 protonum '${l3num ?? ''}' is neither 2 (ipv4) nor 10 (ipv6)`);
  const proto = parseIntField(l4.attrs.protonum ?? '', `${dir} layer4 protonum`, 0, 255);
  const src = child(l3, 'src')?.text.trim() ?? '';
  const dst = child(l3, 'dst')?.text.trim() ?? '';
  checkAddress(src, family, `${dir} src`);
  checkAddress(dst, family, `${dir} dst`);
  const tuple: Tuple = {
    src,
    dst,
    sport: num(l4, 'sport', `${dir} sport`, 0xffff) ?? num(l4, 'srckey', `${dir} srckey`, U32) ?? 0,
    dport: num(l4, 'dport', `${dir} dport`, 0xffff) ?? num(l4, 'dstkey', `${dir} dstkey`, U32) ?? 0,
  };
  const out: XmlTuple = { family, proto, tuple };
  const counters = child(meta, 'counters');
  if (counters) {
    out.counters = {
      packets: num(counters, 'packets', `${dir} packets`, Number.MAX_SAFE_INTEGER) ?? 0,
      bytes: num(counters, 'bytes', `${dir} bytes`, Number.MAX_SAFE_INTEGER) ?? 0,
    };
  }
  return out;
}

/** `<when>`: the listener's clock, to the second (see the header about time zones). */
function readWhen(when: XNode): number {
  const part = (name: string, max: number): number => {
    const v = num(when, name, `when ${name}`, max);
    if (v === undefined) throw new FlowEventFormatError(`<when> has no <${name}>`);
    return v;
  };
  const ms = Date.UTC(part('year', 9999), part('month', 12) - 1, part('day', 31), part('hour', 23), part('min', 59), part('sec', 60));
  return ms * 1000;
}

const FLOW_TYPES: Readonly<Record<string, HostFlowEvent['type']>> = { new: 'NEW', update: 'UPDATE', destroy: 'DESTROY' };

function eventFromFlow(flow: XNode, opts?: FlowEventOptions): HostFlowEvent {
  if (flow.name !== 'flow') throw new FlowEventFormatError(`expected <flow>, got <${flow.name}>`);
  const typeAttr = flow.attrs.type;
  const type = typeAttr === undefined ? 'UPDATE' : FLOW_TYPES[typeAttr];
  if (!type) throw new FlowEventFormatError(`flow type '${typeAttr}' is not new, update or destroy`);
  const metas = (dir: string): XNode | undefined => flow.children.find((c) => c.name === 'meta' && c.attrs.direction === dir);
  const o = readTuple(metas('original'), 'original');
  const r = readTuple(metas('reply'), 'reply');
  if (o.family !== r.family || o.proto !== r.proto) throw new FlowEventFormatError('original and reply tuples differ in family or protocol');
  const ind = metas('independent') ?? { name: 'meta', attrs: {}, children: [], text: '' };
  const flags: string[] = [];
  if (has(ind, 'unreplied')) flags.push('UNREPLIED');
  if (has(ind, 'assured')) flags.push('ASSURED');
  const snap: FlowSnapshot = {
    zone: num(ind, 'zone', 'zone', 0xffff) ?? 0,
    family: o.family,
    proto: o.proto,
    orig: o.tuple,
    reply: r.tuple,
    status: impliedStatus(flags, o.proto, o.tuple, r.tuple),
  };
  const state = child(ind, 'state')?.text.trim();
  if (state) snap.state = stateName(state, o.proto);
  const id = num(ind, 'id', 'id', U32);
  if (id !== undefined) snap.id = id;
  const timeout = num(ind, 'timeout', 'timeout', U32);
  if (timeout !== undefined) snap.timeout = timeout;
  const mark = num(ind, 'mark', 'mark', U32);
  if (mark !== undefined) snap.mark = mark;
  if (o.counters || r.counters) snap.counters = { orig: o.counters ?? { packets: 0, bytes: 0 }, reply: r.counters ?? { packets: 0, bytes: 0 } };
  const deltaTime = num(ind, 'deltatime', 'deltatime', Number.MAX_SAFE_INTEGER);
  if (deltaTime !== undefined) snap.deltaTime = deltaTime;
  const stamps = child(ind, 'timestamp');
  const startNs = stamps && num(stamps, 'start', 'timestamp start', Number.MAX_VALUE);
  const stopNs = stamps && num(stamps, 'stop', 'timestamp stop', Number.MAX_VALUE);
  if (startNs !== undefined) snap.startUs = Math.floor(startNs / 1000);
  const helper = child(flow, 'helper')?.text.trim();
  if (helper) snap.helper = helper;
  const e: HostFlowEvent = { type, flow: snap };
  if (typeAttr === undefined) e.listed = true;
  const when = child(flow, 'when');
  if (when) e.tsUs = readWhen(when);
  else if (stopNs !== undefined) e.tsUs = Math.floor(stopNs / 1000);
  return withSource(e, opts);
}

export interface XmlFlowText {
  /** 1-based line of the `<flow` that starts it. */
  line: number;
  text: string;
}

export interface SplitXml {
  flows: XmlFlowText[];
  errors: Array<{ line: number; reason: string; text: string }>;
}

/** What may stand between flows: the declaration, the root tags, whitespace, a [USERSPACE] trailer. */
const BETWEEN = /^(\s+|<\?xml[^>]*\?>|<\/?conntrack>|<!--[\s\S]*?-->|\[USERSPACE\][^\n]*)/;

/** Cuts a document into its `<flow>` elements; anything else between them is an error with its line. */
export function splitXmlFlows(doc: string): SplitXml {
  const out: SplitXml = { flows: [], errors: [] };
  let line = 1;
  let i = 0;
  const advance = (to: number): void => {
    for (let k = i; k < to; k++) if (doc.charCodeAt(k) === 10) line++;
    i = to;
  };
  while (i < doc.length) {
    const rest = doc.slice(i, i + 4096);
    const gap = BETWEEN.exec(rest);
    if (gap) {
      advance(i + gap[0].length);
      continue;
    }
    if (/^<flow[\s>/]/.test(rest)) {
      const end = doc.indexOf('</flow>', i);
      const next = doc.indexOf('<flow', i + 5);
      if (end < 0 || (next >= 0 && next < end)) {
        const stop = next >= 0 ? next : doc.length;
        out.errors.push({ line, reason: '<flow> is not closed', text: excerpt(doc.slice(i, stop)) });
        advance(stop);
        continue;
      }
      out.flows.push({ line, text: doc.slice(i, end + 7) });
      advance(end + 7);
      continue;
    }
    const eol = doc.indexOf('\n', i);
    const stop = eol < 0 ? doc.length : eol;
    out.errors.push({ line, reason: 'unexpected text outside <flow>', text: excerpt(doc.slice(i, stop)) });
    advance(stop);
  }
  return out;
}

/** One `<flow>` element (optionally followed by its [USERSPACE] trailer) as a HostFlowEvent. */
export function parseXmlFlow(text: string, opts?: FlowEventOptions): HostFlowEvent {
  const trimmed = text.trim().replace(/\s*\[USERSPACE\][^\n]*$/, '');
  return eventFromFlow(parseElement(trimmed), opts);
}
