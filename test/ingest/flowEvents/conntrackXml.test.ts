/**
 * conntrack's XML (`-E -o xml,timestamp`, `-L -o xml`), checked against the text the same kernel
 * events produced: both fixtures come from two listeners running side by side.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseXmlFlow, splitXmlFlows } from '../../../ingest/flowEvents/conntrackXml';
import { FlowEventFormatError } from '../../../ingest/flowEvents/common';
import { parseConntrackEvent } from '../../../ingest/flowEvents/conntrackText';
import type { HostFlowEvent } from '../../../processors/fleet/hostFlowEvent';

const fixtures = join(__dirname, '..', '..', 'fixtures', 'flowEvents');
const read = (name: string): string => readFileSync(join(fixtures, name), 'utf8');

function parseDoc(doc: string): HostFlowEvent[] {
  const split = splitXmlFlows(doc);
  expect(split.errors).toEqual([]);
  return split.flows.map((f) => parseXmlFlow(f.text));
}
const textEvents = (name: string): HostFlowEvent[] => read(name).split('\n').filter((l) => l.trim()).map((l) => parseConntrackEvent(l));

/**
 * What both forms carry. XML has no ICMP type/code/id and only whole seconds; delta-time is
 * worked out by each listener from its own clock when it prints (compared apart, to a second).
 */
function comparable(e: HostFlowEvent): unknown {
  const { orig, reply, deltaTime: _delta, ...rest } = e.flow;
  const bare = (t: typeof orig): unknown => ({ src: t.src, dst: t.dst, sport: t.sport, dport: t.dport });
  return { type: e.type, listed: e.listed ?? false, ...rest, orig: bare(orig), reply: bare(reply) };
}

describe('conntrack -E -o xml,timestamp', () => {
  const xml = parseDoc(read('events.xml'));
  const text = textEvents('events.txt');

  test('says what the text of the same events says', () => {
    expect(xml.length).toBe(45);
    expect(xml.map(comparable)).toEqual(text.map(comparable));
    xml.forEach((e, k) => expect(Math.abs((e.flow.deltaTime ?? -9) - (text[k].flow.deltaTime ?? -9))).toBeLessThanOrEqual(1));
    expect(xml.filter((e) => e.flow.deltaTime !== undefined).length).toBe(10);
  });

  test('<when> is the listener clock to the second (read as UTC)', () => {
    xml.forEach((e, k) => {
      const diff = e.tsUs! - Math.floor(text[k].tsUs! / 1e6) * 1e6;
      expect(Math.abs(diff)).toBeLessThanOrEqual(1e6);
      expect(e.tsUs! % 1e6).toBe(0);
    });
  });

  test('SCTP states come back from the TCP-table names the printer used', () => {
    expect(read('events.xml')).toMatch(/protoname="sctp".*<state>SYN_SENT<\/state>/);
    const sctp = xml.filter((e) => e.flow.proto === 132).map((e) => e.flow.state);
    expect(sctp).toEqual(['CLOSED', 'COOKIE_WAIT', 'COOKIE_ECHOED', 'ESTABLISHED', 'ESTABLISHED']);
  });

  test('ICMP tuples have no type, code or id in XML; the entry id is still there', () => {
    const ping = xml.find((e) => e.flow.proto === 1)!;
    expect(ping.flow.orig.icmp).toBeUndefined();
    expect(ping.flow.id).toBe(345047094);
  });

  test('DNAT, zone, mark and destroy counters', () => {
    const dnat = xml.find((e) => e.type === 'DESTROY' && e.flow.orig.dst === '192.0.2.80')!;
    expect(dnat.flow.reply).toMatchObject({ src: '203.0.113.2', sport: 8080 });
    expect(dnat.flow.counters).toEqual({ orig: { packets: 5, bytes: 268 }, reply: { packets: 3, bytes: 172 } });
    expect(xml.find((e) => e.flow.orig.dport === 5353)!.flow.zone).toBe(7);
    expect(xml.find((e) => e.flow.orig.dport === 7)!.flow.mark).toBe(42);
  });
});

describe('conntrack -L -o xml', () => {
  test('lists what the text listing lists', () => {
    const xml = parseDoc(read('table.xml'));
    const text = textEvents('table.txt');
    expect(xml.length).toBe(9);
    expect(xml.every((e) => e.listed && e.type === 'UPDATE' && e.tsUs === undefined)).toBe(true);
    // The text listing prints mark=0 where XML prints <mark>0</mark> too; use= is XML-only in the snapshot.
    expect(xml.map(comparable)).toEqual(text.map(comparable));
  });
});

describe('splitXmlFlows and parseXmlFlow on bad input', () => {
  const good = read('events.xml').split('\n')[2];

  test('a document cut short, stray text and an unclosed flow are errors with their line; the rest is read', () => {
    const doc = ['<?xml version="1.0" encoding="utf-8"?>', '<conntrack>', good, 'stray words', `${good.slice(0, 80)}`, good].join('\n');
    const split = splitXmlFlows(doc);
    expect(split.flows.map((f) => f.line)).toEqual([3, 6]);
    expect(split.errors).toEqual([
      { line: 4, reason: 'unexpected text outside <flow>', text: 'stray words' },
      { line: 5, reason: '<flow> is not closed', text: good.slice(0, 80) },
    ]);
  });

  test.each([
    ['<flow type="new"><meta direction="original"></flow>', /<\/flow> closes <meta>/],
    ['<flow type="sideways"></flow>', /flow type 'sideways' is not new, update or destroy/],
    ['<flow type="new"></flow>', /no <meta direction="original">/],
    [good.replace('protonum="2"', 'protonum="7"'), /layer3 protonum '7' is neither 2/],
    [good.replace('<sport>56362</sport>', '<sport>99999</sport>'), /original sport: '99999' is not an integer/],
    [good.replace('<src>198.51.100.2</src>', '<src>nowhere</src>'), /original src: 'nowhere' is not an IPv4 address/],
    [good.replace('<hour>', '<hourx>').replace('</hour>', '</hourx>'), /<when> has no <hour>/],
    [good.replace('</flow>', '</flow><flow></flow>'), /a second element <flow>/],
  ])('refuses %#', (text, reason) => {
    expect(() => parseXmlFlow(text)).toThrow(FlowEventFormatError);
    expect(() => parseXmlFlow(text)).toThrow(reason);
  });

  test('entities are decoded, and a flow may be pretty-printed over several lines', () => {
    const pretty = good.replace(/></g, '>\n  <').replace('</flow>', '<helper>a&amp;b</helper></flow>');
    const e = parseXmlFlow(pretty);
    expect(e.flow.helper).toBe('a&b');
    expect(e.flow.orig.dport).toBe(80);
  });
});
