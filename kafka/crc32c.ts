/**
 * CRC-32C (Castagnoli), the checksum of Kafka's record batch v2 (KIP-98): reflected polynomial
 * 0x82F63B78, initial value and final xor 0xFFFFFFFF. Kafka's broker checks it over everything
 * from the batch's attributes to its end and refuses the batch (CORRUPT_MESSAGE) on a mismatch.
 *
 * kafkajs computes it a byte at a time (one table lookup and shift per byte). This is the
 * "slicing-by-8" form: eight tables, where table k gives the CRC contribution of a byte followed
 * by k zero bytes, so eight input bytes are folded into the register with eight independent
 * lookups per step instead of eight dependent ones.
 */

const POLY = 0x82f63b78;

/** TABLES[k * 256 + b]: the CRC register after byte b followed by k zero bytes (from a zero register). */
const TABLES = buildTables();

function buildTables(): Int32Array {
  const t = new Int32Array(8 * 256);
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[b] = c;
  }
  for (let k = 1; k < 8; k++) {
    for (let b = 0; b < 256; b++) {
      const prev = t[(k - 1) * 256 + b];
      t[k * 256 + b] = (prev >>> 8) ^ t[prev & 0xff];
    }
  }
  return t;
}

/** CRC-32C of buf[start, end), as an unsigned 32-bit number. */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length): number {
  const t = TABLES;
  let crc = ~0;
  let i = start;
  // Eight bytes per step: the first four are xored into the register (little-endian, as the
  // reflected CRC consumes them), the next four are looked up on their own.
  for (const stop = end - 7; i < stop; i += 8) {
    crc ^= buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24);
    crc =
      t[7 * 256 + (crc & 0xff)] ^
      t[6 * 256 + ((crc >>> 8) & 0xff)] ^
      t[5 * 256 + ((crc >>> 16) & 0xff)] ^
      t[4 * 256 + (crc >>> 24)] ^
      t[3 * 256 + buf[i + 4]] ^
      t[2 * 256 + buf[i + 5]] ^
      t[256 + buf[i + 6]] ^
      t[buf[i + 7]];
  }
  for (; i < end; i++) crc = t[(crc ^ buf[i]) & 0xff] ^ (crc >>> 8);
  return ~crc >>> 0;
}
