/* smtp: the inbound SMTP server session (RFC 5321 with PIPELINING RFC 2920, SIZE RFC 1870,
 * 8BITMIME RFC 6152), in the behaviour and reply texts of replies.md. */
#ifndef GANNET_SMTP_SMTP_H
#define GANNET_SMTP_SMTP_H

struct server;
struct conf_listener;

/* A client connected on an SMTP listener: admission check (IP ranges), then the banner. */
void smtp_session_start(struct server *srv, const struct conf_listener *listener, int fd);
/* Server shutdown: every session answers 421 and closes (after any job in flight finishes). */
void smtp_sessions_shutdown(struct server *srv);
/* After the event loop stopped: free sessions that did not finish in time. */
void smtp_sessions_free_all(struct server *srv);

#endif
