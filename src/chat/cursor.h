/* cursor.h — the inbox cursor as the API shows it: the position of the last
 * event a device has seen in its user's stream, in decimal ("0", "42").
 * Clients treat it as opaque (docs/api-notes.md), so the server parses back
 * only what it could have given out: the canonical decimal of a position in
 * 0..JSON_INT_MAX. Pure functions; thread-safe. */
#ifndef CHAT_CURSOR_H
#define CHAT_CURSOR_H

#include <stddef.h>
#include <stdint.h>

/* Bytes that hold any cursor and its NUL (JSON_INT_MAX has 16 digits). */
#define CURSOR_SIZE 17

/* Writes pos in decimal, NUL-terminated, into buf (len bytes; CURSOR_SIZE
 * is always enough). Returns the length written (without the NUL), or -1
 * when pos is outside 0..JSON_INT_MAX or buf is too small; buf is then ""
 * (when len > 0). */
int cursor_format(int64_t pos, char *buf, size_t len);

/* Parses a cursor into *pos. Accepts exactly what cursor_format produces:
 * "0", or a digit 1-9 followed by digits, at most JSON_INT_MAX. Refuses
 * (returns -1, *pos untouched) NULL, "", a sign, spaces anywhere, leading
 * zeros ("007"), anything else that is not a digit, and values above
 * JSON_INT_MAX. Returns 0 on success. parse_int (base/util.h), which the
 * inbox used before, accepts leading zeros as well; nothing else differs. */
int cursor_parse(const char *s, int64_t *pos);

#endif
