/**
 * FleetProcessor: the flow-events counterpart of PartitionProcessor. Hosts' own kernels already
 * ran the state machine, so each event goes straight into a FleetTable (each host its own zone);
 * what comes out is the same vocabulary as the packet path: transitions, and a flow accounting
 * record when an entry is destroyed. Counters in conntrack events are cumulative, so a table
 * rebuilt after a restart from later events still accounts every packet the kernel counted.
 */
import type { FlowAccountingRecord, FlowEvent } from '../flow';
import { FleetTable, endRecord } from '../fleet/fleetTable';
import type { HostFlowEvent } from '../fleet/hostFlowEvent';

export interface FleetOutput {
  events: FlowEvent[];
  records: FlowAccountingRecord[];
  ignored: Array<{ reason: string }>;
}

export class FleetProcessor {
  readonly table = new FleetTable();
  private out: FleetOutput = { events: [], records: [], ignored: [] };

  /** `fallbackTsUs` (the message time) stands in for events whose form carries no time. */
  apply(e: HostFlowEvent, fallbackTsUs: number): void {
    const r = this.table.apply(e);
    const tsUs = e.tsUs ?? fallbackTsUs;
    if (r.action === 'ignored') {
      this.out.ignored.push({ reason: r.reason });
      return;
    }
    const type = r.action === 'inserted' ? 'NEW' : r.action === 'destroyed' ? 'DESTROY' : 'UPDATE';
    this.out.events.push({ type, tsUs, flow: r.record, protoinfo: e.flow.state !== undefined || type === 'DESTROY' });
    if (r.action === 'destroyed') this.out.records.push(endRecord(r.record, tsUs));
  }

  drain(): FleetOutput {
    const o = this.out;
    this.out = { events: [], records: [], ignored: [] };
    return o;
  }
}
