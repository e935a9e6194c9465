/**
 * The library's statements as the fault tests recognise them on the wire (test/support/pg-proxy.ts):
 * one pattern per kind of write whose reply a test loses. Kept loose (what the statement does, not its
 * exact text) and in one place, so an engine change that rewrites a statement updates one line here.
 */
export const STATEMENTS = {
  /** A step transaction's COMMIT (TypeORM sends it as a simple query). */
  commit: /^COMMIT\b/i,
  /** A checkpoint: the INSERT of a step row (outside a transaction for a plain step). */
  checkpoint: /INSERT INTO "durable"\.steps\b/,
  /** The finish of a run: its status set from a parameter, with its output. */
  finish: /UPDATE "durable"\.runs SET status = \$\d+, output =/,
  /** A claim: due runs locked with SKIP LOCKED and updated with their epoch bumped (in either order). */
  claim: /^(?=[\s\S]*SKIP LOCKED)(?=[\s\S]*epoch = (\w+\.)?epoch \+ 1)[\s\S]*UPDATE "durable"\.runs/,
  /** A run inserted already claimed by the process that starts it. */
  start: /INSERT INTO "durable"\.runs[\s\S]*'running'/,
};
