/**
 * What is being downloaded: the size and SHA-256 of the content. The index gives the digest
 * (when the holder registered one) but never the size, and protocol v1 has no size query, so a
 * few holders are asked for the whole file and the connection is closed as soon as the C
 * header is in. The answer most of them agree on is taken; a holder that announces other
 * content than the index, or a size over the limit, is reported so the download can drop it.
 */
import { ContentConnection } from '../content-client.js';
import { PeerdexError, isPeerdexError } from '../../protocol/errors.js';

export interface Reference {
  size: number;
  sha256: string;
}

export interface ProbeTarget {
  key: string;
  addr: string;
  port: number;
  /** The digest the index gave with this holder, if any. */
  sha256?: string | undefined;
}

export interface ProbeOutcome {
  reference?: Reference;
  /** Holders that announced something unacceptable (ban them). */
  liars: { key: string; reason: string }[];
  /** Holders announcing more than the size limit (dropped; if all do, the download is refused). */
  tooLarge: { key: string; size: number }[];
  /** Holders that could not be asked (rest them). */
  failed: { key: string; error: PeerdexError }[];
}

export interface ProbeOptions {
  filename: string;
  /** The digest the download must have (from the index or a kept partial file). */
  expectedSha256?: string | undefined;
  maxSize: number;
  describeMaxSize: string;
  timeoutMs: number;
}

const sameRef = (a: Reference, b: Reference) => a.size === b.size && a.sha256 === b.sha256;

export async function probe(targets: ProbeTarget[], options: ProbeOptions): Promise<ProbeOutcome> {
  const outcome: ProbeOutcome = { liars: [], tooLarge: [], failed: [] };
  let answers: { key: string; ref: Reference }[] = [];
  await Promise.all(
    targets.map(async (t) => {
      let conn: ContentConnection | undefined;
      try {
        conn = await ContentConnection.open(t.addr, t.port, { idleTimeoutMs: options.timeoutMs });
        const header = await conn.request(options.filename);
        const ref = { size: header.size, sha256: header.sha256 };
        const expected = options.expectedSha256 ?? t.sha256;
        if (expected !== undefined && ref.sha256 !== expected)
          outcome.liars.push({ key: t.key, reason: `offers content whose SHA-256 (${ref.sha256}) is not the index's (${expected})` });
        else if (ref.size > options.maxSize) outcome.tooLarge.push({ key: t.key, size: ref.size });
        else answers.push({ key: t.key, ref });
      } catch (err) {
        if (!isPeerdexError(err)) throw err;
        outcome.failed.push({ key: t.key, error: err });
      } finally {
        conn?.close();
      }
    }),
  );
  // Votes cannot settle a tie between different answers (one honest holder, one liar): each
  // side is asked for the last byte of the size it announced, which an honest holder answers
  // with a 1-byte header. One that answers otherwise contradicts itself.
  if (vote(answers)?.tied) {
    const checked = await Promise.all(
      answers.map(async (a) => ({
        a,
        problem: await lastByte(
          targets.find((t) => t.key === a.key)!,
          a.ref,
          options,
        ),
      })),
    );
    for (const { a, problem } of checked) {
      if (typeof problem === 'string') outcome.liars.push({ key: a.key, reason: problem });
      else if (problem) outcome.failed.push({ key: a.key, error: problem });
    }
    answers = checked.filter((c) => c.problem === undefined).map((c) => c.a);
  }
  // The answer given by most holders wins; a strict minority is treated as lying.
  const best = vote(answers);
  if (best) {
    outcome.reference = best.ref;
    for (const a of answers) {
      if (!sameRef(a.ref, best.ref) && best.votes > 1) {
        outcome.liars.push({
          key: a.key,
          reason: `announces ${a.ref.size} bytes with SHA-256 ${a.ref.sha256}; ${best.votes} other holders announce ${best.ref.size} bytes with ${best.ref.sha256}`,
        });
      }
    }
  }
  return outcome;
}

/** The answer most holders gave, and whether another answer had as many votes. */
function vote(answers: { ref: Reference }[]): { ref: Reference; votes: number; tied: boolean } | undefined {
  let best: { ref: Reference; votes: number; tied: boolean } | undefined;
  for (const { ref } of answers) {
    const votes = answers.filter((a) => sameRef(a.ref, ref)).length;
    if (!best || votes > best.votes) best = { ref, votes, tied: false };
    else if (votes === best.votes && !sameRef(ref, best.ref)) best.tied = true;
  }
  return best;
}

/**
 * Asks `t` for the last byte of the `ref.size` bytes it announced: a reason when its answer
 * contradicts the announcement, an error when it could not be asked, undefined when it agrees.
 */
async function lastByte(t: ProbeTarget, ref: Reference, options: ProbeOptions): Promise<string | PeerdexError | undefined> {
  const length = ref.size > 0 ? 1 : 0; // an empty file: the whole (empty) file
  let conn: ContentConnection | undefined;
  try {
    conn = await ContentConnection.open(t.addr, t.port, { idleTimeoutMs: options.timeoutMs });
    const header = await conn.request(options.filename, ref.size - length, length);
    if (header.size === length && header.sha256 === ref.sha256) return undefined;
    return `announces ${ref.size} bytes but answers a request for its last byte with ${header.size} bytes with SHA-256 ${header.sha256}`;
  } catch (err) {
    if (!isPeerdexError(err)) throw err;
    return err.remoteCode === 4 ? `announces ${ref.size} bytes but refuses its last byte (${err.message})` : err;
  } finally {
    conn?.close();
  }
}

/** The error for content too large for the limit: said before anything is written. */
export const tooLarge = (filename: string, size: number, limit: string): PeerdexError =>
  new PeerdexError('ERR_FILE', `cannot download "${filename}": it is ${size} bytes, more than ${limit}; nothing was written (--max-size sets the limit)`);
