/*
 * C ABI tests for libdeepseek tensors: creation, queries, views, casts, the allocator and
 * device functions, from_blob deleters, every bad input the header documents, handle
 * safety, per-thread errors and a leak loop. Built and run (also under valgrind) by
 * `make c-tests`. Prints "N passed, M failed"; exits nonzero when anything failed.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h> /* NAN, INFINITY, isnan: macros only, no libm */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deepseek.h"

/* ------------------------------------------------------------------ framework */

#include "check.h"

/* True when `msg` contains one of the '|'-separated needles. */
static int mentions(const char *msg, const char *needles) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", needles);
    for (char *p = buf, *bar; p; p = bar ? bar + 1 : NULL) {
        bar = strchr(p, '|');
        if (bar) *bar = '\0';
        if (*p && strstr(msg, p)) return 1;
    }
    return 0;
}

static void still_works(int line);

/* The message of the last CHECK_ERR (the library's own is cleared by still_works). */
static char g_last_msg[1024];

/*
 * The call must fail with exactly `status`, its message must mention one of `needles`
 * ('|'-separated), and the library must keep working afterwards.
 */
static void check_err_at(int line, const char *expr, DsStatus got, DsStatus want, const char *needles) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ds_last_error());
    snprintf(g_last_msg, sizeof g_last_msg, "%s", msg);
    if (got == want && mentions(msg, needles)) {
        g_pass++;
    } else {
        char d_[1400];
        snprintf(d_, sizeof d_, "expected %s mentioning \"%s\", got %s (%d): \"%s\"", ds_status_name(want),
                 needles, ds_status_name(got) ? ds_status_name(got) : "?", got, msg);
        fail_at(line, expr, d_);
    }
    still_works(line);
}
#define CHECK_ERR(call, status, needles) check_err_at(__LINE__, #call, (call), (status), (needles))

/* Creates, uses and frees a tensor; a success clears the last error. */
static void still_works(int line) {
    float v[3] = {1, 2, 3};
    int64_t d[1] = {3};
    DsTensor *t = NULL;
    float back[3] = {0};
    int ok = ds_tensor_from_data(DS_DTYPE_F32, d, 1, v, sizeof v, &t) == DS_STATUS_OK &&
             ds_tensor_copy_to(t, back, sizeof back) == DS_STATUS_OK && back[2] == 3.0f &&
             strcmp(ds_last_error(), "") == 0;
    if (ds_tensor_free(t) != DS_STATUS_OK) ok = 0;
    if (ok) g_pass++;
    else fail_at(line, "library unusable after the previous error", NULL);
}

static int64_t numel_of(const DsTensor *t) {
    int64_t n = -1;
    if (ds_tensor_numel(t, &n) != DS_STATUS_OK) return -1;
    return n;
}

static int shape_is(const DsTensor *t, size_t ndim, const int64_t *want) {
    size_t n = 99;
    int64_t dims[16];
    if (ds_tensor_ndim(t, &n) != DS_STATUS_OK || n != ndim) return 0;
    if (ds_tensor_shape(t, dims, 16) != DS_STATUS_OK) return 0;
    for (size_t i = 0; i < ndim; i++)
        if (dims[i] != want[i]) return 0;
    return 1;
}

static int strides_are(const DsTensor *t, size_t ndim, const int64_t *want) {
    int64_t s[16];
    if (ds_tensor_strides(t, s, 16) != DS_STATUS_OK) return 0;
    for (size_t i = 0; i < ndim; i++)
        if (s[i] != want[i]) return 0;
    return 1;
}

static int shares(const DsTensor *a, const DsTensor *b) {
    bool s = false;
    if (ds_tensor_shares_storage(a, b, &s) != DS_STATUS_OK) return -1;
    return s ? 1 : 0;
}

static int contiguous(const DsTensor *t) {
    bool c = false;
    if (ds_tensor_is_contiguous(t, &c) != DS_STATUS_OK) return -1;
    return c ? 1 : 0;
}

/* Copies a float tensor out and compares it with `want` (n values). */
static int f32_equals(const DsTensor *t, const float *want, size_t n) {
    float got[256];
    if (n > 256 || numel_of(t) != (int64_t)n) return 0;
    if (ds_tensor_copy_to(t, got, sizeof got) != DS_STATUS_OK) return 0;
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i]) return 0;
    return 1;
}

static void free_all(DsTensor **ts, size_t n) {
    for (size_t i = 0; i < n; i++) CHECK_OK(ds_tensor_free(ts[i]));
}

/* ------------------------------------------------------------------ library */

static void test_library(void) {
    const char *v = ds_version_string();
    CHECK(v != NULL && strlen(v) >= 5 && strchr(v, '.') != NULL);
    CHECK(ds_abi_version() == DS_ABI_VERSION);
    CHECK_OK(ds_check_abi(DS_ABI_VERSION));
    CHECK(strcmp(ds_last_error(), "") == 0);
    CHECK_ERR(ds_check_abi(DS_ABI_VERSION + 1), DS_STATUS_ABI_MISMATCH, "ABI");
    {
        char want[32];
        CHECK(ds_check_abi(DS_ABI_VERSION + 41) == DS_STATUS_ABI_MISMATCH);
        snprintf(want, sizeof want, "%u", (unsigned)(DS_ABI_VERSION + 41));
        CHECK(strstr(ds_last_error(), want) != NULL);
        CHECK(strstr(ds_last_error(), v) != NULL);
    }

    for (DsStatus s = DS_STATUS_OK; s <= DS_STATUS_NON_FINITE; s++) {
        const char *n = ds_status_name(s);
        CHECK(n != NULL && strncmp(n, "DS_STATUS_", 10) == 0);
    }
    CHECK(strcmp(ds_status_name(DS_STATUS_OUT_OF_RANGE), "DS_STATUS_OUT_OF_RANGE") == 0);
    CHECK(strcmp(ds_status_name(DS_STATUS_CANCELLED), "DS_STATUS_CANCELLED") == 0);
    CHECK(ds_status_name(DS_STATUS_NON_FINITE + 1) == NULL);
    CHECK(ds_status_name(-1) == NULL);

    static const struct { DsDtype d; size_t size; const char *name; } dt[] = {
        {DS_DTYPE_F32, 4, "f32"}, {DS_DTYPE_F64, 8, "f64"}, {DS_DTYPE_F16, 2, "f16"}, {DS_DTYPE_BF16, 2, "bf16"},
        {DS_DTYPE_I32, 4, "i32"}, {DS_DTYPE_I64, 8, "i64"}, {DS_DTYPE_U8, 1, "u8"},   {DS_DTYPE_BOOL, 1, "bool"},
    };
    for (size_t i = 0; i < sizeof dt / sizeof dt[0]; i++) {
        size_t sz = 0, al = 0;
        CHECK_OK(ds_dtype_size(dt[i].d, &sz));
        CHECK(sz == dt[i].size);
        CHECK_OK(ds_tensor_required_alignment(dt[i].d, &al));
        CHECK(al == dt[i].size);
        const char *nm = ds_dtype_name(dt[i].d);
        CHECK(nm != NULL && strcmp(nm, dt[i].name) == 0);
    }
    static const DsDtype bad_dtypes[] = {0, 9, 99, -1, INT32_MAX, INT32_MIN};
    for (size_t i = 0; i < sizeof bad_dtypes / sizeof bad_dtypes[0]; i++) {
        size_t sz = 77;
        CHECK_ERR(ds_dtype_size(bad_dtypes[i], &sz), DS_STATUS_INVALID_DTYPE, "`dtype`");
        CHECK_ERR(ds_tensor_required_alignment(bad_dtypes[i], &sz), DS_STATUS_INVALID_DTYPE, "`dtype`");
        CHECK(ds_dtype_name(bad_dtypes[i]) == NULL);
        CHECK(strstr(ds_last_error(), "dtype") != NULL);
    }
    CHECK_ERR(ds_dtype_size(DS_DTYPE_F32, NULL), DS_STATUS_NULL_POINTER, "`out_size`");
    CHECK_ERR(ds_tensor_required_alignment(DS_DTYPE_F32, NULL), DS_STATUS_NULL_POINTER, "`out_alignment`");

    /* thread pool */
    int32_t n0 = 0, n = 0;
    CHECK_OK(ds_get_num_threads(&n0));
    CHECK(n0 >= 1);
    CHECK_OK(ds_set_num_threads(2));
    CHECK_OK(ds_get_num_threads(&n));
    CHECK(n == 2);
    CHECK_OK(ds_set_num_threads(1));
    CHECK_OK(ds_get_num_threads(&n));
    CHECK(n == 1);
    CHECK_ERR(ds_set_num_threads(0), DS_STATUS_INVALID_ARGUMENT, "`num_threads`");
    CHECK_ERR(ds_set_num_threads(-3), DS_STATUS_INVALID_ARGUMENT, "`num_threads`");
    CHECK_ERR(ds_set_num_threads(1000000), DS_STATUS_INVALID_ARGUMENT, "`num_threads`");
    CHECK_OK(ds_get_num_threads(&n));
    CHECK(n == 1); /* a refused size leaves the pool alone */
    CHECK_ERR(ds_get_num_threads(NULL), DS_STATUS_NULL_POINTER, "`out_num_threads`");
    CHECK_OK(ds_set_num_threads(n0));
    CHECK_OK(ds_get_num_threads(&n));
    CHECK(n == n0);
}

/* ------------------------------------------------------------------ creation */

