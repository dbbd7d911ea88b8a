/* reply: the SMTP reply catalogue (replies.def) as an enum plus lookup and formatting. */
#ifndef GANNET_MAIL_REPLY_H
#define GANNET_MAIL_REPLY_H
#include <stdbool.h>
#include <stddef.h>

enum reply_id {
#define REPLY(id, code, counted, text) id,
#include "mail/replies.def"
#undef REPLY
    R__COUNT
};

struct reply_info {
    const char *name;
    int code;
    bool counted;
    const char *text; /* may contain one %s */
};

const struct reply_info *reply_info(enum reply_id id);
/* "<code> <text>" with the optional %s argument filled (arg may be NULL when the text has none),
 * without CRLF, into out (at most size bytes). Returns the length. */
size_t reply_format(enum reply_id id, const char *arg, char *out, size_t size);

#endif
