/**
 * Pieces of the machines tests only: "machines" are distinct loopback addresses (127.0.0.2,
 * 127.0.0.3, …) on which the tests run plain upstreams (test/helpers/upstream.ts with `host`
 * and namedHandler), TCP listeners standing in for a machine's ssh port, and UDP listeners for
 * Wake-on-LAN.
 */
import { createSocket, type Socket } from 'node:dgram';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';

export { registryFor as machineRegistry, type TestRegistry as MachineRegistry } from '../helpers/lifecycle.ts';

/** A bare TCP listener (stands in for a machine's ssh port: only connects are checked). */
export async function tcpListener(host: string, port: number): Promise<{ close(): Promise<void> }> {
  const srv: NetServer = createNetServer((s) => s.destroy());
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, host, resolve);
  });
  return { close: () => new Promise<void>((resolve) => srv.close(() => resolve())) };
}

/** A UDP listener on 127.255.255.255 (loopback broadcast) recording every datagram. */
export async function udpListener(): Promise<{
  port: number;
  packets: Buffer[];
  next(): Promise<Buffer>;
  close(): void;
}> {
  const sock: Socket = createSocket({ type: 'udp4', reuseAddr: true });
  const packets: Buffer[] = [];
  const waiters: Array<(b: Buffer) => void> = [];
  sock.on('message', (msg) => {
    packets.push(msg);
    for (const w of waiters.splice(0)) w(msg);
  });
  await new Promise<void>((resolve) => sock.bind(0, '127.255.255.255', resolve));
  return {
    port: sock.address().port,
    packets,
    next: () => new Promise<Buffer>((resolve) => waiters.push(resolve)),
    close: () => sock.close(),
  };
}
