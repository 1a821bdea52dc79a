// "Forgot your password?": single-use reset links sent by email. Only a SHA-256 of the link's token is
// stored, so a copy of the database cannot be used to reset anyone's password.

export async function up(knex) {
  await knex.schema.createTable('password_resets', (t) => {
    t.string('token_hash', 64).primary(); // hex SHA-256 of the token in the emailed link
    t.string('realm_id', 64).notNullable().references('id').inTable('realms').onDelete('CASCADE');
    t.string('user_id', 64).notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').notNullable();
    t.index(['realm_id', 'user_id']);
    t.index(['expires_at']);
  });
}

export async function down(knex) {
  await knex.schema.dropTableIfExists('password_resets');
}
