import { BusError } from '@bus/errors';
import type { z } from 'zod';

/** One bad field: where it is (dotted path) and what is wrong with it. */
export interface FieldIssue {
  path: string;
  message: string;
}

/**
 * Turns zod issues into one issue per field, with dotted paths (`entity.id`,
 * `data.items.0.sku`); several problems of one field are joined.
 */
export function toFieldIssues(issues: readonly z.core.$ZodIssue[]): FieldIssue[] {
  const byPath = new Map<string, string[]>();
  for (const i of issues) {
    const path = i.path.length ? i.path.map(String).join('.') : '(root)';
    byPath.set(path, [...(byPath.get(path) ?? []), i.message]);
  }
  return [...byPath].map(([path, messages]) => ({ path, message: messages.join(' and ') }));
}

/**
 * An envelope that fails its schema. Class business: the same bytes will fail again, so
 * the message is dead-lettered with `issues`, never retried.
 */
export class EnvelopeError extends BusError {
  constructor(
    readonly issues: FieldIssue[],
    context = 'envelope',
    options?: ErrorOptions,
  ) {
    super(
      'ENVELOPE_INVALID',
      'business',
      `${context} is invalid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      options,
    );
  }
}
