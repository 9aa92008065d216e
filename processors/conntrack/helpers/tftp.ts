/**
 * The TFTP helper (the kernel's nf_conntrack_tftp.c): a read or write request (opcode 1 or 2,
 * RFC 1350) makes the connection expect the server's answer from a new port of its own: an
 * expectation on the reply tuple with the source port left open. Unlike FTP it reads every
 * packet, the first (NEW) one included, in either direction; DATA, ACK and ERROR are ignored.
 */

export const TFTP_OPCODE_READ = 1;
export const TFTP_OPCODE_WRITE = 2;

/** Whether a UDP payload is a TFTP read or write request (its first two bytes, big-endian). Never throws. */
export function isTftpRequest(payload: Uint8Array): boolean {
  if (payload.length < 2) return false; // skb_header_pointer fails: nothing to read
  const opcode = (payload[0] << 8) | payload[1];
  return opcode === TFTP_OPCODE_READ || opcode === TFTP_OPCODE_WRITE;
}
