/**
 * The report's model on real captures by others (../shared/captures/public beside the
 * repository; never committed): its counters, table, event counts and bad frames are those of
 * ctflow stats, list and events. Without the folder the test says so by name and is skipped.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildReportModel } from '../../../cli/report';
import { loadCapture } from '../../../cli/runCapture';
import { makeSysctl } from '../../../processors/conntrack/sysctl';
import { ctflow, jsonLines } from './reportHelpers';

const PUBLIC = resolve(__dirname, '../../../../shared/captures/public');
const files = existsSync(PUBLIC) ? readdirSync(PUBLIC).filter((f) => /\.pcap(ng)?$/.test(f)) : [];

if (!files.length) test.skip(`public captures (skipped: ${PUBLIC} is absent)`, () => undefined);
else {
  test.each(files)('%s: the report agrees with ctflow stats, list and events', (file) => {
    const path = join(PUBLIC, file);
    const model = buildReportModel(loadCapture(path), file, makeSysctl(), 1);
    const m = model.meta;
    expect(m.stats).toEqual(jsonLines('stats', path, '--json')[0]);
    const listed = jsonLines('list', path, '--json');
    const open = Array.from(model.columns.fFate).filter((f) => f === 0).length;
    expect(open).toBe(listed.length);
    const events = jsonLines('events', path, '--json');
    expect(m.eventCount).toBe(events.length);
    expect(m.events.NEW).toBe(events.filter((e) => e.type === 'NEW').length);
    const frameLines = ctflow('stats', path).err.filter((l) => /^ctflow: frame \d+: /.test(l) && !l.includes('the capture ends there'));
    expect(m.capture.badFrames.map((b) => `ctflow: frame ${b.frame}: ${b.reason}`)).toEqual(frameLines);
  });
}
