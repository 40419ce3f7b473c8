/**
 * The proxy entry points, mounted beside Fastify by server/app.ts: every `/services/…`
 * request and WebSocket upgrade comes here without passing through the control-plane router.
 * PLACEHOLDER: replaced by the real forwarding in proxy/forward.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { HestiaError, sendError } from '../errors.ts';
import type { GatewayContext } from '../server/context.ts';

export interface ProxyHandler {
  handleRequest(req: IncomingMessage, res: ServerResponse): void;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Close upstream pools (shutdown). */
  close(): Promise<void>;
}

export function createProxyHandler(_ctx: GatewayContext): ProxyHandler {
  return {
    handleRequest(_req, res) {
      sendError(res, new HestiaError('HESTIA_INTERNAL', 'proxy not implemented yet'));
    },
    handleUpgrade(_req, socket) {
      socket.destroy();
    },
    async close() {},
  };
}
