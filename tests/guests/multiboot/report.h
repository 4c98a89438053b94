/*
 * Result lines on COM1, one per step: "<step>: ok <details>", "<step>: FAIL <why>" or
 * "<step>: SKIP <why>". The integration tests parse exactly this format.
 */
#ifndef REPORT_H
#define REPORT_H

#include "types.h"

/* Names the step that following results (and any CPU exception) belong to. */
void step_begin(const char *name);
void step_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void step_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void step_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints the final "done:" line with the totals. */
void report_done(void);

/* Reports a CPU exception against the current step, then powers off; never returns. */
void report_exception(u32 vector, uptr error, uptr ip) __attribute__((noreturn));

#endif
