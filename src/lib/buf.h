/* buf: a growable byte buffer with a hard maximum. Every buffer untrusted input can fill is one
 * of these; reaching the maximum is an error the caller handles (conventions.md §9). The data is
 * always NUL-terminated (one byte beyond len), so text can be used as a C string. */
#ifndef GANNET_LIB_BUF_H
#define GANNET_LIB_BUF_H
#include <stdbool.h>
#include <stddef.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* 0 = unlimited */
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
/* Append n bytes; returns -1 (and appends nothing) when the result would exceed max. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Remove the first n bytes. */
void buf_consume(struct buf *b, size_t n);
/* Hand the storage to the caller (NUL-terminated) and reset the buffer. */
char *buf_steal(struct buf *b, size_t *len_r);

#endif
