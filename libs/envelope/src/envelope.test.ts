import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Decoder } from '@msgpack/msgpack';
import fc from 'fast-check';
import { Envelope, plainEnvelope } from './schema.js';
import {
  createEnvelope,
  decodeEnvelope,
  decode,
  encode,
  encodeEnvelope,
  EnvelopeError,
  envelopeHeaders,
  Headers,
  readHeaderFacts,
  causedBy,
} from './index.js';

const token = fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/);
const id = fc.stringMatching(/^[A-Za-z0-9._:=-]{1,60}$/);
// `__proto__` keys are dropped by the msgpack decoder (a prototype-pollution guard), so they cannot round-trip
const json = fc.jsonValue({ maxDepth: 3 }).filter((v) => !JSON.stringify(v).includes('__proto__')).map((v) => JSON.parse(JSON.stringify(v)) as unknown);

const ENVELOPE_FIELDS = ['id', 'type', 'source', 'entity', 'version', 'versionKind', 'occurredAt', 'correlationId', 'causationId', 'schemaVersion', 'data'];

const envelopeArb = fc.record({
  id,
  type: fc.array(token, { minLength: 1, maxLength: 3 }).map((t) => t.join('.')),
  source: token,
  entity: fc.record({ type: token, id: fc.string({ minLength: 1, maxLength: 40 }) }),
  version: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  occurredAt: fc
    .date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2999-12-31T00:00:00Z'), noInvalidDate: true })
    .map((d) => d.toISOString()),
  correlationId: id,
  causationId: fc.option(id, { nil: null }),
  schemaVersion: fc.integer({ min: 1, max: 1000 }),
  data: fc.dictionary(fc.string({ maxLength: 10 }).filter((k) => k !== '__proto__'), json, { maxKeys: 6 }),
});

function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof EnvelopeError, `expected EnvelopeError, got ${String(err)}`);
    assert.equal(err.failureClass, 'business');
    return err.issues.map((i) => i.path);
  }
  assert.fail('expected an EnvelopeError');
}

describe('envelope codec', () => {
  it('encode → decode round-trips every valid envelope (property)', () => {
    fc.assert(
      fc.property(envelopeArb, (env) => {
        // JSON round trip: fast-check builds null-prototype objects, decoded ones are plain
        assert.deepEqual(decodeEnvelope(encodeEnvelope(env)), JSON.parse(JSON.stringify(env)));
      }),
      { numRuns: 300 },
    );
  });

  it('the plain-envelope check accepts only what zod accepts, returning what zod returns; valid envelopes take it (property)', () => {
    // a valid envelope with one field replaced by something else (or an extra key): often invalid, sometimes not
    const anything = fc.oneof(fc.constant(undefined), fc.constant(null), fc.integer(), fc.double(), fc.string({ maxLength: 5 }), fc.boolean(), json,
      token, id, fc.constantFrom('sequence', 'stamp', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00+01:00', '2026-02-30T00:00:00Z', 0, -1, 1.5, 2 ** 60, '', 'x'.repeat(201)));
    const mutated = fc.tuple(envelopeArb, fc.constantFrom(...ENVELOPE_FIELDS, 'extra', 'entity.type', 'entity.id', 'entity.extra'), anything).map(([env, field, value]) => {
      const e = JSON.parse(JSON.stringify(env)) as Record<string, Record<string, unknown>>;
      const [top, sub] = field.split('.') as [string, string | undefined];
      if (sub) e[top] = { ...e[top], [sub]: value };
      else (e as Record<string, unknown>)[top] = value;
      return e;
    });
    let taken = 0;
    fc.assert(
      fc.property(fc.oneof(envelopeArb.map((e) => JSON.parse(JSON.stringify(e)) as unknown), mutated), (value) => {
        const plain = plainEnvelope(value);
        const zod = Envelope.safeParse(value);
        if (plain === undefined) return;
        taken++;
        assert.ok(zod.success, `accepted here, refused by zod: ${JSON.stringify(value)}`);
        assert.deepEqual(plain, zod.data);
      }),
      { numRuns: 2_000 },
    );
    assert.ok(taken > 500, `the plain check took ${taken} of 2,000: it should take every valid envelope`);
    fc.assert(fc.property(envelopeArb, (env) => assert.ok(plainEnvelope(JSON.parse(JSON.stringify(env))), 'a valid envelope takes the plain path')), { numRuns: 300 });
  });

  it('strings decode as the library decodes them: ASCII (the fast path), non-ASCII, around 200 bytes, keys, cut short', () => {
    const library = new Decoder();
    const edge = ['', 'a', 'x'.repeat(199), 'x'.repeat(200), 'x'.repeat(201), 'é', `${'x'.repeat(150)}é`, '😀 ok', '\u007f\u0080', 'a\u0000b'];
    for (const v of edge) {
      const bytes = encode({ [v]: v, list: [v, { k: v }] });
      assert.deepEqual(decode(bytes), library.decode(bytes), JSON.stringify(v));
    }
    fc.assert(fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 260 }), { maxLength: 20 }), (xs) => {
      const bytes = encode({ xs, o: Object.fromEntries(xs.map((x, i) => [`k${i}`, x])) });
      assert.deepEqual(decode(bytes), library.decode(bytes));
    }));
    // a string whose bytes are cut off is an error, not a shorter string
    const whole = encode({ s: 'abcdefghij' });
    assert.throws(() => decode(whole.subarray(0, whole.length - 3)), EnvelopeError);
  });

  it('bytes that are not msgpack are a business error, not a crash', () => {
    assert.deepEqual(issuesOf(() => decodeEnvelope(new Uint8Array([0xc1, 0xff, 0x00]))), ['(root)']);
  });

  it('every invalid field is named in one error', () => {
    const bad = {
      id: '',
      type: 'order created',
      source: 'a.b',
      entity: { type: 'contact', id: '' },
      version: 0,
      occurredAt: '2026-01-31T12:00:00+02:00',
      correlationId: 'c1',
      causationId: null,
      schemaVersion: 1.5,
      data: 'nope',
    };
    const paths = issuesOf(() => decodeEnvelope(encode(bad)));
    assert.deepEqual(paths.sort(), [
      'data',
      'entity.id',
      'id',
      'occurredAt',
      'schemaVersion',
      'source',
      'type',
      'version',
    ]);
  });

  it('a missing required field is named, with a message that says it is required', () => {
    try {
      decodeEnvelope(encode({ type: 'x.y' }));
      assert.fail('should throw');
    } catch (err) {
      assert.ok(err instanceof EnvelopeError);
      assert.match(err.message, /^\[ENVELOPE_INVALID\] envelope is invalid: .*id: /);
      const paths = err.issues.map((i) => i.path);
      for (const p of ['id', 'source', 'entity', 'version', 'occurredAt', 'correlationId', 'schemaVersion', 'data']) {
        assert.ok(paths.includes(p), `${p} named in ${paths.join(',')}`);
      }
    }
  });
});

