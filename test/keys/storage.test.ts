import { afterAll, beforeAll, expect, it } from 'vitest';
import { SecretBox } from '../../src/crypto/secret-box.js';
import { type Db } from '../../src/db/knex.js';
import { KeyService } from '../../src/keys/service.js';
import { RealmService } from '../../src/realms/service.js';
import { describeEachDatabase, migratedDatabase, type TestDatabase } from '../helpers/databases.js';

describeEachDatabase('signing keys at rest', (kind) => {
  let migrated: Awaited<ReturnType<typeof migratedDatabase>>;
  let database: TestDatabase;
  let db: Db;
  const secret = 'a'.repeat(43);

  beforeAll(async () => {
    migrated = await migratedDatabase(kind);
    ({ database, db } = migrated);
    const keys = new KeyService(db, new SecretBox(secret), { retentionMs: 60_000 });
    await new RealmService(db, keys).create({ id: 'r1', issuers: ['https://r1.example.test'] });
  });
  afterAll(async () => {
    await migrated?.close();
  });

  it('stores private keys encrypted, one key per family with a unique kid', async () => {
    const rows = await db('signing_keys').where({ realm_id: 'r1' });
    expect(rows.map((r: any) => r.alg).sort()).toEqual(['ES256', 'EdDSA', 'RSA']);
    expect(new Set(rows.map((r: any) => r.kid)).size).toBe(3);
    for (const row of rows) {
      expect(row.private_jwk.startsWith('v1.')).toBe(true);
      expect(row.private_jwk).not.toContain('"d"');
      expect(JSON.parse(row.public_jwk).d).toBeUndefined();
    }
  });

  it('opens them with the right secret only', async () => {
    const right = new KeyService(db, new SecretBox(secret), { retentionMs: 60_000 });
    const material = await right.signingMaterial('r1');
    expect(material.privateJwks).toHaveLength(3);
    expect(material.privateJwks.every((k) => typeof k.d === 'string')).toBe(true);
    expect(material.jwks.keys.every((k) => k.d === undefined)).toBe(true);
    const wrong = new KeyService(db, new SecretBox('b'.repeat(43)), { retentionMs: 60_000 });
    await expect(wrong.signingMaterial('r1')).rejects.toThrow(/LATCHKEY_SECRET/);
  });
});
