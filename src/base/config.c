/* config.c — the settings table and its three sources.
 *
 * The table below is the only place a setting is described: its key, type,
 * where it lives in struct config, its default, its range and its help line.
 * Parsing, range checks, the environment names and --help all come from it. */
#include "base/config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum cfg_type { CFG_STR, CFG_INT, CFG_BOOL };

struct cfg_entry {
    const char *key;
    enum cfg_type type;
    size_t offset;
    size_t size; /* for strings: the buffer size */
    const char *def;
    long min, max; /* for integers */
    const char *help;
};

#define STR(f) CFG_STR, offsetof(struct config, f), sizeof(((struct config *)0)->f)
#define INT(f) CFG_INT, offsetof(struct config, f), 0
#define BOOL(f) CFG_BOOL, offsetof(struct config, f), 0

static const struct cfg_entry table[] = {
    {"listen", STR(listen), "127.0.0.1:8080", 0, 0, "HTTP address:port (port 0 picks a free one)"},
    {"db_url", STR(db_url), "mysql://root@127.0.0.1:3306/chat", 0, 0,
     "MariaDB/MySQL server: mysql://user:pass@host:port/db, ?socket=PATH for a unix socket; "
     "host:port,host:port,… for a Galera cluster (written through one node at a time, the "
     "first usable in this order)"},
    {"www_root", STR(www_root), "www", 0, 0, "directory served to browsers"},
    {"sql_dir", STR(sql_dir), "sql", 0, 0, "directory of migrations, applied at start-up"},
    {"log_level", STR(log_level), "info", 0, 0, "error, warn, info or debug"},
    {"log_format", STR(log_format), "text", 0, 0,
     "text: one line `TIME LEVEL MESSAGE [rid=ID]`; json: one JSON object a line (ts, level, "
     "msg, request_id; access lines add type, method, path, status, ms, addr, user_id)"},
    {"access_log", BOOL(access_log), "true", 0, 0,
     "log one line per HTTP request: request id, method, path without the query, status, "
     "time taken, user and client address (never a token)"},
    {"migrate", STR(migrate), "auto", 0, 0,
     "auto: apply missing migrations at start-up; check: refuse to start while one is missing "
     "(cluster nodes, after one `chatd --migrate`)"},
    {"threads", INT(threads), "4", 1, 256,
     "HTTP worker threads, one database connection each (sends, acknowledgements and "
     "password hashes run in pools of their own)"},
    {"connection_limit", INT(connection_limit), "20000", 16, 1000000,
     "open HTTP connections, parked long-polls included"},
    {"connection_timeout_s", INT(connection_timeout_s), "75", 1, 3600,
     "seconds before an idle keep-alive connection is closed"},
    {"connection_memory_kb", INT(connection_memory_kb), "5", 4, 1024,
     "KiB of memory per connection, parked polls included (about what a parked poll costs): "
     "request headers beyond about this less 1 KiB are refused with 431"},
    {"connection_limit_per_address", INT(per_address_limit), "0", 0, 1000000,
     "open HTTP connections from one client address, for a chatd reached directly; 0 = no "
     "limit (the default: behind nginx every connection comes from 127.0.0.1, and nginx's "
     "limit_conn counts the real clients)"},
    {"request_header_timeout_s", INT(header_timeout_s), "10", 1, 3600,
     "seconds for a request line and its headers to arrive, however slowly they trickle in "
     "(the connection is closed past it)"},
    {"request_body_timeout_s", INT(body_timeout_s), "30", 1, 3600,
     "seconds for a request body to arrive after its headers (the connection is closed past it)"},
    {"send_workers", INT(send_workers), "2", 0, 64,
     "threads storing sends in batches (group commit); 0 = one transaction per message"},
    {"send_batch_max", INT(send_batch_max), "256", 1, 4096,
     "most messages stored in one transaction"},
    {"ack_workers", INT(ack_workers), "2", 0, 64,
     "threads storing inbox acknowledgements in batches; 0 = one transaction each"},
    {"tail_users", INT(tail_users), "65536", 0, 1048576,
     "slots for users whose newest stream events are kept in memory for woken polls (about "
     "400 bytes per user with events); 0 = none"},
    {"stream_copy_max", INT(stream_copy_max), "8", 2, 1024,
     "groups of up to this many members get each message copied into every member's stream; "
     "a send into a bigger group writes it once, into the group's log (docs/delivery.md)"},
    {"hash_concurrency", INT(hash_concurrency), "4", 1, 256,
     "password hashes computed at once (19 MiB of memory each)"},
    /* Rate limits (base/ratelimit.h): tokens a minute and the burst. A person
     * types a message a second at most, so sends allow 5 a second on average
     * and a burst of 60 (Synapse allows 0.2/s, burst 10, which a busy group
     * chat passes); registrations and logins per address as Synapse
     * (0.17/s, burst 3) but with room for a household behind one NAT. */
    {"rate_limits", BOOL(rate_limits), "true", 0, 0,
     "false turns every rate limit off (the test suite, the benchmark, make run)"},
    {"rate_send_per_min", INT(rate_send[0]), "300", 0, 1000000,
     "messages an account may send a minute on average (0 = no limit)"},
    {"rate_send_burst", INT(rate_send[1]), "60", 1, 1000000, "messages sent at once"},
    {"rate_thread_change_per_min", INT(rate_thread_change[0]), "60", 0, 1000000,
     "thread creations, renames and member changes an account may make a minute"},
    {"rate_thread_change_burst", INT(rate_thread_change[1]), "20", 1, 1000000,
     "thread changes at once"},
    {"rate_typing_per_min", INT(rate_typing[0]), "120", 0, 1000000,
     "typing notices an account may send a minute"},
    {"rate_typing_burst", INT(rate_typing[1]), "10", 1, 1000000, "typing notices at once"},
    {"rate_user_lookup_per_min", INT(rate_user_lookup[0]), "600", 0, 1000000,
     "user searches and lookups an account may make a minute"},
    {"rate_user_lookup_burst", INT(rate_user_lookup[1]), "100", 1, 1000000,
     "user searches and lookups at once"},
    {"rate_register_per_min", INT(rate_register[0]), "6", 0, 1000000,
     "registrations from one client address a minute"},
    {"rate_register_burst", INT(rate_register[1]), "5", 1, 1000000,
     "registrations from one client address at once"},
    {"rate_login_per_min", INT(rate_login[0]), "30", 0, 1000000,
     "logins from one client address a minute (the login backoff counts failures on top)"},
    {"rate_login_burst", INT(rate_login[1]), "20", 1, 1000000,
     "logins from one client address at once"},
    {"rate_action_per_min", INT(rate_action[0]), "600", 0, 1000000,
     "message edits, deletes, hides and reactions per minute, per account (0: no limit)"},
    {"rate_action_burst", INT(rate_action[1]), "100", 1, 1000000,
     "message edits, deletes, hides and reactions at once, per account"},
    {"rate_upload_per_min", INT(rate_upload[0]), "60", 0, 1000000,
     "uploads one account may start a minute"},
    {"rate_upload_burst", INT(rate_upload[1]), "20", 1, 1000000,
     "uploads one account may start at once"},
    {"hash_queue_max", INT(hash_queue_max), "16", 0, 100000,
     "registrations and logins waiting for a hash slot; more are answered 503 at once"},
    {"hash_wait_ms", INT(hash_wait_ms), "1000", 1, 60000,
     "a registration or login that waited this long for a hash slot is answered 503"},
    {"session_idle_days", INT(session_idle_days), "90", 0, 36500,
     "a session unused for this many days is logged out; 0 = never"},
    {"sessions_max", INT(sessions_max), "100", 1, 100000,
     "sessions per user: a login beyond this logs out the user's longest-idle session"},
    {"login_free_failures", INT(login_free_failures), "5", 1, 1000,
     "failed logins per username (in an hour) before each further try waits 1, 2, 4, … s "
     "after the last failure; a device key's logins have a counter of their own"},
    {"login_address_free_failures", INT(login_address_free_failures), "20", 1, 100000,
     "the same per client address (behind a proxy on loopback: X-Forwarded-For's last entry)"},
    {"login_delay_max_s", INT(login_delay_max_s), "300", 1, 3600,
     "the most a failed login makes the next try wait, in seconds"},
    {"audit_retention_days", INT(audit_retention_days), "90", 1, 3650,
     "authentication events (GET /v1/me/audit) are kept this many days"},
    {"presence_window_s", INT(presence_window_s), "60", 1, 86400,
     "a user is online this many seconds after an authenticated request"},
    {"event_retention_days", INT(event_retention_days), "30", 1, 3650,
     "inbox events are kept at least this many days"},
    {"janitor_interval_s", INT(janitor_interval_s), "60", 1, 3600,
     "seconds between the janitor's rounds: pruning old events, audit rows and login "
     "failures, collecting expired uploads and unreferenced attachment bytes"},
    {"media_dir", STR(media_dir), "var/media", 0, 0,
     "directory of attachments' bytes (blobs/, and uploads/ for those arriving on this node); "
     "several nodes share it (NFS) or use the S3 store"},
    {"media_accel_redirect", STR(media_accel_redirect), "", 0, 0,
     "behind nginx: the internal location that serves media_dir (nginx.conf's /_media/); "
     "chatd then checks access and answers a download with X-Accel-Redirect, and nginx sends "
     "the file. Empty: chatd sends it (a chatd reached directly)"},
    {"store", STR(store), "local", 0, 0,
     "where attachments' bytes live: local (media_dir; a cluster's nodes share it) or s3 (an "
     "S3-compatible object store, the s3_* settings; media_dir keeps uploads in progress and "
     "a cache)"},
    {"s3_endpoint", STR(s3_endpoint), "", 0, 0,
     "the S3-compatible store: http(s)://host[:port]; objects are addressed path-style "
     "(endpoint/bucket/key)"},
    {"s3_region", STR(s3_region), "us-east-1", 0, 0, "the store's region, for the signatures"},
    {"s3_bucket", STR(s3_bucket), "", 0, 0, "the bucket of attachments' bytes"},
    {"s3_access_key", STR(s3_access_key), "", 0, 0, "the access key id"},
    {"s3_secret_key", STR(s3_secret_key), "", 0, 0, "the secret access key (never logged)"},
    {"s3_ca_file", STR(s3_ca_file), "", 0, 0,
     "CA bundle for an https endpoint; empty = the system's"},
    {"message_retention_days", INT(message_retention_days), "0", 0, 36500,
     "days messages are kept (0: for ever); a thread may set a shorter retention_days"},
    {"disappearing_test_s", INT(disappearing_test_s), "0", 0, 86400,
     "a disappearing timer (s) allowed besides 1, 7 and 90 days, for tests; 0: none"},
    {"retention_day_s", INT(retention_day_s), "86400", 1, 86400,
     "seconds in a retention day (for tests only: 86400 in production)"},
    {"search_index", BOOL(search_index), "true", 0, 0,
     "index new messages for GET /v1/search/messages (off: nothing new is found; the "
     "benchmark turns it off to measure what indexing costs the send path)"},
    {"message_edit_window_s", INT(message_edit_window_s), "900", 0, 315360000,
     "seconds after sending in which the sender may edit a message (0: no limit; WhatsApp 15 "
     "minutes, Zulip 10)"},
    {"message_delete_window_s", INT(message_delete_window_s), "172800", 0, 315360000,
     "seconds after sending in which the sender may delete a message for everyone (0: no "
     "limit); a group admin may delete any message at any time"},
    {"reactions_distinct_max", INT(reactions_distinct_max), "50", 1, 1000,
     "different emoji one message may carry (more: 422 too_many_reactions)"},
    {"upload_max_mb", INT(upload_max_mb), "100", 1, 4096,
     "MiB: the largest attachment (GET /v1/config shows it as upload_max_bytes)"},
    {"attachments_per_message_max", INT(attachments_per_message_max), "10", 1, 100,
     "attachments in one message"},
    {"upload_quota_mb", INT(upload_quota_mb), "2048", 1, 1048576,
     "MiB: what one user's uploads and attachments may hold in total (bytes shared with "
     "others' uploads count for each)"},
    {"uploads_pending_max", INT(uploads_pending_max), "20", 1, 10000,
     "uploads one user may have unfinished at once (more: 429)"},
    {"upload_expiry_s", INT(upload_expiry_s), "86400", 2, 2592000,
     "seconds after which an upload not sent in a message is removed"},
    {"blob_gc_grace_s", INT(blob_gc_grace_s), "3600", 0, 2592000,
     "seconds stored bytes that nothing refers to any more are kept before removal"},
    {"attachment_link_ttl_s", INT(attachment_link_ttl_s), "600", 10, 86400,
     "seconds a signed attachment link (for <img src>) is valid"},
    {"thumbnail_max_megapixels", INT(thumbnail_max_megapixels), "32", 1, 1000,
     "pictures of more megapixels get no thumbnail (decoding them could take the memory of "
     "a decompression bomb; Synapse's max_image_pixels is 32M too)"},
    {"media_workers", INT(media_workers), "2", 0, 64,
     "threads that make uploads durable, hash, type and store them (0: in the HTTP thread)"},
    {"receipt_fanout_max", INT(receipt_fanout_max), "2", 2, 1024,
     "threads up to this size tell every member of every receipt; bigger ones tell "
     "only the senders it concerns (and the reader's own devices of a read)"},
    {"db_require_durable", BOOL(db_require_durable), "true", 0, 0,
     "refuse to start unless innodb_flush_log_at_trx_commit = 1"},
    {"db_failover_wait_ms", INT(db_failover_wait_ms), "10000", 0, 600000,
     "with several db_url hosts: how long a database call waits for a usable one"},
    {"redis_url", STR(redis_url), "", 0, 0,
     "redis://host:port to run as one node of several (docs/scale-out.md); empty: one node"},
    {"node_id", STR(node_id), "", 0, 0,
     "this node's name in the cluster, unique (default hostname:pid)"},
    {"push_grace_ms", INT(push_grace_ms), "3000", 0, 600000,
     "push a message only if no device acknowledged it within this many ms"},
    {"push_reactions", BOOL(push_reactions), "true", 0, 0,
     "a reaction to one's message pushes \"Reacted 👍 to: …\" (as WhatsApp and Telegram do)"},
    {"push_max_attempts", INT(push_max_attempts), "5", 1, 100,
     "tries per device (429, 5xx, timeouts) before a push is given up"},
    {"apns_url", STR(apns_url), "https://api.push.apple.com", 0, 0, "APNs base URL"},
    {"apns_key_file", STR(apns_key_file), "", 0, 0, "APNs token key (.p8); APNs is off when empty"},
    {"apns_key_id", STR(apns_key_id), "", 0, 0, "APNs key id (the JWT's kid)"},
    {"apns_team_id", STR(apns_team_id), "", 0, 0, "Apple team id (the JWT's iss)"},
    {"apns_topic", STR(apns_topic), "", 0, 0, "default apns-topic: the app's bundle id"},
    {"fcm_url", STR(fcm_url), "https://fcm.googleapis.com", 0, 0, "FCM base URL"},
    {"fcm_credentials_file", STR(fcm_credentials_file), "", 0, 0,
     "Firebase service-account JSON; FCM is off when empty"},
    {"fcm_token_url", STR(fcm_token_url), "", 0, 0,
     "OAuth token URL; empty = token_uri of the service account"},
    {"push_ca_file", STR(push_ca_file), "", 0, 0,
     "CA bundle to verify APNs/FCM TLS; empty = the system's"},
};

