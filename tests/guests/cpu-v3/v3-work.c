/* The cpu-v3 guest's workload, compiled for the x86-64-v3 level (GUEST_V3_CFLAGS:
 * -march=x86-64-v3 -O3): loops the compiler vectorizes with AVX2 and FMA, scalar code
 * with BMI1/BMI2, LZCNT and MOVBE, and AVX2/F16C intrinsics for what compilers rarely
 * emit on their own (gathers, permutes, half floats, masked loads). Every result is
 * reported as a 32-bit hash, so the interpreter's output can be compared line by line
 * with the same object code run natively (tests/tests/cpu_guests.rs). */
#define _MM_MALLOC_H_INCLUDED /* immintrin.h without the libc malloc wrapper */
#include <immintrin.h>
#include "v3.h"

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

#define N 256

static float fa[N] __attribute__((aligned(32))), fb[N] __attribute__((aligned(32))),
    fc[N] __attribute__((aligned(32)));
static double da[N] __attribute__((aligned(32))), db[N] __attribute__((aligned(32))),
    dc[N] __attribute__((aligned(32)));
static u32 ia[N] __attribute__((aligned(32))), ib[N] __attribute__((aligned(32))),
    ic[N] __attribute__((aligned(32)));
static u8 ba[4 * N] __attribute__((aligned(32))), bb[4 * N] __attribute__((aligned(32)));
static signed char sa[4 * N] __attribute__((aligned(32))), sb[4 * N] __attribute__((aligned(32)));
static u16 wa[2 * N] __attribute__((aligned(32))), wb[2 * N] __attribute__((aligned(32)));
static u64 qa[N / 2] __attribute__((aligned(32)));

static u32 state = 0x2545f491u;

/* xorshift32. */
static u32 next(void) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
}

/* FNV-1a over the 32-bit words at p. */
static u32 hash(const void *p, int bytes) {
    const u32 *w = p;
    u32 h = 0x811c9dc5u;
    for (int i = 0; i < bytes / 4; i++) {
        h ^= w[i];
        h *= 0x01000193u;
        __asm__("" : "+r"(h)); /* keep the hash a scalar loop, the same in every build */
    }
    return h;
}

static void fill(void) {
    for (int i = 0; i < N; i++) {
        ia[i] = next();
        ib[i] = next();
    }
    /* int -> float and int -> double conversions (VCVTDQ2PS, VCVTDQ2PD). */
    for (int i = 0; i < N; i++) {
        fa[i] = (float)((int)ia[i] >> 8) / 1024.0f;
        fb[i] = (float)((int)ib[i] >> 12) / 256.0f;
        fc[i] = (float)((int)(ia[i] ^ ib[i]) >> 10) / 4096.0f;
        da[i] = (double)(int)ia[i] / 3.0;
        db[i] = (double)(int)ib[i] / 7.0;
        dc[i] = (double)(int)(ia[i] + ib[i]) / 11.0;
    }
    for (int i = 0; i < 4 * N; i++) {
        ba[i] = (u8)next();
        bb[i] = (u8)(next() >> 8);
        sa[i] = (signed char)ba[i];
        sb[i] = (signed char)bb[i];
    }
    for (int i = 0; i < 2 * N; i++) {
        wa[i] = (u16)next();
        wb[i] = (u16)(next() >> 3);
    }
    for (int i = 0; i < N / 2; i++) qa[i] = (u64)next() << 32 | next();
}

static void float_loops(void) {
    float r[N] __attribute__((aligned(32)));
    double d[N] __attribute__((aligned(32)));
    for (int i = 0; i < N; i++) r[i] = __builtin_fmaf(fa[i], fb[i], fc[i]);
    v3_report("fma-ps", hash(r, sizeof r));
    for (int i = 0; i < N; i++) d[i] = __builtin_fma(da[i], db[i], -dc[i]);
    v3_report("fms-pd", hash(d, sizeof d));
    float dot = 0;
    for (int i = 0; i < N; i++) dot = __builtin_fmaf(fa[i], fb[i], dot);
    v3_report("dot-ss", hash(&dot, sizeof dot));
    for (int i = 0; i < N; i++) r[i] = __builtin_sqrtf(__builtin_fabsf(fa[i])) / (fb[i] + 3000.5f);
    v3_report("sqrt-div-ps", hash(r, sizeof r));
    for (int i = 0; i < N; i++) r[i] = fa[i] < fb[i] ? fa[i] * 0.75f : fb[i] - fc[i];
    v3_report("min-select-ps", hash(r, sizeof r));
    for (int i = 0; i < N; i++) d[i] = (double)fa[i] * db[i] + (double)fc[i];
    v3_report("cvtps2pd-mul", hash(d, sizeof d));
    for (int i = 0; i < N; i++) ic[i] = (u32)(int)(fa[i] * 100.0f);
    v3_report("cvttps2dq", hash(ic, sizeof ic));
    for (int i = 0; i < N; i++) r[i] = (float)(da[i] / db[i]);
    v3_report("div-pd-cvtpd2ps", hash(r, sizeof r));
}

