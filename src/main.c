/* main.c — chatd's start-up and shutdown.
 *
 * Order: settings (defaults, chatd.conf, CHAT_* variables) → database
 * (library init, database created, durability checked, migrations) → auth
 * and metrics → HTTP. Then wait for SIGINT or SIGTERM and stop in reverse.
 * The line `chatd: listening on http://HOST:PORT` on stdout tells scripts and
 * tests that the server is ready and which port it took. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chat/acks.h"
#include "chat/actions.h"
#include "chat/attachments.h"
#include "chat/retention.h"
#include "chat/search.h"
#include "chat/auth.h"
#include "base/config.h"
#include "db/db.h"
#include "http/http.h"
#include "http/static.h"
#include "base/log.h"
#include "base/metrics.h"
#include "db/migrate.h"
#include "base/ratelimit.h"
#include "live/cluster.h"
#include "live/presence.h"
#include "push/push.h"
#include "chat/sendq.h"
#include "live/tail.h"
#include <curl/curl.h>
#include "chat/events.h"
#include "chat/receipts.h"
#include "base/util.h"

/* The janitor: prunes inbox events past the retention, old login
 * failures, audit events and device keys (auth_prune), and week-old notification log lines, in
 * small batches, once a minute. */
static atomic_bool janitor_running = true;
static int64_t retention_ms, janitor_interval_ms;

static void *janitor_main(void *arg)
{
    (void)arg;
    int64_t next = 0, next_seen = 0;
    while (janitor_running) {
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
        if (mono_ms() >= next_seen) {
            next_seen = mono_ms() + 1000;
            auth_flush_last_seen();
        }
        if (mono_ms() < next)
            continue;
        next = mono_ms() + janitor_interval_ms;
        /* One node of a cluster prunes (the lease outlives a round). */
        if (!cluster_lead("janitor", (int)(janitor_interval_ms * 3 / 2)))
            continue;
        int64_t cutoff = now_ms() - retention_ms, n;
        while (janitor_running && (n = events_prune(cutoff, 5000)) == 5000)
            ;
        auth_prune(now_ms());
        push_prune(now_ms());
        attachments_gc(now_ms());
        search_catch_up(); /* what a crashed node did not index */
        while (janitor_running && retention_expire(now_ms(), 500) == 500)
            ;
        retention_purge(now_ms());
    }
    return NULL;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: chatd [--config FILE] [--migrate | --check-config] [--help]\n\n"
                 "The messenger server. Reads FILE (default chatd.conf, when present),\n"
                 "then CHAT_* environment variables. --migrate applies the database\n"
                 "migrations and exits (run it once before starting the nodes of a cluster).\n"
                 "--check-config checks the settings, the files they name, the database\n"
                 "connection, its durability and that every migration is applied, prints\n"
                 "what it found and exits 0 when all is well, 1 when not (it applies\n"
                 "nothing; like a start, it creates the database when it is missing).\n\n");
    config_print_help(out);
}

/* --migrate: apply the migrations and exit. */
static bool migrate_only;
/* --check-config: check the settings and the database, and exit. */
static bool check_only;

static int load_config(int argc, char **argv, struct config *cfg)
{
    const char *path = "chatd.conf";
    bool required = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(argv[i], "--migrate") == 0) {
            migrate_only = true;
        } else if (strcmp(argv[i], "--check-config") == 0) {
            check_only = true;
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            path = argv[++i];
            required = true;
        } else {
            usage(stderr);
            return -1;
        }
    }
    if (getenv("CHAT_CONFIG")) {
        path = getenv("CHAT_CONFIG");
        required = true;
    }
    char err[512];
    config_defaults(cfg);
    if (config_load_file(cfg, path, required, err, sizeof err) < 0 ||
        config_load_env(cfg, err, sizeof err) < 0) {
        fprintf(stderr, "chatd: %s\n", err);
        return -1;
    }
    enum log_level level;
    if (log_level_parse(cfg->log_level, &level) < 0) {
        fprintf(stderr, "chatd: log_level must be error, warn, info or debug\n");
        return -1;
    }
    log_set_level(level);
    enum log_format format;
    if (log_format_parse(cfg->log_format, &format) < 0) {
        fprintf(stderr, "chatd: log_format must be text or json\n");
        return -1;
    }
    log_set_format(format);
    if (strcmp(cfg->migrate, "auto") != 0 && strcmp(cfg->migrate, "check") != 0) {
        fprintf(stderr, "chatd: migrate must be auto or check\n");
        return -1;
    }
    return 0;
}

