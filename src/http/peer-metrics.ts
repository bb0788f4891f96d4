/**
 * The peer's Prometheus metrics: the default process metrics and the peer's live counters,
 * read from the Peer only when scraped (live-metrics.ts). The metric names are a public
 * interface.
 */
import type { Peer } from '../peer/peer.js';
import { LiveMetrics } from './live-metrics.js';

export function peerMetrics(peer: Peer): LiveMetrics {
  const m = new LiveMetrics();
  m.counter('peerdex_peer_bytes_sent_total', "File bytes sent to downloaders by this peer's content server", () => peer.bytesSent);
  m.counter('peerdex_peer_bytes_received_total', "File bytes received from holders by this peer's downloads", () => peer.bytesReceived);
  m.gauge('peerdex_peer_uploads_active', "Transfers this peer's content server is making now", () => peer.uploads.length);
  m.gauge('peerdex_peer_downloads_active', 'Downloads queued or running in this peer', () => peer.activeDownloads);
  m.gauge('peerdex_peer_shared_files', 'Files this peer shares and has registered with the index', () => peer.sharedFiles.length);
  return m;
}
