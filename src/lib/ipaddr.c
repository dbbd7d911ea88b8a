/* ipaddr: parse, format and compare IPv4/IPv6 addresses (see ipaddr.h). */
#include "lib/ipaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

int ipaddr_parse(const char *s, struct ipaddr *ip_r)
{
    struct in_addr a4;
    struct in6_addr a6;
    memset(ip_r, 0, sizeof(*ip_r));
    if (inet_pton(AF_INET, s, &a4) == 1) {
        ip_r->family = AF_INET;
        ip_r->b[10] = 0xff;
        ip_r->b[11] = 0xff;
        memcpy(ip_r->b + 12, &a4, 4);
        return 0;
    }
    if (inet_pton(AF_INET6, s, &a6) == 1) {
        ip_r->family = AF_INET6;
        memcpy(ip_r->b, &a6, 16);
        return 0;
    }
    return -1;
}

void ipaddr_format(const struct ipaddr *ip, char out[IPADDR_STRLEN])
{
    if (ip->family == AF_INET)
        inet_ntop(AF_INET, ip->b + 12, out, IPADDR_STRLEN);
    else
        inet_ntop(AF_INET6, ip->b, out, IPADDR_STRLEN);
}

int ipaddr_from_sockaddr(const struct sockaddr *sa, struct ipaddr *ip_r, int *port_r)
{
    memset(ip_r, 0, sizeof(*ip_r));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        ip_r->family = AF_INET;
        ip_r->b[10] = ip_r->b[11] = 0xff;
        memcpy(ip_r->b + 12, &s4->sin_addr, 4);
        if (port_r)
            *port_r = ntohs(s4->sin_port);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        memcpy(ip_r->b, &s6->sin6_addr, 16);
        /* A v4-mapped peer on a dual-stack socket is an IPv4 client. */
        ip_r->family = memcmp(ip_r->b, mapped, 12) == 0 ? AF_INET : AF_INET6;
        if (port_r)
            *port_r = ntohs(s6->sin6_port);
        return 0;
    }
    return -1;
}

int ipaddr_cmp(const struct ipaddr *a, const struct ipaddr *b)
{
    return memcmp(a->b, b->b, 16);
}

bool ipaddr_in_range(const struct ipaddr *ip, const struct ipaddr *from, const struct ipaddr *to)
{
    return ip->family == from->family && ip->family == to->family && ipaddr_cmp(ip, from) >= 0 &&
           ipaddr_cmp(ip, to) <= 0;
}
