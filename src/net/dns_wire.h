/* dns_wire: helpers shared by dns.c and dns_wire.c (the public parsers are declared in dns.h). */
#ifndef GANNET_NET_DNS_WIRE_H
#define GANNET_NET_DNS_WIRE_H
#include <stdbool.h>

#include "net/dns.h"

#define DNS_MAX_RR 64 /* records kept from one answer */
#define DNS_CLASS_IN 1

/* Lower-case, without the trailing dot; -1 when it does not fit DNS_NAME_MAX. */
int dns_name_norm(const char *in, char out[DNS_NAME_MAX]);
/* "" or "." */
bool dns_name_is_root(const char *s);

#endif
