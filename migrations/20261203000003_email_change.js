// Email address changes from the account page: the confirmation link goes to the new address, so the
// link has to remember which address it is for. Empty for the other purposes (password_reset,
// verify_email); purpose `change_email` fits the existing 20-character column.

export async function up(knex) {
  await knex.schema.alterTable('email_links', (t) => {
    t.string('new_email', 320).nullable();
  });
}

export async function down(knex) {
  await knex.schema.alterTable('email_links', (t) => {
    t.dropColumn('new_email');
  });
}
