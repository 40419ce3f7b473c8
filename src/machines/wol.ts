/**
 * Wake-on-LAN: the magic packet (6 × 0xFF, then the target MAC 16 times: 102 bytes) sent as
 * one UDP datagram. The address is configurable because the right one depends on the network:
 * the LAN's directed broadcast (`192.168.1.255`) in a home setup; `127.255.255.255` or a
 * loopback unicast address in tests. Never `255.255.255.255` in tests: on Linux it leaves
 * through the default route's interface, not loopback.
 */
import { createSocket } from 'node:dgram';

/** WOL's usual port (7 is the other common one). */
export const WOL_DEFAULT_PORT = 9;
export const WOL_DEFAULT_ADDRESS = '255.255.255.255';
export const MAGIC_PACKET_BYTES = 102;

/** `aa:bb:cc:dd:ee:ff`, `aa-bb-…` or `aabbccddeeff` → 6 bytes; throws on anything else. */
export function parseMac(mac: string): Buffer {
  const m = mac.trim();
  if (!/^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/i.test(m) && !/^[0-9a-f]{12}$/i.test(m))
    throw new Error(`not a MAC address: ${JSON.stringify(mac)} (expected e.g. aa:bb:cc:dd:ee:ff)`);
  return Buffer.from(m.replace(/[:-]/g, ''), 'hex');
}

export function magicPacket(mac: string): Buffer {
  const m = parseMac(mac);
  const packet = Buffer.alloc(MAGIC_PACKET_BYTES, 0xff);
  for (let i = 0; i < 16; i++) m.copy(packet, 6 + i * 6);
  return packet;
}

/** True when `buf` is a magic packet for `mac`. */
export function isMagicPacketFor(buf: Buffer, mac: string): boolean {
  return buf.length === MAGIC_PACKET_BYTES && buf.equals(magicPacket(mac));
}

/**
 * Send one magic packet for `mac` to `address:port`. Broadcast is enabled on the socket so a
 * (directed) broadcast address works; a unicast address is unaffected by it. Resolves once
 * the datagram was handed to the kernel.
 */
export async function sendWol(mac: string, address = WOL_DEFAULT_ADDRESS, port = WOL_DEFAULT_PORT): Promise<void> {
  const packet = magicPacket(mac);
  const family = address.includes(':') ? 'udp6' : 'udp4';
  const sock = createSocket(family);
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(0, () => {
        try {
          if (family === 'udp4') sock.setBroadcast(true);
        } catch (err) {
          reject(err);
          return;
        }
        sock.send(packet, port, address, (err) => (err ? reject(err) : resolve()));
      });
    });
  } finally {
    sock.close();
  }
}
