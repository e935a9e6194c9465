import { setImmediate as nextTurn } from 'node:timers/promises';
import { messages } from '../durable.messages';
import { ReplayMismatchError } from '../errors';
import { RunExecution } from './run-execution';

/**
 * A call whose key is not in the history while recorded steps remain unreplayed is a mismatch: the run
 * fails (history untouched). Steps started together (Promise.all) take their keys in the same turn, so
 * the check waits one turn for siblings to claim theirs.
 */
export async function assertInHistory(execution: RunExecution, key: string): Promise<void> {
  if (execution.unreplayedKeys().length === 0) return;
  await nextTurn();
  const expected = execution.unreplayedKeys();
  if (expected.length === 0) return;
  const error = new ReplayMismatchError(
    messages.replayMismatch(execution.runId, expected, key),
    expected,
    key,
  );
  execution.halt('mismatch', error);
  throw error;
}
