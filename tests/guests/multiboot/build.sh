#!/bin/sh
# Builds build/kernel.elf by hand (the integration tests build through tests/src/guests.rs instead;
# keep the flags in step with GUEST_CFLAGS there).
set -eu
cd "$(dirname "$0")"
mkdir -p build
CFLAGS="-m32 -march=i586 -ffreestanding -fno-pic -fno-pie -nostdlib -fno-stack-protector -fno-asynchronous-unwind-tables -mgeneral-regs-only -O2 -g -Wall -Wextra"
objs=""
for src in *.c *.S; do
    obj="build/${src%.*}.o"
    gcc $CFLAGS -c "$src" -o "$obj"
    objs="$objs $obj"
done
ld -m elf_i386 -nostdlib -T linker.ld -o build/kernel.elf $objs
echo build/kernel.elf
