/**
 * The peer's Prometheus metrics: its own prom-client Registry (nothing global, so several
 * peers in one process do not mix), the default process metrics, and the peer's live
 * counters, read from the Peer only when scraped. The metric names are a public interface.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Peer } from '../peer/peer.js';

export function peerMetrics(peer: Peer): Registry {
  const registers = [new Registry()];
  const register = registers[0]!;
  collectDefaultMetrics({ register });
  /** A counter whose value lives in the peer: set from it at each scrape. */
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });
  counter('peerdex_peer_bytes_sent_total', 'File bytes sent to downloaders by this peer\'s content server', () => peer.bytesSent);
  counter('peerdex_peer_bytes_received_total', 'File bytes received from holders by this peer\'s downloads', () => peer.bytesReceived);
  gauge('peerdex_peer_uploads_active', 'Transfers this peer\'s content server is making now', () => peer.uploads.length);
  gauge('peerdex_peer_downloads_active', 'Downloads queued or running in this peer', () => peer.activeDownloads);
  gauge('peerdex_peer_shared_files', 'Files this peer shares and has registered with the index', () => peer.sharedFiles.length);
  return register;
}
