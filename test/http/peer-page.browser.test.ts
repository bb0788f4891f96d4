/**
 * The peer's page in a real browser (Debian's chromium, driven by playwright-core; no browser
 * download): search the index, press Download, the file appears among the shared files and
 * the index then names this peer as a holder. A name like `<svg onload=alert(1)>` shows as
 * text and runs nothing. Without chromium the test fails on CI and is skipped elsewhere.
 */
import { afterEach, expect, it } from 'vitest';
import type { BrowserContext } from 'playwright-core';
import { binaryContent, Fixtures, MiB } from '../helpers/peer-fixtures.js';
import { launchChromium, skipBrowser, watchedPage, XSS_NAME } from './browser.js';
import { swarm } from './http-fixtures.js';

const fx = new Fixtures();
afterEach(() => fx.cleanup());

async function browser(): Promise<BrowserContext> {
  const context = await launchChromium(await fx.tempDir('peerdex-chromium-'));
  fx.track(() => context.close());
  return context;
}

it.skipIf(skipBrowser)('on the peer page: search, download, the file is shared and registered; hostile names stay text', { timeout: 60_000 }, async () => {
  const s = await swarm(fx);
  await s.peer({ 'movie.bin': binaryContent(2 * MiB + 1, 4), [XSS_NAME]: 'not a script', 'notes.txt': 'hello' });
  const peer = await s.peer({ 'mine.txt': 'already here' });
  const { base } = await s.http(peer);
  const context = await browser();
  const { page, dialogs, errors } = await watchedPage(context);
  await page.goto(`${base}/`);
  await expect.poll(() => page.locator('#shared td.name').allTextContents()).toEqual(['mine.txt']);

  await page.fill('#search-input', 'movie');
  await page.click('#search-button');
  const movie = page.locator('#results tr', { has: page.locator('td.name', { hasText: /^movie\.bin$/ }) });
  await movie.getByRole('button', { name: 'Download' }).click();
  await expect.poll(() => page.locator('#shared td.name').allTextContents(), { timeout: 15_000 }).toContain('movie.bin');
  await expect.poll(() => s.holdersOf('movie.bin')).toContain(peer.port);
  await expect.poll(() => page.locator('#downloads tr', { hasText: 'movie.bin' }).locator('td').nth(1).textContent()).toBe('done');

  // Everything in the index, hostile name included: it must show as text in every table.
  await page.fill('#search-input', '*');
  await page.click('#search-button');
  const hostile = page.locator('#results tr', { has: page.locator('td.name', { hasText: XSS_NAME }) });
  await expect.poll(() => hostile.locator('td.name').textContent()).toBe(XSS_NAME);
  await hostile.getByRole('button', { name: 'Download' }).click();
  await expect.poll(() => page.locator('#shared td.name').allTextContents(), { timeout: 15_000 }).toEqual([XSS_NAME, 'mine.txt', 'movie.bin']);
  await expect.poll(() => page.locator('#downloads td.name').allTextContents()).toContain(XSS_NAME);
  expect(await page.locator('svg').count()).toBe(0);
  expect(dialogs).toEqual([]);
  expect(errors).toEqual([]);
  await page.screenshot({ path: '/tmp/peer-page.png', fullPage: true });
});
