/**
 * pcapng files: a sequence of blocks (type, total length, body, total length again), grouped
 * into sections that each start with a Section Header Block carrying its own byte order. Each
 * section declares its interfaces (IDB: link type, timestamp unit, name); packet blocks name one.
 * Blocks we do not need (statistics, name resolution, custom, ...) are skipped by length.
 */
import { CaptureFormatError, LINKTYPE, makeCapture, type Capture, type CaptureFrame } from './types';

const BT_SHB = 0x0a0d0d0a;
const BT_IDB = 0x00000001;
const BT_PB = 0x00000002; // obsolete Packet Block
const BT_SPB = 0x00000003;
const BT_EPB = 0x00000006;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const OPT_ENDOFOPT = 0;
const OPT_IF_NAME = 2;
const OPT_IF_TSRESOL = 9;
const OPT_IF_TSOFFSET = 14;

interface Interface {
  linkType: number;
  snapLen: number;
  /** Timestamp units → µs: tsUs = units * mul / div (exact, in BigInt) unless unitIsUs. */
  unitIsUs: boolean;
  mul: bigint;
  div: bigint;
  offsetUs: number;
  /** if_name: the capturing interface's name (eth1, ens3, ...), when the file records it. */
  name?: string;
}

export function isPcapngMagic(magicLe: number): boolean {
  return magicLe === BT_SHB; // the SHB type is a palindrome, so byte order does not matter here
}

/** The byte order a section header announces, or undefined when its magic is neither. */
function sectionByteOrder(view: DataView, off: number): boolean | undefined {
  const magic = view.getUint32(off + 8, true);
  if (magic === BYTE_ORDER_MAGIC) return true;
  if (magic === 0x4d3c2b1a) return false;
  return undefined;
}

/** Reads an IDB body: link type, snaplen and the timestamp options. */
function readInterface(view: DataView, start: number, end: number, le: boolean): Interface {
  const iface: Interface = {
    linkType: view.getUint16(start, le),
    snapLen: view.getUint32(start + 4, le),
    unitIsUs: true,
    mul: 1n,
    div: 1n,
    offsetUs: 0,
  };
  // Options: code u16, length u16, value padded to 4 bytes. A malformed option ends the list
  // rather than the file: the interface is still usable with the defaults.
  for (let o = start + 8; o + 4 <= end; ) {
    const code = view.getUint16(o, le);
    const len = view.getUint16(o + 2, le);
    if (code === OPT_ENDOFOPT || o + 4 + len > end) break;
    if (code === OPT_IF_TSRESOL && len >= 1) {
      const v = view.getUint8(o + 4);
      // High bit set: a negative power of two; clear: a negative power of ten (default 10^-6).
      const unitsPerSec = v & 0x80 ? 1n << BigInt(v & 0x7f) : 10n ** BigInt(v);
      iface.unitIsUs = unitsPerSec === 1_000_000n;
      iface.mul = 1_000_000n;
      iface.div = unitsPerSec;
    } else if (code === OPT_IF_TSOFFSET && len >= 8) {
      iface.offsetUs = Number(view.getBigInt64(o + 4, le)) * 1_000_000;
    } else if (code === OPT_IF_NAME && len > 0) {
      // UTF-8, not necessarily NUL-terminated (some writers add one anyway: cut it).
      const name = Buffer.from(view.buffer, view.byteOffset + o + 4, len).toString('utf8').replace(/\0+$/, '');
      if (name) iface.name = name;
    }
    o += 4 + ((len + 3) & ~3);
  }
  return iface;
}

function timestampUs(iface: Interface | undefined, hi: number, lo: number): number {
  if (!iface || iface.unitIsUs) return hi * 0x1_0000_0000 + lo + (iface?.offsetUs ?? 0);
  const units = (BigInt(hi) << 32n) | BigInt(lo);
  return Number((units * iface.mul) / iface.div) + iface.offsetUs;
}

