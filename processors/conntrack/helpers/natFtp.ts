/**
 * What the kernel's nf_nat_ftp writes over the address and port an FTP command announced, when
 * the control connection is NAT'd (nf_nat_ftp_fmt_cmd): PORT and 227 as a,b,c,d,p1,p2; EPRT as
 * |1|a.b.c.d|port| (or |2|ipv6|port| with the address in full, %pI6), always with `|` whatever
 * delimiter the command used; 229 as |||port|. The difference in length from the text it
 * replaces is what the sequence numbers of that direction shift by (nf_ct_seqadj_set).
 */
import type { FtpCommand } from './ftp';
import { ipv6Groups } from '../rules/match';

export function natFtpText(command: FtpCommand, family: 4 | 6, address: string, port: number): string {
  switch (command) {
    case 'PORT':
    case 'PASV':
      return `${firstFourBytes(family, address).join(',')},${port >> 8},${port & 0xff}`;
    case 'EPRT':
      return family === 4 ? `|1|${address}|${port}|` : `|2|${fullIpv6(address)}|${port}|`;
    case 'EPSV':
      return `|||${port}|`;
  }
}

/** The address's first four bytes: all of an IPv4 address, the start of an IPv6 one (the kernel prints addr->ip either way). */
function firstFourBytes(family: 4 | 6, address: string): number[] {
  if (family === 4) return address.split('.').map(Number);
  const [a, b] = ipv6Groups(address);
  return [a >> 8, a & 0xff, b >> 8, b & 0xff];
}

/** %pI6: eight groups of four hex digits, nothing compressed. */
function fullIpv6(address: string): string {
  return ipv6Groups(address).map((g) => g.toString(16).padStart(4, '0')).join(':');
}
