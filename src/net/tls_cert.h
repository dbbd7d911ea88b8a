/* tls_cert: make a self-signed server certificate and key (OpenSSL 3), as `gannet init` does
 * when the [tls] certificate and key do not exist yet, so a fresh install can offer STARTTLS and
 * implicit TLS at once. A real certificate replaces the two files later.
 *
 * The certificate: X.509 v3, ECDSA P-256 key, SHA-256 signature, a random positive 128-bit serial,
 * subject CN=HOSTNAME (when it fits the 64-character CN limit), subjectAltName DNS:HOSTNAME (an
 * IP literal becomes an IP entry; "localhost" also gets IP:127.0.0.1 and IP:::1),
 * basicConstraints CA:FALSE, keyUsage digitalSignature, extendedKeyUsage serverAuth, valid from
 * now for DAYS days. */
#ifndef GANNET_NET_TLS_CERT_H
#define GANNET_NET_TLS_CERT_H
#include <stdbool.h>

#define TLS_CERT_DEFAULT_DAYS 825u /* what browsers accepted for server certificates */
#define TLS_CERT_MAX_DAYS 36500u

/* Create key_path (mode 0600, PKCS#8 PEM) and cert_path (mode 0644, PEM), each written to a
 * temporary file in the same directory, fsync'ed, moved into place without replacing anything,
 * and the directory fsync'ed. Missing parent directories are created (0700 for the key's, 0755
 * for the certificate's). days = 0 means TLS_CERT_DEFAULT_DAYS.
 * Refuses (-1, nothing written) when either file already exists, when both paths are the same,
 * or when hostname is not a host name or IP literal. On any failure nothing is left behind.
 * Returns 0 or -1 with *err_r set (a static or thread-local text). */
int tls_cert_create_selfsigned(const char *cert_path, const char *key_path, const char *hostname,
                               unsigned days, const char **err_r);

/* Both files exist (anything stat() finds, even an unreadable one). */
bool tls_cert_files_exist(const char *cert, const char *key);

#endif
