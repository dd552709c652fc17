// Strided copy with dtype conversion: the CUDA twin of src/backend/cpu/copy.rs.
//
// One kernel per (source, destination) dtype pair, named copy_cast_<src>_<dst>. Each thread
// maps a row-major output index to a source offset through `info` = [dims..., strides...]
// (element units) and converts by the engine's cast rules (see `Element` in src/dtype.rs):
// float -> float rounds once to nearest-even; float -> int truncates and saturates, NaN -> 0;
// int -> int wraps; anything -> bool is x != 0; bool -> number is 0 or 1.
// Self-contained: no cuda_fp16.h, so it compiles with NVRTC alone; f16/bf16 are raw bits.

typedef unsigned long long u64;
typedef long long i64;
typedef unsigned short f16_bits;
typedef unsigned short bf16_bits;

// ---- f16 / bf16 bit conversions -------------------------------------------------------------

__device__ __forceinline__ float f16_to_f32(f16_bits h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

__device__ __forceinline__ f16_bits f32_to_f16(float f) {
    f16_bits h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

__device__ __forceinline__ float bf16_to_f32(bf16_bits b) {
    return __int_as_float(((unsigned int)b) << 16);
}

__device__ __forceinline__ bf16_bits f32_to_bf16(float f) {
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16_bits)((u >> 16) | 0x0040u);  // quiet NaN, sign kept
    u += 0x7fffu + ((u >> 16) & 1u);                                              // nearest, ties to even
    return (bf16_bits)(u >> 16);
}

// f64 -> f32 rounding to odd: keeps a sticky bit so the next rounding to a narrower type is exact
// nearest-even (no double rounding), because f32 has more than two extra mantissa bits.
__device__ __forceinline__ float f64_to_f32_odd(double d) {
    float r = __double2float_rz(d);
    if (d == d && (double)r != d) r = __uint_as_float(__float_as_uint(r) | 1u);
    return r;
}

// ---- per-dtype load (to the wide intermediate) and store (from it) ----------------------------

__device__ __forceinline__ double load_f(float x) { return (double)x; }
__device__ __forceinline__ double load_f(double x) { return x; }
__device__ __forceinline__ double load_h(f16_bits x) { return (double)f16_to_f32(x); }
__device__ __forceinline__ double load_b(bf16_bits x) { return (double)bf16_to_f32(x); }

__device__ __forceinline__ int sat_i32(double d) {
    if (d != d) return 0;
    if (d >= 2147483647.0) return 2147483647;
    if (d <= -2147483648.0) return (int)0x80000000;
    return (int)d;
}
__device__ __forceinline__ i64 sat_i64(double d) {
    if (d != d) return 0;
    if (d >= 9223372036854775807.0) return 9223372036854775807LL;
    if (d <= -9223372036854775808.0) return (i64)0x8000000000000000ULL;
    return (i64)d;
}
__device__ __forceinline__ unsigned char sat_u8(double d) {
    if (d != d || d <= 0.0) return 0;
    if (d >= 255.0) return 255;
    return (unsigned char)d;
}

// Stores from a float intermediate (source was a float dtype).
__device__ __forceinline__ void store_from_f(float* p, double d) { *p = (float)d; }
__device__ __forceinline__ void store_from_f(double* p, double d) { *p = d; }
__device__ __forceinline__ void store_from_f_h(f16_bits* p, double d) { *p = f32_to_f16(f64_to_f32_odd(d)); }
__device__ __forceinline__ void store_from_f_b(bf16_bits* p, double d) { *p = f32_to_bf16(f64_to_f32_odd(d)); }
__device__ __forceinline__ void store_from_f(int* p, double d) { *p = sat_i32(d); }
__device__ __forceinline__ void store_from_f(i64* p, double d) { *p = sat_i64(d); }
__device__ __forceinline__ void store_from_f_u8(unsigned char* p, double d) { *p = sat_u8(d); }
__device__ __forceinline__ void store_from_f_bool(unsigned char* p, double d) { *p = (d != 0.0) ? 1 : 0; }

// Stores from an integer intermediate (source was an integer or bool dtype).
__device__ __forceinline__ void store_from_i(float* p, i64 v) { *p = (float)v; }
__device__ __forceinline__ void store_from_i(double* p, i64 v) { *p = (double)v; }
__device__ __forceinline__ void store_from_i_h(f16_bits* p, i64 v) { store_from_f_h(p, (double)v); }
__device__ __forceinline__ void store_from_i_b(bf16_bits* p, i64 v) { store_from_f_b(p, (double)v); }
__device__ __forceinline__ void store_from_i(int* p, i64 v) { *p = (int)v; }
__device__ __forceinline__ void store_from_i(i64* p, i64 v) { *p = v; }
__device__ __forceinline__ void store_from_i_u8(unsigned char* p, i64 v) { *p = (unsigned char)v; }
__device__ __forceinline__ void store_from_i_bool(unsigned char* p, i64 v) { *p = (v != 0) ? 1 : 0; }

__device__ __forceinline__ u64 source_offset(u64 i, unsigned int ndim, const u64* info, u64 offset) {
    u64 off = offset;
    for (int d = (int)ndim - 1; d >= 0; --d) {
        u64 dim = info[d];
        off += (i % dim) * info[ndim + d];
        i /= dim;
    }
    return off;
}

#define COPY_CAST(NAME, S, D, LOAD, STORE)                                                          \
    extern "C" __global__ void NAME(const S* src, D* dst, u64 n, unsigned int ndim,                \
                                    const u64* info, u64 offset) {                                 \
        for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < n;                            \
             i += (u64)blockDim.x * gridDim.x) {                                                   \
            STORE(dst + i, LOAD(src[source_offset(i, ndim, info, offset)]));                       \
        }                                                                                          \
    }

