/* ipaddr: IPv4/IPv6 addresses as comparable values. IPv4 is stored v4-mapped (::ffff:a.b.c.d) in
 * 16 bytes so one memcmp orders any two addresses of the same family. */
#ifndef GANNET_LIB_IPADDR_H
#define GANNET_LIB_IPADDR_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define IPADDR_STRLEN 64

struct ipaddr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t b[16];
};

/* Parse "1.2.3.4" or "::1" (no brackets, no port). Returns 0 or -1. */
int ipaddr_parse(const char *s, struct ipaddr *ip_r);
void ipaddr_format(const struct ipaddr *ip, char out[IPADDR_STRLEN]);
int ipaddr_from_sockaddr(const struct sockaddr *sa, struct ipaddr *ip_r, int *port_r);
/* memcmp-style order; only meaningful for the same family. */
int ipaddr_cmp(const struct ipaddr *a, const struct ipaddr *b);
bool ipaddr_in_range(const struct ipaddr *ip, const struct ipaddr *from, const struct ipaddr *to);

#endif
