import { Counter, type Registry } from 'prom-client';

/** Transform's metrics, per connector and event type (README → Operations). */
export function createTransformMetrics(registry: Registry) {
  const c = (name: string, help: string, labelNames: readonly string[]) => new Counter({ name, help, labelNames, registers: [registry] });
  return {
    transformed: c('transform_transformed_total', 'Events turned into delivery commands', ['connector', 'type']),
    commands: c('transform_commands_total', 'Delivery commands published', ['connector', 'type']),
    skipped: c('transform_skipped_total', 'Events a connector did not act on, by reason (not_subscribed, filter, duplicate, no_command)', ['connector', 'type', 'reason']),
    drift: c('transform_drift_total', 'Events with fields their schema does not know (they still flow)', ['connector', 'type', 'field']),
    invalid: c('transform_invalid_total', 'Events failing their schema or mapping, sent to the DLQ', ['connector', 'type', 'reason']),
  };
}
export type TransformMetrics = ReturnType<typeof createTransformMetrics>;
