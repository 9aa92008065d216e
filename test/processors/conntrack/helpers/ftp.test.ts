/** The FTP helper's reading of control-connection segments, as nf_conntrack_ftp.c reads them. */
import fc from 'fast-check';
import { FtpState, ftpSegment, parseFtpSegment } from '../../../../processors/conntrack/helpers/ftp';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('parseFtpSegment', () => {
  test('PORT gives the address and port, case-insensitively', () => {
    expect(parseFtpSegment(bytes('PORT 198,18,0,1,195,81\r\n'), 0, 4)).toEqual({ kind: 'match', command: 'PORT', address: { family: 4, value: 0xc6120001 }, port: 195 * 256 + 81, span: { start: 5, end: 22 } });
    expect(parseFtpSegment(bytes('port 10,0,0,9,0,21\r\n'), 0, 4)).toMatchObject({ kind: 'match', command: 'PORT', port: 21 });
  });

  test('227 is read from the first digit, with or without parentheses (RFC 1123)', () => {
    for (const line of ['227 Entering Passive Mode (198,18,0,2,195,80).\r\n', '227 =198,18,0,2,195,80\r\n', '227 198,18,0,2,195,80 ']) {
      expect(parseFtpSegment(bytes(line), 1, 4)).toMatchObject({ kind: 'match', command: 'PASV', address: { family: 4, value: 0xc6120002 }, port: 50000 });
    }
    // The last number must be followed by something: running out of data is a partial match.
    expect(parseFtpSegment(bytes('227 198,18,0,2,195,80'), 1, 4).kind).toBe('partial');
  });

  test('EPRT takes IPv4 on IPv4 connections and IPv6 on IPv6 ones, with any printable delimiter', () => {
    expect(parseFtpSegment(bytes('EPRT |1|198.18.0.1|50003|\r\n'), 0, 4)).toMatchObject({ kind: 'match', command: 'EPRT', port: 50003, address: { family: 4, value: 0xc6120001 } });
    expect(parseFtpSegment(bytes('EPRT !2!2001:db8:1::1!50004!\r\n'), 0, 6)).toMatchObject({ kind: 'match', command: 'EPRT', port: 50004, address: { family: 6, groups: [0x2001, 0xdb8, 1, 0, 0, 0, 0, 1] } });
    // The protocol digit must be the connection's family: otherwise a partial match (dropped).
    expect(parseFtpSegment(bytes('EPRT |2|2001:db8::1|50004|\r\n'), 0, 4).kind).toBe('partial');
    expect(parseFtpSegment(bytes('EPRT |1|198.18.0.1|50003|\r\n'), 0, 6).kind).toBe('partial');
  });

  test('229 gives only a port', () => {
    expect(parseFtpSegment(bytes('229 Entering Extended Passive Mode (|||50002|)\r\n'), 1, 6)).toMatchObject({ kind: 'match', command: 'EPSV', address: undefined, port: 50002 });
    expect(parseFtpSegment(bytes('229 (|||0|)\r\n'), 1, 4).kind).toBe('partial'); // port 0 is refused
  });

  test('commands are looked for only in their own direction', () => {
    expect(parseFtpSegment(bytes('PORT 198,18,0,1,195,81\r\n'), 1, 4).kind).toBe('none');
    expect(parseFtpSegment(bytes('227 (198,18,0,2,195,80)\r\n'), 0, 4).kind).toBe('none');
    expect(parseFtpSegment(bytes('USER anonymous\r\n'), 0, 4).kind).toBe('none');
  });

  test('what could still become a command is a partial match', () => {
    expect(parseFtpSegment(bytes('PO'), 0, 4)).toEqual({ kind: 'partial', pattern: 'PORT' });
    expect(parseFtpSegment(bytes('PORT'), 0, 4).kind).toBe('partial');
    expect(parseFtpSegment(bytes('PORT 198,18,0,1,195'), 0, 4).kind).toBe('partial');
    expect(parseFtpSegment(bytes('PORT 198,18,0,1,195,81\n'), 0, 4).kind).toBe('partial'); // PORT must end in \r
  });

  test('the numbers wrap like the kernel\'s u32 arithmetic instead of being refused', () => {
    const r = parseFtpSegment(bytes('PORT 1,2,3,260,1,300\r\n'), 0, 4);
    expect(r).toMatchObject({ kind: 'match', port: ((1 << 8) | 300) & 0xffff, address: { family: 4, value: ((1 << 24) | (2 << 16) | (3 << 8) | 260) >>> 0 } });
  });

  test('never throws, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.constantFrom<0 | 1>(0, 1), fc.constantFrom<4 | 6>(4, 6), (data, dir, family) => {
        const r = parseFtpSegment(data, dir, family);
        expect(['none', 'partial', 'match']).toContain(r.kind);
        if (r.kind === 'match') expect(r.port >= 0 && r.port <= 65535 && Number.isInteger(r.port)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  test('never throws on command-like text either', () => {
    const commandish = fc
      .tuple(fc.constantFrom('PORT ', 'EPRT ', '227 ', '229 (', 'port '), fc.stringMatching(/^[0-9,|.:()a-f ]{0,40}$/), fc.constantFrom('', '\r\n', '\n', ')'))
      .map(([a, b, c]) => bytes(a + b + c));
    fc.assert(
      fc.property(commandish, fc.constantFrom<0 | 1>(0, 1), fc.constantFrom<4 | 6>(4, 6), (data, dir, family) => {
        expect(() => parseFtpSegment(data, dir, family)).not.toThrow();
      }),
      { numRuns: 2000 },
    );
  });
});

describe('ftpSegment: only segments that start a line are read', () => {
  test('the first segment of a direction is never read; later lines are', () => {
    const st = new FtpState();
    const port = bytes('PORT 198,18,0,1,195,82\r\n');
    expect(ftpSegment(st, 0, 4, 1000, port)).toEqual({ kind: 'accept' });
    expect(ftpSegment(st, 0, 4, 1000 + port.length, port)).toMatchObject({ kind: 'expect', command: 'PORT', port: 50002 });
  });

  test('each direction keeps its own newlines', () => {
    const st = new FtpState();
    ftpSegment(st, 1, 4, 5000, bytes('220 ready\r\n'));
    // The server's newline does not make the client's first segment a line start.
    expect(ftpSegment(st, 0, 4, 1000, bytes('PORT 198,18,0,1,195,82\r\n'))).toEqual({ kind: 'accept' });
    expect(ftpSegment(st, 1, 4, 5011, bytes('227 (198,18,0,2,195,80)\r\n'))).toMatchObject({ kind: 'expect', command: 'PASV', port: 50000 });
  });

  test('a command split over two segments is a partial match: dropped, and no newline noted', () => {
    const st = new FtpState();
    ftpSegment(st, 0, 4, 1000, bytes('USER a\r\n'));
    const head = bytes('PORT 198,18,');
    expect(ftpSegment(st, 0, 4, 1008, head)).toEqual({ kind: 'drop', why: "partial matching of 'PORT'" });
    // The tail starts after no newline, so it is not read either.
    expect(ftpSegment(st, 0, 4, 1008 + head.length, bytes('0,1,195,81\r\n'))).toEqual({ kind: 'accept' });
    // The sender retransmits the whole line (the split one was dropped): now it is read.
    expect(ftpSegment(st, 0, 4, 1008, bytes('PORT 198,18,0,1,195,81\r\n'))).toMatchObject({ kind: 'expect', port: 50001 });
  });

  test('property: a PORT line cut anywhere before its \\r is a partial match, from the \\r on an expectation', () => {
    const portLine = fc
      .tuple(fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }), fc.integer({ min: 1, max: 65535 }))
      .map(([octets, port]) => ({ text: `PORT ${octets.join(',')},${port >> 8},${port & 255}\r\n`, port }));
    fc.assert(
      fc.property(portLine, fc.nat(), fc.nat(), ({ text, port }, cutSeed, seqSeed) => {
        const line = bytes(text);
        const cut = 1 + (cutSeed % (line.length - 1));
        const seq = seqSeed >>> 0;
        const st = new FtpState();
        st.noteNewline(0, seq);
        const v = ftpSegment(st, 0, 4, seq, line.subarray(0, cut));
        if (cut <= text.indexOf('\r')) {
          expect(v.kind).toBe('drop');
          // Nothing after it starts a line, so the rest is never read either.
          expect(ftpSegment(st, 0, 4, (seq + cut) >>> 0, line.subarray(cut))).toEqual({ kind: 'accept' });
        } else {
          expect(v).toMatchObject({ kind: 'expect', command: 'PORT', port });
        }
      }),
      { numRuns: 1000 },
    );
  });

  test('a segment that does not end in a newline leaves the next one unread', () => {
    const st = new FtpState();
    ftpSegment(st, 0, 4, 1, bytes('NOOP\r\n'));
    ftpSegment(st, 0, 4, 7, bytes('SITE something'));
    expect(ftpSegment(st, 0, 4, 21, bytes('PORT 198,18,0,1,195,81\r\n'))).toEqual({ kind: 'accept' });
  });

  test('two line starts are remembered per direction; a later one replaces the older', () => {
    const st = new FtpState();
    st.noteNewline(0, 100);
    st.noteNewline(0, 200);
    st.noteNewline(0, 300);
    expect(st.afterNewline[0]).toEqual([300, 200]);
    st.noteNewline(0, 50); // older than both: ignored
    expect(st.afterNewline[0]).toEqual([300, 200]);
    // Sequence numbers wrap: 5 comes after 0xfffffff0.
    const w = new FtpState();
    w.noteNewline(1, 0xfffffff0);
    w.noteNewline(1, 0xfffffff8);
    w.noteNewline(1, 5);
    expect(w.afterNewline[1]).toEqual([5, 0xfffffff8]);
  });
});
