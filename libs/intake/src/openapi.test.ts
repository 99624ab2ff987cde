import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RejectReasons } from '@bus/webhooks';
import { openApiDocument } from './openapi.js';
import { PROBLEM_TYPE_PREFIX, PROBLEM_TYPES } from './problem.js';

describe('the OpenAPI document and the problem types', () => {
  it('every reason a webhook signature is refused for is a 401 problem type', () => {
    for (const reason of RejectReasons) {
      const slug = reason.replaceAll('_', '-') as keyof typeof PROBLEM_TYPES;
      assert.equal(PROBLEM_TYPES[slug]?.status, 401, `${reason} → ${slug}`);
    }
  });

  it('every problem type is answered by some route of the document, under its own status (not-found: by no route)', () => {
    const doc = openApiDocument() as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    const listed = new Map<string, string>();
    for (const ops of Object.values(doc.paths)) {
      for (const op of Object.values(ops)) {
        for (const [status, r] of Object.entries(op.responses)) {
          for (const m of JSON.stringify(r).matchAll(new RegExp(`${PROBLEM_TYPE_PREFIX}([a-z-]+)`, 'g'))) listed.set(m[1]!, status);
        }
      }
    }
    for (const [slug, { status }] of Object.entries(PROBLEM_TYPES)) {
      if (slug === 'not-found') continue;
      assert.equal(listed.get(slug), String(status), slug);
    }
  });

  it('without the publish API the document has no /events', () => {
    assert.equal('/events' in (openApiDocument({ events: false }) as { paths: object }).paths, false);
  });
});
