// The tenant a grant was signed in for. node-oidc-provider's Grant keeps a fixed set of
// properties, so the tenant chosen at sign-in is kept here, keyed by the grant it belongs to;
// every token of the grant (code, refresh, rotated refresh, access, ID) reads it back.

export async function up(knex) {
  await knex.schema.createTable('grant_tenants', (t) => {
    t.string('realm_id', 64).notNullable();
    t.string('grant_id', 64).notNullable();
    t.string('tenant_id', 64).notNullable();
    t.bigInteger('created_at').notNullable();
    t.primary(['realm_id', 'grant_id']);
    t.foreign(['realm_id', 'tenant_id']).references(['realm_id', 'id']).inTable('tenants').onDelete('CASCADE');
  });
}

export async function down(knex) {
  await knex.schema.dropTableIfExists('grant_tenants');
}
