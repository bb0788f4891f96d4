/**
 * A Redis URL as logs, errors and pages may show it: without its password. Kept apart from
 * redis-link.ts, so showing a URL does not load the Redis client.
 */
export function redisLabel(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//');
  }
}
