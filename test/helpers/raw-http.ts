// Requests written byte for byte over a socket: HTTP clients (supertest, fetch) may normalise a request target, and a
// regression about how a router reads the target must send it exactly.
import net from 'node:net';

/** Sends `GET target` as written and resolves with the whole response, as latin1 text. */
export function get(port: number, target: string, headers: Record<string, string> = {}): Promise<string> {
  const lines = Object.entries({ Host: 'localhost', Connection: 'close', ...headers }).map(([k, v]) => `${k}: ${v}\r\n`);
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let out = '';
    socket.setTimeout(3000, () => socket.destroy(new Error('raw request timed out')));
    socket.on('data', (d: Buffer) => (out += d.toString('latin1')));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
    socket.write(`GET ${target} HTTP/1.1\r\n${lines.join('')}\r\n`);
  });
}
