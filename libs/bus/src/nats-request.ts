import { RequestOne } from '@nats-io/nats-core/internal';

/**
 * @nats-io/nats-core 3.x ends every request through `cancel()`, which rejects the request's promise with a new
 * `RequestError("cancelled")` even when an answer already resolved it: an Error per request, its stack captured, for
 * nothing (the rejection of a settled promise is ignored) — 3–5 % of each service's CPU in the bench profiles (every
 * PubAck, every KV read and write is a request). After the answer (`resolver`), cancel only unregisters the request;
 * a cancel before any answer (the timeout, a publish that failed) is the library's own, unchanged.
 * `patchedRequestCancel` says whether this took: a client whose internals moved leaves it untouched (and its test fails).
 */
type Internal = { resolver(err: Error | null, msg: unknown): void; cancel(err?: Error): void; timer?: { cancel(): void }; mux: { cancel(r: unknown): void } };
const proto = RequestOne.prototype as unknown as Internal;
const answered = new WeakSet<object>();

export const patchedRequestCancel: boolean = (() => {
  if (typeof proto.resolver !== 'function' || typeof proto.cancel !== 'function' || proto.resolver.length !== 2 || proto.cancel.length !== 1) return false;
  const resolver = proto.resolver;
  const cancel = proto.cancel;
  proto.resolver = function (this: Internal, err, msg) {
    answered.add(this);
    resolver.call(this, err, msg);
  };
  proto.cancel = function (this: Internal, err?: Error) {
    if (err !== undefined || !answered.has(this)) return cancel.call(this, err);
    this.timer?.cancel();
    this.mux.cancel(this);
  };
  return true;
})();
