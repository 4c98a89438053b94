#!/bin/sh
# Builds build/<arch>/kernel.elf by hand, <arch> = i386 (default) or x86_64 (the integration tests
# build through tests/src/guests.rs instead; keep the flags in step with GuestArch there).
# Shared C sources are in this folder, the entry, interrupt stubs, linker script and arch.h in
# i386/ or x86_64/. The x86_64 kernel is linked as ELF64 and converted to ELF32 for Multiboot.
set -eu
cd "$(dirname "$0")"
arch="${1:-i386}"
COMMON="-ffreestanding -fno-pic -fno-pie -nostdlib -fno-stack-protector -fno-asynchronous-unwind-tables -mgeneral-regs-only -O2 -g -Wall -Wextra"
case "$arch" in
i386)
    CFLAGS="-m32 -march=i586 $COMMON"
    EMULATION=elf_i386
    ;;
x86_64)
    CFLAGS="-m64 -mno-red-zone -mcmodel=small $COMMON"
    EMULATION=elf_x86_64
    ;;
*)
    echo "usage: $0 [i386|x86_64]" >&2
    exit 2
    ;;
esac
out="build/$arch"
mkdir -p "$out"
objs=""
for src in *.c "$arch"/*.S; do
    obj="$out/$(basename "${src%.*}").o"
    gcc $CFLAGS -I. -I"$arch" -c "$src" -o "$obj"
    objs="$objs $obj"
done
ld -m "$EMULATION" -nostdlib -T "$arch/linker.ld" -o "$out/kernel.elf" $objs
if [ "$arch" = x86_64 ]; then
    mv "$out/kernel.elf" "$out/kernel64.elf"
    objcopy -O elf32-i386 "$out/kernel64.elf" "$out/kernel.elf"
fi
echo "$out/kernel.elf"
