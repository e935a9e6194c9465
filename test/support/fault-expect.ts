/**
 * The assertion every database-fault scenario ends with: all runs finished, none lost, no transactional
 * row twice or missing, no worker exited. On failure the diff names a few runs with what the database
 * holds about them, and the workers' last output goes to stderr.
 */
import type { ScenarioResult } from './fault-scenarios';

export function expectAllFinishedOnce(result: ScenarioResult, runs: number): void {
  const held = {
    finished: result.finished,
    lost: result.lost,
    duplicates: result.duplicates,
    missing: result.missing,
    exits: result.unexpectedExits,
    examples: result.examples,
  };
  const clean = { finished: runs, lost: 0, duplicates: 0, missing: 0, exits: [], examples: [] };
  if (JSON.stringify(held) !== JSON.stringify(clean)) {
    process.stderr.write(`statuses ${JSON.stringify(result.statuses)}\n${result.output}\n`);
  }
  expect(held).toEqual(clean);
}
