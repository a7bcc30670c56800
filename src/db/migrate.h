/* migrate.h — applies the numbered SQL files of a directory, each once.
 *
 * Files named NNN_name.sql are applied in name order; each applied file is
 * recorded in schema_migrations (version, name, applied_at), so a second
 * start applies nothing. Several chatd starting at once serialise on a lock
 * row (schema_lock: a holder and an expiry) rather than GET_LOCK, which a
 * Galera cluster does not share between its nodes. On a cluster, one
 * `chatd --migrate` runs them before the nodes start, and the nodes only
 * check (migrate = check).
 *
 * May call: db, base. */
#ifndef CHAT_MIGRATE_H
#define CHAT_MIGRATE_H

#include <stdbool.h>

/* Applies what is missing from dir (apply), or only checks that nothing is
 * missing (!apply). Returns 0, or -1 with the failing file, or the pending
 * ones, logged (later files are not tried). Call from main, before serving. */
int migrate_run(const char *dir, bool apply);

#endif
