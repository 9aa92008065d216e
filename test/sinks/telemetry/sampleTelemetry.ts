/** The bundled sample capture replayed into a PipelineTelemetry, in process: shared by the sink tests. */
import { join } from 'node:path';
import { loadCapture } from '../../../cli/runCapture';
import type { RunResult } from '../../../cli/runCapture';
import { runCaptureObserved } from '../../../cli/observedReplay';
import { makeSysctl } from '../../../processors/conntrack/sysctl';
import { PipelineTelemetry } from '../../../sinks/telemetry/telemetry';
import type { TelemetryOptions } from '../../../sinks/telemetry/telemetry';

export const SAMPLE = join(__dirname, '..', '..', 'fixtures', 'sample.pcap');

/** `attach` runs before the replay: exporters that watch batches as they happen must exist by then. */
export async function sampleTelemetry(o: TelemetryOptions = {}, attach?: (t: PipelineTelemetry) => void): Promise<{ telemetry: PipelineTelemetry; run: RunResult }> {
  const telemetry = new PipelineTelemetry(o);
  attach?.(telemetry);
  const run = await runCaptureObserved(loadCapture(SAMPLE), { sysctl: makeSysctl(), shards: 1, observer: telemetry, batchPackets: 1000 });
  return { telemetry, run };
}