/* A commit must reach the disk before we answer 201 (API.md). */
static int check_durability(const struct config *cfg)
{
    char v[32];
    if (db_server_var("innodb_flush_log_at_trx_commit", v, sizeof v) < 0)
        return -1;
    if (strcmp(v, "1") == 0)
        return 0;
    if (cfg->db_require_durable) {
        log_error("db: innodb_flush_log_at_trx_commit is %s, not 1: an acknowledged message "
                  "could be lost in a crash. Set it to 1, or db_require_durable = false.",
                  v);
        return -1;
    }
    log_warn("db: innodb_flush_log_at_trx_commit is %s: NOT DURABLE, acknowledged messages "
             "can be lost in a crash (db_require_durable = false)",
             v);
    return 0;
}

/* One check of --check-config: prints "ok   what" or "FAIL what: why" on
 * stdout and returns whether it passed. */
static bool check(bool ok, const char *what, const char *why)
{
    if (ok)
        printf("ok    %s\n", what);
    else
        printf("FAIL  %s: %s\n", what, why);
    fflush(stdout);
    return ok;
}

/* Whether path names a readable regular file (or a directory, dir). */
static bool readable(const char *path, bool dir)
{
    struct stat st;
    return stat(path, &st) == 0 && (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) &&
           access(path, R_OK) == 0;
}

/* --check-config: the settings were read and checked by load_config; here
 * the files they name, the listen address, then the database. Returns the
 * exit status: 0 when every check passed, 1 when one failed. */
