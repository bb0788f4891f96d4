/**
 * Preloaded into benchmarked child processes (`node --import .../peak-reporter.js`): when the
 * process exits, writes its peak RSS (VmHWM) and the CPU time it used to the file named by
 * PEERDEX_BENCH_PEAK_FILE: figures for the whole run, taken just before the process is gone.
 */
import { readFileSync, writeFileSync } from 'node:fs';

const out = process.env.PEERDEX_BENCH_PEAK_FILE;
if (out) {
  process.on('exit', () => {
    try {
      const status = readFileSync('/proc/self/status', 'utf8');
      const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
      const cpu = process.cpuUsage();
      writeFileSync(out, JSON.stringify({ pid: process.pid, hwm: kb('VmHWM') * 1024, rss: kb('VmRSS') * 1024, cpu: (cpu.user + cpu.system) / 1e6 }));
    } catch {
      // no /proc (not Linux): the benchmark reports the peak as unknown
    }
  });
}
