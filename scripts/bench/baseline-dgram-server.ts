/**
 * The bare Node UDP server the index is measured against: answers every 100-byte datagram
 * with a fresh 100-byte reply (a copy of the request, so the load generator can match replies
 * to requests the same way for both servers). Nothing is decoded, looked up or encoded.
 *
 *   node baseline-dgram-server.js     prints "baseline dgram listening on udp port N"
 */
import dgram from 'node:dgram';

const socket = dgram.createSocket('udp4');
socket.on('error', () => {}); // ICMP from a vanished client must not stop the server
socket.on('message', (msg, rinfo) => {
  if (msg.length !== 100) return;
  const reply = Buffer.allocUnsafe(100);
  msg.copy(reply);
  socket.send(reply, rinfo.port, rinfo.address);
});
socket.bind(0, '127.0.0.1', () => {
  process.stdout.write(`baseline dgram listening on udp port ${socket.address().port}\n`);
});
const stop = () => socket.close(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
