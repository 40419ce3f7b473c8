import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isSecretName, MASK, maskSecrets, maskText, maskUrl } from '../../src/config/mask.ts';
import { configFrom, startTestGateway } from '../helpers/gateway.ts';

describe('maskUrl / maskText', () => {
  test('URL userinfo: the password (or a lone user token) is masked, the user name kept', () => {
    assert.equal(maskUrl('http://me:s3cret@host:8080/p'), `http://me:${MASK}@host:8080/p`);
    assert.equal(maskUrl('https://ghp_abc123@host/'), `https://${MASK}@host/`);
    assert.equal(maskUrl('http://{host}:{port}/h'), 'http://{host}:{port}/h', 'templates stay as written');
  });

  test('token-like query values are masked, others kept', () => {
    assert.equal(
      maskUrl('http://h/p?token=t1&api_token=t2&access_token=t3&key=t4&X-Amz-Signature=t5&model=llama&page=2'),
      `http://h/p?token=${MASK}&api_token=${MASK}&access_token=${MASK}&key=${MASK}&X-Amz-Signature=${MASK}&model=llama&page=2`,
    );
    assert.equal(maskUrl('http://h/cb#access_token=t6'), `http://h/cb#access_token=${MASK}`);
  });

  test('URLs inside free text', () => {
    assert.equal(
      maskText('curl -fsS "http://u:pw@ctl:9/start?password=x" && echo ok'),
      `curl -fsS "http://u:${MASK}@ctl:9/start?password=${MASK}" && echo ok`,
    );
  });
});

test('isSecretName: the documented name rule', () => {
  for (const n of [
    'HF_TOKEN',
    'OPENAI_API_KEY',
    'AWS_SECRET_ACCESS_KEY',
    'PGPASSWORD',
    'DB_PASS',
    'db-pwd',
    'GOOGLE_APPLICATION_CREDENTIALS',
    'X-Auth',
    'session_id',
    'sig',
  ])
    assert.ok(isSecretName(n), n);
  for (const n of ['PATH', 'HOME', 'CUDA_VISIBLE_DEVICES', 'model', 'passenger', 'Content-Type', 'prompt'])
    assert.ok(!isSecretName(n), n);
});

describe('maskSecrets over a config', () => {
  const config = configFrom({
    semaphore_base_url: 'http://sem-user:sem-pw@sem:3000',
    semaphore_api_key: 'sem-api-key',
    services: {
      proc: {
        base_url: 'http://bob:base-pw@127.0.0.1:1/?api_token=base-tok',
        health_url: 'http://127.0.0.1:1/health?token=health-tok',
        fallback_url: 'http://fallback-user:fb-pw@127.0.0.1:2',
        launcher: {
          type: 'process',
          command: ['server', '--port', '{port}'],
          env: {
            HF_TOKEN: 'hf-tok',
            MY_SECRET: 's1',
            DB_PASSWORD: 'p1',
            DB_PASS: 'p2',
            MODEL: 'llama3',
            MIRROR: 'https://u:mirror-pw@m/',
          },
        },
        routing: { model_key: 'model' },
      },
      hook: {
        base_url: 'http://127.0.0.1:3',
        launcher: {
          type: 'http',
          start_url: 'http://ctl/start?token=start-tok',
          headers: {
            Authorization: 'Bearer bearer-tok',
            'X-Api-Token': 'hdr-tok',
            'X-Custom': 'Token custom-tok',
            Accept: 'application/json',
          },
          body: { api_key: 'body-key', nested: { password: 'body-pw', model: 'm' }, name: 'x' },
        },
      },
      form: {
        base_url: 'http://127.0.0.1:4',
        launcher: { type: 'http', start_url: 'http://ctl/start', body: 'client_secret=form-secret&grant=client' },
      },
      jsonbody: {
        base_url: 'http://127.0.0.1:5',
        launcher: { type: 'http', start_url: 'http://ctl/start', body: '{"token":"json-tok","n":1}' },
      },
    },
    machines: {
      box: {
        host: '10.0.0.2',
        ssh: { host_key_sha256: 'SHA256:public-fingerprint' },
        wake: {
          type: 'http',
          url: 'http://ha/api/services?api_key=wake-key',
          headers: { Authorization: 'Bearer ha-tok' },
          wait_url: 'http://10.0.0.2/',
        },
      },
    },
    auth: { dashboard: { username: 'me', password_hash: `scrypt$16384$8$1$${'A'.repeat(22)}==$${'B'.repeat(43)}=` } },
  });
  const masked = maskSecrets(config);
  const text = JSON.stringify(masked);

  test('no secret of any kind survives', () => {
    for (const secret of [
      'sem-pw',
      'sem-api-key',
      'base-pw',
      'base-tok',
      'health-tok',
      'fb-pw',
      'hf-tok',
      '"s1"',
      '"p1"',
      '"p2"',
      'mirror-pw',
      'start-tok',
      'bearer-tok',
      'hdr-tok',
      'custom-tok',
      'body-key',
      'body-pw',
      'form-secret',
      'json-tok',
      'wake-key',
      'ha-tok',
      'AAAA',
    ])
      assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
  });

  test('what is not secret is still shown', () => {
    const proc = masked.services.proc!;
    assert.equal(proc.base_url, `http://bob:${MASK}@127.0.0.1:1/?api_token=${MASK}`);
    assert.deepEqual(proc.launcher?.type === 'process' ? proc.launcher.env : null, {
      HF_TOKEN: MASK,
      MY_SECRET: MASK,
      DB_PASSWORD: MASK,
      DB_PASS: MASK,
      MODEL: 'llama3',
      MIRROR: `https://u:${MASK}@m/`,
    });
    assert.equal(proc.routing?.model_key, 'model', 'a schema key containing "key" is not a secret');
    const hook = masked.services.hook!.launcher;
    assert.ok(hook?.type === 'http');
    assert.deepEqual(hook.headers, {
      Authorization: MASK,
      'X-Api-Token': MASK,
      'X-Custom': `Token ${MASK}`,
      Accept: 'application/json',
    });
    assert.deepEqual(hook.body, { api_key: MASK, nested: { password: MASK, model: 'm' }, name: 'x' });
    const form = masked.services.form!.launcher;
    assert.equal(form?.type === 'http' ? form.body : null, `client_secret=${MASK}&grant=client`);
    assert.equal(masked.machines.box!.ssh?.host_key_sha256, 'SHA256:public-fingerprint');
    assert.equal(masked.auth.dashboard?.username, 'me');
    assert.equal(masked.auth.enabled, false, 'the auth block itself is shown');
  });

  test('the config itself is not modified', () => {
    assert.equal(config.semaphore_api_key, 'sem-api-key');
  });
});

test('GET /v1/strategies masks userinfo and token query values of instance and by_model URLs', async (t) => {
  const gw = await startTestGateway({
    services: {
      llm: {
        base_url: 'http://127.0.0.1:9',
        strategy: 'model_router',
        instances: [{ url: 'http://u:inst-pw@127.0.0.1:9/?api_token=inst-tok' }],
        routing: { by_model: { llama3: 'http://127.0.0.1:9/?token=model-tok' } },
      },
    },
  });
  t.after(() => gw.close());
  const text = await (await fetch(`${gw.url}/v1/strategies`)).text();
  for (const s of ['inst-pw', 'inst-tok', 'model-tok']) assert.ok(!text.includes(s), `${s} leaked: ${text}`);
  assert.ok(text.includes(`api_token=${MASK}`));
});
