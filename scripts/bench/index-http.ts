/**
 * What `index-server --http` costs the S path: two index servers filled alike, one with
 * `--http` whose `/metrics` is scraped every second while it is measured, one without;
 * alternated throughput runs of S, same load generator. Target: with/without ≥ 0.95.
 */
import { generate, indexArgs, throughputRun, type IndexBenchOptions } from './index-throughput.js';
import { median, peerdexBins, startNodeService, type BenchService } from './measure.js';

export interface IndexHttpBenchResult {
  names: number;
  /** Replies per second of each run, with --http (and scrapes) and without. */
  withHttp: number[];
  without: number[];
  medianWithHttp: number;
  medianWithout: number;
  ratio: number;
  /** Scrapes answered during the measured runs, and the slowest of them (ms). */
  scrapes: number;
  slowestScrapeMs: number;
  generator: 'c' | 'node';
}

type Options = Pick<IndexBenchOptions, 'runs' | 'names' | 'duration' | 'window' | 'sockets' | 'fast' | 'log'>;

/** Scrapes `url` every second until stopped; counts the answers and keeps the slowest. */
function scrapeEverySecond(url: string, tally: { scrapes: number; slowestMs: number }): () => void {
  const timer = setInterval(() => {
    const t0 = performance.now();
    void fetch(url)
      .then((res) => res.text())
      .then((text) => {
        if (!text.includes('peerdex_index_requests_total')) throw new Error('no index metrics in /metrics');
        tally.scrapes++;
        tally.slowestMs = Math.max(tally.slowestMs, performance.now() - t0);
      });
  }, 1000);
  return () => clearInterval(timer);
}

export async function benchIndexHttp(o: Options): Promise<IndexHttpBenchResult> {
  const start = (extra: string[]) => startNodeService(peerdexBins().index, indexArgs(o.names, extra), /listening on udp [^ ]*:(\d+)/);
  const plain = await start([]);
  const web = await start(['--http', '127.0.0.1:0']);
  try {
    const url = await metricsUrl(web);
    for (const server of [plain, web]) {
      const filled = await generate(server, ['--mode', 'fill', '--names', String(o.names), '--window', '256', '--sockets', '4'], 120_000);
      if (filled.result.registered !== o.names) throw new Error(`filling the index failed: ${JSON.stringify(filled.result)}`);
    }
    const runs = { withHttp: [] as number[], without: [] as number[] };
    const tally = { scrapes: 0, slowestMs: 0 };
    for (let run = 0; run < o.runs; run++) {
      const order = run % 2 === 0 ? (['withHttp', 'without'] as const) : (['without', 'withHttp'] as const);
      for (const side of order) {
        const stop = side === 'withHttp' ? scrapeEverySecond(url, tally) : () => {};
        try {
          const t = await throughputRun(side === 'withHttp' ? web : plain, o, (o.duration + 30) * 1000);
          runs[side].push(Number(t.result.perSecond));
        } finally {
          stop();
        }
        o.log(`  run ${run + 1} ${side === 'withHttp' ? '--http + scrapes' : 'without --http'}: ${Math.round(runs[side].at(-1)!).toLocaleString('en')} replies/s`);
      }
    }
    const medianWithHttp = median(runs.withHttp);
    const medianWithout = median(runs.without);
    return {
      names: o.names,
      ...runs,
      medianWithHttp,
      medianWithout,
      ratio: medianWithHttp / medianWithout,
      scrapes: tally.scrapes,
      slowestScrapeMs: tally.slowestMs,
      generator: o.fast ? 'c' : 'node',
    };
  } finally {
    await Promise.all([plain.stop(), web.stop()]);
  }
}

async function metricsUrl(server: BenchService): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const url = server.lines.map((l) => /on (http:\/\/\S+\/)/.exec(l)?.[1]).find((u) => u !== undefined);
    if (url) return `${url}metrics`;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`index-server --http did not print its URL: ${server.lines.join(' | ')}`);
}
