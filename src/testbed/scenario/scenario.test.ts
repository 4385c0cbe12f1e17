import assert from 'node:assert/strict';
import { test } from 'node:test';
import { testbedConfigSchema } from '../config.js';
import { planTestbed } from '../plan.js';
import { scenarioProblems } from './run.js';
import { ScenarioSpec } from './schema.js';
import { storyScenario } from './story.js';

test('the story is a valid scenario of the default testbed; a scenario naming what the testbed lacks is refused, each step said', () => {
  const config = testbedConfigSchema.parse({ traffic: { bulk: false } });
  const plan = planTestbed(config);
  const story = ScenarioSpec.parse(storyScenario(plan));
  assert.deepEqual(scenarioProblems({ plan, config }, story), []);
  assert.deepEqual(
    story.steps.map((s) => s.at),
    [60, 120, 150, 180],
  );
  const bad = ScenarioSpec.parse({
    steps: [
      { at: 1, link: 'cut', a: 'n2', b: 'n4' },
      { at: 2, link: 'set', a: 'n1', b: 'n2', rateMbit: 50 },
      { at: 3, mgmt: 'cut', node: 'n9' },
      { at: 4, traffic: 'off', service: 'bulk' },
    ],
  });
  assert.deepEqual(
    scenarioProblems({ plan, config }, bad).map((p) => p.split(':')[0]),
    ['step 1 (at 1 s)', 'step 2 (at 2 s)', 'step 3 (at 3 s)', 'step 4 (at 4 s)'],
  );
  const wrong = ScenarioSpec.safeParse({ steps: [{ at: 1, mgmt: 'reboot', node: 'n2' }], end: 0 });
  assert.equal(wrong.success, false);
  assert.match(wrong.error?.issues.map((i) => i.message).join('; ') ?? '', /a step is one of/);
});