static void roundtrip(int line, DsDtype dtype, const void *data, size_t nbytes, const int64_t *dims, size_t ndim) {
    DsTensor *t = NULL;
    unsigned char back[256];
    memset(back, 0xAB, sizeof back);
    DsStatus s = ds_tensor_from_data(dtype, dims, ndim, data, nbytes, &t);
    DsDtype got_dtype = 0;
    size_t nb = 0;
    int ok = s == DS_STATUS_OK && t != NULL && ds_tensor_dtype(t, &got_dtype) == DS_STATUS_OK &&
             got_dtype == dtype && ds_tensor_nbytes(t, &nb) == DS_STATUS_OK && nb == nbytes &&
             ds_tensor_copy_to(t, back, sizeof back) == DS_STATUS_OK && memcmp(back, data, nbytes) == 0 &&
             back[nbytes] == 0xAB && shape_is(t, ndim, dims) && contiguous(t) == 1;
    if (ok) g_pass++;
    else {
        char d[64];
        snprintf(d, sizeof d, "round trip of dtype %d failed", dtype);
        fail_at(line, "from_data/copy_to", d);
    }
    CHECK_OK(ds_tensor_free(t));
}

static void test_create(void) {
    int64_t d4[1] = {4}, d22[2] = {2, 2}, d23[2] = {2, 3};
    float f32[4] = {1.5f, -2.0f, 0.0f, 3.25f};
    double f64[6] = {1e300, -1e-300, 0.5, -0.0, 2.0, 3.0};
    uint16_t f16[4] = {0x3C00, 0xC000, 0x3800, 0x7BFF};  /* 1, -2, 0.5, 65504 */
    uint16_t bf16[4] = {0x3F80, 0xC000, 0x3F00, 0x4049}; /* 1, -2, 0.5, 3.140625 */
    int32_t i32[4] = {INT32_MIN, -1, 0, INT32_MAX};
    int64_t i64[6] = {INT64_MIN, -1, 0, 1, 1LL << 40, INT64_MAX};
    uint8_t u8[4] = {0, 1, 128, 255};
    uint8_t bools[4] = {0, 1, 1, 0};
    roundtrip(__LINE__, DS_DTYPE_F32, f32, sizeof f32, d4, 1);
    roundtrip(__LINE__, DS_DTYPE_F64, f64, sizeof f64, d23, 2);
    roundtrip(__LINE__, DS_DTYPE_F16, f16, sizeof f16, d22, 2);
    roundtrip(__LINE__, DS_DTYPE_BF16, bf16, sizeof bf16, d4, 1);
    roundtrip(__LINE__, DS_DTYPE_I32, i32, sizeof i32, d22, 2);
    roundtrip(__LINE__, DS_DTYPE_I64, i64, sizeof i64, d23, 2);
    roundtrip(__LINE__, DS_DTYPE_U8, u8, sizeof u8, d4, 1);
    roundtrip(__LINE__, DS_DTYPE_BOOL, bools, sizeof bools, d22, 2);

    /* a scalar (ndim 0, dims NULL) and an empty tensor */
    {
        DsTensor *s = NULL, *e = NULL;
        float x = 7.0f, y = 0;
        int64_t d0[1] = {0};
        CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, NULL, 0, &x, sizeof x, &s));
        size_t nd = 9;
        CHECK_OK(ds_tensor_ndim(s, &nd));
        CHECK(nd == 0 && numel_of(s) == 1);
        CHECK_OK(ds_tensor_copy_to(s, &y, sizeof y));
        CHECK(y == 7.0f);
        CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, d0, 1, NULL, 0, &e));
        CHECK(numel_of(e) == 0);
        CHECK_OK(ds_tensor_copy_to(e, NULL, 0));
        DsTensor *all[] = {s, e};
        free_all(all, 2);
    }

    /* zeros / full / arange */
    {
        DsTensor *z = NULL, *fi = NULL, *fb = NULL, *fh = NULL, *a = NULL, *ad = NULL, *ae = NULL;
        CHECK_OK(ds_tensor_zeros(DS_DTYPE_F64, d23, 2, DS_DEVICE_CPU, 0, &z));
        double zb[6] = {1, 1, 1, 1, 1, 1};
        CHECK_OK(ds_tensor_copy_to(z, zb, sizeof zb));
        int allz = 1;
        for (int i = 0; i < 6; i++) allz &= zb[i] == 0.0;
        CHECK(allz);
        CHECK_OK(ds_tensor_full(DS_DTYPE_I32, d22, 2, 3.7, DS_DEVICE_CPU, 0, &fi));
        int32_t ib[4];
        CHECK_OK(ds_tensor_copy_to(fi, ib, sizeof ib));
        CHECK(ib[0] == 3 && ib[3] == 3); /* float to int truncates */
        CHECK_OK(ds_tensor_full(DS_DTYPE_BOOL, d4, 1, 2.0, DS_DEVICE_CPU, 0, &fb));
        uint8_t bb[4];
        CHECK_OK(ds_tensor_copy_to(fb, bb, sizeof bb));
        CHECK(bb[0] == 1 && bb[3] == 1);
        CHECK_OK(ds_tensor_full(DS_DTYPE_F16, d4, 1, -2.0, DS_DEVICE_CPU, 0, &fh));
        uint16_t hb[4];
        CHECK_OK(ds_tensor_copy_to(fh, hb, sizeof hb));
        CHECK(hb[0] == 0xC000 && hb[3] == 0xC000);
        CHECK_OK(ds_tensor_arange(0, 5, 1, DS_DTYPE_I64, DS_DEVICE_CPU, 0, &a));
        int64_t a_want_shape[1] = {5};
        CHECK(shape_is(a, 1, a_want_shape));
        int64_t avals[5];
        CHECK_OK(ds_tensor_copy_to(a, avals, sizeof avals));
        CHECK(avals[0] == 0 && avals[1] == 1 && avals[4] == 4);
        CHECK_OK(ds_tensor_arange(1, 0, -0.25, DS_DTYPE_F32, DS_DEVICE_CPU, 0, &ad));
        float adw[4] = {1.0f, 0.75f, 0.5f, 0.25f};
        CHECK(f32_equals(ad, adw, 4));
        CHECK_OK(ds_tensor_arange(3, 3, 1, DS_DTYPE_F32, DS_DEVICE_CPU, 0, &ae));
        CHECK(numel_of(ae) == 0);
        DsTensor *bad = (DsTensor *)&bad;
        CHECK_ERR(ds_tensor_arange(0, 5, 0, DS_DTYPE_F32, DS_DEVICE_CPU, 0, &bad), DS_STATUS_INVALID_ARGUMENT, "`step`");
        CHECK(bad == NULL);
        CHECK_ERR(ds_tensor_arange(0, NAN, 1, DS_DTYPE_F32, DS_DEVICE_CPU, 0, &bad), DS_STATUS_INVALID_ARGUMENT, "`step`");
        CHECK_ERR(ds_tensor_arange(0, 1e300, 1e-300, DS_DTYPE_F32, DS_DEVICE_CPU, 0, &bad), DS_STATUS_OVERFLOW, "`end`");
        DsTensor *all[] = {z, fi, fb, fh, a, ad, ae};
        free_all(all, 7);
    }

    /* seeded random */
    {
        int64_t d[1] = {64};
        DsTensor *u1 = NULL, *u2 = NULL, *u3 = NULL, *n1 = NULL, *n2 = NULL, *n3 = NULL, *nb = NULL;
        float a[64], b[64], c[64];
        CHECK_OK(ds_tensor_rand_uniform(DS_DTYPE_F32, d, 1, -1.0, 2.0, 42, DS_DEVICE_CPU, 0, &u1));
        CHECK_OK(ds_tensor_rand_uniform(DS_DTYPE_F32, d, 1, -1.0, 2.0, 42, DS_DEVICE_CPU, 0, &u2));
        CHECK_OK(ds_tensor_rand_uniform(DS_DTYPE_F32, d, 1, -1.0, 2.0, 43, DS_DEVICE_CPU, 0, &u3));
        CHECK_OK(ds_tensor_copy_to(u1, a, sizeof a));
        CHECK_OK(ds_tensor_copy_to(u2, b, sizeof b));
        CHECK_OK(ds_tensor_copy_to(u3, c, sizeof c));
        CHECK(memcmp(a, b, sizeof a) == 0);
        CHECK(memcmp(a, c, sizeof a) != 0);
        int in_range = 1, distinct = 0;
        for (int i = 0; i < 64; i++) {
            in_range &= a[i] >= -1.0f && a[i] < 2.0f;
            distinct += i > 0 && a[i] != a[i - 1];
        }
        CHECK(in_range);
        CHECK(distinct > 50);

        int64_t dn[1] = {4096};
        static double x[4096], y[4096], z[4096];
        CHECK_OK(ds_tensor_rand_normal(DS_DTYPE_F64, dn, 1, 3.0, 0.5, 7, DS_DEVICE_CPU, 0, &n1));
        CHECK_OK(ds_tensor_rand_normal(DS_DTYPE_F64, dn, 1, 3.0, 0.5, 7, DS_DEVICE_CPU, 0, &n2));
        CHECK_OK(ds_tensor_rand_normal(DS_DTYPE_F64, dn, 1, 3.0, 0.5, 8, DS_DEVICE_CPU, 0, &n3));
        CHECK_OK(ds_tensor_copy_to(n1, x, sizeof x));
        CHECK_OK(ds_tensor_copy_to(n2, y, sizeof y));
        CHECK_OK(ds_tensor_copy_to(n3, z, sizeof z));
        CHECK(memcmp(x, y, sizeof x) == 0);
        CHECK(memcmp(x, z, sizeof x) != 0);
        double mean = 0, var = 0;
        for (int i = 0; i < 4096; i++) mean += x[i];
        mean /= 4096;
        for (int i = 0; i < 4096; i++) var += (x[i] - mean) * (x[i] - mean);
        var /= 4095;
        CHECK(mean > 2.95 && mean < 3.05);
        CHECK(var > 0.45 * 0.45 && var < 0.55 * 0.55); /* std 0.5 */
        CHECK_OK(ds_tensor_rand_normal(DS_DTYPE_BF16, d, 1, 0.0, 1.0, 1, DS_DEVICE_CPU, 0, &nb));

        DsTensor *bad = (DsTensor *)&bad;
        CHECK_ERR(ds_tensor_rand_uniform(DS_DTYPE_I32, d, 1, 0, 1, 1, DS_DEVICE_CPU, 0, &bad), DS_STATUS_INVALID_DTYPE,
                  "`dtype`");
        CHECK(bad == NULL);
        CHECK_ERR(ds_tensor_rand_normal(DS_DTYPE_BOOL, d, 1, 0, 1, 1, DS_DEVICE_CPU, 0, &bad), DS_STATUS_INVALID_DTYPE,
                  "`dtype`");
        CHECK_ERR(ds_tensor_rand_uniform(DS_DTYPE_F32, d, 1, 2.0, 1.0, 1, DS_DEVICE_CPU, 0, &bad),
                  DS_STATUS_INVALID_ARGUMENT, "`high`");
        CHECK_ERR(ds_tensor_rand_uniform(DS_DTYPE_F32, d, 1, 0.0, INFINITY, 1, DS_DEVICE_CPU, 0, &bad),
                  DS_STATUS_INVALID_ARGUMENT, "`high`");
        CHECK_ERR(ds_tensor_rand_normal(DS_DTYPE_F32, d, 1, 0.0, -1.0, 1, DS_DEVICE_CPU, 0, &bad),
                  DS_STATUS_INVALID_ARGUMENT, "`std`");
        CHECK_ERR(ds_tensor_rand_normal(DS_DTYPE_F32, d, 1, NAN, 1.0, 1, DS_DEVICE_CPU, 0, &bad),
                  DS_STATUS_INVALID_ARGUMENT, "`std`");
        DsTensor *all[] = {u1, u2, u3, n1, n2, n3, nb};
        free_all(all, 7);
    }
}

