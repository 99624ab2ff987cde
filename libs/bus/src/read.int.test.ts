import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startNats, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import type { JsMsg } from '@nats-io/jetstream';
import type { Bus } from './connect.js';
import { firstSeqSince, readRange } from './read.js';
import { testBus } from './test-support.js';

async function seqs(it: AsyncIterable<JsMsg>): Promise<number[]> {
  const out: number[] = [];
  for await (const m of it) out.push(m.seq);
  return out;
}

describe('readRange: a range of a stream, started where the range starts', () => {
  let nats: TestNats;
  let bus: Bus;
  let stream: string;
  let splitMs: number;
  before(async () => {
    nats = await startNats();
    bus = await testBus(nats.url, uniquePrefix());
    stream = bus.names.streams.events;
    const put = (source: string, i: number) => bus.publish(bus.names.subjects.event(source, 'x'), new Uint8Array([i]), { msgId: `${source}-${i}` });
    for (let i = 1; i <= 5; i++) await put('a', i); // seqs 1..5
    const last = await bus.jsm.streams.getMessage(stream, { seq: 5 });
    // the split: after the 5th was stored (its timestamp is ns; ms + 1 is past it), before the 6th
    splitMs = Math.floor(Date.parse(last!.timestamp)) + 1;
    await waitFor(() => Date.now() > splitMs, { what: 'the clock past the fifth message' });
    for (let i = 6; i <= 9; i++) await put(i % 2 ? 'a' : 'b', i); // seqs 6..9: b at 6 and 8
  });
  after(async () => {
    await bus?.close();
    await nats?.stop({ removeStore: true });
  });

  it('--since jumps to the first message stored at that time (by_start_time), not a scan from the start', async () => {
    assert.equal(await firstSeqSince(bus.jsm, stream, splitMs), 6);
    assert.deepEqual(await seqs(readRange(bus.js, bus.jsm, stream, { sinceMs: splitMs })), [6, 7, 8, 9]);
    assert.deepEqual(await seqs(readRange(bus.js, bus.jsm, stream, { sinceMs: splitMs, toSeq: 7 })), [6, 7]);
    assert.deepEqual(await seqs(readRange(bus.js, bus.jsm, stream, { sinceMs: 0 })), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('--from-seq / --to-seq read exactly that range; both bounds apply with --since', async () => {
    assert.deepEqual(await seqs(readRange(bus.js, bus.jsm, stream, { fromSeq: 2, toSeq: 4 })), [2, 3, 4]);
    assert.deepEqual(await seqs(readRange(bus.js, bus.jsm, stream, { fromSeq: 8 })), [8, 9]);
    assert.deepEqual(await seqs(readRange(bus.js, bus.jsm, stream, { fromSeq: 3, sinceMs: splitMs })), [6, 7, 8, 9]);
    assert.deepEqual(await seqs(readRange(bus.js, bus.jsm, stream, { fromSeq: 8, sinceMs: 0 })), [8, 9]);
  });

  it('one subject only, when asked; an empty range ends at once', async () => {
    const b = bus.names.subjects.event('b', 'x');
    assert.deepEqual(await seqs(readRange(bus.js, bus.jsm, stream, { filterSubject: b })), [6, 8]);
    assert.deepEqual(await seqs(readRange(bus.js, bus.jsm, stream, { filterSubject: b, toSeq: 7 })), [6]);
    assert.equal(await firstSeqSince(bus.jsm, stream, Date.now() + 60_000), undefined);
    assert.deepEqual(await seqs(readRange(bus.js, bus.jsm, stream, { sinceMs: Date.now() + 60_000 })), []);
    assert.deepEqual(await seqs(readRange(bus.js, bus.jsm, stream, { fromSeq: 100 })), []);
    assert.deepEqual(await seqs(readRange(bus.js, bus.jsm, stream, { filterSubject: bus.names.subjects.event('nobody', 'x') })), []);
  });

  it('leaves no consumer behind, also when the reader stops early', async () => {
    for await (const m of readRange(bus.js, bus.jsm, stream, {})) if (m.seq === 2) break;
    const left: string[] = [];
    for await (const c of bus.jsm.consumers.list(stream)) left.push(c.name);
    assert.deepEqual(left, []);
  });
});
