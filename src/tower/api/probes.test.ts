/**
 * The query API probed as an attacker would: SQL-looking filter values, huge windows and
 * steps, malformed numbers, a wrong token of the right length, repeated failed tokens, the
 * login cookie, a token revoked while the tower runs, and a failure that must not echo the
 * tower's insides. Against a real tower process over HTTPS (and, for the 500, the API alone).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  apiAlone,
  flow,
  type Json,
  TowerRig,
  tacmesh,
  waitFor,
} from '../../../test/support/tower-process.js';

/** What no answer may carry: the names of the tower's parts, errors, SQL. */
const INTERNALS = /duckdb|error:|exception|select |from flows|stack|at \w+ \(|\.ts:/i;

describe('API probes against a running tower', () => {
  const rig = new TowerRig();

  before(async () => {
    await rig.start(['alpha']);
    const a = rig.node('alpha').connect({ subnets: ['10.77.91.0/24'] });
    assert.equal((await a.result).welcome, true);
    assert.ok(await a.batch([flow(1, '10.77.91.1', '10.77.91.2'), flow(2, '10.77.91.2', '10.77.91.1')]));
    a.close();
  });

  after(() => rig.stop());

  test('SQL-looking filter values match nothing and change nothing', async () => {
    // the filters of every view, and those of the HTTP view alone
    const everywhere = [
      `node=${encodeURIComponent("alpha' OR '1'='1")}`,
      `ip=${encodeURIComponent("10.77.91.1' OR 1=1 --")}`,
      `iface=${encodeURIComponent('eth0"; DROP TABLE flows; --')}`,
    ];
    const httpOnly = [
      `url=${encodeURIComponent("%' UNION SELECT * FROM nodes --")}`,
      `method=${encodeURIComponent("GET' OR 'x'='x")}`,
    ];
    const probes = [
      ...everywhere.flatMap((q) =>
        ['summary', 'talkers', 'pies', 'map', 'throughput', 'flows'].map((p) => `${p}?${q}`),
      ),
      ...httpOnly.map((q) => `http?${q}`),
    ];
    for (const probe of probes) {
      const r = await rig.api(`${probe}&last=1h`);
      assert.equal(r.status, 200, `${probe}: ${JSON.stringify(r.body)}`);
      assert.doesNotMatch(JSON.stringify(r.body), /10\.77\.91\.[12]"/, `${probe} matched nothing`);
    }
    const all = (await rig.api('summary?last=1h')).body;
    assert.equal(all.flowRecords, 2, 'the records are still there');
  });

  test('malformed numbers, huge windows and steps are refused with the reason, never a 500', async () => {
    const cases: [string, RegExp][] = [
      ['talkers?limit=abc', /limit must be a whole number from 1 to 1000/],
      ['talkers?limit=1;DROP%20TABLE%20flows', /limit must be a whole number/],
      ['http?limit=1e9', /limit must be a whole number from 1 to 5000/],
      ['http?status=abc', /status must be a whole number from 100 to 599/],
      ['flows?dscp=64', /dscp must be a whole number from 0 to 63/],
      ['flows?dscp=ef', /dscp must be a whole number from 0 to 63/],
      ['summary?last=100000d', /longer than 31 days/],
      ['summary?from=0', /longer than 31 days/],
      ['pies?from=99999999999999999999', /neither ms since the epoch nor an ISO time/],
      ['throughput?last=5m&step=1', /step must be a whole number from 1000/],
      ['throughput?last=5m&step=1e300', /step must be a whole number/],
      ['throughput?last=30d&step=1000', /more than 10000 buckets/],
    ];
    for (const [path, reason] of cases) {
      const r = await rig.api(path);
      assert.equal(r.status, 400, `${path}: ${r.status} ${JSON.stringify(r.body)}`);
      assert.match(r.body.error, reason, path);
      assert.doesNotMatch(JSON.stringify(r.body), INTERNALS, path);
    }
    const ok = await rig.api('throughput?last=30d');
    assert.equal(ok.status, 200, 'the longest window with its default step is answered');
  });

  test('a wrong token of the right length is refused like any other', async () => {
    const wrong = `${rig.operator.slice(0, -1)}${rig.operator.endsWith('A') ? 'B' : 'A'}`;
    assert.equal(wrong.length, rig.operator.length);
    const r = await rig.api('nodes', { token: wrong, from: '127.0.0.5' });
    assert.equal(r.status, 401);
    const short = await rig.api('nodes', { token: rig.operator.slice(0, 10), from: '127.0.0.5' });
    assert.deepEqual(short.body, r.body, 'the same answer, whatever the length');
    assert.equal((await rig.api('nodes')).status, 200);
  });

  test('failed tokens are throttled per address; other addresses are not', async () => {
    const from = '127.0.0.7';
    const wrong = 'x'.repeat(rig.operator.length);
    for (let i = 0; i < 5; i++) assert.equal((await rig.api('nodes', { token: wrong, from })).status, 401);
    const blocked = await rig.api('nodes', { token: rig.operator, from });
    assert.equal(blocked.status, 429, 'even the right token waits');
    assert.ok(Number(blocked.headers['retry-after']) > 0);
    const login = await rig.api('login', {
      method: 'POST',
      body: JSON.stringify({ token: wrong }),
      token: null,
      from,
    });
    assert.equal(login.status, 429, 'the login form too');
    assert.equal((await rig.api('nodes')).status, 200, 'another address is served');
  });

  test('the login cookie holds a session, not the token; logout and a revoked token end it, without a restart', async () => {
    const pid = rig.pid;
    const login = await rig.api('login', {
      method: 'POST',
      body: JSON.stringify({ token: rig.viewer }),
      token: null,
    });
    assert.equal(login.status, 200);
    const setCookie = String(login.headers['set-cookie']);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /Secure/);
    assert.match(setCookie, /SameSite=Strict/);
    assert.ok(!setCookie.includes(rig.viewer), 'the token is not in the cookie');
    const cookie = setCookie.split(';')[0] as string;
    assert.equal((await rig.api('whoami', { cookie, token: null })).body.name, 'watcher');

    const logout = await rig.api('logout', { method: 'POST', cookie, token: null });
    assert.equal(logout.status, 200);
    assert.equal((await rig.api('whoami', { cookie, token: null })).status, 401, 'logged out');

    const again = await rig.api('login', {
      method: 'POST',
      body: JSON.stringify({ token: rig.viewer }),
      token: null,
    });
    const cookie2 = String(again.headers['set-cookie']).split(';')[0] as string;
    assert.equal((await rig.api('whoami', { cookie: cookie2, token: null })).status, 200);
    const revoked = await tacmesh([
      'tower',
      'token',
      '--file',
      `${rig.dir}/tokens.yaml`,
      '--name',
      'watcher',
      '--revoke',
    ]);
    assert.equal(revoked.code, 0, revoked.stderr);
    await waitFor('the token refused', async () =>
      (await rig.api('whoami', { token: rig.viewer, from: '127.0.0.9' })).status === 401 ? true : undefined,
    );
    assert.equal(
      (await rig.api('whoami', { cookie: cookie2, token: null })).status,
      401,
      'its session ended too',
    );
    assert.equal((await rig.api('whoami')).status, 200, 'the other tokens still work');
    assert.equal(rig.pid, pid, 'no restart');
  });
});

test('an internal failure is answered 500 with an incident id, never the error itself', async () => {
  const api = await apiAlone([['op', 'operator']]);
  try {
    await api.store.reader.run('DROP TABLE flows'); // the store breaks under the API
    const res = await api.app.request('/api/v1/summary', {
      headers: { authorization: `Bearer ${api.tokens[0]}` },
    });
    assert.equal(res.status, 500);
    const body = (await res.json()) as Json;
    assert.deepEqual(Object.keys(body).sort(), ['error', 'incident']);
    assert.equal(body.error, 'internal error');
    assert.match(body.incident, /^[0-9a-f]{12}$/);
    assert.doesNotMatch(JSON.stringify(body), INTERNALS);
  } finally {
    api.close();
  }
});
