/*
 * Finds \_S5 in AML (ACPI 6.4, 20.2 "AML Grammar Definition"): DefName := NameOp NameString
 * DataRefObject; DefPackage := PackageOp PkgLength NumElements PackageElementList.
 */
#include "acpi.h"

#define AML_ZERO_OP 0x00
#define AML_ONE_OP 0x01
#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0A
#define AML_WORD_PREFIX 0x0B
#define AML_DWORD_PREFIX 0x0C
#define AML_PACKAGE_OP 0x12
#define AML_ROOT_CHAR 0x5C
#define AML_ONES_OP 0xFF

/* Reads one ComputationalData integer at *pos; returns 0 if it is not an integer. */
static int aml_integer(const u8 *aml, u32 len, u32 *pos, u32 *value) {
    u32 p = *pos;
    if (p >= len) return 0;
    switch (aml[p]) {
    case AML_ZERO_OP: *value = 0; p += 1; break;
    case AML_ONE_OP: *value = 1; p += 1; break;
    case AML_ONES_OP: *value = 0xFFFFFFFF; p += 1; break;
    case AML_BYTE_PREFIX:
        if (p + 2 > len) return 0;
        *value = aml[p + 1];
        p += 2;
        break;
    case AML_WORD_PREFIX:
        if (p + 3 > len) return 0;
        *value = aml[p + 1] | (u32)aml[p + 2] << 8;
        p += 3;
        break;
    case AML_DWORD_PREFIX:
        if (p + 5 > len) return 0;
        *value = aml[p + 1] | (u32)aml[p + 2] << 8 | (u32)aml[p + 3] << 16 | (u32)aml[p + 4] << 24;
        p += 5;
        break;
    default: return 0;
    }
    *pos = p;
    return 1;
}

int aml_find_s5(const u8 *aml, u32 len, u8 *slp_typa, u8 *slp_typb) {
    for (u32 i = 1; i + 4 < len; i++) {
        if (aml[i] != '_' || aml[i + 1] != 'S' || aml[i + 2] != '5' || aml[i + 3] != '_') continue;
        int named = aml[i - 1] == AML_NAME_OP || (i >= 2 && aml[i - 1] == AML_ROOT_CHAR && aml[i - 2] == AML_NAME_OP);
        u32 p = i + 4;
        if (!named || aml[p] != AML_PACKAGE_OP) continue;
        p++;
        if (p >= len) return 0;
        p += 1 + (aml[p] >> 6); /* PkgLength: bits 7-6 of the lead byte count the extra bytes */
        if (p >= len) return 0;
        u32 elements = aml[p++], a, b = 0;
        if (elements < 1 || !aml_integer(aml, len, &p, &a)) continue;
        if (elements >= 2 && !aml_integer(aml, len, &p, &b)) b = a;
        *slp_typa = (u8)(a & 7);
        *slp_typb = (u8)(b & 7);
        return 1;
    }
    return 0;
}
