import type { AdminRunDetail, AdminRunSummary } from '../admin/admin.interfaces';

/** Writes command results: JSON (one document) or aligned text for people. */
export class CliOutput {
  constructor(
    readonly json: boolean,
    private readonly write: (text: string) => void = (text) => process.stdout.write(text),
  ) {}

  /** A result: as JSON with --json, else as the given text. */
  result(value: unknown, text: () => string): void {
    this.write(this.json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
  }
}

/** Columns padded to their widest cell; cells are single-line and clipped. */
export function table(headers: string[], rows: string[][]): string {
  const clean = (cell: string) => cell.replace(/\s+/g, ' ').slice(0, 80);
  const all = [headers, ...rows.map((row) => row.map(clean))];
  const widths = headers.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  return all
    .map((row) =>
      row
        .map((cell, i) => (cell ?? '').padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const time = (value: Date | null | undefined) => (value ? new Date(value).toISOString() : '');

export function runsTable(runs: AdminRunSummary[]): string {
  if (runs.length === 0) return 'No runs match.';
  return table(
    ['ID', 'WORKFLOW', 'VERSION', 'STATUS', 'ATTEMPTS', 'CREATED', 'ERROR'],
    runs.map((run) => [
      run.id,
      run.workflow,
      run.version,
      run.status,
      String(run.attempts),
      time(run.createdAt),
      run.error ? `${run.error.name}: ${run.error.message}` : '',
    ]),
  );
}

export function runText(run: AdminRunDetail): string {
  const lines = [
    `Run       ${run.id}`,
    `Workflow  ${run.workflow} (version ${run.version})`,
    `Status    ${run.status}${run.compensating ? ' (compensating)' : ''}`,
    `Attempts  ${run.attempts}`,
    `Created   ${time(run.createdAt)}`,
    `Updated   ${time(run.updatedAt)}`,
  ];
  if (run.waitingFor.length > 0)
    lines.push(
      `Waiting   for ${run.waitingFor.map((name) => `"${name}"`).join(', ')} (until ${time(run.availableAt)})`,
    );
  if (run.parent) lines.push(`Parent    ${run.parent.id}`);
  if (run.fullError) {
    lines.push(`Error     ${run.fullError.name}: ${run.fullError.message}`);
    if (run.failedStep) lines.push(`At step   ${run.failedStep}`);
  }
  lines.push('', 'Steps:');
  lines.push(
    run.steps.length === 0
      ? '  (none recorded)'
      : table(
          ['SEQ', 'KEY', 'KIND', 'STATUS', 'ATTEMPTS', 'STARTED', 'DURATION', 'ERROR'],
          run.steps.map((step) => [
            String(step.seq),
            step.key,
            step.kind,
            step.status,
            String(step.attempts),
            time(step.startedAt),
            step.finishedAt ? `${step.finishedAt.getTime() - step.startedAt.getTime()} ms` : '',
            step.error ? `${step.error.name}: ${step.error.message}` : '',
          ]),
        ),
  );
  const pending = run.signals.filter((signal) => signal.consumedBy === null);
  lines.push('', `Signals: ${run.signals.length} (${pending.length} pending)`);
  if (run.children.length > 0)
    lines.push(`Children: ${run.children.map((child) => `${child.id} (${child.status})`).join(', ')}`);
  return lines.join('\n');
}
