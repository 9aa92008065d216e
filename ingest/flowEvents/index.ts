/**
 * Flow events from hosts, in any of the three accepted forms (docs/flow-events.md):
 * conntrack -E/-L text, conntrack's XML, or ctflow's event JSON. `parseFlowEvents` reads a whole
 * file and reports bad lines without stopping; `parseFlowEventMessage` reads one Kafka message and
 * throws FlowEventFormatError, whose message is the reason for a dead-letter record.
 */
import type { HostFlowEvent } from '../../processors/fleet/hostFlowEvent';
import { FlowEventFormatError, excerpt } from './common';
import type { FlowEventOptions } from './common';
import { parseConntrackEvent } from './conntrackText';
import { parseXmlFlow, splitXmlFlows } from './conntrackXml';
import { parseFlowEventJson } from './flowEventJson';

export type { FlowSnapshot, HostFlowEvent } from '../../processors/fleet/hostFlowEvent';
export { FlowEventFormatError } from './common';
export type { FlowEventOptions } from './common';
export { flowEventJsonSchema } from './flowEventJson';

export interface FlowEventParseError {
  /** 1-based line in the input. */
  line: number;
  reason: string;
  /** The offending text (cut to 200 characters). */
  text: string;
}

export interface ParsedFlowEvents {
  events: HostFlowEvent[];
  errors: FlowEventParseError[];
}

export type FlowEventForm = 'xml' | 'json' | 'text';

/** conntrack's closing summary ("conntrack v1.4.7 (conntrack-tools): 8 flow entries have been shown."), when stderr was kept. */
const SUMMARY = /^conntrack v[\d.]+ \(conntrack-tools\): \d+ flow (entries|events) ha(ve|s) been shown\.$/;

/** XML when the input starts with '<'; otherwise lines, each JSON if it starts with '{', else text. */
export function detectForm(text: string): FlowEventForm {
  const first = /\S/.exec(text)?.[0];
  return first === '<' ? 'xml' : first === '{' ? 'json' : 'text';
}

function parseLine(line: string, opts?: FlowEventOptions): HostFlowEvent {
  return line.trimStart().startsWith('{') ? parseFlowEventJson(line, opts) : parseConntrackEvent(line, opts);
}

function reasonOf(err: unknown): string {
  if (err instanceof FlowEventFormatError) return err.message;
  throw err;
}

/**
 * Parses a whole input (a file, a captured listener's output). A line that is not an event is
 * reported with its number and the reason, and the rest is still read.
 */
export function parseFlowEvents(text: string, opts?: FlowEventOptions): ParsedFlowEvents {
  const out: ParsedFlowEvents = { events: [], errors: [] };
  if (detectForm(text) === 'xml') {
    const split = splitXmlFlows(text);
    out.errors.push(...split.errors);
    for (const f of split.flows) {
      try {
        out.events.push(parseXmlFlow(f.text, opts));
      } catch (err) {
        out.errors.push({ line: f.line, reason: reasonOf(err), text: excerpt(f.text) });
      }
    }
    out.errors.sort((a, b) => a.line - b.line);
    return out;
  }
  const lines = text.split('\n');
  for (let k = 0; k < lines.length; k++) {
    const line = lines[k];
    if (!line.trim() || SUMMARY.test(line.trim())) continue;
    try {
      out.events.push(parseLine(line, opts));
    } catch (err) {
      out.errors.push({ line: k + 1, reason: reasonOf(err), text: excerpt(line) });
    }
  }
  return out;
}

/**
 * One Kafka message: a JSON object, one `<flow>` element, or one line of conntrack text.
 * Throws FlowEventFormatError with the reason when it is none of them.
 */
export function parseFlowEventMessage(value: string, opts?: FlowEventOptions): HostFlowEvent {
  const text = value.trim();
  if (!text) throw new FlowEventFormatError('empty message');
  const form = detectForm(text);
  if (form === 'json') return parseFlowEventJson(text, opts);
  if (form === 'xml') {
    const split = splitXmlFlows(text);
    if (split.errors.length) throw new FlowEventFormatError(split.errors[0].reason);
    if (split.flows.length !== 1) throw new FlowEventFormatError(`expected one <flow> element, found ${split.flows.length}`);
    return parseXmlFlow(split.flows[0].text, opts);
  }
  if (text.includes('\n')) throw new FlowEventFormatError('more than one line in one message');
  return parseConntrackEvent(text, opts);
}
