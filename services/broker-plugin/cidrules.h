/* SPDX-License-Identifier: Apache-2.0 */
/* Client-id rules of the broker plugin: which MQTT client ids each user may connect with (pure, no broker). */
#ifndef TWIN_CIDRULES_H
#define TWIN_CIDRULES_H

#include <stdbool.h>
#include <stddef.h>

/*
 * A rule binds a user name to the client ids it may use:
 *
 *     USER PATTERN [PATTERN ...]
 *
 * USER is a user name, or "*" for every user without a rule of its own. A PATTERN is literal
 * text with at most one "%u" (the connecting user's name) and an optional "*" at its end (any
 * rest, also none). Examples: "twin-ingest twin-ingest-*", "* %u" (a device's client id is
 * its user name).
 *
 * A connection (user, id) is allowed when id matches one of the user's patterns (its own
 * rule, else the "*" rule) and no pattern of another user's rule. So a client id space given
 * to one user is closed to every other: nobody can take over a service's session. Checked
 * when the rules are complete (cid_rules_finish): two users' patterns may not overlap, and
 * the "*" rule's patterns must contain "%u" and not end with "*" (else one such user could
 * take another's id).
 */

#define CID_USER_MAX    128  /* longest user name in a rule */
#define CID_PATTERN_MAX 128  /* longest pattern, before "%u" is expanded */
#define CID_PATTERNS    8    /* patterns per rule */
#define CID_RULES       64   /* rules */

struct cid_pattern {
    char text[CID_PATTERN_MAX + 1]; /* without the trailing '*' */
    bool prefix;                    /* it ended with '*' */
};

struct cid_rule {
    char user[CID_USER_MAX + 1];
    bool any_user; /* the "*" rule */
    struct cid_pattern pat[CID_PATTERNS];
    int npat;
};

struct cid_rules {
    struct cid_rule rule[CID_RULES];
    int nrule;
};

/* What cid_rules_check decided. */
enum cid_verdict {
    CID_OK = 0,
    CID_NO_RULE,      /* the user has no rule and there is no "*" rule */
    CID_NO_MATCH,     /* the id matches none of the user's patterns */
    CID_RESERVED,     /* the id matches another user's pattern */
};

void cid_rules_init(struct cid_rules *r);

/* Adds one rule from its text ("USER PATTERN ..."). Returns 0, or -1 with a one-line reason
 * in err. */
int cid_rules_add(struct cid_rules *r, const char *text, char *err, size_t errlen);

/* Checks the rules as a whole (overlaps, the "*" rule's patterns). Returns 0, or -1 with a
 * one-line reason in err. */
int cid_rules_finish(const struct cid_rules *r, char *err, size_t errlen);

/* May `user` connect with client id `id`? user must not be NULL. */
enum cid_verdict cid_rules_check(const struct cid_rules *r, const char *user, const char *id);

/* A word for a verdict, for the log. */
const char *cid_verdict_name(enum cid_verdict v);

#endif