static void integer_loops(void) {
    for (int i = 0; i < N; i++) ic[i] = (ia[i] * ib[i]) ^ (ia[i] << (ib[i] & 31)) ^ (ia[i] >> (ib[i] >> 27));
    v3_report("mul-shift-vd", hash(ic, sizeof ic));
    for (int i = 0; i < N; i++) ic[i] = (u32)((int)ia[i] >> (ib[i] & 31));
    v3_report("sra-vd", hash(ic, sizeof ic));
    u32 sad = 0;
    for (int i = 0; i < 4 * N; i++) sad += ba[i] > bb[i] ? ba[i] - bb[i] : bb[i] - ba[i];
    v3_report("sad-u8", sad);
    u16 w[2 * N] __attribute__((aligned(32)));
    for (int i = 0; i < 2 * N; i++) {
        u32 t = (u32)wa[i] + wb[i];
        w[i] = t > 0xffff ? 0xffff : (u16)t;
    }
    v3_report("addus-u16", hash(w, sizeof w));
    signed char s[4 * N] __attribute__((aligned(32)));
    for (int i = 0; i < 4 * N; i++) s[i] = sa[i] > sb[i] ? sa[i] : sb[i];
    v3_report("max-i8", hash(s, sizeof s));
    u32 count = 0;
    for (int i = 0; i < 4 * N; i++) count += ba[i] == 0x41 || bb[i] < 3;
    v3_report("count-u8", count);
    u64 q[N / 2] __attribute__((aligned(32)));
    for (int i = 0; i < N / 2; i++) q[i] = qa[i] * 3 + (qa[i] >> 7) - (qa[i] << 11);
    v3_report("q-arith", hash(q, sizeof q));
    for (int i = 0; i < 2 * N; i++) w[i] = (u16)(((u32)wa[i] * wb[i]) >> 16);
    v3_report("mulhi-u16", hash(w, sizeof w));
}

static void scalar_bits(void) {
    u32 h = 0;
    for (int i = 0; i < N; i++) {
        u32 x = ia[i] | 1;
        h += _pdep_u32(ib[i], 0x0f0f5a5au) ^ _pext_u32(ia[i], ib[i]);
        h ^= (u32)__builtin_clz(x) + (u32)__builtin_ctz(x) * 33u + _bzhi_u32(ib[i], ia[i] & 31);
        h += __builtin_bswap32(ia[i]) ^ _andn_u32(ia[i], ib[i]) ^ _blsr_u32(ib[i]);
        h = (h >> 3 | h << 29) + (u32)__builtin_popcount(ia[i]);
    }
    v3_report("bmi-lzcnt", h);
}

static void intrinsics(void) {
    u32 out[8] __attribute__((aligned(32)));
    float fo[8] __attribute__((aligned(32)));
    __m256i a = _mm256_load_si256((const __m256i *)ia), b = _mm256_load_si256((const __m256i *)ib);
    __m256 x = _mm256_load_ps(fa), y = _mm256_load_ps(fb);
    _mm256_store_si256((__m256i *)out, _mm256_permutevar8x32_epi32(a, b));
    v3_report("vpermd", hash(out, 32));
    __m256i idx = _mm256_and_si256(b, _mm256_set1_epi32(N - 1));
    _mm256_store_si256((__m256i *)out, _mm256_mask_i32gather_epi32(a, (const int *)ia, idx, b, 4));
    v3_report("vpgatherdd", hash(out, 32));
    __m128i h = _mm256_cvtps_ph(_mm256_mul_ps(x, _mm256_set1_ps(37.0f)), _MM_FROUND_TO_NEAREST_INT);
    _mm256_store_ps(fo, _mm256_cvtph_ps(h));
    v3_report("f16c", hash(fo, 32) ^ (u32)_mm_extract_epi32(h, 3));
    _mm256_store_ps(fo, _mm256_maskload_ps(fb, a));
    v3_report("vmaskmovps", hash(fo, 32));
    _mm256_store_ps(fo, _mm256_blendv_ps(_mm256_hadd_ps(x, y), _mm256_round_ps(y, _MM_FROUND_TO_NEG_INF), x));
    v3_report("blendv-hadd-round", hash(fo, 32));
    _mm256_store_si256((__m256i *)out, _mm256_shuffle_epi8(a, b));
    v3_report("vpshufb", hash(out, 32));
    _mm256_store_si256((__m256i *)out, _mm256_mpsadbw_epu8(a, b, 0x1b));
    v3_report("vmpsadbw", hash(out, 32));
    _mm256_store_si256((__m256i *)out, _mm256_permute4x64_epi64(_mm256_inserti128_si256(a, _mm256_castsi256_si128(b), 1), 0x9c));
    v3_report("vinserti128-vpermq", hash(out, 32));
    v3_report("vpmovmskb", (u32)_mm256_movemask_epi8(_mm256_cmpgt_epi8(a, b)));
    _mm256_store_ps(fo, _mm256_fmaddsub_ps(x, y, _mm256_permute_ps(x, 0x4e)));
    v3_report("vfmaddsub", hash(fo, 32));
    _mm256_store_si256((__m256i *)out, _mm256_cvtepu8_epi32(_mm256_castsi256_si128(a)));
    v3_report("vpmovzxbd", hash(out, 32));
    __m256d p = _mm256_broadcast_sd(&da[3]);
    double dd[4] __attribute__((aligned(32)));
    _mm256_store_pd(dd, _mm256_permute2f128_pd(_mm256_fnmadd_pd(p, _mm256_load_pd(db), _mm256_load_pd(dc)), p, 0x21));
    v3_report("vbroadcastsd-vperm2f128", hash(dd, 32));
}

void v3_run(void) {
    fill();
    float_loops();
    integer_loops();
    scalar_bits();
    intrinsics();
}
