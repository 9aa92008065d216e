/** kafka/crc32c.ts against kafkajs's own CRC-32C (the one its record batches are checked with today). */
import fc from 'fast-check';
import { crc32c } from '../../kafka/crc32c';

// kafkajs's byte-at-a-time implementation, the reference.
const kafkajsCrc32c = require('kafkajs/src/protocol/recordBatch/crc32C') as (b: Buffer) => number;

describe('crc32c', () => {
  it('is the CRC-32C check value of "123456789" (RFC 3720, iSCSI)', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it("equals kafkajs's crc32C on random buffers of every length around the 16-byte steps", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), (bytes) => {
        const b = Buffer.from(bytes);
        expect(crc32c(b)).toBe(kafkajsCrc32c(b));
      }),
      { numRuns: 500 },
    );
  });

  it("equals kafkajs's crc32C of the same bytes cut out, for any start and end", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.nat(), fc.nat(), (bytes, a, b) => {
        const buf = Buffer.from(bytes);
        const start = bytes.length === 0 ? 0 : a % (bytes.length + 1);
        const end = start + (bytes.length - start === 0 ? 0 : b % (bytes.length - start + 1));
        expect(crc32c(buf, start, end)).toBe(kafkajsCrc32c(buf.subarray(start, end)));
      }),
      { numRuns: 500 },
    );
  });

  it('agrees on views at any byte offset of their memory (word reads need 4-byte alignment)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 120 }), fc.nat(7), fc.nat(40), (bytes, offset, cut) => {
        const memory = new Uint8Array(bytes.length + 8);
        memory.set(bytes, offset);
        const view = Buffer.from(memory.buffer, offset, bytes.length);
        const start = Math.min(cut, bytes.length);
        expect(crc32c(view)).toBe(kafkajsCrc32c(Buffer.from(bytes)));
        expect(crc32c(view, start)).toBe(kafkajsCrc32c(Buffer.from(bytes.subarray(start))));
      }),
      { numRuns: 500 },
    );
  });

  it('agrees on large buffers (a full produce batch)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 100_000, max: 600_000 }), fc.integer(), (size, seed) => {
        const b = Buffer.alloc(size);
        let x = seed | 1;
        for (let i = 0; i < size; i++) {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          b[i] = x;
        }
        expect(crc32c(b)).toBe(kafkajsCrc32c(b));
      }),
      { numRuns: 5 },
    );
  });
});
