/* log: stderr logging, one line per event, prefixed "gannet[pid]: ". Lines are assembled in a
 * stack buffer and written with one write(2) so threads never interleave within a line. */
#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *log_progname = "gannet";
static enum log_level log_min = LOG_LEVEL_INFO;

void log_init(const char *progname, enum log_level min_level)
{
    log_progname = progname;
    log_min = min_level;
}

static void log_write(const char *prefix, const char *fmt, va_list ap)
{
    char line[2048];
    int n = snprintf(line, sizeof(line), "%s[%ld]: %s", log_progname, (long)getpid(), prefix);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    int m = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
    if (m > 0)
        len += (size_t)m < sizeof(line) - len ? (size_t)m : sizeof(line) - len - 1;
    /* Never let a CR/LF from the network split a log line. */
    for (size_t i = 0; i < len; i++)
        if (line[i] == '\r' || line[i] == '\n')
            line[i] = ' ';
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < log_min)
        return;
    const char *prefix = level == LOG_LEVEL_ERROR  ? "error: "
                         : level == LOG_LEVEL_WARN ? "warning: "
                                                   : "";
    va_list ap;
    va_start(ap, fmt);
    log_write(prefix, fmt, ap);
    va_end(ap);
}

void log_session_tag(uint64_t session_id, char out[24])
{
    snprintf(out, 24, "S%06llX", (unsigned long long)session_id);
}

void log_sess(uint64_t session_id, const char *fmt, ...)
{
    if (LOG_LEVEL_INFO < log_min)
        return;
    char prefix[32];
    char tag[24];
    log_session_tag(session_id, tag);
    snprintf(prefix, sizeof(prefix), "%s: ", tag);
    va_list ap;
    va_start(ap, fmt);
    log_write(prefix, fmt, ap);
    va_end(ap);
}
