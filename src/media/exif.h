/* exif.h — GPS positions taken out of JPEG originals (libexif).
 *
 * A photo's EXIF often says where it was taken; people who send a photo in
 * a chat rarely mean to send that. The GPS directory is removed; the rest of
 * the EXIF (orientation above all, which viewers need) stays, and the image
 * data is copied untouched (no re-encoding). Every EXIF segment before the
 * image data is checked, however far into the file it starts. The input is
 * hostile: only the segments before the image data are parsed, each within
 * its stated length.
 *
 * May call: base, libexif, libc. */
#ifndef CHAT_EXIF_H
#define CHAT_EXIF_H

/* When the JPEG at src has GPS data in its EXIF, writes a copy without it
 * to dst (a new file, fsync'd) and returns 1; returns 0 when there is
 * nothing to remove (dst not written), -1 on an error (logged; dst not
 * left behind). Any thread. */
int exif_strip_gps(const char *src, const char *dst);

#endif
