/* smtp_parse: pure parsing of SMTP command lines (no I/O, no state), fuzzed and unit-tested.
 *
 *   smtp_parse_verb  "MAIL FROM:<a@b>" -> verb "MAIL", args "FROM:<a@b>". The verb is the text
 *                    before the first space, upper-cased; TAB is not a separator.
 *   smtp_parse_mail  the MAIL line (hmailserver-behaviour.md §1.6, §1.7 steps 3-6)
 *   smtp_parse_rcpt  the RCPT line (§1.6, §1.8 steps 3-5) */
#ifndef GANNET_SMTP_PARSE_H
#define GANNET_SMTP_PARSE_H
#include <stdbool.h>
#include <stdint.h>

#include "mail/addr.h"

#define SMTP_VERB_MAX 16
#define SMTP_PARAM_MAX 512

enum smtp_parse_status {
    SMTP_PARSE_OK = 0,
    SMTP_PARSE_SYNTAX,       /* 550 Invalid syntax. Syntax should be ... */
    SMTP_PARSE_INVALID_ADDR, /* 550 The address is not valid. / 550 A valid address is required */
    SMTP_PARSE_BAD_PARAM,    /* 555 Unsupported ESMTP extension: <bad_param> */
};

struct smtp_mail_args {
    char address[ADDR_MAX]; /* "" for the null sender */
    bool size_given;
    uint64_t size;                  /* SIZE=n (garbage -> 0) */
    bool body_8bit;                 /* BODY=8BITMIME */
    char bad_param[SMTP_PARAM_MAX]; /* the first unsupported parameter, verbatim (truncated) */
};

struct smtp_rcpt_args {
    char address[ADDR_MAX];
    char bad_param[SMTP_PARAM_MAX];
};

/* Split off the verb (upper-cased into verb, at most SMTP_VERB_MAX-1 chars; a longer first word
 * yields the truncated word, which matches no command) and return the argument text after the
 * first space (not trimmed) in *args_r ("" when none). */
void smtp_parse_verb(const char *line, char verb[SMTP_VERB_MAX], const char **args_r);

/* MAIL: "MAIL FROM:" (case-insensitive) + optional spaces + path [SP params]. Returns the first
 * failure in this order: SYNTAX, INVALID_ADDR (non-empty address failing addr_is_valid), BAD_PARAM.
 * out->address is filled for every status but SYNTAX ("" for the null path <>, which is OK here:
 * the caller applies [smtp] allow_null_sender before looking at the status; an over-long address
 * is INVALID_ADDR and copied truncated). The parameters are parsed for every status but SYNTAX,
 * so with INVALID_ADDR, size/body_8bit are filled and a non-empty bad_param means BAD_PARAM
 * would follow. Accepted parameters (case-insensitive names): SIZE[=<n>] (non-digits -> 0),
 * BODY=7BIT|8BITMIME, AUTH[=<anything>]. The grammar is quoted at the top of smtp_parse.c. */
enum smtp_parse_status smtp_parse_mail(const char *line, struct smtp_mail_args *out);
/* RCPT: "RCPT TO:" + path. Order: SYNTAX, BAD_PARAM (any parameter at all), INVALID_ADDR (the
 * address fails addr_is_valid; the null path <> is invalid here). out->address is filled for
 * every status but SYNTAX (truncated when over-long); bad_param only with BAD_PARAM. */
enum smtp_parse_status smtp_parse_rcpt(const char *line, struct smtp_rcpt_args *out);

#endif
