/** `peer download NAME`: fetch, verify, keep, re-register; a progress bar on a terminal. */
import cliProgress from 'cli-progress';
import { download, type DownloadResult } from '../peer/downloader.js';
import { checkPort, formatBytes, indexClientFrom, printJson, type IndexArgs } from './common.js';
import { escapeForTerminal } from './output.js';

export interface DownloadArgs extends IndexArgs {
  name: string;
  dir: string;
  port: number;
  register: boolean;
  overwrite: boolean;
  json: boolean;
  progress: boolean | undefined;
}

export async function downloadCommand(args: DownloadArgs): Promise<void> {
  const index = indexClientFrom(args);
  const port = checkPort(args.port, 'port');
  const showBar = args.progress ?? (process.stdout.isTTY === true && !args.json);
  const bar = showBar
    ? new cliProgress.SingleBar(
        { format: '{name} |{bar}| {percentage}% {done} / {size} | ETA {eta_formatted} | from {holder}', hideCursor: true, stream: process.stdout, clearOnComplete: true },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const notes: string[] = [];
  let result: DownloadResult;
  try {
    result = await download({
      index,
      filename: args.name,
      dir: args.dir,
      registerPort: args.register ? port : undefined,
      overwrite: args.overwrite,
      onProgress: bar
        ? ({ received, total, holder }) => {
            const payload = { name: escapeForTerminal(args.name), done: formatBytes(received), size: formatBytes(total), holder };
            if (bar.getTotal() !== total) bar.start(total, received, payload);
            else bar.update(received, payload);
          }
        : undefined,
      onEvent: (e) => {
        if (e.type === 'holder-failed') notes.push(`holder ${e.holder} failed: ${e.reason}`);
        if (e.type === 'holder' && e.resumeFrom > 0) notes.push(`resuming at byte ${e.resumeFrom} from ${e.holder}`);
      },
    });
  } finally {
    bar?.stop();
  }
  if (args.json) {
    printJson({ ...result, notes });
    return;
  }
  for (const n of notes) process.stdout.write(`${escapeForTerminal(n)}\n`);
  const name = escapeForTerminal(result.filename);
  if (result.alreadyHad) process.stdout.write(`"${name}" is already in ${args.dir} with the same content\n`);
  else process.stdout.write(`downloaded "${name}" (${formatBytes(result.size)}, sha256 ${result.sha256} verified) from ${result.holders.at(-1)} to ${result.path}\n`);
  if (result.registered) process.stdout.write(`registered "${name}" with index ${index.label} at content port ${port}\n`);
}
