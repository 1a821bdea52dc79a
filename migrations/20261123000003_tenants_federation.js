// Tenants (a realm's B2B customers), upstream connections (social and enterprise identity
// providers), links from upstream identities to realm users, and trusted external issuers
// whose JWTs the realm accepts (token exchange, admin API).

export async function up(knex) {
  await knex.schema.createTable('tenants', (t) => {
    t.string('realm_id', 64).notNullable().references('id').inTable('realms').onDelete('CASCADE');
    t.string('id', 64).notNullable();
    t.string('display_name', 200).notNullable();
    t.text('branding').notNullable().defaultTo('{}'); // JSON: displayName, logoUrl, primaryColor
    t.boolean('sso_enforced').notNullable().defaultTo(false);
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.primary(['realm_id', 'id']);
  });

  await knex.schema.createTable('tenant_domains', (t) => {
    t.string('realm_id', 64).notNullable();
    t.string('tenant_id', 64).notNullable();
    t.string('domain', 253).notNullable(); // lower case, no leading "@"
    t.primary(['realm_id', 'tenant_id', 'domain']);
    t.index(['realm_id', 'domain']);
    t.foreign(['realm_id', 'tenant_id']).references(['realm_id', 'id']).inTable('tenants').onDelete('CASCADE');
  });

  await knex.schema.createTable('tenant_members', (t) => {
    t.string('realm_id', 64).notNullable();
    t.string('tenant_id', 64).notNullable();
    t.string('user_id', 64).notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.bigInteger('created_at').notNullable();
    t.primary(['realm_id', 'tenant_id', 'user_id']);
    t.index(['realm_id', 'user_id']);
    t.foreign(['realm_id', 'tenant_id']).references(['realm_id', 'id']).inTable('tenants').onDelete('CASCADE');
  });

  await knex.schema.createTable('connections', (t) => {
    t.string('realm_id', 64).notNullable().references('id').inTable('realms').onDelete('CASCADE');
    t.string('id', 64).notNullable();
    t.string('type', 20).notNullable(); // oidc | oauth2
    t.string('preset', 20); // google | github | entra | gitlab, or null for a generic connection
    t.string('display_name', 200).notNullable();
    t.text('config').notNullable().defaultTo('{}'); // JSON: issuer, endpoints, client_id, scopes, claim mapping
    t.text('client_secret'); // AES-256-GCM ciphertext (src/crypto/secret-box.ts)
    t.boolean('enabled').notNullable().defaultTo(true);
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.primary(['realm_id', 'id']);
  });

  // A connection with rows here is limited to those tenants; a tenant's connections are its rows.
  await knex.schema.createTable('tenant_connections', (t) => {
    t.string('realm_id', 64).notNullable();
    t.string('tenant_id', 64).notNullable();
    t.string('connection_id', 64).notNullable();
    t.primary(['realm_id', 'tenant_id', 'connection_id']);
    t.index(['realm_id', 'connection_id']);
    t.foreign(['realm_id', 'tenant_id']).references(['realm_id', 'id']).inTable('tenants').onDelete('CASCADE');
    t.foreign(['realm_id', 'connection_id']).references(['realm_id', 'id']).inTable('connections').onDelete('CASCADE');
  });

  await knex.schema.createTable('federated_identities', (t) => {
    t.string('realm_id', 64).notNullable();
    t.string('connection_id', 64).notNullable();
    t.string('subject', 300).notNullable(); // the upstream `sub` (or user id for OAuth 2.0 providers)
    t.string('user_id', 64).notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.string('email', 320);
    t.text('profile').notNullable().defaultTo('{}'); // JSON: last seen upstream claims (no tokens)
    t.bigInteger('created_at').notNullable();
    t.bigInteger('last_login_at');
    t.primary(['realm_id', 'connection_id', 'subject']);
    t.index(['realm_id', 'user_id']);
    t.foreign(['realm_id', 'connection_id']).references(['realm_id', 'id']).inTable('connections').onDelete('CASCADE');
  });

  await knex.schema.createTable('trusted_issuers', (t) => {
    t.string('realm_id', 64).notNullable().references('id').inTable('realms').onDelete('CASCADE');
    t.string('id', 64).notNullable();
    t.string('issuer', 500).notNullable();
    t.string('audience', 500).notNullable();
    t.string('user_id_expression', 500).notNullable().defaultTo('{sub}');
    t.string('user_id_prefix', 100).notNullable().defaultTo('');
    t.text('admin_user_ids').notNullable().defaultTo('[]'); // JSON array: computed ids that act as realm admins
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.primary(['realm_id', 'id']);
    t.unique(['realm_id', 'issuer', 'audience']);
  });
}

export async function down(knex) {
  for (const table of ['trusted_issuers', 'federated_identities', 'tenant_connections', 'connections', 'tenant_members', 'tenant_domains', 'tenants']) {
    await knex.schema.dropTableIfExists(table);
  }
}
