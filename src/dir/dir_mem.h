/* dir_mem: an in-memory struct dir (the test double of dir.h, conventions.md §13).
 *
 * Build one with dir_mem_new(), fill it with the dir_mem_add_* builders (each copies the struct
 * it is given and returns the id it stored: the given id when non-zero, else the next free one),
 * hand it to code that takes a struct dir *, and free it with dir_close(&d).
 *
 * Lookups follow the dir.h contract: names compare ASCII case-insensitively; route_find returns
 * the first route in insertion order whose pattern matches (str_wildcard_match); iprange_match
 * returns the unexpired range of the same family with the highest priority (the first added wins
 * a tie). Failures are simulated with dir_mem_fail_next / dir_mem_fail_at / dir_mem_fail_all: every
 * call through struct dir_ops (except close) counts as one lookup. */
#ifndef GANNET_DIR_DIR_MEM_H
#define GANNET_DIR_DIR_MEM_H
#include <stddef.h>
#include <stdint.h>

#include "dir/dir.h"

struct dir *dir_mem_new(void);

int64_t dir_mem_add_domain(struct dir *d, const struct dir_domain *domain);
/* alias domain name -> primary domain name */
void dir_mem_add_domain_alias(struct dir *d, const char *alias, const char *domain);
int64_t dir_mem_add_account(struct dir *d, const struct dir_account *account);
int64_t dir_mem_add_alias(struct dir *d, const struct dir_alias *alias);
int64_t dir_mem_add_list(struct dir *d, const struct dir_list *list);
/* Members are reported by list_members in insertion order (duplicates kept as given). */
void dir_mem_add_list_member(struct dir *d, int64_t list_id, const char *address);
int64_t dir_mem_add_route(struct dir *d, const struct dir_route *route);
void dir_mem_add_route_address(struct dir *d, int64_t route_id, const char *address);
int64_t dir_mem_add_iprange(struct dir *d, const struct dir_iprange *range);

/* The clock iprange_match compares "expires" with (unix time); 0 (the default) = time(NULL). */
void dir_mem_set_now(struct dir *d, int64_t now);

/* Failure injection. fail_next: the next lookup returns result (once). fail_at: the lookup n
 * lookups from now (0 = the next one) returns result (once). fail_all: every lookup returns
 * result until dir_mem_fail_all(d, DIR_OK). Injected failures do not call list_members' fn. */
void dir_mem_fail_next(struct dir *d, enum dir_result result);
void dir_mem_fail_at(struct dir *d, unsigned n, enum dir_result result);
void dir_mem_fail_all(struct dir *d, enum dir_result result);
/* Number of lookups made so far (to size fail_at loops in tests). */
unsigned dir_mem_lookups(const struct dir *d);

#endif
