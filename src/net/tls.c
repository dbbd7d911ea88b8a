/* tls: OpenSSL server context for SMTP (and later POP3/IMAP) listeners (see tls.h).
 * Errors carry OpenSSL's own reason text. */
#include "net/tls.h"

#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/xalloc.h"

/* TLS 1.2 suites: forward secrecy and AEAD only. TLS 1.3 uses OpenSSL's defaults (all AEAD). */
#define TLS_CIPHERS_12                                                                             \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                                   \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"

struct tls_server {
    SSL_CTX *ctx;
};

static const char *tls_error(const char *what, const char *path)
{
    static __thread char msg[512];
    unsigned long e = ERR_get_error();
    char reason[256] = "unknown error";
    if (e)
        ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    snprintf(msg, sizeof(msg), "%s %s: %s", what, path, reason);
    return msg;
}

static int tls_servername_cb(SSL *ssl, int *alert, void *arg)
{
    (void)ssl;
    (void)alert;
    (void)arg;
    /* One default certificate for now; per-name certificates would switch SSL_CTX here. */
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *tls_ctx_new(const char *cert_path, const char *key_path, const char **err_r)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        *err_r = tls_error("cannot create TLS context", "");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_12);
    /* Idle TLS connections give their read/write buffers back (about 32 KiB each). */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_tlsext_servername_callback(ctx, tls_servername_cb);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
        *err_r = tls_error("[tls] certificate", cert_path);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1) {
        *err_r = tls_error("[tls] private_key", key_path);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        *err_r = tls_error("[tls] private_key does not match the certificate", key_path);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

struct tls_server *tls_server_new(const char *cert_path, const char *key_path, const char **err_r)
{
    SSL_CTX *ctx = tls_ctx_new(cert_path, key_path, err_r);
    if (!ctx)
        return NULL;
    struct tls_server *t = xcalloc(1, sizeof(*t));
    t->ctx = ctx;
    return t;
}

int tls_server_reload(struct tls_server *t, const char *cert_path, const char *key_path,
                      const char **err_r)
{
    SSL_CTX *ctx = tls_ctx_new(cert_path, key_path, err_r);
    if (!ctx)
        return -1;
    SSL_CTX_free(t->ctx); /* reference-counted: live SSL objects keep the old one */
    t->ctx = ctx;
    return 0;
}

void tls_server_free(struct tls_server **tp)
{
    struct tls_server *t = *tp;
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
    *tp = NULL;
}

SSL *tls_server_ssl_new(struct tls_server *t)
{
    return SSL_new(t->ctx);
}

void tls_describe(SSL *ssl, char *out, size_t size)
{
    int bits = 0;
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    if (c)
        SSL_CIPHER_get_bits(c, &bits);
    snprintf(out, size, "version=%s cipher=%s bits=%d", SSL_get_version(ssl),
             c ? SSL_CIPHER_get_name(c) : "none", bits);
}
