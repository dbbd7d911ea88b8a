/* fuzz_conf: libFuzzer target for the configuration loader (src/conf/conf.c).
 *
 * The input is a whole configuration file (cut at the first NUL, as conf_load_string() takes C
 * text) and also a single value for the duration and boolean parsers. A loaded configuration must
 * satisfy what the rest of the server relies on: every string set, every listener with an
 * address and a port in 1..65535, values inside their ranges; a rejected one must come with
 * "name:line: message" lines. Everything is freed (LeakSanitizer checks). */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    unsigned secs;
    bool b;
    (void)conf_parse_duration(text, &secs);
    (void)conf_parse_bool(text, &b);

    char *errors = NULL;
    struct conf *conf = conf_load_string(text, "fuzz.conf", &errors);
    if (conf) {
        assert(errors == NULL);
        assert(conf->hostname && *conf->hostname && conf->data_dir && *conf->data_dir);
        assert(conf->database && *conf->database && conf->user && conf->log_level);
        assert(conf->nameservers && conf->certificate && conf->private_key && conf->welcome);
        assert(conf->max_message_size_kb <= 2097151);
        assert(conf->timeout_s >= 1 && conf->timeout_s <= 86400);
        assert(conf->max_recipients >= 1);
        for (size_t i = 0; i < conf->listeners_count; i++) {
            const struct conf_listener *l = &conf->listeners[i];
            assert(l->name && *l->name && l->address && l->host && *l->host);
            assert(l->port >= 1 && l->port <= 65535);
            assert(l->protocol <= CONF_PROTO_IMAP && l->security <= CONF_SECURITY_TLS);
        }
        conf_free(&conf);
        assert(conf == NULL);
    } else {
        assert(errors && strncmp(errors, "fuzz.conf:", 10) == 0);
        assert(errors[strlen(errors) - 1] == '\n');
        free(errors);
    }
    free(text);
    return 0;
}
