/* queue_sched: the outbound delivery scheduler (issue 4; hmailserver-behaviour.md §8).
 *
 * Every second (and when kicked) a worker job picks queued remote recipients whose next try is
 * due; they are grouped by message and target (domain + route), at most 100 per group, and each
 * group is delivered on the event loop: target resolution (route -> smarthost -> MX -> implicit
 * MX), the local-loop check, then the SMTP client, address after address, until every recipient
 * is done or the addresses run out. A worker job then records the outcome per recipient:
 * delivered; permanent failure (5xx, null MX, no such domain) -> bounce now; temporary failure ->
 * retry after [delivery] retry_interval, and after [delivery] retries retries -> bounce with
 * "Tried n time(s)". A crash between the remote 250 and the record may send a message twice;
 * nothing is ever dropped. Concurrency: [delivery] max_connections deliveries at once, one at a
 * time per message. */
#ifndef GANNET_QUEUE_SCHED_H
#define GANNET_QUEUE_SCHED_H

struct server;
struct queue_sched;

struct queue_sched *queue_sched_new(struct server *srv);
/* Look for due recipients now (e.g. after a message with remote recipients was queued). */
void queue_sched_kick(struct queue_sched *q);
/* Stop picking new work; deliveries in progress finish or are abandoned by the loop's end. */
void queue_sched_stop(struct queue_sched *q);
/* After the event loop has ended: cancel SMTP sessions in progress and abandon deliveries whose
 * DNS or worker steps call back later (their recipients stay queued). */
void queue_sched_cancel_all(struct queue_sched *q);
/* Deliveries in progress. */
unsigned queue_sched_active(const struct queue_sched *q);
void queue_sched_free(struct queue_sched **q);

#endif
