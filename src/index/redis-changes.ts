/**
 * How changes travel through Redis: their text form in the outbox, the Lua script that applies
 * a batch of them, and the stream entries that followers read back.
 *
 * Keys (P = the prefix, `peerdex:` by default):
 *   P:regs     hash   `addr;port;filename` -> `from;expiresAt;sha256`   live registrations
 *   P:changes  stream one entry per batch of changes: i (index id), c (how many), p (the changes,
 *                     one line each, see changeLine); its id is `N-0`, N the sequence number of
 *                     the batch's last change, so a follower sees at once when changes it had
 *                     not read were trimmed (a hole in the sequence), and trimming (MINID) keeps
 *                     about the last STREAM_KEEP changes however they were batched
 *   P:seq      the sequence number of the last change streamed
 * One script call applies a batch to the hash and appends the changes it applied to the
 * stream, so Redis's state and the stream agree and every index sees one order. Expiry is not
 * streamed: every index drops a registration at the same absolute time; it only cleans up.
 */
import type { ChangeKind, StoreChange, StoreEntry } from './store.js';

/** Changes the stream keeps (approximately): a follower further behind reloads. */
export const STREAM_KEEP = 1_000_000;

/**
 * KEYS: regs, changes, seq. ARGV: index id, changes to keep, then the batch: one line per
 * change, `kind;addr;port;filename;from;expiresAt;sha256`, joined by newlines (no field holds
 * `;` or a control character: the protocol forbids them in names, addresses and digests have
 * none).
 */
export const CHANGES_SCRIPT = `
local id, keep = ARGV[1], tonumber(ARGV[2])
local regs, log, seq = KEYS[1], KEYS[2], KEYS[3]
local applied = {}
for line in string.gmatch(ARGV[3], '[^\\n]+') do
  local kind, field, from, expires, sha = string.match(line, '^(%a+);([^;]*;[^;]*;[^;]*);([^;]*);([^;]*);([^;]*)$')
  if kind then
    local old = redis.call('HGET', regs, field)
    local cur = old and tonumber(string.match(old, '^[^;]*;([^;]*)'))
    if kind == 'added' or kind == 'refreshed' then
      if not (cur and cur > tonumber(expires)) then
        redis.call('HSET', regs, field, from .. ';' .. expires .. ';' .. sha)
        applied[#applied + 1] = line
      end
    elseif kind == 'expired' then
      if cur and cur <= tonumber(expires) then redis.call('HDEL', regs, field) end
    else
      if old and string.sub(old, 1, #from + 1) == from .. ';' then redis.call('HDEL', regs, field) end
      applied[#applied + 1] = line
    end
  end
end
if #applied == 0 then return 0 end
local n = redis.call('INCRBY', seq, #applied)
local args = {'XADD', log, 'MINID', '~', string.format('%d', math.max(0, n - keep)), string.format('%d-0', n), 'i', id, 'c', #applied, 'p', table.concat(applied, '\\n')}
local ok = redis.pcall(unpack(args))
if type(ok) == 'table' and ok.err then
  -- The stream is ahead of P:seq (that key was lost): go on from the stream's last id.
  local info = redis.call('XINFO', 'STREAM', log)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then n = tonumber(string.match(info[i + 1], '^(%d+)')) + #applied end
  end
  redis.call('SET', seq, n)
  args[5], args[6] = string.format('%d', math.max(0, n - keep)), string.format('%d-0', n)
  redis.call(unpack(args))
end
return #applied`;

export type ChangesRedis = {
  peerdexChanges(regs: string, log: string, seq: string, id: string, keep: number, batch: string): Promise<number>;
};

export type Keys = [regs: string, log: string, seq: string];
export const keysOf = (prefix: string): Keys => [`${prefix}regs`, `${prefix}changes`, `${prefix}seq`];

/** The stream id of the entry whose last change has sequence number `seq`. */
export const streamId = (seq: number): string => `${seq}-0`;

/**
 * A change as one outbox line: a flat string (join makes one, where `+` would make a tree of
 * parts), about 120 bytes where the change object with its holder takes several hundred.
 */
export const changeLine = (c: StoreChange): string => [c.kind, c.holder.addr, c.holder.port, c.holder.filename, c.from, c.expiresAt, c.holder.sha256 ?? ''].join(';');

/** A live registration written back (after an outage that overflowed, or a restarted Redis). */
export const writeBackLine = (e: StoreEntry): string => ['refreshed', e.holder.addr, e.holder.port, e.holder.filename, e.from, e.expiresAt, e.holder.sha256 ?? ''].join(';');

/** Removals are what an overflowing outbox keeps (a write-back carries every live one). */
export const isRemovalLine = (line: string): boolean => !line.startsWith('added;') && !line.startsWith('refreshed;');

/** The hash field (`addr;port;filename`) of an outbox line. */
export function fieldOfLine(line: string): string {
  const start = line.indexOf(';') + 1;
  let end = start;
  for (let i = 0; i < 3; i++) end = line.indexOf(';', end) + 1;
  return line.slice(start, end - 1);
}

export const fieldOf = (h: StoreEntry['holder']): string => `${h.addr};${h.port};${h.filename}`;

export function parseHolder(field: string, sha: string | undefined): StoreEntry['holder'] {
  const [addr = '', port = '0', filename = ''] = field.split(';');
  return { addr, port: Number(port), filename, sha256: sha || undefined };
}

/** A hash value (`from;expiresAt;sha256`) as an entry. */
export function parseRegistration(field: string, value: string): StoreEntry {
  const [from = '', expires = '0', sha] = value.split(';');
  return { holder: parseHolder(field, sha), from, expiresAt: Number(expires) };
}

/** A stream entry: the changes `first`..`last` of the sequence, made at index `index`. */
export interface StreamEntry {
  first: number;
  last: number;
  index: string;
  changes: () => StoreChange[];
}

export function parseStreamEntry(id: string, fields: string[]): StreamEntry {
  let index = '';
  let count = 0;
  let payload = '';
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === 'i') index = fields[i + 1]!;
    else if (fields[i] === 'c') count = Number(fields[i + 1]);
    else if (fields[i] === 'p') payload = fields[i + 1]!;
  }
  const last = Number.parseInt(id, 10);
  return { first: last - count + 1, last, index, changes: () => payload.split('\n').map(parseLine) };
}

/** One line of a batch (see changeLine) as a change made elsewhere. */
function parseLine(line: string): StoreChange {
  const [kind = '', addr = '', port = '0', filename = '', from = '', expires = '0', sha = ''] = line.split(';');
  return { kind: kind as ChangeKind, holder: { addr, port: Number(port), filename, sha256: sha || undefined }, from, expiresAt: Number(expires), origin: 'replicated' };
}
