/* reply: catalogue lookup and formatting for replies.def. */
#include "mail/reply.h"

#include <stdio.h>
#include <string.h>

static const struct reply_info reply_table[R__COUNT] = {
#define REPLY(id, code, counted, text) [id] = {#id, code, counted, text},
#include "mail/replies.def"
#undef REPLY
};

const struct reply_info *reply_info(enum reply_id id)
{
    return &reply_table[id];
}

size_t reply_format(enum reply_id id, const char *arg, char *out, size_t size)
{
    const struct reply_info *ri = &reply_table[id];
    char text[1024];
    if (strstr(ri->text, "%s"))
        snprintf(text, sizeof(text), ri->text, arg ? arg : "");
    else
        snprintf(text, sizeof(text), "%s", ri->text);
    int n = snprintf(out, size, "%d %s", ri->code, text);
    if (n < 0)
        return 0;
    return (size_t)n < size ? (size_t)n : size - 1;
}
