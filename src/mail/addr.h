/* addr: e-mail address and host-name syntax (hmailserver-behaviour.md §1.6, RFC 5321 §4.1.2).
 *
 * addr_is_valid() is Gannet's one validity rule for envelope addresses:
 *   - total length <= 254;
 *   - local part: a quoted string "..." containing none of < > @ \ (possibly empty), or a
 *     non-empty unquoted run of characters excluding < > space @ \ " (dots anywhere allowed);
 *     control characters (0x00-0x1F, 0x7F) are refused in both forms;
 *   - exactly one '@' outside the quoted local part;
 *   - domain: an IPv4 literal [d.d.d.d] (1-3 digits per part, each 0-255), or 1..127 labels
 *     separated by single dots, each 1-63 chars of [A-Za-z0-9-], not starting with '-', ending
 *     alphanumeric; whole domain <= 255 chars. Single-label domains are valid.
 * All functions take NUL-terminated strings of any length and never read past the NUL. */
#ifndef GANNET_MAIL_ADDR_H
#define GANNET_MAIL_ADDR_H
#include <stdbool.h>
#include <stddef.h>

#define ADDR_MAX 256 /* buffer size for an address (254 chars + NUL, rounded) */

bool addr_is_valid(const char *address);
/* Domain part rule above (labels or IPv4 literal). */
bool addr_domain_is_valid(const char *domain);
/* HELO/EHLO argument: a domain name (underscores tolerated in labels, optional trailing dot),
 * or an address literal "[1.2.3.4]" / "[IPv6:...]". */
bool addr_helo_is_valid(const char *arg);
/* Split at the last '@' (outside quotes). local/domain buffers are ADDR_MAX bytes.
 * Returns -1 (both outputs "") when there is no '@' or a part does not fit in ADDR_MAX bytes
 * (never the case for an address that passes addr_is_valid). */
int addr_split(const char *address, char *local_out, char *domain_out);
/* Pointer to the domain part (after the last '@'), or "" when there is none. */
const char *addr_domain(const char *address);

#endif
