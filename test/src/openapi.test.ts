// GET /openapi.json from a running ingest: valid OpenAPI 3.1 (a maintained validator), and every
// answer ingest really gives — each status, content type and body — is one the document describes.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { PROBLEM_TYPE_PREFIX, PROBLEM_TYPES } from '@bus/intake';
import { freePort, startNats, startProcess, type TestNats, type TestProcess, uniquePrefix } from '@bus/testkit';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';

const ingestMain = fileURLToPath(new URL('../../services/ingest/dist/main.js', import.meta.url));
const errorsDoc = fileURLToPath(new URL('../../docs/errors.md', import.meta.url));
const GITHUB_SECRET = 'openapi-github-secret';

type Doc = { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>> };

describe('ingest serves an OpenAPI 3.1 document that describes its real answers', () => {
  let nats: TestNats;
  let ingest: TestProcess;
  let url: string;
  let doc: Doc;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  before(async () => {
    assert.ok(existsSync(ingestMain), `${ingestMain} is not built: run npm run build`);
    nats = await startNats();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    ingest = startProcess({
      command: process.execPath,
      args: [ingestMain],
      env: {
        NATS_URL: nats.url,
        BUS_PREFIX: uniquePrefix(),
        INGEST_PORT: String(port),
        INGEST_API_TOKENS: 'shop-token:shop',
        INGEST_MAX_BODY_BYTES: '2048',
        GITHUB_WEBHOOK_SECRET: GITHUB_SECRET,
        STRIPE_WEBHOOK_SECRET: 'whsec_openapi',
        STANDARD_WEBHOOK_SECRET: `whsec_${Buffer.from('openapi-standard').toString('base64')}`,
        LOG_LEVEL: 'info',
      },
    });
    await ingest.waitForOutput(/ingest started/, 'ingest started', 30_000);
  });
  after(async () => {
    ingest?.kill('SIGTERM');
    await ingest?.exited;
    await nats?.stop({ removeStore: true });
  });

  it('GET /openapi.json passes @seriousme/openapi-schema-validator as OpenAPI 3.1 and does not list the configured sources', async () => {
    const res = await fetch(`${url}/openapi.json`);
    assert.equal(res.status, 200);
    const text = await res.text();
    doc = JSON.parse(text) as Doc;
    const validator = new Validator();
    const result = await validator.validate(JSON.parse(text));
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 1));
    assert.equal(validator.version, '3.1');
    for (const name of ['stripe', 'github', 'standard']) assert.equal(text.includes(`"${name}"`), false, `${name} named in the document`);
    ajv.addSchema({ ...(doc as unknown as { components: object }), $id: 'openapi.json' });
  });

  /** The answer must be described: its status under the route, its content type, its body by the schema, its problem type listed. */
  async function described(path: string, res: Response) {
    assert.ok(doc, 'the document was fetched');
    const route = doc.paths[path]!.post!;
    const status = String(res.status);
    const response = route.responses[status];
    assert.ok(response, `${path} answered ${status}, which the document does not list (${Object.keys(route.responses).join(', ')})`);
    const type = String(res.headers.get('content-type')).split(';')[0]!;
    const media = response.content?.[type];
    assert.ok(media, `${path} ${status} answered ${type}, the document lists ${Object.keys(response.content ?? {}).join(', ')}`);
    const body = await res.json();
    // $refs point into the components of the document added above
    const schema = JSON.parse(JSON.stringify(media.schema).replaceAll('"#/components/', '"openapi.json#/components/'));
    const validate = ajv.compile(schema);
    assert.equal(validate(body), true, `${path} ${status} body ${JSON.stringify(body)} does not match: ${ajv.errorsText(validate.errors)}`);
    return body as { type?: string; status?: string };
  }

  const github = (body: string, secret = GITHUB_SECRET, delivery = `d-${Math.random()}`) => ({
    'content-type': 'application/json',
    'x-github-event': 'issues',
    'x-github-delivery': delivery,
    'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`,
  });
  const post = (path: string, headers: Record<string, string>, body: string) => fetch(`${url}${path}`, { method: 'POST', headers, body });
  const repo = JSON.stringify({ action: 'opened', repository: { id: 1, full_name: 'o/r' } });

  it('webhooks: 202 stored, 200 duplicate, 401 each, 404 unknown source, 400 not JSON, 413 too large — each described', async () => {
    const headers = github(repo, GITHUB_SECRET, 'd-fixed');
    assert.equal((await described('/webhooks/{source}', await post('/webhooks/github', headers, repo))).status, 'stored');
    assert.equal((await described('/webhooks/{source}', await post('/webhooks/github', headers, repo))).status, 'duplicate');
    const p401 = await described('/webhooks/{source}', await post('/webhooks/github', github(repo, 'wrong'), repo));
    assert.equal(p401.type, `${PROBLEM_TYPE_PREFIX}signature-mismatch`);
    assert.equal(
      (await described('/webhooks/{source}', await post('/webhooks/github', { 'content-type': 'application/json' }, repo))).type,
      `${PROBLEM_TYPE_PREFIX}missing-header`,
    );
    assert.equal(
      (await described('/webhooks/{source}', await post('/webhooks/github', { ...github(repo), 'x-hub-signature-256': 'md5=zz' }, repo))).type,
      `${PROBLEM_TYPE_PREFIX}malformed-header`,
    );
    const p404 = await described('/webhooks/{source}', await post('/webhooks/nosuch', github(repo), repo));
    assert.equal(p404.type, `${PROBLEM_TYPE_PREFIX}unknown-source`);
    assert.equal(
      (await described('/webhooks/{source}', await post('/webhooks/github', github('not json'), 'not json'))).type,
      `${PROBLEM_TYPE_PREFIX}not-json`,
    );
    const big = JSON.stringify({ ...JSON.parse(repo), pad: 'x'.repeat(4096) });
    assert.equal((await described('/webhooks/{source}', await post('/webhooks/github', github(big), big))).type, `${PROBLEM_TYPE_PREFIX}too-large`);
  });

  it('events: 200, 207, 400 bad batch, 401 no token, 403 token not bound to the source — each described', async () => {
    const auth = { 'content-type': 'application/json', authorization: 'Bearer shop-token' };
    const event = (id: string) => ({ id, type: 'order.created', entity: { type: 'order', id }, version: 1, data: { total: 1 } });
    const ok = await described('/events', await post('/events', auth, JSON.stringify({ source: 'shop', events: [event('o-1')] })));
    assert.deepEqual(
      (ok as unknown as { results: { status: string }[] }).results.map((r) => r.status),
      ['stored'],
    );
    const some = await described(
      '/events',
      await post('/events', auth, JSON.stringify({ source: 'shop', events: [event('o-2'), { ...event('o-3'), version: 0 }] })),
    );
    assert.deepEqual(
      (some as unknown as { results: { status: string }[] }).results.map((r) => r.status),
      ['stored', 'invalid'],
    );
    assert.equal((await described('/events', await post('/events', auth, '{"source":"shop"}'))).type, `${PROBLEM_TYPE_PREFIX}bad-batch`);
    assert.equal((await described('/events', await post('/events', { 'content-type': 'application/json' }, '{}'))).type, `${PROBLEM_TYPE_PREFIX}unauthorized`);
    assert.equal(
      (await described('/events', await post('/events', auth, JSON.stringify({ source: 'standard', events: [event('o-4')] })))).type,
      `${PROBLEM_TYPE_PREFIX}source-not-allowed`,
    );
  });

  it('a status ingest answers but the document leaves out is caught (the check can fail)', async () => {
    const trimmed = structuredClone(doc);
    delete trimmed.paths['/events']!.post!.responses['403'];
    const saved = doc;
    doc = trimmed;
    try {
      const res = await post(
        '/events',
        { 'content-type': 'application/json', authorization: 'Bearer shop-token' },
        JSON.stringify({ source: 'standard', events: [{ type: 'order.created', entity: { type: 'order', id: 'o-5' }, version: 1, data: {} }] }),
      );
      assert.equal(res.status, 403);
      await assert.rejects(described('/events', res), /answered 403, which the document does not list/);
    } finally {
      doc = saved;
    }
  });

  it('docs/errors.md lists every problem type with its status', () => {
    const text = readFileSync(errorsDoc, 'utf8');
    for (const [slug, { status }] of Object.entries(PROBLEM_TYPES)) {
      assert.match(text, new RegExp(`\\| \`${slug}\` \\| ${status} \\|`), `docs/errors.md → Problem types lacks | \`${slug}\` | ${status} |`);
    }
  });
});
