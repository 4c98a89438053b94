#include "report.h"
#include "io.h"
#include "kprintf.h"
#include "power.h"

static const char *current_step = "boot";
static u32 passed, failed, skipped;

void step_begin(const char *name) { current_step = name; }

static void step_line(const char *verdict, const char *fmt, __builtin_va_list args) {
    kprintf("%s: %s ", current_step, verdict);
    vkprintf(fmt, args);
    kprintf("\n");
}

void step_ok(const char *fmt, ...) {
    __builtin_va_list args;
    __builtin_va_start(args, fmt);
    step_line("ok", fmt, args);
    __builtin_va_end(args);
    passed++;
}

void step_fail(const char *fmt, ...) {
    __builtin_va_list args;
    __builtin_va_start(args, fmt);
    step_line("FAIL", fmt, args);
    __builtin_va_end(args);
    failed++;
}

void step_skip(const char *fmt, ...) {
    __builtin_va_list args;
    __builtin_va_start(args, fmt);
    step_line("SKIP", fmt, args);
    __builtin_va_end(args);
    skipped++;
}

void report_done(void) {
    step_begin("done");
    if (failed)
        kprintf("done: FAIL steps_ok=%u steps_failed=%u steps_skipped=%u\n", passed, failed, skipped);
    else
        kprintf("done: ok steps_ok=%u steps_failed=0 steps_skipped=%u\n", passed, skipped);
}

static const char *exception_name(u32 vector) {
    static const char *const names[32] = {
        "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "res15",
        "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "res22", "res23", "res24", "res25", "res26", "res27", "#HV", "#VC",
        "#SX", "res31",
    };
    return vector < 32 ? names[vector] : "?";
}

void report_exception(u32 vector, uptr error, uptr ip) {
    step_fail("exception %u (%s) error=0x%llx ip=0x%08llx cr2=0x%08llx", vector, exception_name(vector), (u64)error,
              (u64)ip, (u64)cpu_cr2());
    report_done();
    power_off();
}
