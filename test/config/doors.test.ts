import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatIssue, resolveConfig } from '../../src/config/resolve.ts';

function issues(yaml: string): string[] {
  const r = resolveConfig(yaml, {}, { file: 'hestia.yml' });
  return r.ok ? [] : r.issues.map(formatIssue);
}

describe('config: host and port doors', () => {
  it('accepts hosts, listen, service_domain and allowed_hosts, normalising names', () => {
    const r = resolveConfig(
      `server: {port: 8080, service_domain: Home.Arpa., allowed_hosts: [Gpu.LAN]}
services:
  comfy: {base_url: "http://127.0.0.1:8188", hosts: [Comfy.Localhost.], listen: 8189}
  webui: {base_url: "http://127.0.0.1:3000", listen: "0.0.0.0:3001"}
`,
      {},
    );
    assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
    assert.deepEqual(r.config.services.comfy?.hosts, ['comfy.localhost']);
    assert.equal(r.config.services.comfy?.listen, 8189);
    assert.equal(r.config.services.webui?.listen, '0.0.0.0:3001');
    assert.equal(r.config.server.service_domain, 'home.arpa');
    assert.deepEqual(r.config.server.allowed_hosts, ['gpu.lan']);
  });

  it('refuses a host used by two services, naming file, key and both services', () => {
    const out = issues(`services:
  a: {base_url: "http://127.0.0.1:1", hosts: [x.localhost]}
  b: {base_url: "http://127.0.0.1:2", hosts: [X.localhost]}
`);
    assert.deepEqual(out, ["hestia.yml: services.b.hosts.0: host 'x.localhost' is used by both services 'a' and 'b'"]);
  });

  it('refuses a hosts entry colliding with service_domain', () => {
    const out = issues(`server: {service_domain: localhost}
services:
  a: {base_url: "http://127.0.0.1:1"}
  b: {base_url: "http://127.0.0.1:2", hosts: [a.localhost]}
`);
    assert.equal(out.length, 1);
    assert.match(out[0]!, /host 'a\.localhost' is used by both services 'a' and 'b'/);
  });

  it('refuses a port used twice, and the main port', () => {
    const out = issues(`server: {port: 9000}
services:
  a: {base_url: "http://127.0.0.1:1", listen: 8188}
  b: {base_url: "http://127.0.0.1:2", listen: "127.0.0.1:8188"}
  c: {base_url: "http://127.0.0.1:3", listen: 9000}
`);
    assert.deepEqual(out, [
      "hestia.yml: services.b.listen: port 8188 is used by both services 'a' and 'b'",
      'hestia.yml: services.c.listen: port 9000 is the main port (server.port)',
    ]);
  });

  it('refuses a malformed host and a malformed listen', () => {
    const out = issues(`services:
  a: {base_url: "http://127.0.0.1:1", hosts: ["http://a.example/"], listen: "nope"}
`);
    assert.equal(out.length, 2);
    assert.match(out.join('\n'), /services\.a\.hosts\.0: is not a host name .*http:\/\/a\.example\//);
    assert.match(out.join('\n'), /services\.a\.listen: .*must be a port \(8188\) or "ADDR:PORT"/);
  });
});
