/**
 * The default thread count (issue "scale-out": one per core). A capture command given no
 * --workers runs one per core on a large capture and one thread on a small one, where starting the
 * shares costs more than they save; --workers and --nat decide whatever the size. The Kafka
 * pipeline's default is `auto` (test/cli/config.test.ts).
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, ftruncateSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUTO_WORKERS_MIN_CAPTURE_BYTES, captureWorkerCount } from '../../cli/workerCommands';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ctflow-workers-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A sparse file of `size` bytes: only its size is read. */
function fileOf(name: string, size: number): string {
  const path = join(dir, name);
  const fd = openSync(path, 'w');
  ftruncateSync(fd, size);
  closeSync(fd);
  return path;
}

describe('captureWorkerCount', () => {
  test('no --workers: one per core from AUTO_WORKERS_MIN_CAPTURE_BYTES on, one thread below it', () => {
    expect(captureWorkerCount({ nat: [] }, fileOf('large.pcap', AUTO_WORKERS_MIN_CAPTURE_BYTES))).toBe(availableParallelism());
    expect(captureWorkerCount({ nat: [] }, fileOf('small.pcap', AUTO_WORKERS_MIN_CAPTURE_BYTES - 1))).toBe(1);
  });

  test('--workers decides whatever the size; --nat keeps one thread (its two sides carry different address pairs)', () => {
    const small = join(dir, 'tiny.pcap');
    writeFileSync(small, new Uint8Array(24));
    expect(captureWorkerCount({ workers: '3', nat: [] }, small)).toBe(3);
    expect(captureWorkerCount({ workers: 'auto', nat: [] }, small)).toBe(availableParallelism());
    expect(captureWorkerCount({ workers: '1', nat: [] }, fileOf('large2.pcap', AUTO_WORKERS_MIN_CAPTURE_BYTES))).toBe(1);
    expect(captureWorkerCount({ nat: ['snat:10.0.0.0/8->192.0.2.1'] }, fileOf('large3.pcap', AUTO_WORKERS_MIN_CAPTURE_BYTES))).toBe(1);
    expect(() => captureWorkerCount({ workers: 'many', nat: [] }, small)).toThrow("--workers: 'many' is not 'auto' or an integer from 1 to 64");
  });

  test('a path that cannot be read leaves the decision to the command that reads it: one thread', () => {
    expect(captureWorkerCount({ nat: [] }, join(dir, 'missing.pcap'))).toBe(1);
  });
});
