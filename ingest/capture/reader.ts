/**
 * Entry point for captures: picks the reader by the file's magic number.
 */
import { readFileSync } from 'node:fs';
import { isPcapMagic, openPcap } from './pcap';
import { isPcapngMagic, openPcapng } from './pcapng';
import { CaptureFormatError, type Capture } from './types';

/**
 * Opens a pcap or pcapng capture held in memory. Iterate the result for frames; a truncated or
 * corrupt record ends the iteration and is reported in `capture.problem`. Throws
 * CaptureFormatError when the bytes are not a capture this reader knows.
 */
export function openCapture(bytes: Uint8Array): Capture {
  if (bytes.length < 4) throw new CaptureFormatError(`unsupported capture format: only ${bytes.length} bytes`);
  const magicLe = (bytes[0] | (bytes[1] << 8) | (bytes[2] << 16) | (bytes[3] << 24)) >>> 0;
  if (isPcapngMagic(magicLe)) return openPcapng(bytes);
  if (isPcapMagic(magicLe)) return openPcap(bytes);
  // Name the bytes in file order, the way `xxd` shows them.
  const hex = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join('');
  throw new CaptureFormatError(`unsupported capture format: magic 0x${hex}`);
}

/** Reads a whole capture file into memory and opens it (see openCapture). */
export function readCaptureFile(path: string): Capture {
  const buf = readFileSync(path);
  return openCapture(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
}
