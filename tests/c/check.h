/*
 * The counting check framework the C tests share: CHECK, CHECK_OK and fail_at. Each test
 * prints "N passed, M failed" from g_pass / g_fail and exits nonzero when anything failed.
 */
#ifndef DS_TEST_CHECK_H
#define DS_TEST_CHECK_H

#include <stdio.h>

#include "deepseek.h"

static int g_pass, g_fail;

/* Records a failure at `file:line` with an optional detail and the library's last error. */
static void fail_in(const char *file, int line, const char *what, const char *detail) {
    g_fail++;
    fprintf(stderr, "FAIL %s:%d: %s\n", file, line, what);
    if (detail) fprintf(stderr, "     %s\n", detail);
    fprintf(stderr, "     ds_last_error(): \"%s\"\n", ds_last_error());
}

/* A macro, so that the file named is the test's, not this header's. */
#define fail_at(line, what, detail) fail_in(__FILE__, (line), (what), (detail))

#define CHECK(cond)                                         \
    do {                                                    \
        if (cond) g_pass++;                                 \
        else fail_at(__LINE__, "CHECK(" #cond ")", NULL);   \
    } while (0)

#define CHECK_OK(call)                                                           \
    do {                                                                         \
        DsStatus s_ = (call);                                                    \
        if (s_ == DS_STATUS_OK) g_pass++;                                        \
        else {                                                                   \
            char d_[128];                                                        \
            snprintf(d_, sizeof d_, "returned %s (%d)", ds_status_name(s_), s_); \
            fail_at(__LINE__, #call, d_);                                        \
        }                                                                        \
    } while (0)

#ifdef DS_CHECK_ERR_MESSAGES
#include <string.h>

/* The message of the last CHECK_ERR, for tests that inspect it further. */
static char g_last_msg[1024];

/* True when `msg` contains every '&'-separated needle. */
static int mentions(const char *msg, const char *needles) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", needles);
    for (char *p = buf, *amp; p; p = amp ? amp + 1 : NULL) {
        amp = strchr(p, '&');
        if (amp) *amp = '\0';
        if (*p && !strstr(msg, p)) return 0;
    }
    return 1;
}

/* The call must fail with exactly `want` and a message containing every '&'-separated needle. */
static void check_err_at(int line, const char *expr, DsStatus got, DsStatus want, const char *needles) {
    snprintf(g_last_msg, sizeof g_last_msg, "%s", ds_last_error());
    if (got == want && mentions(g_last_msg, needles)) {
        g_pass++;
    } else {
        char d[1400];
        snprintf(d, sizeof d, "expected %s mentioning \"%s\", got %s (%d): \"%s\"", ds_status_name(want), needles,
                 ds_status_name(got) ? ds_status_name(got) : "?", got, g_last_msg);
        fail_at(line, expr, d);
    }
#ifdef DS_CHECK_ERR_AFTER
    DS_CHECK_ERR_AFTER(line); /* the test's own check after every expected error */
#endif
}
#define CHECK_ERR(call, status, needles) check_err_at(__LINE__, #call, (call), (status), (needles))
#endif

#endif
