/**
 * Prometheus metrics whose values live elsewhere (the peer, the index's counters) and are
 * read only when scraped: a registry of its own (nothing global, so several servers in one
 * process do not mix) with the default process metrics, and builders of counters and gauges
 * from read functions. Nothing is counted twice: the owner's counters are the truth.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

type Read = () => number | Promise<number>;
/** One value per label value: `[labelValue, read]`. */
type ReadEach = readonly (readonly [string, () => number])[];

export class LiveMetrics {
  readonly register = new Registry();

  constructor() {
    collectDefaultMetrics({ register: this.register });
  }

  /** A counter set from `read` at each scrape. */
  counter(name: string, help: string, read: Read): void {
    new Counter({
      name,
      help,
      registers: [this.register],
      async collect() {
        const value = await read();
        this.reset();
        this.inc(value);
      },
    });
  }

  /** A counter with one label, each value read from its own function at each scrape. */
  labelledCounter(name: string, help: string, label: string, each: ReadEach): void {
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [this.register],
      collect() {
        this.reset();
        for (const [value, read] of each) this.inc({ [label]: value }, read());
      },
    });
  }

  gauge(name: string, help: string, read: Read): void {
    new Gauge({
      name,
      help,
      registers: [this.register],
      async collect() {
        this.set(await read());
      },
    });
  }

  get contentType(): string {
    return this.register.contentType;
  }

  metrics(): Promise<string> {
    return this.register.metrics();
  }
}
