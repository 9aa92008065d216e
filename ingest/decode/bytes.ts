/** Big-endian (network order) reads. Callers check bounds first; these do not. */

export function u16(d: Uint8Array, o: number): number {
  return (d[o] << 8) | d[o + 1];
}

export function u32(d: Uint8Array, o: number): number {
  return ((d[o] << 24) | (d[o + 1] << 16) | (d[o + 2] << 8) | d[o + 3]) >>> 0;
}
