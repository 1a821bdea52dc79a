// Links sent by email: "Forgot your password?" resets and email address confirmations. Each works once
// and for a limited time. Only a SHA-256 of the link's token is stored, so a copy of the database
// cannot be used to reset a password or confirm an address.

export async function up(knex) {
  await knex.schema.createTable('email_links', (t) => {
    t.string('token_hash', 64).primary(); // hex SHA-256 of the token in the emailed link
    t.string('purpose', 20).notNullable(); // password_reset | verify_email
    t.string('realm_id', 64).notNullable().references('id').inTable('realms').onDelete('CASCADE');
    t.string('user_id', 64).notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').notNullable();
    t.index(['realm_id', 'user_id', 'purpose']);
    t.index(['expires_at']);
  });
}

export async function down(knex) {
  await knex.schema.dropTableIfExists('email_links');
}
