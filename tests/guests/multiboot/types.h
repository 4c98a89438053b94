/* Fixed-width types for a freestanding i386 kernel: no system headers are used. */
#ifndef TYPES_H
#define TYPES_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed int i32;
typedef unsigned int usize;

#define NULL ((void *)0)

#endif
