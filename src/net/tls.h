/* tls: the server's TLS context (OpenSSL 3): TLS 1.2 and 1.3 only, a modern cipher list with
 * server preference, no renegotiation, certificate + key from [tls]. The context can be replaced
 * (SIGHUP) while sessions run: sessions keep the SSL objects they have, new ones use the new
 * context. A servername (SNI) callback is in place; today it always answers with the default
 * certificate. */
#ifndef GANNET_NET_TLS_H
#define GANNET_NET_TLS_H
#include <openssl/ssl.h>
#include <stddef.h>

struct tls_server;

struct tls_server *tls_server_new(const char *cert_path, const char *key_path, const char **err_r);
/* Load the files again; on error the old certificate stays in use. */
int tls_server_reload(struct tls_server *t, const char *cert_path, const char *key_path,
                      const char **err_r);
void tls_server_free(struct tls_server **t);
/* A new server-side SSL for one connection. */
SSL *tls_server_ssl_new(struct tls_server *t);
/* "version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256" (for Received headers and logs). */
void tls_describe(SSL *ssl, char *out, size_t size);

#endif
