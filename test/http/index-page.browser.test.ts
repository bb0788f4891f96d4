/**
 * The index's status page in a real browser (Debian's chromium, driven by playwright-core; no
 * browser download): it lists a registered name with its holder, its counters and servers,
 * finds it with the search box, and a name like `<svg onload=alert(1)>` shows as text and
 * runs nothing. Without chromium the test fails on CI and is skipped elsewhere.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { IndexHttpServer } from '../../src/http/index-http.js';
import { IndexServer } from '../../src/index/udp-server.js';
import { UdpClient, pduText, rawPdu } from '../helpers/udp.js';
import { launchChromium, skipBrowser, watchedPage, XSS_NAME } from './browser.js';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

it.skipIf(skipBrowser)('the index page lists registered names with their holders, searches them, and shows hostile names as text', { timeout: 60_000 }, async () => {
  const server = await IndexServer.listen({ port: 0, host: '127.0.0.1' });
  closers.push(() => server.close());
  const web = await IndexHttpServer.listen({ server, port: 0, cluster: { redis: 'redis://10.1.2.3:6379', prefix: 'demo:' } });
  closers.push(() => web.close());
  const c = await UdpClient.open();
  closers.push(async () => c.close());
  for (const [port, name] of [
    [9100, 'hello.txt'],
    [9100, XSS_NAME],
    [9101, 'hello.txt'],
  ] as const) {
    const [reply] = await c.request(rawPdu('R', `${port};;${name}`), server.address().port);
    expect(pduText(reply).type).toBe('A');
  }

  const profile = await mkdtemp(join(tmpdir(), 'peerdex-chromium-'));
  closers.push(() => rm(profile, { recursive: true, force: true }));
  const context = await launchChromium(profile);
  closers.push(() => context.close());
  const { page, dialogs, errors } = await watchedPage(context);
  await page.goto(web.url);

  await expect.poll(() => page.locator('#content td.name').allTextContents()).toEqual([XSS_NAME, 'hello.txt']);
  const hello = page.locator('#content tr', { has: page.locator('td.name', { hasText: /^hello\.txt$/ }) });
  expect(await hello.locator('td.holders div').allTextContents()).toEqual(['127.0.0.1:9100', '127.0.0.1:9101']);
  expect(await page.locator('#servers td.name').allTextContents()).toEqual(['127.0.0.1:9100', '127.0.0.1:9101']);
  expect(await page.locator('#servers td.num').allTextContents()).toEqual(['2', '1']);
  await expect.poll(() => page.locator('.figure', { hasText: 'R requests' }).locator('.value').textContent()).toBe('3');
  expect(await page.locator('#cluster').textContent()).toBe('cluster: redis://10.1.2.3:6379 prefix demo:');

  // A new registration shows up by itself (the page refreshes).
  await c.request(rawPdu('R', '9102;;late.iso'), server.address().port);
  await expect.poll(() => page.locator('#content td.name').allTextContents(), { timeout: 10_000 }).toContain('late.iso');

  await page.fill('#search-input', '*.iso');
  await page.click('#search-button');
  await expect.poll(() => page.locator('#content td.name').allTextContents()).toEqual(['late.iso']);
  await page.fill('#search-input', 'svg');
  await page.click('#search-button');
  await expect.poll(() => page.locator('#content td.name').allTextContents()).toEqual([XSS_NAME]);

  expect(await page.locator('svg').count()).toBe(0);
  expect(dialogs).toEqual([]);
  expect(errors).toEqual([]);
  await page.screenshot({ path: '/tmp/index-page.png', fullPage: true });
});