/* ------------------------------------------------------------------ queries */

static void test_queries(void) {
    float data[24];
    for (int i = 0; i < 24; i++) data[i] = (float)i;
    int64_t dims[3] = {2, 3, 4};
    DsTensor *t = NULL;
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, dims, 3, data, sizeof data, &t));
    size_t nd = 0, nb = 0;
    CHECK_OK(ds_tensor_ndim(t, &nd));
    CHECK(nd == 3);
    CHECK(shape_is(t, 3, dims));
    int64_t st[3] = {12, 4, 1};
    CHECK(strides_are(t, 3, st));
    DsDtype dt = 0;
    CHECK_OK(ds_tensor_dtype(t, &dt));
    CHECK(dt == DS_DTYPE_F32);
    CHECK(numel_of(t) == 24);
    CHECK_OK(ds_tensor_nbytes(t, &nb));
    CHECK(nb == 96);
    DsDeviceKind kind = -1;
    int32_t idx = -1;
    CHECK_OK(ds_tensor_device(t, &kind, &idx));
    CHECK(kind == DS_DEVICE_CPU && idx == 0);
    CHECK(contiguous(t) == 1);
    CHECK(shares(t, t) == 1);
    const void *p = NULL;
    CHECK_OK(ds_tensor_data_ptr(t, &p));
    CHECK(p != NULL && memcmp(p, data, sizeof data) == 0);

    /* shape/strides capacity */
    int64_t small[2];
    CHECK_ERR(ds_tensor_shape(t, small, 2), DS_STATUS_BUFFER_TOO_SMALL, "`capacity`");
    CHECK_ERR(ds_tensor_strides(t, small, 2), DS_STATUS_BUFFER_TOO_SMALL, "`capacity`");
    CHECK_ERR(ds_tensor_shape(t, NULL, 3), DS_STATUS_NULL_POINTER, "`out_dims`|`out_strides`");
    CHECK_ERR(ds_tensor_strides(t, NULL, 3), DS_STATUS_NULL_POINTER, "`out_strides`|`out_dims`");

    /* to_string */
    size_t needed = 0;
    CHECK_ERR(ds_tensor_to_string(t, NULL, 0, &needed), DS_STATUS_BUFFER_TOO_SMALL, "`capacity`");
    CHECK(needed > 10);
    char text[2048];
    memset(text, 'x', sizeof text);
    CHECK_ERR(ds_tensor_to_string(t, text, needed - 1, NULL), DS_STATUS_BUFFER_TOO_SMALL, "`capacity`");
    CHECK(text[0] == 'x'); /* a too-small buffer gets nothing */
    size_t needed2 = 0;
    CHECK_OK(ds_tensor_to_string(t, text, needed, &needed2));
    CHECK(needed2 == needed && strlen(text) + 1 == needed);
    CHECK(strstr(text, "tensor(") != NULL && strstr(text, "23.0") != NULL);
    CHECK(strstr(text, "shape=[2, 3, 4]") != NULL && strstr(text, "dtype=f32") != NULL && strstr(text, "cpu") != NULL);
    CHECK_ERR(ds_tensor_to_string(t, NULL, 100000, NULL), DS_STATUS_NULL_POINTER, "`buf`");
    CHECK_ERR(ds_tensor_to_string(NULL, text, sizeof text, NULL), DS_STATUS_INVALID_HANDLE, "`tensor`");
    {
        uint8_t b[3] = {1, 0, 1};
        int64_t d[1] = {3};
        DsTensor *bt = NULL;
        CHECK_OK(ds_tensor_from_data(DS_DTYPE_BOOL, d, 1, b, 3, &bt));
        CHECK_OK(ds_tensor_to_string(bt, text, sizeof text, NULL));
        CHECK(strstr(text, "true") != NULL && strstr(text, "false") != NULL && strstr(text, "dtype=bool") != NULL);
        CHECK_OK(ds_tensor_free(bt));
    }
    CHECK_OK(ds_tensor_free(t));
}

/* ------------------------------------------------------------------ views */

static int g_view_deleter_calls;
static void view_deleter(void *data, void *ctx) {
    (void)ctx;
    g_view_deleter_calls++;
    free(data);
}

static float at3(const float *base, const int64_t *strides, int64_t i, int64_t j, int64_t k) {
    return base[i * strides[0] + j * strides[1] + k * strides[2]];
}

static void test_views(void) {
    float *buf = malloc(24 * sizeof(float));
    for (int i = 0; i < 24; i++) buf[i] = (float)i;
    int64_t dims[3] = {2, 3, 4};
    DsTensor *t = NULL;
    g_view_deleter_calls = 0;
    CHECK_OK(ds_tensor_from_blob(DS_DTYPE_F32, dims, 3, buf, 24 * sizeof(float), view_deleter, NULL, &t));
    const void *p = NULL;
    CHECK_OK(ds_tensor_data_ptr(t, &p));
    CHECK(p == buf); /* the caller's own pointer: no copy */

    DsTensor *r = NULL, *v = NULL, *pm = NULL, *tr = NULL, *sl = NULL, *un = NULL, *sq = NULL, *ex = NULL, *col = NULL;
    int64_t r_dims[2] = {4, -1}, r_want[2] = {4, 6};
    CHECK_OK(ds_tensor_reshape(t, r_dims, 2, &r));
    CHECK(shape_is(r, 2, r_want));
    int64_t v_dims[1] = {24};
    CHECK_OK(ds_tensor_view(t, v_dims, 1, &v));
    int64_t perm[3] = {2, 0, 1}, pm_want[3] = {4, 2, 3}, pm_strides[3] = {1, 12, 4};
    CHECK_OK(ds_tensor_permute(t, perm, 3, &pm));
    CHECK(shape_is(pm, 3, pm_want) && strides_are(pm, 3, pm_strides) && contiguous(pm) == 0);
    int64_t tr_want[3] = {4, 3, 2}, tr_strides[3] = {1, 4, 12};
    CHECK_OK(ds_tensor_transpose(t, 0, -1, &tr));
    CHECK(shape_is(tr, 3, tr_want) && strides_are(tr, 3, tr_strides));
    int64_t sl_want[3] = {2, 3, 2}, sl_strides[3] = {12, 4, 2};
    CHECK_OK(ds_tensor_slice(t, 2, 1, 4, 2, &sl)); /* indices 1, 3 */
    CHECK(shape_is(sl, 3, sl_want) && strides_are(sl, 3, sl_strides) && contiguous(sl) == 0);
    int64_t un_want[4] = {2, 1, 3, 4};
    CHECK_OK(ds_tensor_unsqueeze(t, 1, &un));
    CHECK(shape_is(un, 4, un_want));
    CHECK_OK(ds_tensor_squeeze(un, 1, &sq));
    CHECK(shape_is(sq, 3, dims));
    int64_t ex_dims[4] = {5, 2, 3, -1}, ex_want[4] = {5, 2, 3, 4}, ex_strides[4] = {0, 12, 4, 1};
    CHECK_OK(ds_tensor_expand(t, ex_dims, 4, &ex));
    CHECK(shape_is(ex, 4, ex_want) && strides_are(ex, 4, ex_strides));
    CHECK_OK(ds_tensor_slice(t, 2, -1, 4, 1, &col)); /* [2,3,1] */
    DsTensor *colx = NULL;
    int64_t colx_dims[3] = {2, 3, 7}, colx_strides[3] = {12, 4, 0};
    CHECK_OK(ds_tensor_expand(col, colx_dims, 3, &colx));
    CHECK(strides_are(colx, 3, colx_strides));

    DsTensor *views[] = {r, v, pm, tr, sl, un, sq, ex, col, colx};
    size_t nviews = sizeof views / sizeof views[0];
    for (size_t i = 0; i < nviews; i++) CHECK(shares(t, views[i]) == 1);

    /* A write into the caller's buffer shows through every view. */
    buf[13] = 1000.0f; /* element [1, 0, 1] */
    buf[23] = -5.0f;   /* element [1, 2, 3] */
    float out[168];
    CHECK_OK(ds_tensor_copy_to(v, out, sizeof out));
    CHECK(out[13] == 1000.0f && out[23] == -5.0f);
    CHECK_OK(ds_tensor_copy_to(r, out, sizeof out));
    CHECK(out[2 * 6 + 1] == 1000.0f);
    CHECK_OK(ds_tensor_copy_to(tr, out, sizeof out)); /* tr[k][j][i] = t[i][j][k]: [1,0,1] -> [1,0,1] */
    CHECK(out[1 * 6 + 0 * 2 + 1] == 1000.0f && out[3 * 6 + 2 * 2 + 1] == -5.0f);
    CHECK_OK(ds_tensor_copy_to(pm, out, sizeof out)); /* pm[k][i][j] = t[i][j][k] */
    CHECK(out[1 * 6 + 1 * 3 + 0] == 1000.0f);
    CHECK_OK(ds_tensor_copy_to(sl, out, sizeof out)); /* sl[i][j][m] = t[i][j][1+2m] */
    CHECK(out[1 * 6 + 0 * 2 + 0] == 1000.0f && out[1 * 6 + 2 * 2 + 1] == -5.0f && out[0] == 1.0f);
    CHECK_OK(ds_tensor_copy_to(colx, out, sizeof out)); /* every k of colx is t[i][j][3] */
    CHECK(out[(1 * 3 + 2) * 7 + 0] == -5.0f && out[(1 * 3 + 2) * 7 + 6] == -5.0f && out[6] == 3.0f);
    CHECK_OK(ds_tensor_copy_to(ex, out, sizeof out));
    CHECK(out[4 * 24 + 13] == 1000.0f);
    /* Reading through strides from the data pointer of a view. */
    const void *tp = NULL;
    int64_t ts[3];
    CHECK_OK(ds_tensor_data_ptr(tr, &tp));
    CHECK_OK(ds_tensor_strides(tr, ts, 3));
    CHECK(at3(tp, ts, 1, 0, 1) == 1000.0f);
    const void *sp = NULL;
    CHECK_OK(ds_tensor_data_ptr(sl, &sp));
    CHECK(sp == buf + 1);

    /* contiguous: the same storage when already packed, a copy otherwise */
    DsTensor *c1 = NULL, *c2 = NULL, *r2 = NULL;
    CHECK_OK(ds_tensor_contiguous(t, &c1));
    CHECK(shares(t, c1) == 1 && c1 != t);
    CHECK_OK(ds_tensor_contiguous(tr, &c2));
    CHECK(shares(t, c2) == 0 && contiguous(c2) == 1 && shape_is(c2, 3, tr_want));
    CHECK_OK(ds_tensor_copy_to(c2, out, sizeof out));
    CHECK(out[1 * 6 + 0 * 2 + 1] == 1000.0f);
    int64_t flat[1] = {-1};
    CHECK_OK(ds_tensor_reshape(tr, flat, 1, &r2)); /* a transposed layout cannot be flattened in place */
    CHECK(shares(t, r2) == 0 && numel_of(r2) == 24);
    buf[0] = 42.0f; /* copies do not see later writes */
    CHECK_OK(ds_tensor_copy_to(c2, out, sizeof out));
    CHECK(out[0] == 0.0f);
    CHECK_OK(ds_tensor_copy_to(v, out, sizeof out));
    CHECK(out[0] == 42.0f);
    DsTensor *copies[] = {c1, c2, r2};
    free_all(copies, 3);

    /* The deleter runs only when the last view dies, whatever the order of frees. */
    CHECK_OK(ds_tensor_free(t));
    CHECK(g_view_deleter_calls == 0);
    for (size_t i = 0; i + 1 < nviews; i++) CHECK_OK(ds_tensor_free(views[i]));
    CHECK(g_view_deleter_calls == 0);
    CHECK_OK(ds_tensor_free(views[nviews - 1]));
    CHECK(g_view_deleter_calls == 1);
}

