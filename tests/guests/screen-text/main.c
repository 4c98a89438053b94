/* Text-condition guest (tests/tests/screen_text.rs): shows a word on the VGA text screen for
 * a few instructions only, then erases it and shows another, and exits. `--stop-at @READY`
 * must stop the run with READY on the screen, however briefly it was there.
 *
 * Screen: row 2 "screen-text: READY", then that row blanked and row 3 "screen-text: GONE".
 * COM1: "screen-text: shown" after the first word, then "done: ok". */
#include "lib.h"

#define TEXT_SCREEN ((volatile u16 *)0xb8000)
#define COLUMNS 80
#define GREY 0x0700

static void show(int row, const char *s) {
    for (int col = 0; s[col]; col++) TEXT_SCREEN[row * COLUMNS + col] = GREY | (u8)s[col];
}

static void blank(int row) {
    for (int col = 0; col < COLUMNS; col++) TEXT_SCREEN[row * COLUMNS + col] = GREY | ' ';
}

void main(void) {
    show(2, "screen-text: READY");
    blank(2);
    puts("screen-text: shown\n");
    show(3, "screen-text: GONE");
}
