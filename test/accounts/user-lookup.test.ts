import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('user lookups shared within one request', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => server?.close());

  it('a lookup made for a request is answered once for that request; other requests and plain lookups read the row again', async () => {
    const { users, db } = server.services;
    const created = await users.create({ realmId: 'default', email: 'memo@example.test', name: 'Before' });
    const request = {};
    expect((await users.findById('default', created.id, request))?.name).toBe('Before');
    await db('users').where({ realm_id: 'default', id: created.id }).update({ name: 'After' });
    // the same request keeps the answer it was given (a passkey verify and the resume it runs in process)
    expect((await users.findById('default', created.id, request))?.name).toBe('Before');
    expect((await users.findById('default', created.id, {}))?.name).toBe('After');
    expect((await users.findById('default', created.id))?.name).toBe('After');
    // and a user that does not exist is not found, in a request or not
    expect(await users.findById('default', 'no-such-user', request)).toBeUndefined();
    expect(await users.findById('other-realm', created.id, request)).toBeUndefined();
  });
});
