/* log: one line per event on stderr, Postfix style:
 *   gannet[1234]: S1A2B3: connect from [127.0.0.2]:40412
 * Thread-safe (one write(2) per line). */
#ifndef GANNET_LIB_LOG_H
#define GANNET_LIB_LOG_H
#include <stdint.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

void log_init(const char *progname, enum log_level min_level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line about one session: "<session id>: message". */
void log_sess(uint64_t session_id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Format a session id as the 6+ hex-digit tag used in logs and Received headers ("S1A2B3"). */
void log_session_tag(uint64_t session_id, char out[24]);

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