#define NENTRIES (sizeof table / sizeof table[0])

static const struct cfg_entry *find(const char *key)
{
    for (size_t i = 0; i < NENTRIES; i++)
        if (strcmp(table[i].key, key) == 0)
            return &table[i];
    return NULL;
}

static int set_entry(struct config *cfg, const struct cfg_entry *e, const char *value, char *err,
                     size_t errlen)
{
    char *field = (char *)cfg + e->offset;
    switch (e->type) {
    case CFG_STR:
        if (strlen(value) >= e->size) {
            snprintf(err, errlen, "%s: value longer than %zu bytes", e->key, e->size - 1);
            return -1;
        }
        strcpy(field, value);
        return 0;
    case CFG_INT: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end != '\0' || v < e->min || v > e->max) {
            snprintf(err, errlen, "%s: '%s' is not an integer in %ld..%ld", e->key, value, e->min,
                     e->max);
            return -1;
        }
        *(int *)field = (int)v;
        return 0;
    }
    case CFG_BOOL:
        if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0 || strcmp(value, "yes") == 0) {
            *(bool *)field = true;
        } else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0 ||
                   strcmp(value, "no") == 0) {
            *(bool *)field = false;
        } else {
            snprintf(err, errlen, "%s: '%s' is not true or false", e->key, value);
            return -1;
        }
        return 0;
    }
    return -1;
}

