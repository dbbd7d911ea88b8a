/* tls_client: the client-side TLS context of outbound SMTP (OpenSSL 3): TLS 1.2 and 1.3 only, no
 * compression or renegotiation, trust anchors from the system store
 * (SSL_CTX_set_default_verify_paths) or a PEM file, SNI and a host-name (or IP) check against the
 * peer certificate.
 *
 * Two verification policies per connection (tls_client_ssl_new):
 *   must_verify = true   the handshake fails when the chain or the name does not verify
 *                        (STARTTLS required, implicit TLS);
 *   must_verify = false  opportunistic (RFC 7435): the certificate is checked and the outcome can
 *                        be read afterwards (tls_client_is_verified), but it never fails the
 *                        handshake - encrypt without authenticating.
 * A context made with verify = false never checks at all (tests; "encrypt only" setups). */
#ifndef GANNET_NET_TLS_CLIENT_H
#define GANNET_NET_TLS_CLIENT_H
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

struct tls_client;

/* ca_file: PEM file of trusted certificates; NULL or "" = the system store. Returns NULL with
 * *err_r (thread-local text) when the context or the CA file cannot be loaded. */
struct tls_client *tls_client_new(const char *ca_file, bool verify, const char **err_r);
void tls_client_free(struct tls_client **t);

/* A new client SSL for a connection to host_name: a DNS name (SNI + name check) or an IP literal
 * (IP check, no SNI); NULL or "" = no name check. */
SSL *tls_client_ssl_new(struct tls_client *t, const char *host_name, bool must_verify);

/* After the handshake: the peer's chain and name were verified (false when the context does not
 * verify at all). */
bool tls_client_is_verified(SSL *ssl);

#endif
