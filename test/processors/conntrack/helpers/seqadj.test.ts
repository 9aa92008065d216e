/** The NAT helpers' sequence adjustment (nf_conntrack_seqadj.c) and what nf_nat_ftp writes over a command. */
import fc from 'fast-check';
import { SeqAdjust } from '../../../../processors/conntrack/helpers/seqadj';
import { natFtpText } from '../../../../processors/conntrack/helpers/natFtp';
import { parseFtpSegment } from '../../../../processors/conntrack/helpers/ftp';

const u32 = fc.integer({ min: 0, max: 0xffffffff });

describe('SeqAdjust (nf_ct_seqadj_set / nf_ct_seq_offset)', () => {
  test('numbers up to the resized segment keep the old offset, later ones take the new', () => {
    const a = new SeqAdjust();
    a.set(1000, 2);
    expect([a.offset(999), a.offset(1000), a.offset(1001)]).toEqual([0, 0, 2]);
    a.set(2000, -3);
    expect([a.offset(1500), a.offset(2000), a.offset(2001)]).toEqual([2, 2, -1]);
  });

  test('a retransmitted resized segment (same or earlier start) changes nothing; a resize by 0 neither', () => {
    const a = new SeqAdjust();
    a.set(1000, 2);
    a.set(1000, 2);
    a.set(900, 2);
    a.set(5000, 0);
    expect([a.correctionPos, a.offsetBefore, a.offsetAfter]).toEqual([1000, 0, 2]);
  });

  test('offsets add up over any sequence of later resizes, across the 2^32 wrap', () => {
    fc.assert(
      fc.property(u32, fc.array(fc.tuple(fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: -20, max: 20 })), { maxLength: 12 }), (start, steps) => {
        const a = new SeqAdjust();
        let seq = start, total = 0;
        for (const [gap, off] of steps) {
          seq = (seq + gap) >>> 0;
          const before = total;
          a.set(seq, off);
          if (off !== 0) total += off;
          // the correction point itself keeps the offset before it, the next byte has the sum
          expect(a.offset(seq)).toBe(off !== 0 ? before : total);
          expect(a.offset((seq + 1) >>> 0)).toBe(total);
        }
      }),
    );
  });
});

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const octet = fc.integer({ min: 0, max: 255 });
const port = fc.integer({ min: 1, max: 65535 });
const ipv4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));

/** The segment with the matched span replaced, as nf_nat_mangle_tcp_packet leaves it. */
function mangle(line: string, dir: 0 | 1, address: string, newPort: number): { text: string; resized: number } {
  const r = parseFtpSegment(bytes(line), dir, 4);
  if (r.kind !== 'match') throw new Error(`no match in ${line}`);
  const replacement = natFtpText(r.command, 4, address, newPort);
  return { text: line.slice(0, r.span.start) + replacement + line.slice(r.span.end), resized: replacement.length - (r.span.end - r.span.start) };
}

describe("nf_nat_ftp's rewrite", () => {
  test('the known cases: PORT and 227 grow with the address, EPRT takes |, 229 keeps its text', () => {
    expect(mangle('PORT 198,18,0,1,195,80\r\n', 0, '198.18.200.1', 50000)).toEqual({ text: 'PORT 198,18,200,1,195,80\r\n', resized: 2 });
    expect(mangle('227 Entering Passive Mode (198,18,0,2,195,90).\r\n', 1, '198.18.100.1', 50010)).toEqual({ text: '227 Entering Passive Mode (198,18,100,1,195,90).\r\n', resized: 2 });
    expect(mangle('EPRT !1!198.18.0.1!50003!\r\n', 0, '198.18.200.1', 50003)).toEqual({ text: 'EPRT |1|198.18.200.1|50003|\r\n', resized: 2 });
    expect(mangle('229 Entering Extended Passive Mode (|||50020|)\r\n', 1, '198.18.9.9', 50020)).toEqual({ text: '229 Entering Extended Passive Mode (|||50020|)\r\n', resized: 0 });
    expect(mangle('PORT 198,18,0,111,196,24\r\n', 0, '198.18.2.1', 50200).resized).toBe(-2);
  });

  test('IPv6: EPRT names the address in full (%pI6), PORT the first four bytes', () => {
    expect(natFtpText('EPRT', 6, '2001:db8::1', 50004)).toBe('|2|2001:0db8:0000:0000:0000:0000:0000:0001|50004|');
    expect(natFtpText('PORT', 6, '2001:db8::1', 50004)).toBe('32,1,13,184,195,84');
  });

  test('the rewritten command reads back as the new address and port, and the resize is the length change', () => {
    fc.assert(
      fc.property(ipv4, port, ipv4, port, fc.constantFrom('PORT', 'EPRT', '227', '229'), (oldAddr, oldPort, newAddr, newPort, kind) => {
        const [a, b, c, d] = oldAddr.split('.');
        const line = {
          PORT: `PORT ${a},${b},${c},${d},${oldPort >> 8},${oldPort & 255}\r\n`,
          EPRT: `EPRT |1|${oldAddr}|${oldPort}|\r\n`,
          '227': `227 Entering Passive Mode (${a},${b},${c},${d},${oldPort >> 8},${oldPort & 255}).\r\n`,
          '229': `229 Entering Extended Passive Mode (|||${oldPort}|)\r\n`,
        }[kind];
        const dir = kind === 'PORT' || kind === 'EPRT' ? 0 : 1;
        const { text, resized } = mangle(line, dir, newAddr, newPort);
        expect(text.length - line.length).toBe(resized);
        const again = parseFtpSegment(bytes(text), dir, 4);
        expect(again).toMatchObject({ kind: 'match', port: newPort });
        if (kind !== '229') {
          const value = newAddr.split('.').reduce((v, o) => ((v << 8) | Number(o)) >>> 0, 0);
          expect(again).toMatchObject({ address: { family: 4, value } });
        }
      }),
    );
  });
});
