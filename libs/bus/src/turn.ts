/**
 * Resolves at the end of this event-loop turn, together with every other caller of the turn, so the
 * requests they start next leave in one socket write. The NATS client writes its buffer on a microtask
 * of its own: handlers that each send from their own microtask (every consumer, every HTTP request)
 * made one write — and one server read — per request.
 */
export function endOfTurn(): Promise<void> {
  return new Promise<void>((r) => {
    if (waiting.push(r) === 1) setImmediate(release);
  });
}

let waiting: (() => void)[] = [];
function release(): void {
  const go = waiting;
  waiting = [];
  for (const r of go) r();
}
