// Initial schema: realms and their issuer domains, signing keys, clients, users,
// node-oidc-provider's stored models, and sign-in throttling.
// Timestamps are epoch milliseconds (bigint) so SQLite and PostgreSQL behave the same.

export async function up(knex) {
  await knex.schema.createTable('realms', (t) => {
    t.string('id', 64).primary();
    t.string('display_name', 200).notNullable();
    t.text('settings').notNullable().defaultTo('{}');
    t.bigInteger('revision').notNullable().defaultTo(1);
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
  });

  await knex.schema.createTable('realm_issuers', (t) => {
    t.string('issuer', 500).primary();
    t.string('realm_id', 64).notNullable().references('id').inTable('realms').onDelete('CASCADE');
    t.string('host', 300).notNullable().unique();
    t.boolean('is_primary').notNullable().defaultTo(false);
    t.bigInteger('created_at').notNullable();
    t.index(['realm_id']);
  });

  await knex.schema.createTable('signing_keys', (t) => {
    t.string('kid', 100).primary();
    t.string('realm_id', 64).notNullable().references('id').inTable('realms').onDelete('CASCADE');
    t.string('alg', 20).notNullable();
    t.text('public_jwk').notNullable();
    t.text('private_jwk').notNullable(); // AES-256-GCM ciphertext, see src/crypto/secret-box.ts
    t.bigInteger('created_at').notNullable();
    t.bigInteger('activate_at').notNullable();
    t.index(['realm_id', 'alg']);
  });

  await knex.schema.createTable('clients', (t) => {
    t.string('client_id', 100).primary();
    t.string('realm_id', 64).notNullable().references('id').inTable('realms').onDelete('CASCADE');
    t.string('name', 200).notNullable();
    t.text('metadata').notNullable();
    t.string('secret_hash', 200);
    t.boolean('first_party').notNullable().defaultTo(false);
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.index(['realm_id']);
  });

  await knex.schema.createTable('users', (t) => {
    t.string('id', 64).primary();
    t.string('realm_id', 64).notNullable().references('id').inTable('realms').onDelete('CASCADE');
    t.string('email', 320).notNullable();
    t.string('email_normalized', 320).notNullable();
    t.boolean('email_verified').notNullable().defaultTo(false);
    t.string('name', 200);
    t.string('picture', 2000);
    t.text('password_hash');
    t.boolean('disabled').notNullable().defaultTo(false);
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.unique(['realm_id', 'email_normalized']);
  });

  await knex.schema.createTable('oidc_payloads', (t) => {
    t.string('realm_id', 64).notNullable();
    t.string('model', 40).notNullable();
    t.string('id', 200).notNullable();
    t.text('payload').notNullable();
    t.string('grant_id', 200);
    t.string('uid', 200);
    t.string('user_code', 100);
    t.bigInteger('expires_at');
    t.bigInteger('consumed_at');
    t.primary(['realm_id', 'model', 'id']);
    t.index(['realm_id', 'grant_id']);
    t.index(['realm_id', 'uid']);
    t.index(['realm_id', 'user_code']);
    t.index(['expires_at']);
  });

  await knex.schema.createTable('login_throttle', (t) => {
    t.string('realm_id', 64).notNullable();
    t.string('key', 200).notNullable(); // "account:<sha256 of normalised email>" or "ip:<address>"
    t.integer('failures').notNullable().defaultTo(0);
    t.bigInteger('last_failure_at').notNullable();
    t.bigInteger('locked_until').notNullable().defaultTo(0);
    t.primary(['realm_id', 'key']);
  });
}

export async function down(knex) {
  for (const table of ['login_throttle', 'oidc_payloads', 'users', 'clients', 'signing_keys', 'realm_issuers', 'realms']) {
    await knex.schema.dropTableIfExists(table);
  }
}
