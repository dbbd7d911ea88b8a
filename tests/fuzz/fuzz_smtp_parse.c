/* fuzz_smtp_parse: libFuzzer target for src/smtp/smtp_parse.c (smtp_parse_verb, smtp_parse_mail,
 * smtp_parse_rcpt). The input, cut at its first NUL, is one command line in an exactly-sized heap
 * block (ASan catches any read past the NUL; the fixed output buffers are checked for overrun by
 * ASan too). The line is parsed as is and also behind "MAIL FROM:" and "RCPT TO:" prefixes so the
 * fuzzer reaches the argument grammar quickly. Invariants checked (abort when broken):
 *   - the verb is < SMTP_VERB_MAX chars, has no SP and no lower-case ASCII; args lies in the line;
 *   - SYNTAX leaves every output field empty;
 *   - OK: MAIL address empty or addr_is_valid, RCPT address addr_is_valid, no bad_param;
 *   - INVALID_ADDR: the address is not valid (and, for MAIL, not empty);
 *   - BAD_PARAM: bad_param is non-empty and occurs verbatim in the line. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

static void parse_line(const char *line, size_t n)
{
    char verb[SMTP_VERB_MAX];
    const char *args = NULL;
    smtp_parse_verb(line, verb, &args);
    check(strlen(verb) < SMTP_VERB_MAX, "verb fits");
    check(args >= line && args <= line + n, "args inside the line");
    check(strchr(verb, ' ') == NULL, "verb has no SP");
    for (const char *p = verb; *p; p++)
        check(!(*p >= 'a' && *p <= 'z'), "verb upper-cased");

    struct smtp_mail_args m;
    enum smtp_parse_status st = smtp_parse_mail(line, &m);
    check(strlen(m.address) < ADDR_MAX && strlen(m.bad_param) < SMTP_PARAM_MAX, "mail fits");
    switch (st) {
    case SMTP_PARSE_SYNTAX:
        check(!m.address[0] && !m.bad_param[0] && !m.size_given && !m.size && !m.body_8bit,
              "mail SYNTAX leaves fields empty");
        break;
    case SMTP_PARSE_OK:
        check(!m.bad_param[0] && (!m.address[0] || addr_is_valid(m.address)), "mail OK");
        break;
    case SMTP_PARSE_INVALID_ADDR:
        check(m.address[0] && !addr_is_valid(m.address), "mail INVALID_ADDR");
        break;
    case SMTP_PARSE_BAD_PARAM:
        check(m.bad_param[0] && strstr(line, m.bad_param) != NULL, "mail BAD_PARAM verbatim");
        check(!m.address[0] || addr_is_valid(m.address), "mail BAD_PARAM address");
        break;
    default:
        check(false, "mail status in range");
    }

    struct smtp_rcpt_args r;
    st = smtp_parse_rcpt(line, &r);
    check(strlen(r.address) < ADDR_MAX && strlen(r.bad_param) < SMTP_PARAM_MAX, "rcpt fits");
    switch (st) {
    case SMTP_PARSE_SYNTAX:
        check(!r.address[0] && !r.bad_param[0], "rcpt SYNTAX leaves fields empty");
        break;
    case SMTP_PARSE_OK:
        check(!r.bad_param[0] && addr_is_valid(r.address), "rcpt OK");
        break;
    case SMTP_PARSE_INVALID_ADDR:
        check(!r.bad_param[0] && !addr_is_valid(r.address), "rcpt INVALID_ADDR");
        break;
    case SMTP_PARSE_BAD_PARAM:
        check(r.bad_param[0] && strstr(line, r.bad_param) != NULL, "rcpt BAD_PARAM verbatim");
        break;
    default:
        check(false, "rcpt status in range");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t n = nul ? (size_t)(nul - data) : size;
    static const char *const prefixes[] = {"", "MAIL FROM:", "RCPT TO:"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t plen = strlen(prefixes[i]);
        char *line = malloc(plen + n + 1);
        if (line == NULL)
            return 0;
        memcpy(line, prefixes[i], plen);
        memcpy(line + plen, data, n);
        line[plen + n] = '\0';
        parse_line(line, plen + n);
        free(line);
    }
    return 0;
}
