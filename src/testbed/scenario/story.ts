/**
 * The default scenario, the paper's story (issue 20): over the link the bulk transfer
 * crosses, the radio degrades, then the link is cut; a node's management link is cut; all
 * is restored.
 */
import type { TestbedPlan } from '../plan.js';
import { bulkEnds } from '../services.js';
import type { ScenarioSpec } from './schema.js';

export function storyScenario(plan: TestbedPlan): ScenarioSpec {
  const { from: a, to: b } = bulkEnds(plan);
  return {
    name: 'story',
    steps: [
      { at: 60, link: 'set', a, b, rateMbit: 4, lossPct: 2 },
      { at: 120, link: 'cut', a, b },
      { at: 150, mgmt: 'cut', node: b },
      { at: 180, restore: 'all' },
    ],
    end: 240,
  };
}
