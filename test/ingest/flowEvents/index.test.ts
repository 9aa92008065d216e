/** Form detection, whole inputs with bad lines, and single Kafka messages. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlowEventFormatError, detectForm, parseFlowEventMessage, parseFlowEvents } from '../../../ingest/flowEvents';

const fixtures = join(__dirname, '..', '..', 'fixtures', 'flowEvents');
const read = (name: string): string => readFileSync(join(fixtures, name), 'utf8');
const jsonLine = JSON.stringify({
  ts: 1.5, type: 'NEW', id: 1, l3: 'ipv4', protonum: 17, timeout: 30,
  orig: { src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2 }, reply: { src: '10.0.0.2', dst: '10.0.0.1', sport: 2, dport: 1 },
});

describe('parseFlowEvents', () => {
  test('tells the three forms apart', () => {
    expect(detectForm(read('events.xml'))).toBe('xml');
    expect(detectForm(`\n${jsonLine}\n`)).toBe('json');
    expect(detectForm(read('events.txt'))).toBe('text');
    expect(parseFlowEvents(read('events.xml')).events).toHaveLength(45);
    expect(parseFlowEvents(read('events.txt')).events).toHaveLength(45);
    expect(parseFlowEvents(read('table.xml')).events).toHaveLength(9);
  });

  test('a bad line is reported with its number and reason, and the lines after it are still read', () => {
    const lines = read('events.txt').split('\n').slice(0, 4);
    lines.splice(1, 0, 'not an event');
    lines.splice(3, 0, '{"type": "NEW"}');
    lines.push('', 'conntrack v1.4.7 (conntrack-tools): 4 flow events have been shown.', jsonLine);
    const r = parseFlowEvents(lines.join('\n'), { host: 'h1' });
    expect(r.events).toHaveLength(5);
    expect(r.events.every((e) => e.host === 'h1')).toBe(true);
    expect(r.events[4].flow.proto).toBe(17);
    expect(r.errors).toEqual([
      { line: 2, reason: "expected ipv4, ipv6 or a protocol name and number, got 'not an'", text: 'not an event' },
      { line: 4, reason: expect.stringMatching(/^l3: /), text: '{"type": "NEW"}' },
    ]);
  });

  test('XML errors carry the line of the element', () => {
    const doc = read('events.xml').split('\n');
    doc[5] = doc[5].replace('<src>', '<src>x');
    const r = parseFlowEvents(doc.join('\n'));
    expect(r.events).toHaveLength(44);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatchObject({ line: 6, reason: expect.stringMatching(/original src: 'x198\.51\.100\.2' is not an IPv4 address/) });
  });
});

describe('parseFlowEventMessage', () => {
  test('one message of each form', () => {
    expect(parseFlowEventMessage(read('events.txt').split('\n')[0]).flow.id).toBe(1282069827);
    expect(parseFlowEventMessage(read('events.xml').split('\n')[2], { zone: 4 })).toMatchObject({ type: 'NEW', hostZone: 4, flow: { id: 1282069827 } });
    expect(parseFlowEventMessage(`  ${jsonLine}\n`).flow.id).toBe(1);
    // A destroy as the listener printed it, with the [USERSPACE] trailer after </flow>.
    expect(parseFlowEventMessage(read('events.xml').split('\n').find((l) => l.includes('USERSPACE'))!).type).toBe('DESTROY');
  });

  test.each([
    ['', 'empty message'],
    [`${read('events.xml').split('\n')[2]}\n${read('events.xml').split('\n')[3]}`, 'expected one <flow> element, found 2'],
    [`${read('events.txt').split('\n')[0]}\n${read('events.txt').split('\n')[1]}`, 'more than one line in one message'],
    ['<conntrack></conntrack>', 'expected one <flow> element, found 0'],
    ['<flow type="new">', '<flow> is not closed'],
    ['{"l3": "ipv4"', expect.stringMatching(/^not JSON: /)],
  ])('refuses %#', (value, reason) => {
    let caught: unknown;
    try {
      parseFlowEventMessage(value);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FlowEventFormatError);
    expect((caught as Error).message).toEqual(reason);
  });
});