/* ------------------------------------------------------------------ casts */

static void test_cast(void) {
    int64_t d[1] = {8};
    float src[8] = {1.5f, -1.5f, 2.9999f, -0.0f, NAN, 1e10f, -1e10f, 100.25f};
    DsTensor *f = NULL, *i = NULL, *h = NULL, *back = NULL, *u = NULL, *b = NULL, *same = NULL, *d64 = NULL;
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, d, 1, src, sizeof src, &f));
    CHECK_OK(ds_tensor_cast(f, DS_DTYPE_I32, &i));
    int32_t iv[8];
    CHECK_OK(ds_tensor_copy_to(i, iv, sizeof iv));
    CHECK(iv[0] == 1 && iv[1] == -1 && iv[2] == 2 && iv[3] == 0);
    CHECK(iv[4] == 0);                         /* NaN -> 0 */
    CHECK(iv[5] == INT32_MAX && iv[6] == INT32_MIN); /* saturation */
    CHECK(iv[7] == 100);
    CHECK_OK(ds_tensor_cast(f, DS_DTYPE_U8, &u));
    uint8_t uv[8];
    CHECK_OK(ds_tensor_copy_to(u, uv, sizeof uv));
    CHECK(uv[0] == 1 && uv[1] == 0 && uv[5] == 255 && uv[7] == 100);
    CHECK_OK(ds_tensor_cast(f, DS_DTYPE_BOOL, &b));
    uint8_t bv[8];
    CHECK_OK(ds_tensor_copy_to(b, bv, sizeof bv));
    CHECK(bv[0] == 1 && bv[3] == 0 && bv[7] == 1);
    CHECK_OK(ds_tensor_cast(f, DS_DTYPE_F64, &d64));
    double dv[8];
    CHECK_OK(ds_tensor_copy_to(d64, dv, sizeof dv));
    CHECK(dv[0] == 1.5 && isnan(dv[4]) && dv[7] == 100.25);

    /* f32 -> f16 -> f32 keeps values f16 can hold exactly and rounds the rest to nearest even */
    float exact[6] = {1.0f, 0.5f, -2.0f, 65504.0f, 1023.0f / 16777216.0f, 1.0f + 1.0f / 2048.0f}; /* [4]: largest f16 subnormal */
    int64_t d6[1] = {6};
    DsTensor *e = NULL;
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, d6, 1, exact, sizeof exact, &e));
    CHECK_OK(ds_tensor_cast(e, DS_DTYPE_F16, &h));
    uint16_t hv[6];
    CHECK_OK(ds_tensor_copy_to(h, hv, sizeof hv));
    CHECK(hv[0] == 0x3C00 && hv[1] == 0x3800 && hv[2] == 0xC000 && hv[3] == 0x7BFF && hv[4] == 0x03FF);
    CHECK(hv[5] == 0x3C00); /* 1 + 2^-11 is a tie: rounds to even (1.0) */
    CHECK_OK(ds_tensor_cast(h, DS_DTYPE_F32, &back));
    float fv[6];
    CHECK_OK(ds_tensor_copy_to(back, fv, sizeof fv));
    CHECK(fv[0] == 1.0f && fv[1] == 0.5f && fv[2] == -2.0f && fv[3] == 65504.0f && fv[4] == exact[4] && fv[5] == 1.0f);

    /* integers wrap */
    int32_t ints[4] = {257, -1, 255, 256};
    int64_t d4[1] = {4};
    DsTensor *it = NULL, *iu = NULL;
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_I32, d4, 1, ints, sizeof ints, &it));
    CHECK_OK(ds_tensor_cast(it, DS_DTYPE_U8, &iu));
    uint8_t iuv[4];
    CHECK_OK(ds_tensor_copy_to(iu, iuv, sizeof iuv));
    CHECK(iuv[0] == 1 && iuv[1] == 255 && iuv[2] == 255 && iuv[3] == 0);

    /* cast of a strided view */
    DsTensor *sv = NULL, *svc = NULL;
    CHECK_OK(ds_tensor_slice(f, 0, 0, 8, 7, &sv)); /* elements 0 and 7 */
    CHECK_OK(ds_tensor_cast(sv, DS_DTYPE_I64, &svc));
    int64_t svv[2];
    CHECK_OK(ds_tensor_copy_to(svc, svv, sizeof svv));
    CHECK(svv[0] == 1 && svv[1] == 100);

    /* cast to the same dtype yields a handle to the same data */
    CHECK_OK(ds_tensor_cast(f, DS_DTYPE_F32, &same));
    CHECK(same != NULL && same != f && shares(f, same) == 1);

    DsTensor *bad = (DsTensor *)&bad;
    CHECK_ERR(ds_tensor_cast(f, 0, &bad), DS_STATUS_INVALID_DTYPE, "`dtype`");
    CHECK(bad == NULL);
    CHECK_ERR(ds_tensor_cast(f, 99, &bad), DS_STATUS_INVALID_DTYPE, "`dtype`");
    CHECK_ERR(ds_tensor_cast(f, -1, &bad), DS_STATUS_INVALID_DTYPE, "`dtype`");
    CHECK_ERR(ds_tensor_cast(f, DS_DTYPE_F16, NULL), DS_STATUS_NULL_POINTER, "`out_tensor`");
    CHECK_ERR(ds_tensor_cast(NULL, DS_DTYPE_F16, &bad), DS_STATUS_INVALID_HANDLE, "`tensor`");

    DsTensor *all[] = {f, i, h, back, u, b, same, d64, e, it, iu, sv, svc};
    free_all(all, sizeof all / sizeof all[0]);
}

/* ------------------------------------------------------------------ allocator, devices */

