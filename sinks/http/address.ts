/**
 * The listen address of --http: "PORT", ":PORT", "HOST:PORT" or "[IPv6]:PORT". A bare port
 * binds to 127.0.0.1: the API shows every flow in the table, so reaching it from elsewhere
 * must be asked for by naming the address.
 */
import { isIP } from 'node:net';

export interface ListenAddress {
  host: string;
  port: number;
}

export const DEFAULT_HOST = '127.0.0.1';

export function parseListenAddress(text: string): ListenAddress {
  const bad = (why: string): never => {
    throw new Error(`--http '${text}': ${why} (expected PORT, HOST:PORT or [IPv6]:PORT)`);
  };
  const s = text.trim();
  const colon = s.lastIndexOf(':');
  let host = s.slice(0, Math.max(colon, 0));
  const portText = s.slice(colon + 1);
  if (host.startsWith('[')) {
    if (!host.endsWith(']')) bad('unclosed [');
    host = host.slice(1, -1);
    if (isIP(host) !== 6) bad(`'${host}' is not an IPv6 address`);
  } else if (host.includes(':')) {
    bad('put an IPv6 address in brackets');
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) bad(`'${portText}' is not a port`);
  return { host: host || DEFAULT_HOST, port: Number(portText) };
}
