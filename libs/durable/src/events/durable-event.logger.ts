import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { messages } from '../durable.messages';
import { DurableEvents } from '../engine/durable.events';

/**
 * One log line per notable lifecycle event, through Nest's Logger (context 'Durable'), so the app's
 * logger (pino, winston) receives them. Lines carry run ids, workflow names and error names and codes;
 * never inputs, outputs, payloads or connection strings.
 */
@Injectable()
export class DurableEventLogger implements OnModuleInit {
  private readonly logger = new Logger('Durable');

  constructor(private readonly events: DurableEvents) {}

  onModuleInit(): void {
    const { events, logger } = this;
    events.on('runs.recovered', (e) => logger.log(messages.runsRecovered(e.count, e.trigger)));
    events.on('run.lease-lost', (e) => logger.warn(messages.leaseLost(e.runId, e.epoch)));
    events.on('run.replay-mismatch', (e) =>
      logger.error(messages.replayMismatchLogged(e.runId, e.expected, e.actual)),
    );
    events.on('run.set-aside', (e) => logger.error(messages.runSetAside(e.runId, e.workflow, e.attempts)));
    events.on('run.unserved', (e) =>
      logger.warn(messages.workflowVersionNotServed(e.workflow, e.version, e.runId)),
    );
    events.on('run.finished', (e) => {
      // A replay mismatch has a line of its own (run.replay-mismatch).
      if (e.status !== 'failed' || e.error?.code === 'DURABLE_REPLAY_MISMATCH') return;
      const error = e.error ? `${e.error.name}${e.error.code ? ` (${e.error.code})` : ''}` : 'unknown error';
      logger.warn(messages.runFailedLogged(e.runId, e.workflow, error));
    });
    events.on('listener.reconnected', () => logger.log(messages.listenerReconnected()));
  }
}
