/**
 * Fault injection on loopback, for tests and the reliability report.
 *
 * UdpFaultProxy sits between clients and a UDP server and, each way on its own, drops,
 * duplicates, reorders (holds a datagram back until the next one has gone) and delays a
 * chosen share of datagrams, from a seeded generator so a run can be repeated.
 * TcpCutProxy forwards TCP connections and cuts each one after a chosen number of bytes
 * from the server, the way a holder that dies mid-transfer does.
 */
import dgram from 'node:dgram';
import net from 'node:net';

export interface UdpFaults {
  /** Share of datagrams dropped, 0..1. */
  drop?: number;
  /** Share of datagrams sent twice. */
  duplicate?: number;
  /** Share of datagrams held back and sent after the next one. */
  reorder?: number;
  /** Share of datagrams delayed by `delayMs`. */
  delay?: number;
  delayMs?: number;
}

export interface UdpFaultProxyOptions {
  target: { host: string; port: number };
  toServer?: UdpFaults;
  toClient?: UdpFaults;
  seed?: number;
}

export interface FaultStats {
  forwarded: number;
  dropped: number;
  duplicated: number;
  reordered: number;
  delayed: number;
}

/** Small, fast, seedable PRNG (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One direction's fault logic: decides what happens to each datagram, then sends it. */
class FaultyLink {
  readonly #faults: UdpFaults;
  readonly #random: () => number;
  readonly #stats: FaultStats;
  readonly #timers = new Set<NodeJS.Timeout>();
  #heldBack: (() => void) | undefined;

  constructor(faults: UdpFaults, random: () => number, stats: FaultStats) {
    this.#faults = faults;
    this.#random = random;
    this.#stats = stats;
  }

  pass(send: () => void): void {
    const f = this.#faults;
    if (this.#random() < (f.drop ?? 0)) {
      this.#stats.dropped++;
      return;
    }
    const deliver = () => {
      send();
      this.#stats.forwarded++;
      if (this.#random() < (f.duplicate ?? 0)) {
        send();
        this.#stats.duplicated++;
      }
    };
    if (this.#random() < (f.delay ?? 0)) {
      this.#stats.delayed++;
      const t = setTimeout(() => {
        this.#timers.delete(t);
        deliver();
      }, f.delayMs ?? 50);
      this.#timers.add(t);
      return;
    }
    if (!this.#heldBack && this.#random() < (f.reorder ?? 0)) {
      this.#stats.reordered++;
      this.#heldBack = deliver;
      // Released after the next datagram, or after a moment if none follows.
      const t = setTimeout(() => this.#release(), 30);
      this.#timers.add(t);
      return;
    }
    deliver();
    this.#release();
  }

  #release(): void {
    const held = this.#heldBack;
    this.#heldBack = undefined;
    held?.();
  }

  close(): void {
    for (const t of this.#timers) clearTimeout(t);
  }
}

export class UdpFaultProxy {
  readonly stats: FaultStats = { forwarded: 0, dropped: 0, duplicated: 0, reordered: 0, delayed: 0 };
  readonly #front: dgram.Socket;
  readonly #upstreams = new Map<string, dgram.Socket>();
  readonly #toServer: FaultyLink;
  readonly #toClient: FaultyLink;
  readonly #target: { host: string; port: number };

  private constructor(front: dgram.Socket, options: UdpFaultProxyOptions) {
    this.#front = front;
    this.#target = options.target;
    const random = seededRandom(options.seed ?? 1);
    this.#toServer = new FaultyLink(options.toServer ?? {}, random, this.stats);
    this.#toClient = new FaultyLink(options.toClient ?? {}, random, this.stats);
    front.on('message', (msg, rinfo) => this.#fromClient(msg, rinfo));
  }

  static async start(options: UdpFaultProxyOptions): Promise<UdpFaultProxy> {
    const front = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => front.bind(0, '127.0.0.1', resolve));
    return new UdpFaultProxy(front, options);
  }

  get port(): number {
    return this.#front.address().port;
  }

  /** One upstream socket per client, so the server's replies find their way back. */
  #fromClient(msg: Buffer, client: dgram.RemoteInfo): void {
    const key = `${client.address}:${client.port}`;
    let up = this.#upstreams.get(key);
    if (!up) {
      const socket = dgram.createSocket('udp4');
      socket.on('message', (reply) => this.#toClient.pass(() => this.#front.send(reply, client.port, client.address)));
      socket.on('error', () => {});
      socket.bind(0, '127.0.0.1');
      this.#upstreams.set(key, socket);
      up = socket;
    }
    const upstream = up;
    this.#toServer.pass(() => upstream.send(msg, this.#target.port, this.#target.host));
  }

  async close(): Promise<void> {
    this.#toServer.close();
    this.#toClient.close();
    for (const s of this.#upstreams.values()) s.close();
    await new Promise<void>((resolve) => this.#front.close(() => resolve()));
  }
}

export class TcpCutProxy {
  /** Connections cut so far. */
  cuts = 0;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();

  private constructor(server: net.Server) {
    this.#server = server;
  }

  /** Forwards to `target`; each connection is cut after `cutAfterBytes` from the server. */
  static async start(target: { host: string; port: number }, cutAfterBytes: number): Promise<TcpCutProxy> {
    const server = net.createServer();
    const proxy = new TcpCutProxy(server);
    server.on('connection', (client) => proxy.#forward(client, target, cutAfterBytes));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  #forward(client: net.Socket, target: { host: string; port: number }, cutAfter: number): void {
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      this.#sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        this.#sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (d) => upstream.write(d));
    let sent = 0;
    upstream.on('data', (d: Buffer) => {
      const room = cutAfter - sent;
      if (d.length < room) {
        sent += d.length;
        client.write(d);
        return;
      }
      sent = cutAfter;
      this.cuts++;
      // Deliver exactly up to the cut, then reset both sides like a crashed holder.
      client.end(d.subarray(0, room), () => client.destroy());
      upstream.destroy();
    });
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
