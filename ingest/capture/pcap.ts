/**
 * Classic libpcap files: a 24-byte file header, then 16-byte record headers each followed by
 * the captured bytes. The magic number tells both the byte order (it reads back swapped when
 * the writer's order differs from ours) and the timestamp unit (micro- or nanoseconds).
 */
import { CaptureFormatError, makeCapture, type Capture, type CaptureFrame } from './types';

const MAGIC_US = 0xa1b2c3d4;
const MAGIC_NS = 0xa1b23c4d;
/** Alexey Kuznetzov's patched libpcap: microseconds, and 8 extra bytes per record header. */
const MAGIC_KUZNETZOV = 0xa1b2cd34;
const FILE_HEADER_BYTES = 24;
/** The link type sits in the low bits; bits 26-31 carry FCS information we do not need. */
const LINKTYPE_MASK = 0x03ffffff;

interface PcapVariant {
  littleEndian: boolean;
  nanos: boolean;
  recordHeaderBytes: number;
}

function swap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

/** The variant named by a magic read as a little-endian u32, or undefined if it is not pcap. */
function variantOf(magicLe: number): PcapVariant | undefined {
  for (const littleEndian of [true, false]) {
    const m = littleEndian ? magicLe : swap32(magicLe);
    if (m === MAGIC_US) return { littleEndian, nanos: false, recordHeaderBytes: 16 };
    if (m === MAGIC_NS) return { littleEndian, nanos: true, recordHeaderBytes: 16 };
    if (m === MAGIC_KUZNETZOV) return { littleEndian, nanos: false, recordHeaderBytes: 24 };
  }
  return undefined;
}

export function isPcapMagic(magicLe: number): boolean {
  return variantOf(magicLe) !== undefined;
}

/** Opens a pcap file held in memory. Throws CaptureFormatError only for a bad file header. */
export function openPcap(bytes: Uint8Array): Capture {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const variant = bytes.length >= 4 ? variantOf(view.getUint32(0, true)) : undefined;
  if (!variant) throw new CaptureFormatError('not a pcap file: bad magic');
  if (bytes.length < FILE_HEADER_BYTES) {
    throw new CaptureFormatError(`truncated pcap file header: ${bytes.length} of ${FILE_HEADER_BYTES} bytes`);
  }
  const le = variant.littleEndian;
  const linkType = view.getUint32(20, le) & LINKTYPE_MASK;

  return makeCapture('pcap', function* walk(report): Generator<CaptureFrame, void, undefined> {
    let offset = FILE_HEADER_BYTES;
    for (let frame = 0; offset < bytes.length; frame++) {
      const left = bytes.length - offset;
      if (left < variant.recordHeaderBytes) {
        report({ frame, offset, reason: `truncated record header: ${left} of ${variant.recordHeaderBytes} bytes` });
        return;
      }
      const sec = view.getUint32(offset, le);
      const frac = view.getUint32(offset + 4, le);
      const capLen = view.getUint32(offset + 8, le);
      const origLength = view.getUint32(offset + 12, le);
      const dataStart = offset + variant.recordHeaderBytes;
      if (capLen > bytes.length - dataStart) {
        const have = bytes.length - dataStart;
        report({ frame, offset, reason: `truncated record: ${have} of ${capLen} captured bytes` });
        return;
      }
      const tsUs = sec * 1_000_000 + (variant.nanos ? Math.floor(frac / 1000) : frac);
      const data = bytes.subarray(dataStart, dataStart + capLen);
      yield { frame, tsUs, linkType, interfaceId: 0, data, origLength };
      offset = dataStart + capLen;
    }
  });
}
