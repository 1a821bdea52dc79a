// Second factors and passkeys: WebAuthn credentials and their single-use challenges, TOTP,
// recovery codes, sign-in progress between pages, and security events.

export async function up(knex) {
  await knex.schema.createTable('webauthn_credentials', (t) => {
    t.string('id', 1400).primary(); // credential id, base64url
    t.string('realm_id', 64).notNullable().references('id').inTable('realms').onDelete('CASCADE');
    t.string('user_id', 64).notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.string('rp_id', 300).notNullable();
    t.text('public_key').notNullable(); // COSE public key, base64url
    t.bigInteger('counter').notNullable().defaultTo(0);
    t.text('transports').notNullable().defaultTo('[]');
    t.string('device_type', 20).notNullable(); // singleDevice | multiDevice
    t.boolean('backed_up').notNullable().defaultTo(false);
    t.boolean('discoverable').notNullable().defaultTo(true);
    t.string('aaguid', 36);
    t.string('attestation_format', 40);
    t.string('name', 100).notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('last_used_at');
    t.index(['realm_id', 'user_id']);
  });

  await knex.schema.createTable('webauthn_challenges', (t) => {
    t.string('challenge', 200).primary(); // base64url, random
    t.string('realm_id', 64).notNullable();
    t.string('ceremony', 20).notNullable(); // registration | authentication
    t.string('bound_to', 200).notNullable(); // "interaction:<uid>" or "account:<session id>"
    t.string('rp_id', 300).notNullable();
    t.string('user_id', 64);
    t.bigInteger('expires_at').notNullable();
    t.bigInteger('used_at');
    t.index(['expires_at']);
  });

  await knex.schema.createTable('totp_factors', (t) => {
    t.string('user_id', 64).primary().references('id').inTable('users').onDelete('CASCADE');
    t.string('realm_id', 64).notNullable();
    t.text('secret').notNullable(); // sealed with SecretBox
    t.bigInteger('last_used_step').notNullable().defaultTo(-1);
    t.bigInteger('confirmed_at');
    t.bigInteger('created_at').notNullable();
  });

  await knex.schema.createTable('recovery_codes', (t) => {
    t.string('code_hash', 100).primary(); // HMAC-SHA256 of the normalised code
    t.string('realm_id', 64).notNullable();
    t.string('user_id', 64).notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.bigInteger('created_at').notNullable();
    t.bigInteger('used_at');
    t.index(['user_id']);
  });

  await knex.schema.createTable('signin_progress', (t) => {
    t.string('realm_id', 64).notNullable();
    t.string('uid', 200).notNullable(); // interaction uid
    t.text('data').notNullable(); // JSON: email, accountId, amr, stage
    t.bigInteger('expires_at').notNullable();
    t.primary(['realm_id', 'uid']);
  });

  await knex.schema.createTable('security_events', (t) => {
    t.increments('id');
    t.string('realm_id', 64).notNullable();
    t.string('user_id', 64);
    t.string('type', 60).notNullable();
    t.text('detail').notNullable().defaultTo('{}');
    t.bigInteger('created_at').notNullable();
    t.index(['realm_id', 'user_id']);
  });

  await knex.schema.alterTable('users', (t) => {
    t.bigInteger('passkey_offer_snoozed_until');
  });
}

export async function down(knex) {
  await knex.schema.alterTable('users', (t) => t.dropColumn('passkey_offer_snoozed_until'));
  for (const table of ['security_events', 'signin_progress', 'recovery_codes', 'totp_factors', 'webauthn_challenges', 'webauthn_credentials']) {
    await knex.schema.dropTableIfExists(table);
  }
}
