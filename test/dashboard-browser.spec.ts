import { INestApplication, Injectable } from '@nestjs/common';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { DurableClient, Step, Workflow } from 'nest-durable';
import { createAdminApp } from './support/admin-app';
import { CHROMIUM_ARGS, CHROMIUM_PATH, chromiumAvailable } from './support/chromium';
import { createTestDatabase } from './support/database';

/** Screenshots land here (ignored by git); UPDATE_README_SCREENSHOT=1 also refreshes the README's. */
const BUILD_DIR = path.resolve(__dirname, '..', 'build', 'screenshots');
const README_IMAGE = path.resolve(__dirname, '..', 'docs', 'dashboard-run.png');

@Injectable()
class Billing {
  declined = true;
  /** Holds the receipt step until the test has seen the resumed run in flight. */
  receiptGate: Promise<void> = Promise.resolve();

  @Step() async loadInvoice(invoiceId: string): Promise<{ invoiceId: string; amount: number }> {
    return { invoiceId, amount: 4_200 };
  }

  @Step({ retry: { maxAttempts: 2, initialDelay: '50ms' } })
  async chargeCard(invoice: { amount: number }): Promise<{ chargeId: string }> {
    if (this.declined) throw new Error(`card declined: insufficient funds for ${invoice.amount} <b>EUR</b>`);
    return { chargeId: 'ch_42' };
  }

  @Step() async sendReceipt(chargeId: string): Promise<string> {
    await this.receiptGate;
    return `receipt for ${chargeId}`;
  }

  @Workflow() async collectPayment(invoiceId: string): Promise<string> {
    const invoice = await this.loadInvoice(invoiceId);
    const { chargeId } = await this.chargeCard(invoice);
    return this.sendReceipt(chargeId);
  }
}

if (!chromiumAvailable) {
  process.stdout.write(
    `[dashboard-browser] SKIPPED: no Chromium at ${CHROMIUM_PATH} (scripts/ensure-chromium.sh installs Debian's; ` +
      'set CHROMIUM_PATH to use another).\n',
  );
}

(chromiumAvailable ? describe : describe.skip)('dashboard in a real browser', () => {
  let database: { url: string; drop(): Promise<void> };
  let app: INestApplication;
  let browser: Browser;
  let billing: Billing;
  let base: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await createAdminApp({ url: database.url, providers: [Billing], admin: { path: 'ops/durable' } });
    billing = app.get(Billing);
    const client = app.get(DurableClient);
    for (const id of ['inv-1001', 'inv-1002', 'inv-1003']) {
      billing.declined = false;
      await (await client.start('collectPayment', [id], { id: `payment:${id}` })).result();
    }
    billing.declined = true;
    await expect(
      (await client.start('collectPayment', ['inv-1004'], { id: 'payment:inv-1004' })).result(),
    ).rejects.toThrow('card declined');
    const { port } = app.getHttpServer().address() as AddressInfo;
    base = `http://127.0.0.1:${port}/ops/durable`;
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await database?.drop();
  });

  it('finds a failed run by filter, shows the failing step, resumes it and shows it succeed', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    page.on('dialog', (dialog) => void dialog.accept()); // the actions' confirmations
    await page.goto(base);
    await page.locator('[data-count="failed"]').filter({ hasText: '1' }).waitFor();

    await page.selectOption('select[name="status"]', 'failed');
    await page.fill('input[name="errorText"]', 'card declined');
    await page.click('form.filters button[type="submit"]');
    const rows = page.locator('table.runs tbody tr');
    await expectLocator(rows).toHaveCount(1);
    await page.click('text=payment:inv-1004');

    const failing = page.locator('tr[data-step="chargeCard#1"]');
    await failing
      .locator('.error .message')
      .filter({ hasText: 'card declined: insufficient funds for 4200 <b>EUR</b>' })
      .waitFor();
    await expectLocator(failing.locator('.badge')).toHaveText('failed');
    await expectLocator(page.locator('dl.meta .badge')).toHaveText('failed');
    fs.mkdirSync(BUILD_DIR, { recursive: true });
    await page.screenshot({ path: path.join(BUILD_DIR, 'run-page-failed.png'), fullPage: true });
    if (process.env.UPDATE_README_SCREENSHOT === '1')
      fs.copyFileSync(path.join(BUILD_DIR, 'run-page-failed.png'), README_IMAGE);

    billing.declined = false;
    let release!: () => void;
    billing.receiptGate = new Promise((resolve) => (release = resolve));
    await page.click('form.action button:has-text("Resume")');
    await page.locator('.notice').filter({ hasText: 'put back in the queue' }).waitFor();
    expect(await page.locator('dl.meta .badge').first().innerText()).not.toBe('succeeded');
    release();
    // The page follows the run live (server-sent events) and reloads when it changes.
    await page.locator('dl.meta .badge.s-succeeded').waitFor({ timeout: 30_000 });
    await expectLocator(page.locator('tr[data-step="sendReceipt#1"] .badge')).toHaveText('succeeded');
    await page.screenshot({ path: path.join(BUILD_DIR, 'run-page-succeeded.png'), fullPage: true });
    await page.close();
  });
});

/** A tiny expect over Playwright locators (playwright-core ships no test runner). */
function expectLocator(locator: import('playwright-core').Locator) {
  return {
    async toHaveCount(n: number) {
      await locator.nth(n - 1).waitFor();
      expect(await locator.count()).toBe(n);
    },
    async toHaveText(text: string) {
      await locator.filter({ hasText: text }).first().waitFor();
      expect((await locator.first().innerText()).trim()).toBe(text);
    },
  };
}
