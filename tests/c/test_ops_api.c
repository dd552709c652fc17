/*
 * C ABI tests for libdeepseek ops: attribute lists, ds_op_call, op introspection (names and
 * JSON schemas), and autograd (requires_grad, backward, grad, zero_grad, detach, grad mode).
 * Built and run (also under valgrind) by `make c-tests`. Prints "N passed, M failed";
 * exits nonzero when anything failed.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deepseek.h"

/* ------------------------------------------------------------------ framework */

#define DS_CHECK_ERR_MESSAGES /* CHECK_ERR from check.h */
/* After every expected error the library must keep working. */
static void still_works(int line);
#define DS_CHECK_ERR_AFTER still_works
#include "check.h"

static void still_works(int line) {
    float v[2] = {1, 2};
    int64_t d[1] = {2};
    DsTensor *t = NULL, *out[1] = {NULL};
    const DsTensor *in[2];
    size_t n = 0;
    float back[2] = {0};
    int ok = ds_tensor_from_data(DS_DTYPE_F32, d, 1, v, sizeof v, &t) == DS_STATUS_OK;
    in[0] = t;
    in[1] = t;
    ok = ok && ds_op_call("add", in, 2, NULL, out, 1, &n) == DS_STATUS_OK && n == 1 &&
         ds_tensor_copy_to(out[0], back, sizeof back) == DS_STATUS_OK && back[1] == 4.0f &&
         strcmp(ds_last_error(), "") == 0;
    if (ds_tensor_free(out[0]) != DS_STATUS_OK || ds_tensor_free(t) != DS_STATUS_OK) ok = 0;
    if (ok) g_pass++;
    else fail_at(line, "library unusable after the previous error", NULL);
}

/* ------------------------------------------------------------------ helpers */

static DsTensor *mk(DsDtype dtype, const int64_t *dims, size_t ndim, const void *data, size_t nbytes) {
    DsTensor *t = NULL;
    DsStatus s = ds_tensor_from_data(dtype, dims, ndim, data, nbytes, &t);
    if (s != DS_STATUS_OK) fail_at(__LINE__, "mk", ds_status_name(s));
    return t;
}

static DsTensor *mk_f32(const int64_t *dims, size_t ndim, const float *vals) {
    size_t n = 1;
    for (size_t i = 0; i < ndim; i++) n *= (size_t)dims[i];
    return mk(DS_DTYPE_F32, dims, ndim, vals, n * sizeof(float));
}

/* Calls a one-output op on one or two inputs; NULL (and a recorded failure) on error. */
static DsTensor *op_at(int line, const char *name, const DsTensor *a, const DsTensor *b, const DsAttrs *attrs) {
    const DsTensor *in[2] = {a, b};
    DsTensor *out[2] = {NULL, NULL};
    size_t n = 99;
    DsStatus s = ds_op_call(name, in, b ? 2 : 1, attrs, out, 2, &n);
    if (s != DS_STATUS_OK || n != 1 || out[0] == NULL) {
        char d[128];
        snprintf(d, sizeof d, "op `%s` returned %s, %zu outputs", name, ds_status_name(s), n);
        fail_at(line, "ds_op_call", d);
        return NULL;
    }
    g_pass++;
    return out[0];
}
#define OP(name, a, b, attrs) op_at(__LINE__, (name), (a), (b), (attrs))

/* Runs ds_op_call on one or two inputs expecting failure; returns the status. */
static DsStatus op_status(const char *name, const DsTensor *a, const DsTensor *b, const DsAttrs *attrs) {
    const DsTensor *in[2] = {a, b};
    DsTensor *out[2] = {NULL, NULL};
    size_t n = 99;
    DsStatus s = ds_op_call(name, in, b ? 2 : 1, attrs, out, 2, &n);
    if (s == DS_STATUS_OK) { /* unexpected success: do not leak */
        char msg[64];
        snprintf(msg, sizeof msg, "op `%s` unexpectedly succeeded", name);
        for (size_t i = 0; i < n && i < 2; i++) (void)ds_tensor_free(out[i]);
        fail_at(__LINE__, msg, NULL);
    } else if (n != 0 && s != DS_STATUS_BUFFER_TOO_SMALL) {
        fail_at(__LINE__, "a failed ds_op_call reported outputs", NULL);
    }
    return s;
}

