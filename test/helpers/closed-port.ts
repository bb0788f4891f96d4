/** A UDP port on 127.0.0.1 that nothing listens on (bound, then closed): it answers "port unreachable". */
import dgram from 'node:dgram';

export async function closedUdpPort(): Promise<number> {
  const gone = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => gone.bind(0, '127.0.0.1', resolve));
  const port = gone.address().port;
  await new Promise<void>((resolve) => gone.close(() => resolve()));
  return port;
}
