/* Fixed-width types for a freestanding i386 or x86_64 kernel: no system headers are used. */
#ifndef TYPES_H
#define TYPES_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed int i32;
typedef __SIZE_TYPE__ usize;
typedef __UINTPTR_TYPE__ uptr;

#define NULL ((void *)0)

/* A physical address below 4 GiB as a pointer: both variants run with physical = linear there. */
#define PHYS(addr) ((void *)(uptr)(addr))

#endif
