/**
 * The dashboard's QoS page in Chromium against a real tower and node (test/support/qos-rig.ts):
 * an operator's bad policy shows the problem and changes nothing; a good one is applied,
 * reaches the node and shows in the tables, the per-class rates and the audit log.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { login, openBrowser, spkiOfTower } from './support/dashboard-rig.js';
import { QosRig } from './support/qos-rig.js';
import { waitFor } from './support/wait.js';

test('QoS page: a bad policy shows its problem and changes nothing; a good one is applied and shown', async () => {
  const rig = new QosRig();
  let browser: Awaited<ReturnType<typeof openBrowser>> | undefined;
  try {
    await rig.start();
    browser = await openBrowser({ towerSpki: () => spkiOfTower(rig.dir) });
    const page = await browser.context.newPage();
    await login(page, rig, rig.token);
    await page.goto(`${rig.url}/#/qos`);
    await page.locator('#qos-editor').waitFor();
    // The page fills the editor from its first refresh; typing before that can be lost to it.
    await page.waitForFunction("document.querySelector('#qos-editor')?.value.includes('classes')");
    const policy = {
      classes: [
        { name: 'c2', priority: 0, guaranteedBps: 2_000_000, dscp: 46 },
        { name: 'bulk', priority: 7, guaranteedBps: 1_000_000, dscp: 8 },
      ],
      rules: [{ name: 'c2-udp', class: 'c2', protocol: 17, dstPorts: [5000, 5000] }],
      links: rig.links(),
    };
    await page
      .locator('#qos-editor')
      .fill(JSON.stringify({ ...policy, rules: [{ name: 'x', class: 'video' }] }));
    await page.locator('#qos-apply').click();
    await page.locator('#qos-errors li', { hasText: 'rule "x": unknown class "video"' }).waitFor();
    assert.equal(rig.tower.qos.policy.version, 0);

    await page.locator('#qos-editor').fill(JSON.stringify(policy));
    await page.locator('#qos-apply').click();
    await page.locator('#qos-outcome', { hasText: 'v1 in force' }).waitFor();
    assert.equal(rig.tower.qos.nodes.get('node1')?.applied, 1);
    await page.locator('#qos-class-table td', { hasText: 'bulk' }).waitFor();
    await page.locator('#qos-rule-table td', { hasText: 'c2-udp' }).waitFor();
    await page.locator('#qos-audit-table tr', { hasText: 'op' }).first().waitFor();
    // the node's counters: one row per class of its link, and the whole link
    await waitFor(
      'the per-class rates',
      async () =>
        (await page.locator('#qos-node-table td', { hasText: '(whole link)' }).count()) > 0
          ? true
          : undefined,
      8000,
    );
    // the page checks before it sends: the refused draft never reached the tower's audit log
    assert.deepEqual(await page.locator('#qos-audit-table tbody tr td:nth-child(3)').allTextContents(), [
      'set',
    ]);
    // the form: a class's rates, and a service's precedence (one the tower declares)
    assert.equal(
      rig.tower.services.setTower([{ name: 'radio-c2', precedence: 'routine', instances: [] }]),
      undefined,
    );
    await page.reload();
    await page.locator('#qos-form-class').selectOption('bulk');
    await page.locator('#qos-form-guaranteed').fill('1.5');
    await page.locator('#qos-form-rates').click();
    await page.locator('#qos-form-outcome', { hasText: 'class bulk: v2' }).waitFor();
    assert.deepEqual(
      rig.tower.qos.policy.policy.classes.map((c) => [c.name, c.guaranteedBps]),
      [
        ['c2', 2_000_000],
        ['bulk', 1_500_000],
      ],
    );
    await page.locator('#qos-form-service').selectOption('radio-c2');
    await page.locator('#qos-form-precedence').selectOption('flash');
    await page.locator('#qos-form-set-precedence').click();
    await page.locator('#qos-form-outcome', { hasText: 'service radio-c2: flash' }).waitFor();
    assert.equal(rig.tower.services.get('radio-c2')?.qosClass, 'flash');
  } finally {
    await browser?.close();
    await rig.stop();
  }
});