describe('createEnvelope', () => {
  it('fills id, correlation id, time and schema version, and converts the time to UTC', () => {
    const env = createEnvelope(
      { type: 'contact.updated', entity: { type: 'contact', id: 'c-1' }, version: 3, data: { email: 'a@b.c' },
        occurredAt: '2026-03-01T10:00:00+01:00' },
      { source: 'crm' },
    );
    assert.match(env.id, /^[0-9a-f-]{36}$/);
    assert.match(env.correlationId, /^[0-9a-f-]{36}$/);
    assert.equal(env.causationId, null);
    assert.equal(env.schemaVersion, 1);
    assert.equal(env.occurredAt, '2026-03-01T09:00:00.000Z');
  });

  it('ids are unique and sort by creation time', () => {
    const ids = Array.from({ length: 200 }, () =>
      createEnvelope({ type: 'a.b', entity: { type: 'e', id: '1' }, version: 1, data: {} }, { source: 's' }).id,
    );
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort(), ids);
  });

  it('an event caused by another keeps its correlation id and names its cause', () => {
    const parent = createEnvelope({ type: 'a.b', entity: { type: 'e', id: '1' }, version: 1, data: {} }, { source: 's' });
    const child = createEnvelope({ type: 'a.c', entity: { type: 'e', id: '1' }, version: 2, data: {} }, causedBy(parent, 't'));
    assert.equal(child.correlationId, parent.correlationId);
    assert.equal(child.causationId, parent.id);
  });

  it('rejects an invalid domain event, naming the fields', () => {
    const paths = issuesOf(() =>
      createEnvelope({ type: 'a.b', entity: { type: 'e', id: '1' }, version: -1, data: {}, occurredAt: 'yesterday' }, { source: 's' }),
    );
    assert.deepEqual(paths.sort(), ['occurredAt', 'version']);
  });
});

describe('headers', () => {
  it('carry msg id, correlation, type, entity and version, and read back', () => {
    const env = createEnvelope({ type: 'order.created', entity: { type: 'order', id: 'o-9' }, version: 7, data: {} }, { source: 'shop' });
    const h = envelopeHeaders(env);
    assert.equal(h[Headers.MsgId], env.id);
    const facts = readHeaderFacts((n) => h[n as keyof typeof h]);
    assert.deepEqual(facts, {
      msgId: env.id, correlationId: env.correlationId, causationId: undefined, eventType: 'order.created',
      source: 'shop', entityType: 'order', entityId: 'o-9', entityVersion: 7,
    });
  });
});