#define LOAD_I(x) ((i64)(x))
#define LOAD_BOOL(x) ((i64)((x) != 0))

// Float sources: f32, f64, f16, bf16.
#define FROM_FLOAT(SN, S, LOAD)                                                                    \
    COPY_CAST(copy_cast_##SN##_f32, S, float, LOAD, store_from_f)                                  \
    COPY_CAST(copy_cast_##SN##_f64, S, double, LOAD, store_from_f)                                 \
    COPY_CAST(copy_cast_##SN##_f16, S, f16_bits, LOAD, store_from_f_h)                             \
    COPY_CAST(copy_cast_##SN##_bf16, S, bf16_bits, LOAD, store_from_f_b)                           \
    COPY_CAST(copy_cast_##SN##_i32, S, int, LOAD, store_from_f)                                    \
    COPY_CAST(copy_cast_##SN##_i64, S, i64, LOAD, store_from_f)                                    \
    COPY_CAST(copy_cast_##SN##_u8, S, unsigned char, LOAD, store_from_f_u8)                        \
    COPY_CAST(copy_cast_##SN##_bool, S, unsigned char, LOAD, store_from_f_bool)

// Integer and bool sources: i32, i64, u8, bool.
#define FROM_INT(SN, S, LOAD)                                                                      \
    COPY_CAST(copy_cast_##SN##_f32, S, float, LOAD, store_from_i)                                  \
    COPY_CAST(copy_cast_##SN##_f64, S, double, LOAD, store_from_i)                                 \
    COPY_CAST(copy_cast_##SN##_f16, S, f16_bits, LOAD, store_from_i_h)                             \
    COPY_CAST(copy_cast_##SN##_bf16, S, bf16_bits, LOAD, store_from_i_b)                           \
    COPY_CAST(copy_cast_##SN##_i32, S, int, LOAD, store_from_i)                                    \
    COPY_CAST(copy_cast_##SN##_i64, S, i64, LOAD, store_from_i)                                    \
    COPY_CAST(copy_cast_##SN##_u8, S, unsigned char, LOAD, store_from_i_u8)                        \
    COPY_CAST(copy_cast_##SN##_bool, S, unsigned char, LOAD, store_from_i_bool)

FROM_FLOAT(f32, float, load_f)
FROM_FLOAT(f64, double, load_f)
FROM_FLOAT(f16, f16_bits, load_h)
FROM_FLOAT(bf16, bf16_bits, load_b)
FROM_INT(i32, int, LOAD_I)
FROM_INT(i64, i64, LOAD_I)
FROM_INT(u8, unsigned char, LOAD_I)
FROM_INT(bool, unsigned char, LOAD_BOOL)