/** Opens a pcapng file held in memory. Throws CaptureFormatError only for a bad first block. */
export function openPcapng(bytes: Uint8Array): Capture {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 12) throw new CaptureFormatError(`truncated pcapng section header: ${bytes.length} of 12 bytes`);
  if (view.getUint32(0, true) !== BT_SHB) throw new CaptureFormatError('not a pcapng file: bad magic');
  if (sectionByteOrder(view, 0) === undefined) {
    throw new CaptureFormatError(`bad pcapng byte-order magic 0x${view.getUint32(8, false).toString(16).padStart(8, '0')}`);
  }

  return makeCapture('pcapng', function* walk(report): Generator<CaptureFrame, void, undefined> {
    let le = true;
    let interfaces: Interface[] = [];
    let frame = 0;
    // Simple Packet Blocks carry no time; they inherit the last one seen so time never runs back.
    let lastTsUs = 0;
    for (let off = 0; off < bytes.length; ) {
      const fail = (reason: string) => report({ frame, offset: off, reason });
      if (bytes.length - off < 12) return fail(`truncated block header: ${bytes.length - off} of 12 bytes`);
      const type = view.getUint32(off, le);
      if (type === BT_SHB) {
        const order = sectionByteOrder(view, off);
        if (order === undefined) return fail('bad section header byte-order magic');
        le = order;
        interfaces = []; // interface ids are per section
      }
      const blockLen = view.getUint32(off + 4, le);
      if (blockLen < 12 || blockLen % 4 !== 0) return fail(`bad block length ${blockLen}`);
      if (blockLen > bytes.length - off) return fail(`truncated block: ${bytes.length - off} of ${blockLen} bytes`);
      if (view.getUint32(off + blockLen - 4, le) !== blockLen) return fail('block trailing length mismatch');
      const body = off + 8;
      const bodyEnd = off + blockLen - 4;
      const bodyLen = bodyEnd - body;

      if (type === BT_IDB) {
        if (bodyLen < 8) return fail(`short interface description block: ${bodyLen} bytes`);
        interfaces.push(readInterface(view, body, bodyEnd, le));
      } else if (type === BT_EPB || type === BT_PB) {
        if (bodyLen < 20) return fail(`short packet block: ${bodyLen} bytes`);
        const interfaceId = type === BT_EPB ? view.getUint32(body, le) : view.getUint16(body, le);
        const iface = interfaces[interfaceId];
        const capLen = Math.min(view.getUint32(body + 12, le), bodyLen - 20);
        lastTsUs = timestampUs(iface, view.getUint32(body + 4, le), view.getUint32(body + 8, le));
        const f: CaptureFrame = {
          frame: frame++,
          tsUs: lastTsUs,
          linkType: iface ? iface.linkType : LINKTYPE.UNDECLARED,
          interfaceId,
          data: bytes.subarray(body + 20, body + 20 + capLen),
          origLength: view.getUint32(body + 16, le),
        };
        if (iface?.name !== undefined) f.interfaceName = iface.name;
        yield f;
      } else if (type === BT_SPB) {
        if (bodyLen < 4) return fail(`short simple packet block: ${bodyLen} bytes`);
        const iface = interfaces[0];
        const origLength = view.getUint32(body, le);
        // The captured length is implied: the original length cut to the snaplen and the block.
        let capLen = Math.min(origLength, bodyLen - 4);
        if (iface && iface.snapLen > 0) capLen = Math.min(capLen, iface.snapLen);
        const f: CaptureFrame = {
          frame: frame++,
          tsUs: lastTsUs,
          linkType: iface ? iface.linkType : LINKTYPE.UNDECLARED,
          interfaceId: 0,
          data: bytes.subarray(body + 4, body + 4 + capLen),
          origLength,
        };
        if (iface?.name !== undefined) f.interfaceName = iface.name;
        yield f;
      }
      off += blockLen;
    }
  });
}
