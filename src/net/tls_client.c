/* tls_client: OpenSSL client context for outbound SMTP (see tls_client.h). Errors carry
 * OpenSSL's own reason text. Implements the certificate side of RFC 3207 (STARTTLS) and RFC 8314
 * (implicit TLS) as a client, with RFC 7435 opportunistic security when verification is not
 * required, and the RFC 6125 name check through OpenSSL's X509_VERIFY_PARAM host/IP matching. */
#include "net/tls_client.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/ipaddr.h"
#include "lib/xalloc.h"

struct tls_client {
    SSL_CTX *ctx;
    bool verify;
};

/* Per-SSL marker: the certificate check was configured for this connection. */
static int tls_client_ex_index = -1;
static pthread_once_t tls_client_once = PTHREAD_ONCE_INIT;
static char tls_client_marker;

static void tls_client_init_index(void)
{
    tls_client_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static const char *tls_client_error(const char *what)
{
    static __thread char msg[512];
    unsigned long e = ERR_get_error();
    char reason[256] = "unknown error";
    if (e)
        ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    snprintf(msg, sizeof(msg), "%s: %s", what, reason);
    return msg;
}

struct tls_client *tls_client_new(const char *ca_file, bool verify, const char **err_r)
{
    pthread_once(&tls_client_once, tls_client_init_index);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        *err_r = tls_client_error("cannot create TLS client context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    if (verify) {
        int ok = ca_file && ca_file[0] ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                                       : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            *err_r = tls_client_error(ca_file && ca_file[0] ? ca_file : "system CA store");
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    struct tls_client *t = xcalloc(1, sizeof(*t));
    t->ctx = ctx;
    t->verify = verify;
    return t;
}

void tls_client_free(struct tls_client **tp)
{
    struct tls_client *t = *tp;
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
    *tp = NULL;
}

SSL *tls_client_ssl_new(struct tls_client *t, const char *host_name, bool must_verify)
{
    SSL *ssl = SSL_new(t->ctx);
    if (!ssl)
        return NULL;
    struct ipaddr ip;
    bool is_ip = host_name && host_name[0] && ipaddr_parse(host_name, &ip) == 0;
    if (host_name && host_name[0] && !is_ip)
        SSL_set_tlsext_host_name(ssl, host_name); /* SNI carries names only (RFC 6066 §3) */
    if (!t->verify) {
        SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
        return ssl;
    }
    if (host_name && host_name[0]) {
        X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host_name)
                       : X509_VERIFY_PARAM_set1_host(param, host_name, 0);
        if (ok != 1) {
            SSL_free(ssl);
            ERR_clear_error();
            return NULL;
        }
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    /* Opportunistic: OpenSSL still verifies and records the result, it just does not abort. */
    SSL_set_verify(ssl, must_verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    SSL_set_ex_data(ssl, tls_client_ex_index, &tls_client_marker);
    return ssl;
}

bool tls_client_is_verified(SSL *ssl)
{
    if (tls_client_ex_index < 0 || SSL_get_ex_data(ssl, tls_client_ex_index) != &tls_client_marker)
        return false;
    X509 *peer = SSL_get1_peer_certificate(ssl);
    if (!peer)
        return false;
    X509_free(peer);
    return SSL_get_verify_result(ssl) == X509_V_OK;
}