static int check_config(const struct config *cfg, struct db_config *dbc)
{
    bool ok = check(true, "settings (file and CHAT_* variables)", "");
    char path[600];
    const char *colon = strrchr(cfg->listen, ':');
    int64_t port;
    ok &= check(colon && colon > cfg->listen && parse_int(colon + 1, &port) == 0 && port <= 65535,
                "listen is address:port", cfg->listen);
    snprintf(path, sizeof path, "%s/index.html", cfg->www_root);
    ok &= check(readable(path, false), "www_root holds index.html", path);
    ok &= check(readable(cfg->sql_dir, true), "sql_dir is a readable directory", cfg->sql_dir);
    /* The attachments' directory is made at start-up when missing. */
    char parent[sizeof cfg->media_dir];
    snprintf(parent, sizeof parent, "%s", cfg->media_dir);
    ok &= check(access(cfg->media_dir, W_OK) == 0 ||
                    (access(cfg->media_dir, F_OK) != 0 && access(dirname(parent), W_OK) == 0),
                "media_dir is writable (or can be made)", cfg->media_dir);
    if (cfg->apns_key_file[0])
        ok &= check(readable(cfg->apns_key_file, false) && cfg->apns_key_id[0] &&
                        cfg->apns_team_id[0] && cfg->apns_topic[0],
                    "APNs key file readable, key id, team id and topic set", cfg->apns_key_file);
    if (cfg->fcm_credentials_file[0])
        ok &= check(readable(cfg->fcm_credentials_file, false), "FCM credentials readable",
                    cfg->fcm_credentials_file);
    if (cfg->push_ca_file[0])
        ok &= check(readable(cfg->push_ca_file, false), "push_ca_file readable", cfg->push_ca_file);
    if (cfg->redis_url[0])
        ok &= check(strncmp(cfg->redis_url, "redis://", 8) == 0, "redis_url is redis://host:port",
                    cfg->redis_url);
    if (!check(db_parse_url(cfg->db_url, dbc) == 0, "db_url parses",
               "not mysql://user:pass@host:port[,host:port…]/db[?socket=PATH]"))
        return 1;
    dbc->failover_wait_ms = cfg->db_failover_wait_ms;
    dbc->require_durable = cfg->db_require_durable;
    if (!check(db_init(dbc) == 0, "database reachable", "see the log line above"))
        return 1;
    ok &= check(check_durability(cfg) == 0, "database durability (innodb_flush_log_at_trx_commit)",
                "see the log line above");
    ok &= check(migrate_run(cfg->sql_dir, false) == 0, "every migration applied",
                "run chatd --migrate (see the log line above)");
    db_shutdown();
    printf("%s\n", ok ? "chatd: configuration ok" : "chatd: configuration has problems");
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct config cfg;
    if (load_config(argc, argv, &cfg) < 0)
        return 2;

    /* Signals are taken by sigwait below; every thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct db_config dbc;
    if (check_only) {
        int rc = check_config(&cfg, &dbc);
        curl_global_cleanup();
        return rc;
    }
    if (db_parse_url(cfg.db_url, &dbc) < 0) {
        log_error("db_url is not mysql://user:pass@host:port[,host:port…]/db[?socket=PATH] "
                  "(not shown: it may hold a password)");
        return 2;
    }
    dbc.failover_wait_ms = cfg.db_failover_wait_ms;
    dbc.require_durable = cfg.db_require_durable;
    bool apply = migrate_only || strcmp(cfg.migrate, "check") != 0;
    if (db_init(&dbc) < 0 || check_durability(&cfg) < 0 || migrate_run(cfg.sql_dir, apply) < 0)
        return 1;
    if (migrate_only) {
        log_info("chatd: migrations applied");
        db_shutdown();
        curl_global_cleanup();
        return 0;
    }
    if (auth_init(cfg.hash_concurrency, cfg.session_idle_days) < 0 ||
        static_init(cfg.www_root) < 0) {
        log_error("chatd: start-up failed");
        return 1;
    }
    auth_set_limits(&(struct auth_limits){cfg.sessions_max, cfg.login_free_failures,
                                          cfg.login_address_free_failures, cfg.login_delay_max_s,
                                          cfg.audit_retention_days});
    retention_ms = (int64_t)cfg.event_retention_days * 86400000LL;
    janitor_interval_ms = (int64_t)cfg.janitor_interval_s * 1000;
    retention_init(cfg.message_retention_days, cfg.disappearing_test_s, cfg.retention_day_s);
    actions_init(&(struct action_settings){cfg.message_edit_window_s, cfg.message_delete_window_s,
                                           cfg.reactions_distinct_max});
    struct attachment_settings att = {
        .media_dir = cfg.media_dir,
        .upload_max_bytes = (int64_t)cfg.upload_max_mb << 20,
        .per_message_max = cfg.attachments_per_message_max,
        .quota_bytes = (int64_t)cfg.upload_quota_mb << 20,
        .pending_max = cfg.uploads_pending_max,
        .upload_expiry_ms = (int64_t)cfg.upload_expiry_s * 1000,
        .gc_grace_ms = (int64_t)cfg.blob_gc_grace_s * 1000,
        .link_ttl_s = cfg.attachment_link_ttl_s,
        .workers = cfg.media_workers,
        .thumbnail_max_pixels = (int64_t)cfg.thumbnail_max_megapixels * 1000000,
        .accel_redirect = cfg.media_accel_redirect,
    };
    struct s3_config s3 = {cfg.s3_endpoint,   cfg.s3_region,     cfg.s3_bucket,
                           cfg.s3_access_key, cfg.s3_secret_key, cfg.s3_ca_file};
    if (strcmp(cfg.store, "s3") == 0) {
        if (!cfg.s3_endpoint[0] || !cfg.s3_bucket[0] || !cfg.s3_access_key[0] ||
            !cfg.s3_secret_key[0]) {
            log_error("chatd: store = s3 needs s3_endpoint, s3_bucket, s3_access_key and "
                      "s3_secret_key");
            return 1;
        }
        att.s3 = &s3;
    } else if (strcmp(cfg.store, "local") != 0) {
        log_error("chatd: store must be local or s3");
        return 1;
    }
    if (attachments_init(&att) < 0) {
        log_error("chatd: start-up failed");
        return 1;
    }
    receipts_init(cfg.receipt_fanout_max);
    struct rl_setting limits[RL_KINDS] = {0};
    if (cfg.rate_limits) {
        limits[RL_SEND] = (struct rl_setting){cfg.rate_send[0], cfg.rate_send[1]};
        limits[RL_THREAD_CHANGE] = (struct rl_setting){cfg.rate_thread_change[0],
                                                       cfg.rate_thread_change[1]};
        limits[RL_TYPING] = (struct rl_setting){cfg.rate_typing[0], cfg.rate_typing[1]};
        limits[RL_USER_LOOKUP] = (struct rl_setting){cfg.rate_user_lookup[0],
                                                     cfg.rate_user_lookup[1]};
        limits[RL_REGISTER_ADDR] = (struct rl_setting){cfg.rate_register[0], cfg.rate_register[1]};
        limits[RL_LOGIN_ADDR] = (struct rl_setting){cfg.rate_login[0], cfg.rate_login[1]};
        limits[RL_UPLOAD] = (struct rl_setting){cfg.rate_upload[0], cfg.rate_upload[1]};
        limits[RL_MESSAGE_ACTION] = (struct rl_setting){cfg.rate_action[0], cfg.rate_action[1]};
    }
    ratelimit_init(limits);
    pthread_t janitor;
    cluster_on_revoke(auth_session_forget);
    cluster_on_drop(events_is_typing);
    cluster_on_stream_ends(events_stream_ends);
    if (tail_init(cfg.tail_users) < 0 ||
        metrics_counter("chatd_tail_reads_total", "Inbox reads answered from the in-memory tails.",
                        tail_hits) < 0 ||
        metrics_counter(
            "chatd_tail_misses_total",
            "Inbox reads the in-memory tails could not answer (read from the database).",
            tail_misses) < 0 ||
        cluster_start(cfg.redis_url, cfg.node_id, cfg.presence_window_s) < 0 ||
        presence_init(cfg.presence_window_s) < 0 || push_init(&cfg) < 0 ||
        sendq_start(cfg.send_workers, cfg.send_batch_max, cfg.stream_copy_max) < 0 ||
        acks_start(cfg.ack_workers, cfg.send_batch_max) < 0 || search_start(cfg.search_index) < 0 ||
        pthread_create(&janitor, NULL, janitor_main, NULL) != 0 || http_start(&cfg) < 0)
        return 1;
    char host[64];
    snprintf(host, sizeof host, "%.*s", (int)(strrchr(cfg.listen, ':') - cfg.listen), cfg.listen);
    printf("chatd: listening on http://%s:%u\n", host, http_port());
    fflush(stdout);

    int sig;
    sigwait(&sigs, &sig);
    log_info("chatd: signal %d, stopping", sig);
    sendq_stop(); /* store and answer what is queued; later ones run inline */
    acks_stop();
    cluster_stop(); /* after the last publish, before the hub stops */
    http_stop();
    attachments_stop();
    search_stop();
    janitor_running = false;
    pthread_join(janitor, NULL);
    auth_flush_last_seen();
    presence_shutdown();
    push_shutdown();
    db_shutdown();
    tail_shutdown();
    curl_global_cleanup();
    log_info("chatd: stopped");
    return 0;
}