static void test_allocator(void) {
    uint64_t in0 = 0, peak0 = 0, allocs0 = 0, cached0 = 0;
    CHECK_OK(ds_cpu_allocator_stats(&in0, &peak0, &allocs0, &cached0));
    CHECK(peak0 >= in0);
    CHECK_OK(ds_cpu_allocator_stats(NULL, NULL, NULL, NULL));
    int64_t d[1] = {1 << 18}; /* 1 MiB of f32 */
    DsTensor *t = NULL;
    CHECK_OK(ds_tensor_zeros(DS_DTYPE_F32, d, 1, DS_DEVICE_CPU, 0, &t));
    uint64_t in1 = 0, peak1 = 0, allocs1 = 0;
    CHECK_OK(ds_cpu_allocator_stats(&in1, &peak1, &allocs1, NULL));
    CHECK(in1 >= in0 + (1u << 20));
    CHECK(peak1 >= in1);
    CHECK(allocs1 >= allocs0 + 1);
    /* views allocate nothing */
    DsTensor *v = NULL;
    int64_t vd[2] = {512, 512};
    CHECK_OK(ds_tensor_view(t, vd, 2, &v));
    uint64_t in_v = 0, allocs_v = 0;
    CHECK_OK(ds_cpu_allocator_stats(&in_v, NULL, &allocs_v, NULL));
    CHECK(in_v == in1 && allocs_v == allocs1);
    CHECK_OK(ds_tensor_free(t));
    uint64_t in_still = 0;
    CHECK_OK(ds_cpu_allocator_stats(&in_still, NULL, NULL, NULL));
    CHECK(in_still == in1); /* the view keeps the block */
    CHECK_OK(ds_tensor_free(v));
    uint64_t in2 = 0, peak2 = 0, cached2 = 0;
    CHECK_OK(ds_cpu_allocator_stats(&in2, &peak2, NULL, &cached2));
    CHECK(in2 == in0);
    CHECK(peak2 >= in1);
    CHECK(cached2 >= (1u << 20)); /* the freed block is cached for reuse */
    ds_cpu_allocator_reset_peak();
    uint64_t peak3 = 0, in3 = 0;
    CHECK_OK(ds_cpu_allocator_stats(&in3, &peak3, NULL, NULL));
    CHECK(peak3 == in3);
    ds_cpu_allocator_empty_cache();
    uint64_t cached4 = 1;
    CHECK_OK(ds_cpu_allocator_stats(NULL, NULL, NULL, &cached4));
    CHECK(cached4 == 0);
    ds_cpu_allocator_set_cache_limit(0);
    CHECK_OK(ds_tensor_zeros(DS_DTYPE_F32, d, 1, DS_DEVICE_CPU, 0, &t));
    CHECK_OK(ds_tensor_free(t));
    CHECK_OK(ds_cpu_allocator_stats(NULL, NULL, NULL, &cached4));
    CHECK(cached4 == 0); /* caching disabled */
    ds_cpu_allocator_set_cache_limit(1ull << 30);
}

static void test_devices(void) {
    int32_t n = -1;
    CHECK_OK(ds_cuda_device_count(&n));
    CHECK(n >= 0);
    CHECK_ERR(ds_cuda_device_count(NULL), DS_STATUS_NULL_POINTER, "`out_count`");
    int64_t d[1] = {4};
    float x[4] = {1, 2, 3, 4};
    DsTensor *cpu = NULL, *g = NULL;
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, d, 1, x, sizeof x, &cpu));
    if (n == 0) {
        printf("no CUDA device: checking that CUDA requests fail cleanly\n");
        CHECK_ERR(ds_tensor_zeros(DS_DTYPE_F32, d, 1, DS_DEVICE_CUDA, 0, &g), DS_STATUS_DEVICE_UNAVAILABLE, "cuda:0");
        CHECK(g == NULL);
        CHECK_ERR(ds_tensor_full(DS_DTYPE_F32, d, 1, 1.0, DS_DEVICE_CUDA, 0, &g), DS_STATUS_DEVICE_UNAVAILABLE,
                  "cuda");
        CHECK_ERR(ds_tensor_arange(0, 4, 1, DS_DTYPE_F32, DS_DEVICE_CUDA, 0, &g), DS_STATUS_DEVICE_UNAVAILABLE, "cuda");
        CHECK_ERR(ds_tensor_rand_uniform(DS_DTYPE_F32, d, 1, 0, 1, 1, DS_DEVICE_CUDA, 0, &g),
                  DS_STATUS_DEVICE_UNAVAILABLE, "cuda");
        CHECK_ERR(ds_tensor_to_device(cpu, DS_DEVICE_CUDA, 0, &g), DS_STATUS_DEVICE_UNAVAILABLE, "cuda:0");
        CHECK(g == NULL);
    } else {
        printf("%d CUDA device(s): checking a round trip\n", n);
        CHECK_OK(ds_tensor_to_device(cpu, DS_DEVICE_CUDA, 0, &g));
        DsDeviceKind k = -1;
        int32_t i = -1;
        CHECK_OK(ds_tensor_device(g, &k, &i));
        CHECK(k == DS_DEVICE_CUDA && i == 0);
        float back[4] = {0};
        CHECK_OK(ds_tensor_copy_to(g, back, sizeof back));
        CHECK(memcmp(back, x, sizeof x) == 0);
        const void *p = NULL;
        CHECK_ERR(ds_tensor_data_ptr(g, &p), DS_STATUS_UNSUPPORTED, "cuda");
        CHECK_OK(ds_tensor_free(g));
        g = NULL;
    }
    CHECK_ERR(ds_tensor_zeros(DS_DTYPE_F32, d, 1, DS_DEVICE_CUDA, 1000, &g), DS_STATUS_DEVICE_UNAVAILABLE, "cuda:1000");
    CHECK_ERR(ds_tensor_zeros(DS_DTYPE_F32, d, 1, DS_DEVICE_CUDA, -1, &g), DS_STATUS_INVALID_ARGUMENT, "`device_index`");
    CHECK_ERR(ds_tensor_zeros(DS_DTYPE_F32, d, 1, 2, 0, &g), DS_STATUS_INVALID_ARGUMENT, "`device_kind`");
    CHECK_ERR(ds_tensor_zeros(DS_DTYPE_F32, d, 1, -1, 0, &g), DS_STATUS_INVALID_ARGUMENT, "`device_kind`");
    CHECK_ERR(ds_tensor_to_device(cpu, 7, 0, &g), DS_STATUS_INVALID_ARGUMENT, "`device_kind`");
    /* to_device on the same device shares storage */
    CHECK_OK(ds_tensor_to_device(cpu, DS_DEVICE_CPU, 0, &g));
    CHECK(shares(cpu, g) == 1);
    CHECK_OK(ds_tensor_free(g));
    CHECK_OK(ds_tensor_free(cpu));
}

/* ------------------------------------------------------------------ from_blob deleters */

typedef struct {
    int calls;
    void *expected;
    int mismatched;
} DeleterLog;

static void counting_deleter(void *data, void *ctx) {
    DeleterLog *log = ctx;
    log->calls++;
    if (data != log->expected) log->mismatched++;
    free(data);
}

/* from_blob over a fresh malloc'd buffer (offset `misalign` bytes into it); the deleter frees it. */
static DsStatus blob(DeleterLog *log, DsDtype dtype, const int64_t *dims, size_t ndim, size_t nbytes, int null_data,
                     DsTensor **out) {
    unsigned char *mem = malloc(nbytes ? nbytes : 1);
    memset(mem, 0, nbytes ? nbytes : 1);
    log->calls = 0;
    log->mismatched = 0;
    log->expected = null_data ? NULL : mem;
    if (null_data) {
        free(mem);
        mem = NULL;
    }
    return ds_tensor_from_blob(dtype, dims, ndim, mem, nbytes, counting_deleter, log, out);
}

static void misaligned_deleter(void *data, void *ctx) {
    DeleterLog *log = ctx;
    log->calls++;
    if (data != log->expected) log->mismatched++;
    free((unsigned char *)data - 1);
}

#define CHECK_DELETED_ONCE(log) CHECK((log).calls == 1 && (log).mismatched == 0)

