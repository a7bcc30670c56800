/* migrate.h — applies the numbered SQL files of a directory, each once.
 *
 * Files named NNN_name.sql are applied in name order; each applied file is
 * recorded in schema_migrations (version, name, applied_at), so a second
 * start applies nothing. Several chatd starting at once serialise on a named
 * lock (GET_LOCK).
 *
 * May call: db, base. */
#ifndef CHAT_MIGRATE_H
#define CHAT_MIGRATE_H

/* Applies what is missing from dir. Returns 0, or -1 with the failing file
 * logged (later files are not tried). */
int migrate_run(const char *dir);

#endif
