// A temporary password (Keycloak's "Temporary" toggle): an operator sets a password with
// `--temporary` (or `temporary_password: true` in the admin API), and the user must choose a new one at
// their next sign-in before it completes. Any password the user sets themselves clears it.

export async function up(knex) {
  await knex.schema.alterTable('users', (t) => {
    t.boolean('password_change_required').notNullable().defaultTo(false);
  });
}

export async function down(knex) {
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('password_change_required');
  });
}