static void test_from_blob(void) {
    DeleterLog log;
    int64_t d23[2] = {2, 3};
    DsTensor *t = NULL, *v = NULL;

    /* success: deleter only at the end, with the caller's pointer and context */
    CHECK_OK(blob(&log, DS_DTYPE_F32, d23, 2, 24, 0, &t));
    CHECK(log.calls == 0);
    CHECK_OK(ds_tensor_transpose(t, 0, 1, &v));
    CHECK_OK(ds_tensor_free(t));
    CHECK(log.calls == 0);
    CHECK_OK(ds_tensor_free(v));
    CHECK_DELETED_ONCE(log);

    /* an empty blob */
    int64_t d0[2] = {0, 3};
    CHECK_OK(blob(&log, DS_DTYPE_F32, d0, 2, 0, 0, &t));
    CHECK(numel_of(t) == 0);
    CHECK_OK(ds_tensor_free(t));
    CHECK_DELETED_ONCE(log);

    /* every failure path runs the deleter exactly once */
    int64_t neg[2] = {2, -3}, huge[2] = {INT64_MAX, INT64_MAX}, bytes_over[2] = {1LL << 62, 4};
    static const DsDtype bad_dtypes[] = {0, 99, -1};
    for (size_t i = 0; i < 3; i++) {
        t = (DsTensor *)&t;
        CHECK_ERR(blob(&log, bad_dtypes[i], d23, 2, 24, 0, &t), DS_STATUS_INVALID_DTYPE, "`dtype`");
        CHECK_DELETED_ONCE(log);
        CHECK(t == NULL);
    }
    CHECK_ERR(blob(&log, DS_DTYPE_F32, neg, 2, 24, 0, &t), DS_STATUS_INVALID_ARGUMENT, "`dims`");
    CHECK_DELETED_ONCE(log);
    CHECK_ERR(blob(&log, DS_DTYPE_F32, huge, 2, 24, 0, &t), DS_STATUS_OVERFLOW, "`dims`");
    CHECK_DELETED_ONCE(log);
    CHECK_ERR(blob(&log, DS_DTYPE_F32, bytes_over, 2, 24, 0, &t), DS_STATUS_OVERFLOW, "`dims`");
    CHECK_DELETED_ONCE(log);
    CHECK_ERR(blob(&log, DS_DTYPE_F32, NULL, 2, 24, 0, &t), DS_STATUS_NULL_POINTER, "`dims`");
    CHECK_DELETED_ONCE(log);
    CHECK_ERR(blob(&log, DS_DTYPE_F32, d23, SIZE_MAX / 4, 24, 0, &t), DS_STATUS_OVERFLOW, "`dims`");
    CHECK_DELETED_ONCE(log);
    CHECK_ERR(blob(&log, DS_DTYPE_F32, d23, 2, 20, 0, &t), DS_STATUS_SHAPE_MISMATCH, "`nbytes`");
    CHECK_DELETED_ONCE(log);
    CHECK_ERR(blob(&log, DS_DTYPE_F32, d23, 2, 28, 0, &t), DS_STATUS_SHAPE_MISMATCH, "`nbytes`");
    CHECK_DELETED_ONCE(log);
    CHECK_ERR(blob(&log, DS_DTYPE_F32, d23, 2, 24, 1, &t), DS_STATUS_NULL_POINTER, "`data`");
    CHECK_DELETED_ONCE(log);
    CHECK_ERR(blob(&log, DS_DTYPE_F32, d23, 2, 24, 0, NULL), DS_STATUS_NULL_POINTER, "`out_tensor`");
    CHECK_DELETED_ONCE(log);
    {
        /* misaligned: refused, never copied */
        unsigned char *mem = malloc(64);
        log.calls = 0;
        log.mismatched = 0;
        log.expected = mem + 1;
        CHECK_ERR(ds_tensor_from_blob(DS_DTYPE_F32, d23, 2, mem + 1, 24, misaligned_deleter, &log, &t),
                  DS_STATUS_INVALID_ARGUMENT, "`data`");
        CHECK_DELETED_ONCE(log);
        /* the same offset is fine for a 1-byte dtype */
        mem = malloc(64);
        log.calls = 0;
        log.expected = mem + 1;
        CHECK_OK(ds_tensor_from_blob(DS_DTYPE_U8, d23, 2, mem + 1, 6, misaligned_deleter, &log, &t));
        CHECK(log.calls == 0);
        CHECK_OK(ds_tensor_free(t));
        CHECK_DELETED_ONCE(log);
    }
    {
        /* NULL deleter: borrowed, never released by the engine */
        double stack_buf[6] = {1, 2, 3, 4, 5, 6};
        CHECK_OK(ds_tensor_from_blob(DS_DTYPE_F64, d23, 2, stack_buf, sizeof stack_buf, NULL, NULL, &t));
        stack_buf[5] = 60;
        double back[6];
        CHECK_OK(ds_tensor_copy_to(t, back, sizeof back));
        CHECK(back[5] == 60);
        CHECK_OK(ds_tensor_free(t));
        CHECK_ERR(ds_tensor_from_blob(DS_DTYPE_F64, d23, 2, stack_buf, 8, NULL, NULL, &t), DS_STATUS_SHAPE_MISMATCH,
                  "`nbytes`");
    }
}

/* ------------------------------------------------------------------ bad inputs */

