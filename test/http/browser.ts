/**
 * Debian's chromium driven by playwright-core for the page tests (no browser download).
 * Without chromium the tests fail on CI and are skipped elsewhere.
 */
import { existsSync } from 'node:fs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
export const XSS_NAME = '<svg onload=alert(1)>';
const haveChromium = existsSync(CHROMIUM);
/** Whether the browser tests skip: no chromium and not on CI. */
export const skipBrowser = !haveChromium && !process.env['CI'];
if (skipBrowser) console.warn(`skipping the browser test: ${CHROMIUM} is missing (apt-get install chromium)`);

/** A headless chromium with its profile in `profileDir`; the caller closes it. */
export async function launchChromium(profileDir: string): Promise<BrowserContext> {
  if (!haveChromium) throw new Error(`${CHROMIUM} is missing: the browser test needs Debian's chromium (apt-get install -y chromium)`);
  return chromium.launchPersistentContext(profileDir, { executablePath: CHROMIUM, args: ARGS, headless: true, viewport: { width: 1200, height: 860 } });
}

/** A new page whose dialogs (dismissed) and script errors are collected: both must stay empty. */
export async function watchedPage(context: BrowserContext): Promise<{ page: Page; dialogs: string[]; errors: string[] }> {
  const page = await context.newPage();
  const dialogs: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  return { page, dialogs, errors };
}
