/* config.h — chatd's settings: one declarative table, a file, the environment.
 *
 * Every setting has a key (`listen`), read from the config file as
 * `listen = 127.0.0.1:8080` and overridden by the environment variable made
 * of CHAT_ and the key in upper case (`CHAT_LISTEN`). Later sources win:
 * defaults, then the file, then the environment. `chatd --help` prints the
 * table. To add a setting: add a field here and a row in config.c.
 *
 * May call: libc. */
#ifndef CHAT_CONFIG_H
#define CHAT_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

struct config {
    char listen[64];           /* address:port to serve HTTP on; port 0 = any */
    char db_url[512];          /* mysql://user:pass@host:port[,host:port…]/db?socket=PATH */
    char www_root[512];        /* directory of the browser app */
    char sql_dir[512];         /* directory of numbered migrations */
    char log_level[16];        /* error | warn | info | debug */
    char log_format[8];        /* text | json: the shape of log lines */
    bool access_log;           /* one line per HTTP request */
    char migrate[8];           /* auto (apply at start-up) | check (refuse when one is missing) */
    int threads;               /* HTTP worker threads, each with a DB connection */
    int connection_limit;      /* open HTTP connections, parked polls included */
    int connection_timeout_s;  /* idle keep-alive connections close after this */
    int connection_memory_kb;  /* libmicrohttpd's memory pool per connection */
    int per_address_limit;     /* open connections from one address; 0 = no limit */
    int header_timeout_s;      /* a request line and headers arrive within this */
    int body_timeout_s;        /* a request body arrives within this after its headers */
    int send_workers;          /* group-commit threads storing sends; 0 = inline */
    int send_batch_max;        /* most messages stored in one transaction */
    int ack_workers;           /* group-commit threads storing inbox acknowledgements */
    int tail_users;            /* users whose newest events are kept in memory */
    int stream_copy_max;       /* groups up to this size get a copy of each message per member */
    int hash_concurrency;      /* password hashes (19 MiB each) at once */
    int hash_queue_max;        /* registrations and logins waiting for a hash slot */
    int hash_wait_ms;          /* longest wait for a hash slot before 503 */
    bool rate_limits;          /* false: no token bucket limits (base/ratelimit.h) */
    int rate_send[2];          /* messages per minute and burst, per account */
    int rate_thread_change[2]; /* thread creations, renames, member changes, per account */
    int rate_typing[2];        /* typing notices per minute and burst, per account */
    int rate_user_lookup[2];   /* user searches and lookups, per account */
    int rate_register[2];      /* registrations per minute and burst, per client address */
    int rate_login[2];         /* logins per minute and burst, per client address */
    int rate_upload[2];        /* uploads started per minute and burst, per account */
    int rate_action[2];        /* message edits, deletes, hides, reactions: per minute, burst */
    int session_idle_days;     /* a session unused this long is dead; 0 = never */
    int sessions_max;          /* sessions per user; a login beyond ends the idlest */
    int login_free_failures;   /* failed logins per username before the backoff */
    int login_address_free_failures; /* the same per client address */
    int login_delay_max_s;           /* the backoff's cap */
    int audit_retention_days;        /* authentication events kept this long */
    int presence_window_s;           /* online for this long after a request */
    int event_retention_days;        /* inbox events kept at least this long */
    int janitor_interval_s;          /* how often the janitor prunes and collects */
    char media_dir[512];             /* attachments' local store */
    char store[8];                   /* local | s3: where attachments' bytes live */
    char media_accel_redirect[64];   /* URI prefix nginx maps to media_dir; "" = chatd sends */
    char s3_endpoint[256];           /* http(s)://host[:port] of the S3-compatible store */
    char s3_region[64];
    char s3_bucket[128];
    char s3_access_key[128];
    char s3_secret_key[256];
    char s3_ca_file[512];        /* CA bundle for an https endpoint; "" = system */
    bool search_index;           /* index messages for search (the indexer thread) */
    int message_retention_days;  /* messages older are removed; 0 = kept for ever */
    int disappearing_test_s;     /* a short disappearing timer allowed (tests); 0 = none */
    int retention_day_s;         /* seconds in a retention "day" (86400; tests shorten it) */
    int message_edit_window_s;   /* the sender may edit a message for this long; 0 = always */
    int message_delete_window_s; /* the sender may delete for everyone for this long; 0 = always */
    int reactions_distinct_max;  /* different emoji on one message */
    int upload_max_mb;           /* one attachment's largest size, MiB */
    int attachments_per_message_max; /* attachments in one message */
    int upload_quota_mb;             /* a user's uploads and attachments in total, MiB */
    int uploads_pending_max;         /* a user's unfinished uploads */
    int upload_expiry_s;             /* an upload not sent in a message is removed after */
    int blob_gc_grace_s;             /* stored bytes nothing refers to are removed after */
    int attachment_link_ttl_s;       /* a signed attachment link is valid for */
    int media_workers;               /* threads that finish uploads */
    int thumbnail_max_megapixels;    /* pictures bigger get no thumbnail */
    int receipt_fanout_max;          /* threads up to this size tell every member of receipts */
    bool db_require_durable;         /* refuse to start unless every commit is flushed */
    int db_failover_wait_ms;         /* with several db hosts: how long a call waits for one */
    char redis_url[256];     /* redis://host:port: several nodes share state; "" = one node */
    char node_id[128];       /* this node's name in the cluster; "" = hostname:pid */
    int push_grace_ms;       /* wait before deciding a message push */
    bool push_reactions;     /* a reaction to one's message pushes */
    int push_max_attempts;   /* tries per device before giving up */
    char apns_url[256];      /* APNs base URL */
    char apns_key_file[512]; /* .p8 key; APNs is off without it */
    char apns_key_id[64];    /* the JWT's kid */
    char apns_team_id[64];   /* the JWT's iss */
    char apns_topic[256];    /* default apns-topic (bundle id) */
    char fcm_url[256];       /* FCM base URL */
    char fcm_credentials_file[512]; /* service-account JSON; FCM is off without it */
    char fcm_token_url[256];        /* OAuth token endpoint override */
    char push_ca_file[512];         /* CA bundle for the providers' TLS; empty = system */
};

/* Fills *cfg with the defaults. */
void config_defaults(struct config *cfg);

/* Sets the setting `key` from the text `value`, checking type and range.
 * Returns 0, or -1 with a message in err (errlen bytes) naming the key. */
int config_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen);

/* Reads `key = value` lines from the file at path ('#' starts a comment,
 * blank lines are skipped). A missing file is an error only when required.
 * Returns 0, or -1 with a message in err naming the file and line. */
int config_load_file(struct config *cfg, const char *path, bool required, char *err, size_t errlen);

/* Applies every CHAT_<KEY> variable found in the environment. Returns 0, or
 * -1 with a message in err. */
int config_load_env(struct config *cfg, char *err, size_t errlen);

/* Writes the table (key, variable, default, description) to out. */
void config_print_help(FILE *out);

#endif
