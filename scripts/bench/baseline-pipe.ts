/**
 * The bare Node transfer the peer download is measured against: no protocol, no framing, no
 * digest. Runs in its own process, in one of two roles:
 *
 *   node baseline-pipe.js serve FILE      listens on 127.0.0.1 (any free port) and pipes
 *                                         fs.createReadStream(FILE) into every connection;
 *                                         prints "baseline pipe listening on tcp port N"
 *   node baseline-pipe.js fetch PORT OUT  connects and pipes the socket into
 *                                         fs.createWriteStream(OUT); exits 0 when the file
 *                                         is closed, printing the byte count
 *
 * Both use Node's default stream buffer sizes: it is the plain pipe a Node programmer writes.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import net from 'node:net';
import { pipeline } from 'node:stream/promises';

async function serve(file: string): Promise<void> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    pipeline(createReadStream(file), socket).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.stdout.write(`baseline pipe listening on tcp port ${(server.address() as net.AddressInfo).port}\n`);
  const stop = () => server.close(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

async function fetch(port: number, out: string): Promise<void> {
  const socket = net.connect({ host: '127.0.0.1', port });
  const sink = createWriteStream(out);
  await pipeline(socket, sink);
  process.stdout.write(`${JSON.stringify({ bytes: sink.bytesWritten })}\n`);
}

const [role, a, b] = process.argv.slice(2);
const main = role === 'serve' && a ? serve(a) : role === 'fetch' && a && b ? fetch(Number(a), b) : Promise.reject(new Error('usage: baseline-pipe serve FILE | fetch PORT OUT'));
main.catch((err: Error) => {
  process.stderr.write(`baseline-pipe: ${err.message}\n`);
  process.exit(1);
});
