/** The label value every value outside a bounded set is counted under. */
export const OTHER_LABEL = 'other';

/**
 * Keeps a metric label bounded when its values come from input (an event's type, a payload's
 * field names, a request's source): each series costs memory in the process and in Prometheus
 * for ever, so an unbounded label is a way to take both down. Values in `known` (from the
 * catalog) keep their name; the first `cap` other distinct values seen by this process keep
 * theirs too (default 0); everything else is `other`.
 */
export function labelFolder(known: Iterable<string>, cap = 0): (value: string) => string {
  const keep = new Set(known);
  let admitted = 0;
  return (value) => {
    if (keep.has(value)) return value;
    if (admitted >= cap) return OTHER_LABEL;
    admitted += 1;
    keep.add(value);
    return value;
  };
}