static int values_near(const DsTensor *t, DsDtype want_dtype, const double *want, size_t n, double tol) {
    DsDtype dt = 0;
    int64_t numel = -1;
    if (!t || ds_tensor_dtype(t, &dt) != DS_STATUS_OK || dt != want_dtype) return 0;
    if (ds_tensor_numel(t, &numel) != DS_STATUS_OK || numel != (int64_t)n || n > 64) return 0;
    double got[64];
    if (dt == DS_DTYPE_F32) {
        float f[64];
        if (ds_tensor_copy_to(t, f, sizeof f) != DS_STATUS_OK) return 0;
        for (size_t i = 0; i < n; i++) got[i] = f[i];
    } else if (dt == DS_DTYPE_F64) {
        if (ds_tensor_copy_to(t, got, sizeof got) != DS_STATUS_OK) return 0;
    } else if (dt == DS_DTYPE_I32) {
        int32_t v[64];
        if (ds_tensor_copy_to(t, v, sizeof v) != DS_STATUS_OK) return 0;
        for (size_t i = 0; i < n; i++) got[i] = v[i];
    } else {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        double d = got[i] - want[i];
        if (d > tol || d < -tol) {
            fprintf(stderr, "     element %zu: got %.9g, want %.9g\n", i, got[i], want[i]);
            return 0;
        }
    }
    return 1;
}
#define CHECK_VALUES(t, dtype, tol, ...)                                                    \
    do {                                                                                    \
        const double w_[] = {__VA_ARGS__};                                                  \
        if (values_near((t), (dtype), w_, sizeof w_ / sizeof w_[0], (tol))) g_pass++;       \
        else fail_at(__LINE__, "CHECK_VALUES(" #t ", " #__VA_ARGS__ ")", NULL);             \
    } while (0)

static int shape_is(const DsTensor *t, size_t ndim, const int64_t *want) {
    size_t n = 99;
    int64_t dims[16];
    if (!t || ds_tensor_ndim(t, &n) != DS_STATUS_OK || n != ndim) return 0;
    if (ds_tensor_shape(t, dims, 16) != DS_STATUS_OK) return 0;
    for (size_t i = 0; i < ndim; i++)
        if (dims[i] != want[i]) return 0;
    return 1;
}

static int requires_grad(const DsTensor *t) {
    bool r = false;
    if (ds_tensor_requires_grad(t, &r) != DS_STATUS_OK) return -1;
    return r ? 1 : 0;
}

/* The gradient of `t` compared with `want` (f32); `n == 0` expects no gradient at all. */
static int grad_is(const DsTensor *t, const double *want, size_t n) {
    DsTensor *g = (DsTensor *)&g;
    if (ds_tensor_grad(t, &g) != DS_STATUS_OK) return 0;
    if (n == 0) return g == NULL;
    int ok = g != NULL && values_near(g, DS_DTYPE_F32, want, n, 1e-5);
    if (g && ds_tensor_free(g) != DS_STATUS_OK) ok = 0;
    return ok;
}
#define CHECK_GRAD(t, ...)                                                         \
    do {                                                                           \
        const double w_[] = {__VA_ARGS__};                                         \
        if (grad_is((t), w_, sizeof w_ / sizeof w_[0])) g_pass++;                  \
        else fail_at(__LINE__, "CHECK_GRAD(" #t ", " #__VA_ARGS__ ")", NULL);      \
    } while (0)
#define CHECK_NO_GRAD(t)                                                           \
    do {                                                                           \
        if (grad_is((t), NULL, 0)) g_pass++;                                       \
        else fail_at(__LINE__, "CHECK_NO_GRAD(" #t ")", NULL);                     \
    } while (0)

static DsAttrs *attrs_new(void) {
    DsAttrs *a = NULL;
    CHECK_OK(ds_attrs_create(&a));
    return a;
}

static void free_tensors(DsTensor **ts, size_t n) {
    for (size_t i = 0; i < n; i++) CHECK_OK(ds_tensor_free(ts[i]));
}
#define FREE_ALL(...)                                              \
    do {                                                           \
        DsTensor *all_[] = {__VA_ARGS__};                          \
        free_tensors(all_, sizeof all_ / sizeof all_[0]);          \
    } while (0)

/* ------------------------------------------------------------------ a small JSON checker */

typedef struct {
    const char *p;
    int depth;
} Json;

static void ws(Json *j) {
    while (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r') j->p++;
}
static int json_value(Json *j);
static int json_string(Json *j) {
    if (*j->p != '"') return 0;
    j->p++;
    while (*j->p && *j->p != '"') {
        if ((unsigned char)*j->p < 0x20) return 0;
        if (*j->p == '\\') {
            j->p++;
            if (*j->p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", j->p[i]) || !j->p[i]) return 0;
                j->p += 4;
            } else if (!*j->p || !strchr("\"\\/bfnrt", *j->p)) {
                return 0;
            }
        }
        j->p++;
    }
    if (*j->p != '"') return 0;
    j->p++;
    return 1;
}
static int json_number(Json *j) {
    const char *s = j->p;
    if (*j->p == '-') j->p++;
    if (*j->p == '0') j->p++;
    else if (*j->p >= '1' && *j->p <= '9')
        while (*j->p >= '0' && *j->p <= '9') j->p++;
    else return 0;
    if (*j->p == '.') {
        j->p++;
        if (!(*j->p >= '0' && *j->p <= '9')) return 0;
        while (*j->p >= '0' && *j->p <= '9') j->p++;
    }
    if (*j->p == 'e' || *j->p == 'E') {
        j->p++;
        if (*j->p == '+' || *j->p == '-') j->p++;
        if (!(*j->p >= '0' && *j->p <= '9')) return 0;
        while (*j->p >= '0' && *j->p <= '9') j->p++;
    }
    return j->p > s;
}
static int json_container(Json *j, char open, char close, int keyed) {
    if (*j->p != open || ++j->depth > 64) return 0;
    j->p++;
    ws(j);
    if (*j->p == close) {
        j->p++;
        j->depth--;
        return 1;
    }
    for (;;) {
        ws(j);
        if (keyed) {
            if (!json_string(j)) return 0;
            ws(j);
            if (*j->p != ':') return 0;
            j->p++;
        }
        if (!json_value(j)) return 0;
        ws(j);
        if (*j->p == ',') {
            j->p++;
            continue;
        }
        if (*j->p != close) return 0;
        j->p++;
        j->depth--;
        return 1;
    }
}
static int json_value(Json *j) {
    ws(j);
    switch (*j->p) {
    case '{': return json_container(j, '{', '}', 1);
    case '[': return json_container(j, '[', ']', 0);
    case '"': return json_string(j);
    case 't': return strncmp(j->p, "true", 4) == 0 ? (j->p += 4, 1) : 0;
    case 'f': return strncmp(j->p, "false", 5) == 0 ? (j->p += 5, 1) : 0;
    case 'n': return strncmp(j->p, "null", 4) == 0 ? (j->p += 4, 1) : 0;
    default: return json_number(j);
    }
}
/* A whole document that is one JSON object. */
static int json_valid_object(const char *s) {
    Json j = {s, 0};
    ws(&j);
    if (*j.p != '{' || !json_value(&j)) return 0;
    ws(&j);
    return *j.p == '\0';
}

/* ------------------------------------------------------------------ introspection */

static void test_introspection(void) {
    CHECK(json_valid_object("{\"a\":[1,-2.5e3,true,false,null,{\"b\":\"x\\\"y\\u00e9\"}],\"c\":{}}"));
    CHECK(!json_valid_object("{\"a\":[1,}"));
    CHECK(!json_valid_object("{\"a\":01}"));
    CHECK(!json_valid_object("{\"a\":1} x"));

    size_t count = 0;
    CHECK_OK(ds_op_count(&count));
    CHECK(count >= 10);
    CHECK_ERR(ds_op_count(NULL), DS_STATUS_NULL_POINTER, "`out_count`");
    static const char *required_ops[] = {"add", "sub", "mul", "div", "neg", "exp", "cast",
                                         "sum", "reshape", "view", "transpose", "permute",
                                         "slice", "expand", "squeeze", "unsqueeze", "contiguous"};
    int found[sizeof required_ops / sizeof required_ops[0]] = {0};
    const char *prev = NULL;
    char *schema = NULL;
    for (size_t i = 0; i < count; i++) {
        const char *name = NULL;
        CHECK_OK(ds_op_name(i, &name));
        if (!name) continue;
        CHECK(strlen(name) > 0);
        if (prev) CHECK(strcmp(prev, name) < 0); /* sorted, no duplicates */
        prev = name;
        for (size_t k = 0; k < sizeof required_ops / sizeof required_ops[0]; k++)
            if (strcmp(name, required_ops[k]) == 0) found[k] = 1;

        size_t needed = 0;
        CHECK_ERR(ds_op_schema(name, NULL, 0, &needed), DS_STATUS_BUFFER_TOO_SMALL, "`capacity`");
        CHECK(needed > 2);
        schema = malloc(needed + 16);
        memset(schema, '#', needed + 16);
        CHECK_ERR(ds_op_schema(name, schema, needed - 1, NULL), DS_STATUS_BUFFER_TOO_SMALL, "`capacity`");
        CHECK(schema[0] == '#');
        size_t needed2 = 0;
        CHECK_OK(ds_op_schema(name, schema, needed + 16, &needed2));
        CHECK(needed2 == needed && strlen(schema) + 1 == needed);
        int valid = json_valid_object(schema);
        if (!valid) fprintf(stderr, "     invalid JSON schema for `%s`: %s\n", name, schema);
        CHECK(valid);
        char key[128];
        snprintf(key, sizeof key, "\"name\":\"%s\"", name);
        CHECK(strncmp(schema, "{", 1) == 0 && strstr(schema, key) != NULL);
        CHECK(strstr(schema, "\"kind\":") && strstr(schema, "\"doc\":") && strstr(schema, "\"inputs\":[") &&
              strstr(schema, "\"outputs\":[") && strstr(schema, "\"attrs\":[") && strstr(schema, "\"differentiable\":"));
        free(schema);
        schema = NULL;
    }
    for (size_t k = 0; k < sizeof required_ops / sizeof required_ops[0]; k++) {
        if (!found[k]) fprintf(stderr, "     op `%s` is not listed\n", required_ops[k]);
        CHECK(found[k]);
    }
    const char *nm = NULL;
    CHECK_ERR(ds_op_name(count, &nm), DS_STATUS_OUT_OF_RANGE, "`index`");
    CHECK_ERR(ds_op_name(SIZE_MAX, &nm), DS_STATUS_OUT_OF_RANGE, "`index`");
    CHECK_ERR(ds_op_name(0, NULL), DS_STATUS_NULL_POINTER, "`out_name`");

    /* schema details of two ops */
    char buf[4096];
    CHECK_OK(ds_op_schema("sum", buf, sizeof buf, NULL));
    CHECK(strstr(buf, "\"name\":\"axes\"") && strstr(buf, "\"kind\":\"ints\"") && strstr(buf, "\"default\":[]"));
    CHECK(strstr(buf, "\"name\":\"keepdim\"") && strstr(buf, "\"default\":false") && strstr(buf, "\"differentiable\":true"));
    CHECK_OK(ds_op_schema("cast", buf, sizeof buf, NULL));
    CHECK(strstr(buf, "\"name\":\"dtype\"") && strstr(buf, "\"required\":true"));
    CHECK_OK(ds_op_schema("add", buf, sizeof buf, NULL));
    CHECK(strstr(buf, "{\"name\":\"a\"") && strstr(buf, "{\"name\":\"b\"") && strstr(buf, "\"attrs\":[]"));
    size_t needed = 0;
    CHECK_ERR(ds_op_schema("no_such_op", buf, sizeof buf, &needed), DS_STATUS_NOT_FOUND, "no_such_op");
    CHECK_ERR(ds_op_schema(NULL, buf, sizeof buf, &needed), DS_STATUS_NULL_POINTER, "`name`");
    CHECK_ERR(ds_op_schema("add", NULL, 1000, &needed), DS_STATUS_NULL_POINTER, "`buf`");
}

/* ------------------------------------------------------------------ attribute lists */

static void test_attrs(void) {
    uint64_t live0 = ds_live_objects();
    DsAttrs *a = NULL;
    CHECK_OK(ds_attrs_create(&a));
    CHECK(a != NULL && ds_live_objects() == live0 + 1);
    int64_t vals[2] = {1, 0};
    CHECK_OK(ds_attrs_set_int(a, "i", -5));
    CHECK_OK(ds_attrs_set_float(a, "f", 2.5));
    CHECK_OK(ds_attrs_set_bool(a, "b", true));
    CHECK_OK(ds_attrs_set_ints(a, "l", vals, 2));
    CHECK_OK(ds_attrs_set_ints(a, "empty", NULL, 0));
    CHECK_OK(ds_attrs_set_string(a, "s", "mode"));
    CHECK_OK(ds_attrs_set_int(a, "i", 7)); /* replaces */

    CHECK_ERR(ds_attrs_create(NULL), DS_STATUS_NULL_POINTER, "`out_attrs`");
    CHECK_ERR(ds_attrs_set_int(NULL, "i", 1), DS_STATUS_INVALID_HANDLE, "`attrs`");
    CHECK_ERR(ds_attrs_set_float(NULL, "f", 1), DS_STATUS_INVALID_HANDLE, "`attrs`");
    CHECK_ERR(ds_attrs_set_bool(NULL, "b", 1), DS_STATUS_INVALID_HANDLE, "`attrs`");
    CHECK_ERR(ds_attrs_set_ints(NULL, "l", vals, 2), DS_STATUS_INVALID_HANDLE, "`attrs`");
    CHECK_ERR(ds_attrs_set_string(NULL, "s", "x"), DS_STATUS_INVALID_HANDLE, "`attrs`");
    CHECK_ERR(ds_attrs_set_int(a, NULL, 1), DS_STATUS_NULL_POINTER, "`name`");
    CHECK_ERR(ds_attrs_set_string(a, "s", NULL), DS_STATUS_NULL_POINTER, "`value`");
    CHECK_ERR(ds_attrs_set_ints(a, "l", NULL, 2), DS_STATUS_NULL_POINTER, "`values`");
    CHECK_ERR(ds_attrs_set_ints(a, "l", vals, SIZE_MAX / 2), DS_STATUS_OVERFLOW, "`values`");
    CHECK_ERR(ds_attrs_set_int(a, "\xff\xfe", 1), DS_STATUS_INVALID_ARGUMENT, "`name`&UTF-8");
    CHECK_ERR(ds_attrs_set_string(a, "s", "\xc3"), DS_STATUS_INVALID_ARGUMENT, "`value`&UTF-8");
    {
        /* a tensor handle is not an attribute list */
        float x = 1;
        DsTensor *t = mk(DS_DTYPE_F32, NULL, 0, &x, sizeof x);
        CHECK_ERR(ds_attrs_set_int((DsAttrs *)(void *)t, "i", 1), DS_STATUS_INVALID_HANDLE, "`attrs`&DsTensor");
        CHECK_ERR(ds_attrs_free((DsAttrs *)(void *)t), DS_STATUS_INVALID_HANDLE, "`attrs`");
        CHECK_OK(ds_tensor_free(t));
    }
    CHECK_OK(ds_attrs_free(NULL));
    DsAttrs *dead = a;
    CHECK_OK(ds_attrs_free(a));
    CHECK(ds_live_objects() == live0);
    CHECK_ERR(ds_attrs_free(dead), DS_STATUS_INVALID_HANDLE, "`attrs`");
    CHECK_ERR(ds_attrs_set_int(dead, "i", 1), DS_STATUS_INVALID_HANDLE, "`attrs`");
    CHECK(ds_live_objects() == live0);
}

/* ------------------------------------------------------------------ forward values */

static void test_forward(void) {
    int64_t d23[2] = {2, 3}, d3[1] = {3};
    float av[6] = {0, 1, 2, 3, 4, 5}, bv[3] = {10, 20, 40};
    DsTensor *a = mk_f32(d23, 2, av), *b = mk_f32(d3, 1, bv);

    DsTensor *add = OP("add", a, b, NULL);
    CHECK(shape_is(add, 2, d23));
    CHECK_VALUES(add, DS_DTYPE_F32, 0, 10, 21, 42, 13, 24, 45);
    DsTensor *sub = OP("sub", b, a, NULL);
    CHECK_VALUES(sub, DS_DTYPE_F32, 0, 10, 19, 38, 7, 16, 35);
    DsTensor *mul = OP("mul", a, b, NULL);
    CHECK_VALUES(mul, DS_DTYPE_F32, 0, 0, 20, 80, 30, 80, 200);
    DsTensor *div = OP("div", a, b, NULL);
    CHECK_VALUES(div, DS_DTYPE_F32, 1e-7, 0, 0.05, 0.05, 0.3, 0.2, 0.125);
    DsTensor *neg = OP("neg", a, NULL, NULL);
    CHECK_VALUES(neg, DS_DTYPE_F32, 0, 0, -1, -2, -3, -4, -5);

    double ev[3] = {0, 1, -2};
    DsTensor *e = mk(DS_DTYPE_F64, d3, 1, ev, sizeof ev);
    DsTensor *ex = OP("exp", e, NULL, NULL);
    CHECK_VALUES(ex, DS_DTYPE_F64, 1e-12, 1.0, 2.718281828459045, 0.1353352832366127);

    /* integers: wrapping add, truncating division */
    int32_t iv[3] = {INT32_MAX, -7, 9}, jv[3] = {1, 2, -2};
    DsTensor *ia = mk(DS_DTYPE_I32, d3, 1, iv, sizeof iv), *ib = mk(DS_DTYPE_I32, d3, 1, jv, sizeof jv);
    DsTensor *iadd = OP("add", ia, ib, NULL);
    CHECK_VALUES(iadd, DS_DTYPE_I32, 0, (double)INT32_MIN, -5, 7);
    DsTensor *idiv = OP("div", ia, ib, NULL);
    CHECK_VALUES(idiv, DS_DTYPE_I32, 0, (double)INT32_MAX, -3, -4);
    DsTensor *ineg = OP("neg", ib, NULL, NULL);
    CHECK_VALUES(ineg, DS_DTYPE_I32, 0, -1, -2, 2);

    /* cast through the op, with its dtype attribute */
    DsAttrs *ca = attrs_new();
    CHECK_OK(ds_attrs_set_int(ca, "dtype", DS_DTYPE_I32));
    DsTensor *cast = OP("cast", div, NULL, ca);
    CHECK_VALUES(cast, DS_DTYPE_I32, 0, 0, 0, 0, 0, 0, 0);
    CHECK_OK(ds_attrs_set_int(ca, "dtype", DS_DTYPE_F64));
    DsTensor *cast64 = OP("cast", a, NULL, ca);
    CHECK_VALUES(cast64, DS_DTYPE_F64, 0, 0, 1, 2, 3, 4, 5);

    /* sum: all (0-d), over one axis, keepdim, integers */
    DsTensor *s_all = OP("sum", a, NULL, NULL);
    size_t nd = 9;
    CHECK_OK(ds_tensor_ndim(s_all, &nd));
    CHECK(nd == 0);
    CHECK_VALUES(s_all, DS_DTYPE_F32, 0, 15);
    DsAttrs *sa = attrs_new();
    int64_t ax0[1] = {0}, axm1[1] = {-1};
    CHECK_OK(ds_attrs_set_ints(sa, "axes", ax0, 1));
    DsTensor *s0 = OP("sum", a, NULL, sa);
    CHECK(shape_is(s0, 1, d3));
    CHECK_VALUES(s0, DS_DTYPE_F32, 0, 3, 5, 7);
    CHECK_OK(ds_attrs_set_ints(sa, "axes", axm1, 1));
    CHECK_OK(ds_attrs_set_bool(sa, "keepdim", true));
    DsTensor *s1 = OP("sum", a, NULL, sa);
    int64_t d21[2] = {2, 1};
    CHECK(shape_is(s1, 2, d21));
    CHECK_VALUES(s1, DS_DTYPE_F32, 0, 3, 12);
    DsTensor *si = OP("sum", ib, NULL, NULL);
    CHECK_VALUES(si, DS_DTYPE_I32, 0, 1);

    /* movement ops by name */
    DsAttrs *ra = attrs_new();
    int64_t r32[2] = {3, -1}, d32[2] = {3, 2};
    CHECK_OK(ds_attrs_set_ints(ra, "shape", r32, 2));
    DsTensor *rs = OP("reshape", a, NULL, ra);
    CHECK(shape_is(rs, 2, d32));
    DsTensor *vw = OP("view", a, NULL, ra);
    CHECK(shape_is(vw, 2, d32));
    DsAttrs *ta = attrs_new();
    CHECK_OK(ds_attrs_set_int(ta, "dim0", 0));
    CHECK_OK(ds_attrs_set_int(ta, "dim1", -1));
    DsTensor *tr = OP("transpose", a, NULL, ta);
    CHECK(shape_is(tr, 2, d32));
    CHECK_VALUES(tr, DS_DTYPE_F32, 0, 0, 3, 1, 4, 2, 5);
    bool shared = false, contig = true;
    CHECK_OK(ds_tensor_shares_storage(a, tr, &shared));
    CHECK(shared);
    CHECK_OK(ds_tensor_is_contiguous(tr, &contig));
    CHECK(!contig);
    DsAttrs *pa = attrs_new();
    int64_t perm[2] = {1, 0};
    CHECK_OK(ds_attrs_set_ints(pa, "dims", perm, 2));
    DsTensor *pm = OP("permute", a, NULL, pa);
    CHECK_VALUES(pm, DS_DTYPE_F32, 0, 0, 3, 1, 4, 2, 5);
    DsTensor *ct = OP("contiguous", tr, NULL, NULL);
    CHECK_OK(ds_tensor_is_contiguous(ct, &contig));
    CHECK(contig);
    CHECK_OK(ds_tensor_shares_storage(a, ct, &shared));
    CHECK(!shared);
    CHECK_VALUES(ct, DS_DTYPE_F32, 0, 0, 3, 1, 4, 2, 5);
    DsAttrs *sl = attrs_new();
    CHECK_OK(ds_attrs_set_int(sl, "dim", 1));
    CHECK_OK(ds_attrs_set_int(sl, "step", 2)); /* start and end default to the whole dimension */
    DsTensor *slc = OP("slice", a, NULL, sl);
    CHECK_VALUES(slc, DS_DTYPE_F32, 0, 0, 2, 3, 5);
    CHECK_OK(ds_attrs_set_int(sl, "start", 1));
    CHECK_OK(ds_attrs_set_int(sl, "end", 2));
    DsTensor *slc2 = OP("slice", a, NULL, sl);
    CHECK_VALUES(slc2, DS_DTYPE_F32, 0, 1, 4);
    DsAttrs *ua = attrs_new();
    CHECK_OK(ds_attrs_set_int(ua, "dim", 0));
    DsTensor *un = OP("unsqueeze", b, NULL, ua); /* [1,3] */
    int64_t d13[2] = {1, 3}, d1311[4] = {1, 3, 1, 1};
    CHECK(shape_is(un, 2, d13));
    DsAttrs *ea = attrs_new();
    int64_t e43[2] = {4, 3}, d43[2] = {4, 3};
    CHECK_OK(ds_attrs_set_ints(ea, "shape", e43, 2));
    DsTensor *exd = OP("expand", un, NULL, ea);
    CHECK(shape_is(exd, 2, d43));
    CHECK_VALUES(exd, DS_DTYPE_F32, 0, 10, 20, 40, 10, 20, 40, 10, 20, 40, 10, 20, 40);
    DsTensor *ea_ = OP("expand_as", b, a, NULL);
    CHECK(shape_is(ea_, 2, d23));
    DsTensor *st = OP("sum_to", a, b, NULL);
    CHECK_VALUES(st, DS_DTYPE_F32, 0, 3, 5, 7);
    DsAttrs *r4 = attrs_new();
    CHECK_OK(ds_attrs_set_ints(r4, "shape", d1311, 4));
    DsTensor *un4 = OP("reshape", b, NULL, r4);
    DsTensor *sq_all = OP("squeeze", un4, NULL, NULL);
    CHECK(shape_is(sq_all, 1, d3));
    DsAttrs *qa = attrs_new();
    CHECK_OK(ds_attrs_set_int(qa, "dim", -1));
    DsTensor *sq1 = OP("squeeze", un4, NULL, qa);
    int64_t d131[3] = {1, 3, 1};
    CHECK(shape_is(sq1, 3, d131));

    /* one attribute list serves many calls and is not consumed */
    DsTensor *rs2 = OP("reshape", a, NULL, ra);
    CHECK(shape_is(rs2, 2, d32));

    DsAttrs *attrs[] = {ca, sa, ra, ta, pa, sl, ua, ea, r4, qa};
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) CHECK_OK(ds_attrs_free(attrs[i]));
    FREE_ALL(a, b, add, sub, mul, div, neg, e, ex, ia, ib, iadd, idiv, ineg, cast, cast64, s_all, s0, s1, si, rs, vw, tr,
             pm, ct, slc, slc2, un, exd, ea_, st, un4, sq_all, sq1, rs2);
}

/* ------------------------------------------------------------------ bad op calls */

static void test_bad_calls(void) {
    int64_t d23[2] = {2, 3}, d4[1] = {4}, d3[1] = {3};
    float av[6] = {0, 1, 2, 3, 4, 5}, cv[4] = {1, 2, 3, 4};
    DsTensor *a = mk_f32(d23, 2, av), *c = mk_f32(d4, 1, cv);
    int32_t iv[3] = {1, 0, 2};
    double dv[3] = {1, 2, 3};
    uint8_t bv[3] = {1, 0, 1};
    DsTensor *it = mk(DS_DTYPE_I32, d3, 1, iv, sizeof iv);
    DsTensor *dt = mk(DS_DTYPE_F64, d3, 1, dv, sizeof dv);
    DsTensor *bt = mk(DS_DTYPE_BOOL, d3, 1, bv, sizeof bv);
    DsTensor *ft = mk_f32(d3, 1, av);
    uint64_t live0 = ds_live_objects();

    /* unknown op */
    CHECK_ERR(op_status("no_such_op", a, NULL, NULL), DS_STATUS_NOT_FOUND, "no_such_op");
    CHECK_ERR(op_status("ad", a, a, NULL), DS_STATUS_NOT_FOUND, "`ad`&\"add\"");
    CHECK_ERR(op_status("", a, NULL, NULL), DS_STATUS_NOT_FOUND, "no op");
    CHECK_ERR(op_status("ADD", a, a, NULL), DS_STATUS_NOT_FOUND, "ADD");
    /* wrong number of inputs */
    CHECK_ERR(op_status("add", a, NULL, NULL), DS_STATUS_INVALID_ARGUMENT, "`inputs`&add&given 1");
    CHECK_ERR(op_status("neg", a, a, NULL), DS_STATUS_INVALID_ARGUMENT, "`inputs`&neg&given 2");
    {
        DsTensor *out[1];
        size_t n;
        CHECK_ERR(ds_op_call("sum", NULL, 0, NULL, out, 1, &n), DS_STATUS_INVALID_ARGUMENT, "`inputs`&sum&given 0");
        const DsTensor *three[3] = {a, a, a};
        CHECK_ERR(ds_op_call("mul", three, 3, NULL, out, 1, &n), DS_STATUS_INVALID_ARGUMENT, "`inputs`&mul&given 3");
    }
    /* attributes: unknown name, wrong kind, missing required */
    DsAttrs *at = attrs_new();
    CHECK_OK(ds_attrs_set_int(at, "axis", 0));
    CHECK_ERR(op_status("sum", a, NULL, at), DS_STATUS_INVALID_ARGUMENT, "`attrs`&sum&axis");
    CHECK_ERR(op_status("add", a, a, at), DS_STATUS_INVALID_ARGUMENT, "`attrs`&add&axis");
    CHECK_OK(ds_attrs_free(at));
    at = attrs_new();
    CHECK_OK(ds_attrs_set_int(at, "axes", 0));
    CHECK_ERR(op_status("sum", a, NULL, at), DS_STATUS_INVALID_ARGUMENT, "`attrs`&sum&axes&ints");
    CHECK_OK(ds_attrs_free(at));
    at = attrs_new();
    CHECK_OK(ds_attrs_set_int(at, "keepdim", 1));
    CHECK_ERR(op_status("sum", a, NULL, at), DS_STATUS_INVALID_ARGUMENT, "`attrs`&keepdim&bool");
    CHECK_OK(ds_attrs_free(at));
    at = attrs_new();
    CHECK_OK(ds_attrs_set_float(at, "dim0", 0.0));
    CHECK_OK(ds_attrs_set_int(at, "dim1", 1));
    CHECK_ERR(op_status("transpose", a, NULL, at), DS_STATUS_INVALID_ARGUMENT, "`attrs`&dim0&int");
    CHECK_OK(ds_attrs_free(at));
    at = attrs_new();
    CHECK_OK(ds_attrs_set_string(at, "shape", "6"));
    CHECK_ERR(op_status("reshape", a, NULL, at), DS_STATUS_INVALID_ARGUMENT, "`attrs`&shape&string");
    CHECK_OK(ds_attrs_free(at));
    CHECK_ERR(op_status("reshape", a, NULL, NULL), DS_STATUS_INVALID_ARGUMENT, "`attrs`&reshape&missing&shape");
    CHECK_ERR(op_status("cast", a, NULL, NULL), DS_STATUS_INVALID_ARGUMENT, "`attrs`&cast&missing&dtype");
    at = attrs_new();
    CHECK_OK(ds_attrs_set_int(at, "dim0", 0));
    CHECK_ERR(op_status("transpose", a, NULL, at), DS_STATUS_INVALID_ARGUMENT, "`attrs`&missing&dim1");
    /* axis out of range */
    CHECK_OK(ds_attrs_set_int(at, "dim1", 2));
    CHECK_ERR(op_status("transpose", a, NULL, at), DS_STATUS_OUT_OF_RANGE, "`dim1`&transpose");
    CHECK_OK(ds_attrs_free(at));
    at = attrs_new();
    int64_t ax2[1] = {2}, axm3[1] = {-3}, ax00[2] = {0, 0};
    CHECK_OK(ds_attrs_set_ints(at, "axes", ax2, 1));
    CHECK_ERR(op_status("sum", a, NULL, at), DS_STATUS_OUT_OF_RANGE, "`axes`&sum");
    CHECK_OK(ds_attrs_set_ints(at, "axes", axm3, 1));
    CHECK_ERR(op_status("sum", a, NULL, at), DS_STATUS_OUT_OF_RANGE, "`axes`&sum");
    CHECK_OK(ds_attrs_set_ints(at, "axes", ax00, 2));
    CHECK_ERR(op_status("sum", a, NULL, at), DS_STATUS_INVALID_ARGUMENT, "`axes`&repeats");
    CHECK_OK(ds_attrs_free(at));
    at = attrs_new();
    CHECK_OK(ds_attrs_set_int(at, "dim", 5));
    CHECK_ERR(op_status("squeeze", a, NULL, at), DS_STATUS_OUT_OF_RANGE, "`dim`&squeeze");
    CHECK_ERR(op_status("unsqueeze", a, NULL, at), DS_STATUS_OUT_OF_RANGE, "`dim`&unsqueeze");
    CHECK_ERR(op_status("slice", a, NULL, at), DS_STATUS_OUT_OF_RANGE, "`dim`&slice");
    CHECK_OK(ds_attrs_set_int(at, "dim", 1));
    CHECK_OK(ds_attrs_set_int(at, "step", 0));
    CHECK_ERR(op_status("slice", a, NULL, at), DS_STATUS_INVALID_ARGUMENT, "`step`&slice");
    CHECK_OK(ds_attrs_free(at));
    /* shapes that do not broadcast / fit */
    CHECK_ERR(op_status("add", a, c, NULL), DS_STATUS_SHAPE_MISMATCH, "`b`&add&[2, 3]&[4]");
    CHECK_ERR(op_status("mul", c, a, NULL), DS_STATUS_SHAPE_MISMATCH, "`b`&mul");
    CHECK_ERR(op_status("expand_as", a, c, NULL), DS_STATUS_SHAPE_MISMATCH, "expand_as");
    at = attrs_new();
    int64_t r45[2] = {4, 5};
    CHECK_OK(ds_attrs_set_ints(at, "shape", r45, 2));
    CHECK_ERR(op_status("reshape", a, NULL, at), DS_STATUS_SHAPE_MISMATCH, "`shape`&reshape");
    CHECK_ERR(op_status("expand", a, NULL, at), DS_STATUS_SHAPE_MISMATCH, "`shape`&expand");
    CHECK_OK(ds_attrs_free(at));
    /* dtypes */
    CHECK_ERR(op_status("exp", it, NULL, NULL), DS_STATUS_INVALID_DTYPE, "`x`&exp&i32");
    CHECK_ERR(op_status("exp", bt, NULL, NULL), DS_STATUS_INVALID_DTYPE, "`x`&exp&bool");
    CHECK_ERR(op_status("add", ft, dt, NULL), DS_STATUS_INVALID_DTYPE, "`b`&add&f32&f64");
    CHECK_ERR(op_status("add", bt, bt, NULL), DS_STATUS_INVALID_DTYPE, "`a`&add&bool");
    CHECK_ERR(op_status("neg", bt, NULL, NULL), DS_STATUS_INVALID_DTYPE, "`x`&neg");
    CHECK_ERR(op_status("sum", bt, NULL, NULL), DS_STATUS_INVALID_DTYPE, "`x`&sum");
    CHECK_ERR(op_status("div", it, it, NULL), DS_STATUS_INVALID_ARGUMENT, "`b`&div&zero");
    /* matmul inner dimensions: [2,3] x [2,3] */
    CHECK_ERR(op_status("matmul", a, a, NULL), DS_STATUS_SHAPE_MISMATCH, "`b`&matmul&inner");
    /* index values past a 2-row table (it = {1, 0, 2}): an error, never an out-of-bounds read */
    CHECK_ERR(op_status("embedding", a, it, NULL), DS_STATUS_OUT_OF_RANGE, "`indices`&embedding&2");
    CHECK_ERR(op_status("embedding", a, ft, NULL), DS_STATUS_INVALID_DTYPE, "`indices`&embedding");
    at = attrs_new();
    CHECK_OK(ds_attrs_set_int(at, "dtype", 99));
    CHECK_ERR(op_status("cast", a, NULL, at), DS_STATUS_INVALID_DTYPE, "`dtype`&cast");
    CHECK_OK(ds_attrs_set_int(at, "dtype", 0));
    CHECK_ERR(op_status("cast", a, NULL, at), DS_STATUS_INVALID_DTYPE, "`dtype`&cast");
    /* The whole i64 is validated: 2^32 + DS_DTYPE_F32 must not pass as f32 after narrowing. */
    CHECK_OK(ds_attrs_set_int(at, "dtype", ((int64_t)1 << 32) + DS_DTYPE_F32));
    CHECK_ERR(op_status("cast", a, NULL, at), DS_STATUS_INVALID_DTYPE, "`dtype`&cast");
    CHECK_OK(ds_attrs_free(at));

    /* outputs array: NULL, too small; out count NULL; name NULL; inputs NULL or bad */
    {
        const DsTensor *in[2] = {a, a};
        DsTensor *out[1] = {NULL};
        size_t n = 99;
        uint64_t before = ds_live_objects();
        CHECK_ERR(ds_op_call("add", in, 2, NULL, out, 0, &n), DS_STATUS_BUFFER_TOO_SMALL, "`capacity`");
        CHECK(n == 1 && out[0] == NULL);
        CHECK(ds_live_objects() == before); /* nothing created */
        CHECK_ERR(ds_op_call("add", in, 2, NULL, NULL, 1, &n), DS_STATUS_NULL_POINTER, "`out_outputs`");
        CHECK(ds_live_objects() == before);
        CHECK_ERR(ds_op_call("add", in, 2, NULL, NULL, 0, &n), DS_STATUS_BUFFER_TOO_SMALL, "`capacity`");
        CHECK_ERR(ds_op_call("add", in, 2, NULL, out, 1, NULL), DS_STATUS_NULL_POINTER, "`out_n_outputs`");
        CHECK(ds_live_objects() == before);
        CHECK_ERR(ds_op_call(NULL, in, 2, NULL, out, 1, &n), DS_STATUS_NULL_POINTER, "`name`");
        CHECK_ERR(ds_op_call("add", NULL, 2, NULL, out, 1, &n), DS_STATUS_NULL_POINTER, "`inputs`");
        const DsTensor *with_null[2] = {a, NULL};
        CHECK_ERR(ds_op_call("add", with_null, 2, NULL, out, 1, &n), DS_STATUS_INVALID_HANDLE, "`inputs`");
        int junk = 0;
        const DsTensor *with_junk[2] = {(const DsTensor *)(void *)&junk, a};
        CHECK_ERR(ds_op_call("add", with_junk, 2, NULL, out, 1, &n), DS_STATUS_INVALID_HANDLE, "`inputs`");
        CHECK_ERR(ds_op_call("add", in, 2, (const DsAttrs *)(void *)a, out, 1, &n), DS_STATUS_INVALID_HANDLE,
                  "`attrs`");
        CHECK_ERR(ds_op_call("add", in, 2, (const DsAttrs *)(void *)&junk, out, 1, &n), DS_STATUS_INVALID_HANDLE,
                  "`attrs`");
        /* a freed input */
        DsTensor *tmp = mk_f32(d23, 2, av);
        CHECK_OK(ds_tensor_free(tmp));
        const DsTensor *with_freed[2] = {a, tmp};
        CHECK_ERR(ds_op_call("add", with_freed, 2, NULL, out, 1, &n), DS_STATUS_INVALID_HANDLE, "`inputs`&freed");
        DsAttrs *fa = attrs_new();
        CHECK_OK(ds_attrs_free(fa));
        CHECK_ERR(ds_op_call("add", in, 2, fa, out, 1, &n), DS_STATUS_INVALID_HANDLE, "`attrs`");
        CHECK(out[0] == NULL);
    }
    CHECK(ds_live_objects() == live0);
    FREE_ALL(a, c, it, dt, bt, ft);
}

/* ------------------------------------------------------------------ autograd */

static DsTensor *param(const int64_t *dims, size_t ndim, const float *vals) {
    DsTensor *t = mk_f32(dims, ndim, vals);
    CHECK_OK(ds_tensor_set_requires_grad(t, true));
    CHECK(requires_grad(t) == 1);
    return t;
}

static void test_gradients(void) {
    int64_t d3[1] = {3}, d23[2] = {2, 3}, d2[1] = {2}, d32[2] = {3, 2};
    float xv[3] = {1, 2, 3};

    /* y = sum(x * x)  ->  dy/dx = 2x */
    DsTensor *x = param(d3, 1, xv);
    CHECK_NO_GRAD(x);
    DsTensor *xx = OP("mul", x, x, NULL);
    DsTensor *y = OP("sum", xx, NULL, NULL);
    CHECK(requires_grad(xx) == 1 && requires_grad(y) == 1);
    CHECK_VALUES(y, DS_DTYPE_F32, 0, 14);
    CHECK_OK(ds_tensor_backward(y, NULL, false));
    CHECK_GRAD(x, 2, 4, 6);
    DsTensor *g = NULL;
    CHECK_OK(ds_tensor_grad(x, &g));
    DsDtype gdt = 0;
    CHECK_OK(ds_tensor_dtype(g, &gdt));
    CHECK(gdt == DS_DTYPE_F32 && shape_is(g, 1, d3));
    CHECK(requires_grad(g) == 0);
    CHECK_OK(ds_tensor_free(g));
    /* a second backward through the released graph is an error, and leaves the gradient */
    CHECK_ERR(ds_tensor_backward(y, NULL, false), DS_STATUS_INVALID_ARGUMENT, "`tensor`&second time&retain");
    CHECK_GRAD(x, 2, 4, 6);
    /* a new graph accumulates */
    DsTensor *xx2 = OP("mul", x, x, NULL);
    DsTensor *y2 = OP("sum", xx2, NULL, NULL);
    CHECK_OK(ds_tensor_backward(y2, NULL, true)); /* retained: may run again */
    CHECK_GRAD(x, 4, 8, 12);
    CHECK_OK(ds_tensor_backward(y2, NULL, false));
    CHECK_GRAD(x, 6, 12, 18);
    CHECK_ERR(ds_tensor_backward(y2, NULL, false), DS_STATUS_INVALID_ARGUMENT, "`tensor`");
    /* zero_grad clears it */
    CHECK_OK(ds_tensor_zero_grad(x));
    CHECK_NO_GRAD(x);
    DsTensor *xx3 = OP("mul", x, x, NULL);
    DsTensor *y3 = OP("sum", xx3, NULL, NULL);
    CHECK_OK(ds_tensor_backward(y3, NULL, false));
    CHECK_GRAD(x, 2, 4, 6);

    /* non-scalar roots need a seed of the same shape */
    DsTensor *xx4 = OP("mul", x, x, NULL);
    CHECK_ERR(ds_tensor_backward(xx4, NULL, false), DS_STATUS_INVALID_ARGUMENT, "`seed`&[3]");
    float s2v[2] = {1, 1}, s3v[3] = {1, 0, 2};
    DsTensor *bad_seed = mk_f32(d2, 1, s2v), *seed = mk_f32(d3, 1, s3v);
    CHECK_ERR(ds_tensor_backward(xx4, bad_seed, false), DS_STATUS_SHAPE_MISMATCH, "`seed`&[2]&[3]");
    int junk = 0;
    CHECK_ERR(ds_tensor_backward(xx4, (const DsTensor *)(void *)&junk, false), DS_STATUS_INVALID_HANDLE, "`seed`");
    CHECK_OK(ds_tensor_zero_grad(x));
    CHECK_OK(ds_tensor_backward(xx4, seed, false)); /* grad = 2x * seed */
    CHECK_GRAD(x, 2, 0, 12);
    CHECK_OK(ds_tensor_zero_grad(x));
    FREE_ALL(xx, y, xx2, y2, xx3, y3, xx4, bad_seed, seed);

    /* broadcasting: the gradient of the broadcast input sums over the broadcast axis */
    float av[6] = {0, 1, 2, 3, 4, 5}, bv[3] = {10, 20, 40};
    DsTensor *a = param(d23, 2, av), *b = param(d3, 1, bv);
    DsTensor *ab = OP("add", a, b, NULL);
    DsTensor *s = OP("sum", ab, NULL, NULL);
    CHECK_OK(ds_tensor_backward(s, NULL, false));
    CHECK_GRAD(a, 1, 1, 1, 1, 1, 1);
    CHECK_GRAD(b, 2, 2, 2);
    CHECK_OK(ds_tensor_zero_grad(a));
    CHECK_OK(ds_tensor_zero_grad(b));
    DsTensor *m = OP("mul", a, b, NULL);
    DsTensor *sm = OP("sum", m, NULL, NULL);
    CHECK_OK(ds_tensor_backward(sm, NULL, false));
    CHECK_GRAD(a, 10, 20, 40, 10, 20, 40);
    CHECK_GRAD(b, 3, 5, 7);
    CHECK_OK(ds_tensor_zero_grad(a));
    CHECK_OK(ds_tensor_zero_grad(b));
    /* sum(-a - b): every gradient is -1, b's summed over 2 rows */
    DsTensor *na = OP("neg", a, NULL, NULL);
    DsTensor *nab = OP("sub", na, b, NULL);
    DsTensor *snab = OP("sum", nab, NULL, NULL);
    CHECK_OK(ds_tensor_backward(snab, NULL, false));
    CHECK_GRAD(a, -1, -1, -1, -1, -1, -1);
    CHECK_GRAD(b, -2, -2, -2);
    FREE_ALL(ab, s, m, sm, na, nab, snab);

    /* div: d(p/q)/dp = 1/q, d(p/q)/dq = -p/q^2 */
    float pv[2] = {1, 2}, qv[2] = {2, 4};
    DsTensor *p = param(d2, 1, pv), *q = param(d2, 1, qv);
    DsTensor *pq = OP("div", p, q, NULL);
    DsTensor *spq = OP("sum", pq, NULL, NULL);
    CHECK_OK(ds_tensor_backward(spq, NULL, false));
    CHECK_GRAD(p, 0.5, 0.25);
    CHECK_GRAD(q, -0.25, -0.125);
    FREE_ALL(pq, spq);

    /* exp: the gradient is exp(x) */
    float ev[2] = {0, 1};
    DsTensor *e = param(d2, 1, ev);
    DsTensor *ee = OP("exp", e, NULL, NULL);
    DsTensor *se = OP("sum", ee, NULL, NULL);
    CHECK_OK(ds_tensor_backward(se, NULL, false));
    CHECK_GRAD(e, 1.0, 2.718281828459045);
    FREE_ALL(ee, se);

    /* through views and cast: sum(transpose(a) * c) -> grad a = transpose(c) */
    CHECK_OK(ds_tensor_zero_grad(a));
    float cv[6] = {1, 2, 3, 4, 5, 6};
    DsTensor *c = mk_f32(d32, 2, cv);
    DsTensor *at = NULL;
    CHECK_OK(ds_tensor_transpose(a, 0, 1, &at)); /* the tensor functions record too */
    CHECK(requires_grad(at) == 1);
    DsTensor *atc = OP("mul", at, c, NULL);
    DsTensor *satc = OP("sum", atc, NULL, NULL);
    CHECK_OK(ds_tensor_backward(satc, NULL, false));
    CHECK_GRAD(a, 1, 3, 5, 2, 4, 6);
    CHECK_OK(ds_tensor_zero_grad(a));
    DsAttrs *sl = attrs_new();
    CHECK_OK(ds_attrs_set_int(sl, "dim", 1));
    CHECK_OK(ds_attrs_set_int(sl, "step", 2));
    DsTensor *as = OP("slice", a, NULL, sl);
    DsTensor *sas = OP("sum", as, NULL, NULL);
    CHECK_OK(ds_tensor_backward(sas, NULL, false));
    CHECK_GRAD(a, 1, 0, 1, 1, 0, 1);
    CHECK_OK(ds_tensor_zero_grad(a));
    DsAttrs *ca = attrs_new();
    CHECK_OK(ds_attrs_set_int(ca, "dtype", DS_DTYPE_F64));
    DsTensor *a64 = OP("cast", a, NULL, ca);
    DsAttrs *ra = attrs_new();
    int64_t flat[1] = {-1};
    CHECK_OK(ds_attrs_set_ints(ra, "shape", flat, 1));
    DsTensor *a64r = OP("reshape", a64, NULL, ra);
    DsTensor *prod = OP("mul", a64r, a64r, NULL);
    DsTensor *sprod = OP("sum", prod, NULL, NULL);
    CHECK_OK(ds_tensor_backward(sprod, NULL, false));
    CHECK_GRAD(a, 0, 2, 4, 6, 8, 10); /* back in a's dtype, f32 */
    CHECK_OK(ds_tensor_zero_grad(a));
    /* sum over one axis with keepdim, seeded */
    DsAttrs *ka = attrs_new();
    int64_t ax1[1] = {1};
    CHECK_OK(ds_attrs_set_ints(ka, "axes", ax1, 1));
    CHECK_OK(ds_attrs_set_bool(ka, "keepdim", true));
    DsTensor *rowsum = OP("sum", a, NULL, ka);
    int64_t d21[2] = {2, 1};
    float sv[2] = {1, 2};
    DsTensor *rseed = mk_f32(d21, 2, sv);
    CHECK_OK(ds_tensor_backward(rowsum, rseed, false));
    CHECK_GRAD(a, 1, 1, 1, 2, 2, 2);
    CHECK_OK(ds_attrs_free(sl));
    CHECK_OK(ds_attrs_free(ca));
    CHECK_OK(ds_attrs_free(ra));
    CHECK_OK(ds_attrs_free(ka));
    FREE_ALL(c, at, atc, satc, as, sas, a64, a64r, prod, sprod, rowsum, rseed);

    /* gradients outlive the graph and the handles that built it */
    CHECK_GRAD(a, 1, 1, 1, 2, 2, 2);
    FREE_ALL(x, a, b, p, q, e);
}

static void test_detach_and_modes(void) {
    int64_t d3[1] = {3};
    float xv[3] = {1, 2, 3};
    DsTensor *x = param(d3, 1, xv);

    /* detach: same data, no history, no grad */
    DsTensor *d = NULL;
    CHECK_OK(ds_tensor_detach(x, &d));
    CHECK(requires_grad(d) == 0);
    bool shared = false;
    CHECK_OK(ds_tensor_shares_storage(x, d, &shared));
    CHECK(shared);
    DsTensor *dd = OP("mul", d, d, NULL);
    DsTensor *sdd = OP("sum", dd, NULL, NULL);
    CHECK(requires_grad(sdd) == 0);
    CHECK_ERR(ds_tensor_backward(sdd, NULL, false), DS_STATUS_INVALID_ARGUMENT, "`tensor`&require");
    CHECK_NO_GRAD(x);
    /* mixing: the detached factor is a constant */
    DsTensor *xd = OP("mul", x, d, NULL);
    DsTensor *sxd = OP("sum", xd, NULL, NULL);
    CHECK_OK(ds_tensor_backward(sxd, NULL, false));
    CHECK_GRAD(x, 1, 2, 3);
    CHECK_NO_GRAD(d);
    CHECK_OK(ds_tensor_zero_grad(x));
    /* detaching a non-leaf cuts the graph there */
    DsTensor *xx = OP("mul", x, x, NULL);
    DsTensor *xxd = NULL;
    CHECK_OK(ds_tensor_detach(xx, &xxd));
    CHECK(requires_grad(xxd) == 0);
    CHECK_VALUES(xxd, DS_DTYPE_F32, 0, 1, 4, 9);

    /* grad mode off: nothing is recorded */
    bool on = false, prev = false;
    CHECK_OK(ds_is_grad_enabled(&on));
    CHECK(on);
    CHECK_OK(ds_set_grad_enabled(false, &prev));
    CHECK(prev == true);
    CHECK_OK(ds_is_grad_enabled(&on));
    CHECK(!on);
    DsTensor *nx = OP("mul", x, x, NULL);
    DsTensor *snx = OP("sum", nx, NULL, NULL);
    CHECK(requires_grad(nx) == 0 && requires_grad(snx) == 0);
    CHECK_ERR(ds_tensor_backward(snx, NULL, false), DS_STATUS_INVALID_ARGUMENT, "`tensor`&no_grad");
    CHECK_NO_GRAD(x);
    CHECK_OK(ds_set_grad_enabled(false, NULL)); /* previous may be NULL */
    CHECK_OK(ds_set_grad_enabled(true, &prev));
    CHECK(prev == false);
    CHECK_OK(ds_is_grad_enabled(&on));
    CHECK(on);
    DsTensor *rx = OP("mul", x, x, NULL);
    CHECK(requires_grad(rx) == 1);

    /* requires_grad rules */
    int32_t iv[3] = {1, 2, 3};
    DsTensor *it = mk(DS_DTYPE_I32, d3, 1, iv, sizeof iv);
    CHECK_ERR(ds_tensor_set_requires_grad(it, true), DS_STATUS_INVALID_DTYPE, "`tensor`&i32");
    CHECK(requires_grad(it) == 0);
    CHECK_OK(ds_tensor_set_requires_grad(it, false));
    CHECK_ERR(ds_tensor_set_requires_grad(rx, false), DS_STATUS_INVALID_ARGUMENT, "`tensor`&detach");
    CHECK(requires_grad(rx) == 1);
    /* integer outputs of a recorded op do not require grad */
    DsAttrs *ca = attrs_new();
    CHECK_OK(ds_attrs_set_int(ca, "dtype", DS_DTYPE_I32));
    DsTensor *xi = OP("cast", x, NULL, ca);
    CHECK(requires_grad(xi) == 0);
    CHECK_OK(ds_attrs_free(ca));
    /* a leaf can be switched off again */
    DsTensor *leaf = param(d3, 1, xv);
    CHECK_OK(ds_tensor_set_requires_grad(leaf, false));
    CHECK(requires_grad(leaf) == 0);
    DsTensor *ll = OP("mul", leaf, leaf, NULL);
    CHECK(requires_grad(ll) == 0);
    /* backward on a leaf itself seeds its own gradient */
    float one = 5;
    DsTensor *scalar = mk_f32(NULL, 0, &one);
    CHECK_OK(ds_tensor_set_requires_grad(scalar, true));
    CHECK_OK(ds_tensor_backward(scalar, NULL, false));
    CHECK_GRAD(scalar, 1);

    /* NULL and bad arguments */
    bool b;
    DsTensor *o = (DsTensor *)&o;
    CHECK_ERR(ds_tensor_set_requires_grad(NULL, true), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_requires_grad(NULL, &b), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_requires_grad(x, NULL), DS_STATUS_NULL_POINTER, "`out_requires_grad`");
    CHECK_ERR(ds_tensor_backward(NULL, NULL, false), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK_ERR(ds_tensor_grad(NULL, &o), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK(o == NULL);
    CHECK_ERR(ds_tensor_grad(x, NULL), DS_STATUS_NULL_POINTER, "`out_grad`");
    CHECK_ERR(ds_tensor_zero_grad(NULL), DS_STATUS_INVALID_HANDLE, "`tensor`");
    o = (DsTensor *)&o;
    CHECK_ERR(ds_tensor_detach(NULL, &o), DS_STATUS_INVALID_HANDLE, "`tensor`");
    CHECK(o == NULL);
    CHECK_ERR(ds_tensor_detach(x, NULL), DS_STATUS_NULL_POINTER, "`out_tensor`");
    CHECK_ERR(ds_is_grad_enabled(NULL), DS_STATUS_NULL_POINTER, "`out_enabled`");
    {
        DsTensor *dead = mk_f32(d3, 1, xv);
        CHECK_OK(ds_tensor_free(dead));
        CHECK_ERR(ds_tensor_backward(dead, NULL, false), DS_STATUS_INVALID_HANDLE, "`tensor`");
        CHECK_ERR(ds_tensor_set_requires_grad(dead, true), DS_STATUS_INVALID_HANDLE, "`tensor`");
        CHECK_ERR(ds_tensor_grad(dead, &o), DS_STATUS_INVALID_HANDLE, "`tensor`");
    }
    FREE_ALL(x, d, dd, sdd, xd, sxd, xx, xxd, nx, snx, rx, it, xi, leaf, ll, scalar);
}

/* Grad mode is per thread: a thread started while the main thread has it off sees it on. */
typedef struct {
    int enabled_at_start, recorded;
    const DsTensor *x;
} ModeArg;

static void *mode_thread(void *p) {
    ModeArg *m = p;
    bool on = false;
    if (ds_is_grad_enabled(&on) == DS_STATUS_OK) m->enabled_at_start = on;
    const DsTensor *in[2] = {m->x, m->x};
    DsTensor *out[1] = {NULL};
    size_t n = 0;
    if (ds_op_call("mul", in, 2, NULL, out, 1, &n) == DS_STATUS_OK) {
        bool r = false;
        if (ds_tensor_requires_grad(out[0], &r) == DS_STATUS_OK) m->recorded = r;
        (void)ds_tensor_free(out[0]);
    }
    return NULL;
}

static void test_grad_mode_threads(void) {
    int64_t d3[1] = {3};
    float xv[3] = {1, 2, 3};
    DsTensor *x = param(d3, 1, xv);
    bool prev = false;
    CHECK_OK(ds_set_grad_enabled(false, &prev));
    ModeArg m = {0, 0, x};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, mode_thread, &m) == 0);
    CHECK(pthread_join(th, NULL) == 0);
    CHECK(m.enabled_at_start == 1 && m.recorded == 1);
    bool on = true;
    CHECK_OK(ds_is_grad_enabled(&on));
    CHECK(!on); /* the thread did not change ours */
    CHECK_OK(ds_set_grad_enabled(prev, NULL));
    CHECK_OK(ds_tensor_free(x));
}

/* Many small training-like steps: live handles and allocator bytes return to the start. */
static void test_cycles(void) {
    uint64_t live0 = ds_live_objects(), in0 = 0;
    CHECK_OK(ds_cpu_allocator_stats(&in0, NULL, NULL, NULL));
    int64_t d3[1] = {3};
    float xv[3] = {1, 2, 3};
    DsTensor *x = param(d3, 1, xv);
    int failures = 0;
    for (int i = 0; i < 2000; i++) {
        const DsTensor *in[2] = {x, x};
        DsTensor *xx = NULL, *y = NULL;
        size_t n = 0;
        failures += ds_op_call("mul", in, 2, NULL, &xx, 1, &n) != DS_STATUS_OK;
        const DsTensor *in1[1] = {xx};
        failures += ds_op_call("sum", in1, 1, NULL, &y, 1, &n) != DS_STATUS_OK;
        failures += ds_tensor_backward(y, NULL, false) != DS_STATUS_OK;
        failures += ds_tensor_free(y) != DS_STATUS_OK;
        failures += ds_tensor_free(xx) != DS_STATUS_OK;
    }
    CHECK(failures == 0);
    CHECK_GRAD(x, 4000, 8000, 12000);
    CHECK_OK(ds_tensor_free(x));
    CHECK(ds_live_objects() == live0);
    uint64_t in1 = 0;
    CHECK_OK(ds_cpu_allocator_stats(&in1, NULL, NULL, NULL));
    CHECK(in1 == in0); /* graphs, saved tensors and gradients were all released */
}

int main(void) {
    uint64_t live_start = ds_live_objects();
    CHECK_OK(ds_check_abi(DS_ABI_VERSION));
    test_introspection();
    test_attrs();
    test_forward();
    test_bad_calls();
    test_gradients();
    test_detach_and_modes();
    test_grad_mode_threads();
    test_cycles();
    CHECK(ds_live_objects() == live_start);
    ds_cpu_allocator_empty_cache(); /* cached blocks would show as "possibly lost" under valgrind */
    printf("test_ops_api: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
