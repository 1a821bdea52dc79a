import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodyPathOf, namingBodyFields, ProblemError } from '../../src/admin/problem.js';
import { InvalidFieldsError } from '../../src/errors.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * RealmService refuses bad input as field errors, so that each front end names its own field: the CLI
 * its flags (test/cli/cli.test.ts), an API its body fields. No message of the service names a CLI flag.
 */
describe('RealmService field errors', () => {
  let server: TestServer;
  const bodyPath = bodyPathOf({ displayName: 'display_name' });

  beforeAll(async () => {
    server = await startTestServer({ db: 'sqlite' });
  });
  afterAll(async () => server?.close());

  const refusal = async (input: Parameters<TestServer['services']['realms']['create']>[0]) => {
    const err = await server.services.realms.create(input).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidFieldsError);
    expect((err as Error).message).not.toMatch(/--[a-z]/);
    const named = await namingBodyFields(bodyPath, () => server.services.realms.create(input)).catch((e: unknown) => e);
    expect(named).toBeInstanceOf(ProblemError);
    expect((named as ProblemError).status).toBe(400);
    expect((named as Error).message).not.toMatch(/--[a-z]/);
    return named as ProblemError;
  };

  it('names the missing issuers, a bad issuer by its index, the id, the settings and the display name as fields', async () => {
    expect((await refusal({ id: 'none', issuers: [] })).fields).toEqual([{ field: 'body.issuers', message: 'a realm needs at least one issuer URL' }]);

    const bad = await refusal({ id: 'pathy', issuers: ['http://ok.localhost', 'http://pathy.localhost/tenant'] });
    expect(bad.fields.map((f) => f.field)).toEqual(['body.issuers[1]']);
    expect(bad.message).toContain('body.issuers[1]: "http://pathy.localhost/tenant" must be an origin');

    expect((await refusal({ id: 'Bad_ID', issuers: ['http://bad.localhost'] })).fields.map((f) => f.field)).toEqual(['body.id']);
    // a host past DNS's 253 characters: PostgreSQL's column refused it as a server error, SQLite stored it
    const long = await refusal({ id: 'long', issuers: [`http://${Array.from({ length: 5 }, () => 'a'.repeat(60)).join('.')}.localhost`] });
    expect(long.fields.map((f) => f.field)).toEqual(['body.issuers[0]']);
    expect(long.message).toContain('longer than 253 characters');
    const settings = await refusal({ id: 'typo', issuers: ['http://typo.localhost'], settings: { sigingAlg: 'RS256' } });
    expect(settings.fields).toEqual([{ field: 'body.settings', message: 'unknown key "sigingAlg"' }]);
    expect((await refusal({ id: 'twice', issuers: ['http://twice.localhost', 'http://TWICE.localhost/'] })).fields.map((f) => f.field)).toEqual(['body.issuers']);
    expect((await refusal({ id: 'named', issuers: ['http://named.localhost'], displayName: 'a\nb' })).fields.map((f) => f.field)).toEqual(['body.display_name']);

    const realms = await server.services.realms.list();
    expect(realms.map((r) => r.id)).toEqual(['default']);
  });

  it('names a bad issuer added to a realm as the issuer field', async () => {
    const err = await namingBodyFields(bodyPath, () => server.services.realms.addIssuer('default', 'ftp://ftp.localhost')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProblemError);
    expect((err as ProblemError).fields).toEqual([{ field: 'body.issuer', message: '"ftp://ftp.localhost" must use https (or http for development)' }]);
  });
});
