/**
 * The network an address belongs to, for caps shared by neighbours: the /24 of an IPv4
 * address (`10.1.2.3` -> `10.1.2.0/24`) and the /64 of an IPv6 one (`2001:db8::1` ->
 * `2001:db8:0:0::/64`). A flood from many addresses of one network then counts as one.
 * Input is the index's canonical address text (normalizeAddress); anything else is its own
 * prefix.
 */
export function addressPrefix(addr: string): string {
  if (!addr.includes(':')) {
    const lastDot = addr.lastIndexOf('.');
    return lastDot === -1 ? addr : `${addr.slice(0, lastDot)}.0/24`;
  }
  const groups = ipv6Groups(addr);
  return groups === undefined ? addr : `${groups.slice(0, 4).join(':')}::/64`;
}

/** The 8 groups of an IPv6 address as lowercase hex without leading zeros, or undefined. */
function ipv6Groups(addr: string): string[] | undefined {
  const zone = addr.indexOf('%');
  const text = (zone === -1 ? addr : addr.slice(0, zone)).toLowerCase();
  const [head, tail, ...more] = text.split('::');
  if (more.length > 0 || head === undefined) return undefined;
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  // A dotted IPv4 tail (`64:ff9b::1.2.3.4`) is the last two groups.
  const last = right.length > 0 ? right : left;
  if (last.length > 0 && last[last.length - 1].includes('.')) {
    const octets = last.pop()!.split('.').map(Number);
    last.push(((octets[0] << 8) | octets[1]).toString(16), ((octets[2] << 8) | octets[3]).toString(16));
  }
  const missing = 8 - left.length - right.length;
  if (tail === undefined ? missing !== 0 : missing < 0) return undefined;
  const groups = [...left, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...right];
  return groups.map((g) => parseInt(g, 16).toString(16));
}