static void test_bad_inputs(void) {
    float data[6] = {0, 1, 2, 3, 4, 5};
    int64_t d23[2] = {2, 3};
    DsTensor *t = NULL, *o = NULL, *tr = NULL;
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, d23, 2, data, sizeof data, &t));
    CHECK_OK(ds_tensor_transpose(t, 0, 1, &tr));

    /* NULL out-pointers */
    size_t sz;
    int64_t i64;
    DsDtype dt;
    bool b;
    DsDeviceKind kind;
    int32_t idx;
    CHECK_ERR(ds_tensor_from_data(DS_DTYPE_F32, d23, 2, data, sizeof data, NULL), DS_STATUS_NULL_POINTER, "`out_tensor`");
    CHECK_ERR(ds_tensor_zeros(DS_DTYPE_F32, d23, 2, DS_DEVICE_CPU, 0, NULL), DS_STATUS_NULL_POINTER, "`out_tensor`");
    CHECK_ERR(ds_tensor_full(DS_DTYPE_F32, d23, 2, 1, DS_DEVICE_CPU, 0, NULL), DS_STATUS_NULL_POINTER, "`out_tensor`");
    CHECK_ERR(ds_tensor_arange(0, 1, 1, DS_DTYPE_F32, DS_DEVICE_CPU, 0, NULL), DS_STATUS_NULL_POINTER, "`out_tensor`");
    CHECK_ERR(ds_tensor_rand_uniform(DS_DTYPE_F32, d23, 2, 0, 1, 1, DS_DEVICE_CPU, 0, NULL), DS_STATUS_NULL_POINTER,
              "`out_tensor`");
    CHECK_ERR(ds_tensor_rand_normal(DS_DTYPE_F32, d23, 2, 0, 1, 1, DS_DEVICE_CPU, 0, NULL), DS_STATUS_NULL_POINTER,
              "`out_tensor`");
    CHECK_ERR(ds_tensor_ndim(t, NULL), DS_STATUS_NULL_POINTER, "`out_ndim`");
    CHECK_ERR(ds_tensor_numel(t, NULL), DS_STATUS_NULL_POINTER, "`out_numel`");
    CHECK_ERR(ds_tensor_nbytes(t, NULL), DS_STATUS_NULL_POINTER, "`out_nbytes`");
    CHECK_ERR(ds_tensor_dtype(t, NULL), DS_STATUS_NULL_POINTER, "`out_dtype`");
    CHECK_ERR(ds_tensor_is_contiguous(t, NULL), DS_STATUS_NULL_POINTER, "`out_contiguous`");
    CHECK_ERR(ds_tensor_shares_storage(t, t, NULL), DS_STATUS_NULL_POINTER, "`out_shared`");
    CHECK_ERR(ds_tensor_device(t, NULL, &idx), DS_STATUS_NULL_POINTER, "`out_kind`");
    CHECK_ERR(ds_tensor_device(t, &kind, NULL), DS_STATUS_NULL_POINTER, "`out_index`");
    CHECK_ERR(ds_tensor_data_ptr(t, NULL), DS_STATUS_NULL_POINTER, "`out_data`");
    CHECK_ERR(ds_tensor_copy_to(t, NULL, 24), DS_STATUS_NULL_POINTER, "`dst`");
    CHECK_ERR(ds_tensor_reshape(t, d23, 2, NULL), DS_STATUS_NULL_POINTER, "`out_tensor`");
    CHECK_ERR(ds_tensor_view(t, d23, 2, NULL), DS_STATUS_NULL_POINTER, "`out_tensor`");
    CHECK_ERR(ds_tensor_transpose(t, 0, 1, NULL), DS_STATUS_NULL_POINTER, "`out_tensor`");
    CHECK_ERR(ds_tensor_slice(t, 0, 0, 1, 1, NULL), DS_STATUS_NULL_POINTER, "`out_tensor`");
    CHECK_ERR(ds_tensor_squeeze(t, 0, NULL), DS_STATUS_NULL_POINTER, "`out_tensor`");
    CHECK_ERR(ds_tensor_unsqueeze(t, 0, NULL), DS_STATUS_NULL_POINTER, "`out_tensor`");
    CHECK_ERR(ds_tensor_contiguous(t, NULL), DS_STATUS_NULL_POINTER, "`out_tensor`");
    CHECK_ERR(ds_tensor_to_device(t, DS_DEVICE_CPU, 0, NULL), DS_STATUS_NULL_POINTER, "`out_tensor`");

    /* NULL handles */
    CHECK_ERR(ds_tensor_ndim(NULL, &sz), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_numel(NULL, &i64), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_nbytes(NULL, &sz), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_dtype(NULL, &dt), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_is_contiguous(NULL, &b), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_shares_storage(NULL, t, &b), DS_STATUS_INVALID_HANDLE, "`a`");
    CHECK_ERR(ds_tensor_shares_storage(t, NULL, &b), DS_STATUS_INVALID_HANDLE, "`b`");
    CHECK_ERR(ds_tensor_device(NULL, &kind, &idx), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_shape(NULL, &i64, 1), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_strides(NULL, &i64, 1), DS_STATUS_INVALID_HANDLE, "`tensor`");
    const void *p;
    CHECK_ERR(ds_tensor_data_ptr(NULL, &p), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_copy_to(NULL, data, sizeof data), DS_STATUS_INVALID_HANDLE, "`tensor`");
    o = (DsTensor *)&o;
    CHECK_ERR(ds_tensor_reshape(NULL, d23, 2, &o), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK(o == NULL);
    CHECK_ERR(ds_tensor_view(NULL, d23, 2, &o), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_permute(NULL, d23, 2, &o), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_transpose(NULL, 0, 1, &o), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_slice(NULL, 0, 0, 1, 1, &o), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_expand(NULL, d23, 2, &o), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_squeeze(NULL, 0, &o), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_unsqueeze(NULL, 0, &o), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_contiguous(NULL, &o), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_cast(NULL, DS_DTYPE_F64, &o), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_to_device(NULL, DS_DEVICE_CPU, 0, &o), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_OK(ds_tensor_free(NULL)); /* freeing NULL is a no-op */

    /* unknown dtypes everywhere a dtype comes in */
    static const DsDtype bad_dtypes[] = {0, 99, -1};
    for (size_t i = 0; i < 3; i++) {
        DsDtype bd = bad_dtypes[i];
        CHECK_ERR(ds_tensor_from_data(bd, d23, 2, data, sizeof data, &o), DS_STATUS_INVALID_DTYPE, "`dtype`");
        CHECK_ERR(ds_tensor_zeros(bd, d23, 2, DS_DEVICE_CPU, 0, &o), DS_STATUS_INVALID_DTYPE, "`dtype`");
        CHECK_ERR(ds_tensor_full(bd, d23, 2, 1, DS_DEVICE_CPU, 0, &o), DS_STATUS_INVALID_DTYPE, "`dtype`");
        CHECK_ERR(ds_tensor_arange(0, 3, 1, bd, DS_DEVICE_CPU, 0, &o), DS_STATUS_INVALID_DTYPE, "`dtype`");
        CHECK_ERR(ds_tensor_rand_uniform(bd, d23, 2, 0, 1, 1, DS_DEVICE_CPU, 0, &o), DS_STATUS_INVALID_DTYPE, "`dtype`");
        CHECK_ERR(ds_tensor_rand_normal(bd, d23, 2, 0, 1, 1, DS_DEVICE_CPU, 0, &o), DS_STATUS_INVALID_DTYPE, "`dtype`");
        CHECK_ERR(ds_tensor_cast(t, bd, &o), DS_STATUS_INVALID_DTYPE, "`dtype`");
        CHECK(o == NULL);
    }

    /* bad shapes */
    int64_t neg[2] = {2, -3}, huge[2] = {INT64_MAX, INT64_MAX}, over[2] = {1LL << 62, 4}, over64[3] = {1LL << 40, 1LL << 40, 2};
    CHECK_ERR(ds_tensor_from_data(DS_DTYPE_F32, neg, 2, data, sizeof data, &o), DS_STATUS_INVALID_ARGUMENT, "`dims`");
    CHECK_ERR(ds_tensor_zeros(DS_DTYPE_F32, neg, 2, DS_DEVICE_CPU, 0, &o), DS_STATUS_INVALID_ARGUMENT, "`dims`");
    CHECK_ERR(ds_tensor_full(DS_DTYPE_F32, neg, 2, 0, DS_DEVICE_CPU, 0, &o), DS_STATUS_INVALID_ARGUMENT, "`dims`");
    CHECK_ERR(ds_tensor_rand_uniform(DS_DTYPE_F32, neg, 2, 0, 1, 1, DS_DEVICE_CPU, 0, &o), DS_STATUS_INVALID_ARGUMENT,
              "`dims`");
    CHECK_ERR(ds_tensor_zeros(DS_DTYPE_F32, huge, 2, DS_DEVICE_CPU, 0, &o), DS_STATUS_OVERFLOW, "`dims`");
    CHECK_ERR(ds_tensor_zeros(DS_DTYPE_F32, over, 2, DS_DEVICE_CPU, 0, &o), DS_STATUS_OVERFLOW, "`dims`");
    CHECK_ERR(ds_tensor_full(DS_DTYPE_U8, over64, 3, 0, DS_DEVICE_CPU, 0, &o), DS_STATUS_OVERFLOW, "`dims`");
    CHECK_ERR(ds_tensor_from_data(DS_DTYPE_F32, huge, 2, data, sizeof data, &o), DS_STATUS_OVERFLOW, "`dims`");
    /* ndim too large for the dims array to exist */
    CHECK_ERR(ds_tensor_zeros(DS_DTYPE_F32, d23, SIZE_MAX / 2, DS_DEVICE_CPU, 0, &o), DS_STATUS_OVERFLOW, "`dims`");
    CHECK_ERR(ds_tensor_from_data(DS_DTYPE_F32, d23, (SIZE_MAX >> 3) + 1, data, sizeof data, &o), DS_STATUS_OVERFLOW,
              "`dims`");
    {
        /* 64 dimensions of size 2: 2^64 elements overflow */
        int64_t many[64];
        for (int i = 0; i < 64; i++) many[i] = 2;
        CHECK_ERR(ds_tensor_zeros(DS_DTYPE_U8, many, 64, DS_DEVICE_CPU, 0, &o), DS_STATUS_OVERFLOW, "`dims`");
    }
    CHECK_ERR(ds_tensor_zeros(DS_DTYPE_F32, NULL, 2, DS_DEVICE_CPU, 0, &o), DS_STATUS_NULL_POINTER, "`dims`");
    /* shape/data size mismatch */
    CHECK_ERR(ds_tensor_from_data(DS_DTYPE_F32, d23, 2, data, sizeof data - 4, &o), DS_STATUS_SHAPE_MISMATCH, "`nbytes`");
    CHECK_ERR(ds_tensor_from_data(DS_DTYPE_F64, d23, 2, data, sizeof data, &o), DS_STATUS_SHAPE_MISMATCH, "`nbytes`");
    CHECK_ERR(ds_tensor_from_data(DS_DTYPE_F32, d23, 2, NULL, sizeof data, &o), DS_STATUS_NULL_POINTER, "`data`");
    CHECK_ERR(ds_tensor_from_data(DS_DTYPE_F32, d23, 2, NULL, 0, &o), DS_STATUS_SHAPE_MISMATCH, "`nbytes`");
    {
        uint8_t notbool[3] = {0, 2, 1};
        int64_t d3[1] = {3};
        CHECK_ERR(ds_tensor_from_data(DS_DTYPE_BOOL, d3, 1, notbool, 3, &o), DS_STATUS_INVALID_ARGUMENT, "`data`");
    }

    /* out-of-range axes */
    CHECK_ERR(ds_tensor_transpose(t, 0, 2, &o), DS_STATUS_OUT_OF_RANGE, "`dim1`");
    CHECK_ERR(ds_tensor_transpose(t, -3, 1, &o), DS_STATUS_OUT_OF_RANGE, "`dim0`");
    CHECK_ERR(ds_tensor_transpose(t, INT64_MIN, 1, &o), DS_STATUS_OUT_OF_RANGE, "`dim0`");
    CHECK_ERR(ds_tensor_squeeze(t, 2, &o), DS_STATUS_OUT_OF_RANGE, "`dim`");
    CHECK_ERR(ds_tensor_unsqueeze(t, 3, &o), DS_STATUS_OUT_OF_RANGE, "`dim`");
    CHECK_ERR(ds_tensor_unsqueeze(t, -4, &o), DS_STATUS_OUT_OF_RANGE, "`dim`");
    CHECK_ERR(ds_tensor_slice(t, 2, 0, 1, 1, &o), DS_STATUS_OUT_OF_RANGE, "`dim`");
    CHECK_ERR(ds_tensor_slice(t, INT64_MAX, 0, 1, 1, &o), DS_STATUS_OUT_OF_RANGE, "`dim`");
    {
        int64_t p3[3] = {0, 1, 2}, p_rep[2] = {0, 0}, p_out[2] = {0, 5};
        CHECK_ERR(ds_tensor_permute(t, p3, 3, &o), DS_STATUS_INVALID_ARGUMENT, "`perm`|`dims`");
        CHECK_ERR(ds_tensor_permute(t, p_rep, 2, &o), DS_STATUS_INVALID_ARGUMENT, "`perm`|`dims`");
        CHECK_ERR(ds_tensor_permute(t, p_out, 2, &o), DS_STATUS_OUT_OF_RANGE, "`perm`|`dims`");
        CHECK_ERR(ds_tensor_permute(t, NULL, 2, &o), DS_STATUS_NULL_POINTER, "`perm`");
    }
    /* bad slice ranges */
    CHECK_ERR(ds_tensor_slice(t, 1, 0, 3, 0, &o), DS_STATUS_INVALID_ARGUMENT, "`step`");
    CHECK_ERR(ds_tensor_slice(t, 1, 0, 3, -1, &o), DS_STATUS_INVALID_ARGUMENT, "`step`");
    CHECK_ERR(ds_tensor_slice(t, 1, 4, 4, 1, &o), DS_STATUS_OUT_OF_RANGE, "`start`");
    CHECK_ERR(ds_tensor_slice(t, 1, -4, 2, 1, &o), DS_STATUS_OUT_OF_RANGE, "`start`");
    CHECK_ERR(ds_tensor_slice(t, 1, 0, 4, 1, &o), DS_STATUS_OUT_OF_RANGE, "`end`");
    CHECK_ERR(ds_tensor_slice(t, 1, 2, 1, 1, &o), DS_STATUS_OUT_OF_RANGE, "`end`");
    CHECK(o == NULL);
    {
        /* an empty slice is fine */
        CHECK_OK(ds_tensor_slice(t, 1, 2, 2, 1, &o));
        CHECK(numel_of(o) == 0);
        CHECK_OK(ds_tensor_free(o));
    }
    /* reshape / view */
    {
        int64_t r42[2] = {4, 2}, two_inf[2] = {-1, -1}, negr[2] = {-2, -3}, r7[2] = {-1, 4}, flat[1] = {6};
        CHECK_ERR(ds_tensor_reshape(t, r42, 2, &o), DS_STATUS_SHAPE_MISMATCH, "`shape`");
        CHECK(strstr(g_last_msg, "reshape") != NULL);
        CHECK_ERR(ds_tensor_reshape(t, two_inf, 2, &o), DS_STATUS_INVALID_ARGUMENT, "`shape`");
        CHECK_ERR(ds_tensor_reshape(t, negr, 2, &o), DS_STATUS_INVALID_ARGUMENT, "`shape`");
        CHECK_ERR(ds_tensor_reshape(t, r7, 2, &o), DS_STATUS_SHAPE_MISMATCH, "`shape`");
        CHECK_ERR(ds_tensor_reshape(t, NULL, 2, &o), DS_STATUS_NULL_POINTER, "`shape`");
        CHECK_ERR(ds_tensor_view(t, r42, 2, &o), DS_STATUS_SHAPE_MISMATCH, "`shape`");
        /* a transposed layout cannot be viewed flat without a copy */
        CHECK_ERR(ds_tensor_view(tr, flat, 1, &o), DS_STATUS_SHAPE_MISMATCH, "`shape`");
        CHECK(strstr(g_last_msg, "reshape") != NULL || strstr(g_last_msg, "view") != NULL);
        CHECK(strstr(g_last_msg, "copy") != NULL); /* the message points at reshape as the way out */
    }
    /* expand / squeeze */
    {
        int64_t e43[2] = {4, 3}, e3[1] = {3}, eneg[3] = {-1, 2, 3}, e_ok[3] = {5, 2, 3};
        CHECK_ERR(ds_tensor_expand(t, e43, 2, &o), DS_STATUS_SHAPE_MISMATCH, "`shape`");
        CHECK_ERR(ds_tensor_expand(t, e3, 1, &o), DS_STATUS_SHAPE_MISMATCH, "`shape`");
        CHECK_ERR(ds_tensor_expand(t, eneg, 3, &o), DS_STATUS_INVALID_ARGUMENT, "`shape`");
        CHECK_ERR(ds_tensor_squeeze(t, 0, &o), DS_STATUS_SHAPE_MISMATCH, "`dim`");
        CHECK_ERR(ds_tensor_squeeze(t, -1, &o), DS_STATUS_SHAPE_MISMATCH, "`dim`");
        CHECK_OK(ds_tensor_expand(t, e_ok, 3, &o));
        CHECK_OK(ds_tensor_free(o));
    }
    /* copy_to with a too-small buffer writes nothing */
    {
        float small[6];
        memset(small, 0, sizeof small);
        CHECK_ERR(ds_tensor_copy_to(t, small, sizeof small - 1), DS_STATUS_BUFFER_TOO_SMALL, "`nbytes`");
        CHECK(small[0] == 0 && small[4] == 0);
        CHECK_ERR(ds_tensor_copy_to(t, small, 0), DS_STATUS_BUFFER_TOO_SMALL, "`nbytes`");
        CHECK_ERR(ds_tensor_copy_to(tr, small, 4), DS_STATUS_BUFFER_TOO_SMALL, "`nbytes`");
        float big[8] = {0};
        CHECK_OK(ds_tensor_copy_to(t, big, sizeof big)); /* a larger buffer is fine */
        CHECK(big[5] == 5.0f && big[6] == 0.0f);
    }
    DsTensor *all[] = {t, tr};
    free_all(all, 2);
}

/* ------------------------------------------------------------------ handle safety */

static void test_handles(void) {
    float x[2] = {1, 2};
    int64_t d[1] = {2};
    DsTensor *t = NULL, *o = NULL;
    uint64_t live0 = ds_live_objects();
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, d, 1, x, sizeof x, &t));
    CHECK(ds_live_objects() == live0 + 1);
    DsTensor *dead = t;
    CHECK_OK(ds_tensor_free(t));
    CHECK(ds_live_objects() == live0);
    /* use after free: refused, not read */
    int64_t n;
    CHECK_ERR(ds_tensor_numel(dead, &n), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK(strstr(g_last_msg, "freed") != NULL);
    float back[2];
    CHECK_ERR(ds_tensor_copy_to(dead, back, sizeof back), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_transpose(dead, 0, 0, &o), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK(o == NULL);
    bool s;
    CHECK_ERR(ds_tensor_shares_storage(dead, dead, &s), DS_STATUS_INVALID_HANDLE, "`a`");
    /* double free */
    CHECK_ERR(ds_tensor_free(dead), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_free(dead), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK(ds_live_objects() == live0);
    /* pointers that were never handles */
    int not_a_handle = 5;
    CHECK_ERR(ds_tensor_numel((const DsTensor *)&not_a_handle, &n), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_free((DsTensor *)&not_a_handle), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK(not_a_handle == 5);
    void *heap = malloc(64);
    memset(heap, 0x5A, 64);
    CHECK_ERR(ds_tensor_free((DsTensor *)heap), DS_STATUS_INVALID_HANDLE, "`tensor`");
    size_t nd;
    CHECK_ERR(ds_tensor_ndim((const DsTensor *)heap, &nd), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK(((unsigned char *)heap)[0] == 0x5A && ((unsigned char *)heap)[63] == 0x5A);
    free(heap);
    CHECK_ERR(ds_tensor_free((DsTensor *)(uintptr_t)1), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_numel((const DsTensor *)(uintptr_t)0xdeadbeef0ull, &n), DS_STATUS_INVALID_HANDLE, "`tensor`");
    /* a handle of another kind */
    DsAttrs *attrs = NULL;
    CHECK_OK(ds_attrs_create(&attrs));
    CHECK_ERR(ds_tensor_numel((const DsTensor *)(void *)attrs, &n), DS_STATUS_INVALID_HANDLE, "DsAttrs");
    CHECK_ERR(ds_tensor_free((DsTensor *)(void *)attrs), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_OK(ds_attrs_free(attrs)); /* still alive after the refused tensor free */
    CHECK(ds_live_objects() == live0);
}

/* ------------------------------------------------------------------ per-thread errors */

#define ROUNDS 200

typedef struct {
    int which;
    pthread_barrier_t *barrier;
    const DsTensor *t;
    int right_status, own_message, cleared;
} ThreadArg;

static void *error_thread(void *p) {
    ThreadArg *a = p;
    for (int r = 0; r < ROUNDS; r++) {
        DsStatus s;
        DsTensor *o = NULL;
        size_t sz;
        if (a->which == 0) s = ds_tensor_transpose(a->t, 0, 9, &o);
        else s = ds_dtype_size(77, &sz);
        pthread_barrier_wait(a->barrier); /* both errors are now set, one per thread */
        const char *e = ds_last_error();
        if (a->which == 0) {
            a->right_status += s == DS_STATUS_OUT_OF_RANGE;
            a->own_message += strstr(e, "`dim1`") != NULL && strstr(e, "dtype") == NULL;
        } else {
            a->right_status += s == DS_STATUS_INVALID_DTYPE;
            a->own_message += strstr(e, "`dtype`") != NULL && strstr(e, "dim1") == NULL;
        }
        pthread_barrier_wait(a->barrier);
        int32_t n;
        if (ds_get_num_threads(&n) == DS_STATUS_OK && strcmp(ds_last_error(), "") == 0) a->cleared++;
        pthread_barrier_wait(a->barrier);
    }
    return NULL;
}

static void test_threads(void) {
    float x[4] = {1, 2, 3, 4};
    int64_t d[2] = {2, 2};
    DsTensor *t = NULL;
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, d, 2, x, sizeof x, &t));
    /* the main thread's own error stays its own */
    CHECK(ds_tensor_squeeze(t, 0, &(DsTensor *){NULL}) == DS_STATUS_SHAPE_MISMATCH);
    char main_msg[512];
    snprintf(main_msg, sizeof main_msg, "%s", ds_last_error());

    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    ThreadArg args[2] = {{0, &barrier, t, 0, 0, 0}, {1, &barrier, t, 0, 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) CHECK(pthread_create(&th[i], NULL, error_thread, &args[i]) == 0);
    for (int i = 0; i < 2; i++) CHECK(pthread_join(th[i], NULL) == 0);
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < 2; i++) {
        CHECK(args[i].right_status == ROUNDS);
        CHECK(args[i].own_message == ROUNDS);
        CHECK(args[i].cleared == ROUNDS);
    }
    CHECK(strcmp(ds_last_error(), main_msg) == 0 && strstr(main_msg, "`dim`") != NULL);
    CHECK_OK(ds_tensor_free(t));
}

/* ------------------------------------------------------------------ leak loop */

static int g_loop_deleter_calls;
static void loop_deleter(void *data, void *ctx) {
    (void)data;
    (void)ctx;
    g_loop_deleter_calls++;
}

static void test_cycles(void) {
    uint64_t live0 = ds_live_objects();
    uint64_t in0 = 0;
    CHECK_OK(ds_cpu_allocator_stats(&in0, NULL, NULL, NULL));
    float x[12];
    for (int i = 0; i < 12; i++) x[i] = (float)i;
    static float blob_buf[12];
    int64_t d[2] = {3, 4}, r[3] = {2, 2, 3};
    int failures = 0;
    g_loop_deleter_calls = 0;
    for (int i = 0; i < 10000; i++) {
        DsTensor *t = NULL, *v = NULL, *tr = NULL, *sl = NULL, *c = NULL, *b = NULL, *bv = NULL;
        failures += ds_tensor_from_data(DS_DTYPE_F32, d, 2, x, sizeof x, &t) != DS_STATUS_OK;
        failures += ds_tensor_reshape(t, r, 3, &v) != DS_STATUS_OK;
        failures += ds_tensor_transpose(t, 0, 1, &tr) != DS_STATUS_OK;
        failures += ds_tensor_slice(tr, 0, 1, 4, 2, &sl) != DS_STATUS_OK;
        failures += ds_tensor_contiguous(sl, &c) != DS_STATUS_OK;
        failures += ds_tensor_from_blob(DS_DTYPE_F32, d, 2, blob_buf, sizeof blob_buf, loop_deleter, NULL, &b) !=
                    DS_STATUS_OK;
        failures += ds_tensor_unsqueeze(b, 0, &bv) != DS_STATUS_OK;
        /* free in a scrambled order: parents before children */
        DsTensor *order[] = {t, b, sl, v, bv, tr, c};
        for (size_t k = 0; k < 7; k++) failures += ds_tensor_free(order[k]) != DS_STATUS_OK;
    }
    CHECK(failures == 0);
    CHECK(g_loop_deleter_calls == 10000);
    CHECK(ds_live_objects() == live0);
    uint64_t in1 = 0;
    CHECK_OK(ds_cpu_allocator_stats(&in1, NULL, NULL, NULL));
    CHECK(in1 == in0);
}

int main(void) {
    uint64_t live_start = ds_live_objects();
    CHECK(live_start == 0);
    test_library();
    test_create();
    test_queries();
    test_views();
    test_cast();
    test_allocator();
    test_devices();
    test_from_blob();
    test_bad_inputs();
    test_handles();
    test_threads();
    test_cycles();
    CHECK(ds_live_objects() == live_start);
    ds_cpu_allocator_empty_cache(); /* cached blocks would show as "possibly lost" under valgrind */
    printf("test_tensor_api: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
