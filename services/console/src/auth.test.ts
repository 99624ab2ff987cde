import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createAuth, parseTokens } from './auth.js';

describe('console operator tokens, sessions and CSRF', () => {
  it('parses name:token pairs and bare tokens, and refuses short tokens, bad names and an empty list', () => {
    assert.deepEqual(parseTokens('alice:aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb'), [{ name: 'alice', token: 'aaaaaaaaaaaaaaaa' }, { name: 'operator-2', token: 'bbbbbbbbbbbbbbbb' }]);
    assert.throws(() => parseTokens('alice:short'), /shorter than 12/);
    assert.throws(() => parseTokens('al ice:aaaaaaaaaaaaaaaa'), /is no name/);
    assert.throws(() => parseTokens(' , '), /CONSOLE_TOKENS is empty/);
  });

  it('a session names its operator without holding the token, and a forged or foreign one is refused', () => {
    const auth = createAuth(parseTokens('alice:aaaaaaaaaaaaaaaa,bob:bbbbbbbbbbbbbbbb'));
    const alice = auth.byToken('aaaaaaaaaaaaaaaa')!;
    assert.equal(alice.name, 'alice');
    assert.equal(auth.byToken('aaaaaaaaaaaaaaab'), undefined);
    assert.equal(auth.byToken(undefined), undefined);
    const session = auth.session(alice);
    assert.ok(!session.includes('aaaaaaaaaaaaaaaa'));
    assert.equal(auth.bySession(session)?.name, 'alice');
    assert.equal(auth.bySession(`bob.${session.split('.')[1]}`), undefined, 'alice\'s signature does not make a bob session');
    assert.equal(auth.bySession('alice.forged'), undefined);
    assert.equal(auth.bySession(undefined), undefined);
  });

  it('CSRF tokens are per operator; rotating a token out ends its sessions and CSRF tokens', () => {
    const before = createAuth(parseTokens('alice:aaaaaaaaaaaaaaaa,bob:bbbbbbbbbbbbbbbb'));
    const alice = before.byToken('aaaaaaaaaaaaaaaa')!;
    const bob = before.byToken('bbbbbbbbbbbbbbbb')!;
    assert.ok(before.checkCsrf(alice, before.csrf(alice)));
    assert.equal(before.checkCsrf(alice, before.csrf(bob)), false);
    assert.equal(before.checkCsrf(alice, undefined), false);
    const session = before.session(alice);
    const rotated = createAuth(parseTokens('alice:cccccccccccccccc,bob:bbbbbbbbbbbbbbbb'));
    assert.equal(rotated.bySession(session), undefined, 'the old token\'s session is gone');
    assert.equal(rotated.checkCsrf(rotated.byToken('cccccccccccccccc')!, before.csrf(alice)), false);
    assert.equal(rotated.bySession(before.session(bob))?.name, 'bob', 'other operators stay signed in');
  });
});