void config_defaults(struct config *cfg)
{
    char err[256];
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NENTRIES; i++)
        set_entry(cfg, &table[i], table[i].def, err, sizeof err);
}

int config_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
    const struct cfg_entry *e = find(key);
    if (e == NULL) {
        snprintf(err, errlen, "unknown setting '%s' (see chatd --help)", key);
        return -1;
    }
    return set_entry(cfg, e, value, err, errlen);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int config_load_file(struct config *cfg, const char *path, bool required, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (!required && errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char line[1024];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = trim(line);
        if (*s == '\0')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "%s:%d: expected key = value", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char msg[256];
        if (config_set(cfg, trim(s), trim(eq + 1), msg, sizeof msg) < 0) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

/* CHAT_ and the key in upper case, into buf (len bytes). */
static void env_name(const char *key, char *buf, size_t len)
{
    snprintf(buf, len, "CHAT_%s", key);
    for (char *p = buf; *p; p++)
        *p = (char)toupper((unsigned char)*p);
}

int config_load_env(struct config *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < NENTRIES; i++) {
        char name[64];
        env_name(table[i].key, name, sizeof name);
        const char *v = getenv(name);
        if (v && set_entry(cfg, &table[i], v, err, errlen) < 0)
            return -1;
    }
    return 0;
}

void config_print_help(FILE *out)
{
    fprintf(out, "Settings (file key = value, overridden by the environment variable):\n\n");
    for (size_t i = 0; i < NENTRIES; i++) {
        char name[64];
        env_name(table[i].key, name, sizeof name);
        fprintf(out, "  %-22s %-28s default %s\n      %s\n", table[i].key, name, table[i].def,
                table[i].help);
    }
}
