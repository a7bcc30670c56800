/* receipts.h — the receipt rule: who hears that a member's delivered or
 * read position moved.
 *
 * The senders (still members) of the messages a move newly covers hear of
 * it — the people whose ticks change, as in WhatsApp groups — and the
 * member's own devices hear of a read (each clears its unread count; API.md
 * asks for the own read position only), never of their own delivery. In a
 * thread of at most receipt_fanout_max members (default 2: the direct
 * threads) every other member hears of every move too. A receipt event
 * is a row per recipient, so a delivery to a group costs events only to the
 * senders, not members² (docs/delivery.md); `GET …/receipts` stays complete
 * either way. Both paths that move positions use this one function: the
 * acknowledgement batch (delivered) and POST /read (read).
 *
 * May call: chat/events, live/tail, db, base. */
#ifndef CHAT_RECEIPTS_H
#define CHAT_RECEIPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "chat/events.h"

/* Member user_id's receipts in thread_id moved to delivered/read; the
 * messages newly covered are those with seq in (from_seq, to_seq]. */
struct receipt_move {
    int64_t user_id, thread_id;
    int64_t from_seq, to_seq;
    int64_t delivered, read;
    bool read_moved; /* the read position moved (else only delivered did) */
};

/* Sets the largest thread whose members all hear every receipt. Call once
 * at start-up, before any fan-out. */
void receipts_init(int fanout_max);

/* Adds to b the receipt events of moves[0..n) by the rule above: a fixed
 * number of statements (the members of every thread, and the senders of
 * one range per big thread), read inside the caller's transaction. Each
 * move's event is rendered once and shared by its recipients. now in ms.
 * Returns DB_OK or DB_E*. Any thread. */
int receipts_fan_out(struct event_batch *b, const struct receipt_move *moves, int n, int64_t now);

#endif
