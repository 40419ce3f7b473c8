/**
 * package.json `overrides` pins light-my-request's `cookie` to 1.1.1: cookie 2.x declares
 * Node >= 22, so `npm ci` on Node 20 warned EBADENGINE. light-my-request (Fastify's inject())
 * calls cookie's `stringifySetCookie({ name, value })`, which 1.1.x has with the same shape.
 * This checks the override is what is installed and that inject() with cookies still works.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import Fastify from 'fastify';

const require = createRequire(import.meta.url);

test('light-my-request gets a cookie release that supports every Node version we do', () => {
  const lmr = require.resolve('light-my-request/package.json', { paths: [require.resolve('fastify')] });
  const cookiePkg = require.resolve('cookie/package.json', { paths: [lmr] });
  const { version, engines } = require(cookiePkg) as { version: string; engines: { node: string } };
  assert.equal(version, '1.1.1');
  assert.equal(engines.node, '>=18');
});

test('fastify.inject() encodes request cookies through the overridden cookie', async () => {
  const app = Fastify();
  app.get('/echo', async (req) => ({ cookie: req.headers.cookie ?? null }));
  try {
    const res = await app.inject({
      method: 'GET',
      url: '/echo',
      cookies: { session: 'abc', other: 'x y', scoped: { value: '1', path: '/elsewhere' } },
    });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { cookie: 'session=abc; other=x%20y' });
  } finally {
    await app.close();
  }
});
