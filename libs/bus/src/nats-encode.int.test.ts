import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startNats, type TestNats, waitFor } from '@bus/testkit';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { TE } from '@nats-io/nats-core/internal';
import { connect } from '@nats-io/transport-node';
import { patchedTextEncoder } from './nats-encode.js';

const platform = new TextEncoder(); // the prototype's encode: the reference the patch must match byte for byte

describe('the client encodes strings with Buffer.from (nats-encode.ts), against a real nats-server', () => {
  let nats: TestNats;
  let nc: Awaited<ReturnType<typeof connect>>;
  before(async () => {
    nats = await startNats();
    nc = await connect({ servers: nats.url });
  });
  after(async () => {
    await nc?.close();
    await nats?.stop({ removeStore: true });
  });

  it('took: the client\'s shared encoder is the patched one (an upgrade that moves it fails here, not silently)', () => {
    assert.equal(patchedTextEncoder, true);
    assert.ok(Buffer.isBuffer(TE.encode('x')));
  });

  it('the same UTF-8 bytes as TextEncoder, and earlier results are not overwritten by later ones (shared slab)', () => {
    const samples = ['', 'PUB a.b 12\r\n', 'héllo ✓ 日本', 'lone \uD800 surrogate', 'x'.repeat(5_000), '🙂'.repeat(300)];
    const held = samples.map((s) => TE.encode(s));
    for (let i = 0; i < 2_000; i++) TE.encode(`filler ${i} ${'y'.repeat(i % 97)}`);
    for (const [i, s] of samples.entries()) assert.deepEqual(new Uint8Array(held[i]!), platform.encode(s), `sample ${i}`);
  });

  it('string payloads, headers and requests arrive as they were sent', async () => {
    const texts = ['plain', 'héllo ✓ 日本', 'lone \uD800 surrogate', 'z'.repeat(70_000)];
    const got: { data: Uint8Array; header?: string }[] = [];
    const sub = nc.subscribe('enc.test', { callback: (_e, m) => { got.push({ data: m.data, header: m.headers?.get('X-Text') }); } });
    nc.subscribe('enc.echo', { callback: (_e, m) => { m.respond(m.data); } });
    await nc.flush();
    for (const t of texts) {
      const h = natsHeaders();
      h.set('X-Text', `v-${t.length}`);
      nc.publish('enc.test', t, { headers: h });
    }
    await nc.flush();
    await waitFor(() => got.length >= texts.length, { what: 'every message back' });
    for (const [i, t] of texts.entries()) {
      assert.deepEqual(new Uint8Array(got[i]!.data), platform.encode(t), `payload ${i}`);
      assert.equal(got[i]!.header, `v-${t.length}`);
    }
    const answer = await nc.request('enc.echo', 'ping ✓', { timeout: 2_000 });
    assert.equal(answer.string(), 'ping ✓');
    sub.unsubscribe();
  });
});
