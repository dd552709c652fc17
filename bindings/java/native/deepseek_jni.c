/*
 * JNI glue of the Java binding: one native method per C ABI call it exposes, no engine logic.
 *
 * Conventions (each one is why the Java side can stay simple):
 *  - Handles cross as jlong; the Java side guarantees they are live (its usage count keeps a
 *    handle from being freed while a call is in flight), so the glue never sees a freed one.
 *  - A failed ds_ call throws ai.libdeepseek.DeepseekException built right here, in the same
 *    native call, from ds_last_error(): the message is thread-local, so reading it later (from
 *    Java, possibly after other ds_ calls on this thread) could report another call's failure.
 *  - Strings arrive as NUL-terminated UTF-8 byte[] encoded by Java (JNI's own string functions
 *    use "modified UTF-8", which differs from UTF-8 for NUL and supplementary characters).
 *  - Bulk data moves in one copy: a primitive array is pinned with GetPrimitiveArrayCritical for
 *    just the engine's memcpy (no JNI calls inside the critical region); a direct ByteBuffer is
 *    read or written at its address.
 */
#include <jni.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deepseek.h"

/* Cached at load: creating the exception must not need a class lookup on the failure path. */
static jclass g_exception_class;   /* ai.libdeepseek.DeepseekException (global ref) */
static jmethodID g_exception_ctor; /* DeepseekException(int code, byte[] utf8Message) */

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM *vm, void *reserved) {
    (void)reserved;
    JNIEnv *env = NULL;
    if ((*vm)->GetEnv(vm, (void **)&env, JNI_VERSION_1_8) != JNI_OK) return JNI_ERR;
    jclass local = (*env)->FindClass(env, "ai/libdeepseek/DeepseekException");
    if (local == NULL) return JNI_ERR;
    g_exception_class = (*env)->NewGlobalRef(env, local);
    (*env)->DeleteLocalRef(env, local);
    if (g_exception_class == NULL) return JNI_ERR;
    g_exception_ctor = (*env)->GetMethodID(env, g_exception_class, "<init>", "(I[B)V");
    if (g_exception_ctor == NULL) return JNI_ERR;
    return JNI_VERSION_1_8;
}

/* ---- errors ---- */

/* Throws DeepseekException(status, ds_last_error()). Call it straight after the failing ds_
   call, before any other ds_ call on this thread. */
static void throw_status(JNIEnv *env, DsStatus status) {
    const char *msg = ds_last_error();
    jsize len = (jsize)strlen(msg);
    jbyteArray bytes = (*env)->NewByteArray(env, len);
    if (bytes == NULL) return; /* OutOfMemoryError pending */
    (*env)->SetByteArrayRegion(env, bytes, 0, len, (const jbyte *)msg);
    jobject ex = (*env)->NewObject(env, g_exception_class, g_exception_ctor, (jint)status, bytes);
    (*env)->DeleteLocalRef(env, bytes);
    if (ex == NULL) return; /* the constructor threw; that exception is pending */
    (*env)->Throw(env, (jthrowable)ex);
    (*env)->DeleteLocalRef(env, ex);
}

/* Returns 1 (and throws) when `status` is a failure. */
static int failed(JNIEnv *env, DsStatus status) {
    if (status == DS_STATUS_OK) return 0;
    throw_status(env, status);
    return 1;
}

static void throw_java(JNIEnv *env, const char *class_name, const char *msg) {
    jclass cls = (*env)->FindClass(env, class_name);
    if (cls != NULL) (*env)->ThrowNew(env, cls, msg);
}

#define H(T, h) ((T *)(intptr_t)(h))
#define J(p) ((jlong)(intptr_t)(p))

/* ---- strings and arrays from Java ---- */

/* A copy of a Java byte[] (NUL-terminated UTF-8, or several of them back to back), on the stack
   when small. `data` is NULL for a NULL array. */
typedef struct {
    char *data;
    char small[256];
} Bytes;

/* Copies `arr` into `b`; returns 0 with an exception pending on failure. */
static int bytes_get(JNIEnv *env, jbyteArray arr, Bytes *b) {
    b->data = NULL;
    if (arr == NULL) return 1;
    jsize len = (*env)->GetArrayLength(env, arr);
    b->data = (size_t)len <= sizeof b->small ? b->small : malloc((size_t)len);
    if (b->data == NULL) {
        throw_java(env, "java/lang/OutOfMemoryError", "deepseek_jni: string copy");
        return 0;
    }
    (*env)->GetByteArrayRegion(env, arr, 0, len, (jbyte *)b->data);
    return 1;
}

static void bytes_free(Bytes *b) {
    if (b->data != NULL && b->data != b->small) free(b->data);
}

#define MAX_SMALL 16

/* `n` NUL-terminated names packed in one byte[] (see Native.names), split into pointers. */
typedef struct {
    Bytes bytes;
    const char **ptrs;
    const char *small[MAX_SMALL];
} Names;

static int names_get(JNIEnv *env, jbyteArray arr, jint n, Names *names) {
    names->ptrs = names->small;
    if (!bytes_get(env, arr, &names->bytes)) return 0;
    if (n > MAX_SMALL) {
        names->ptrs = malloc(sizeof(char *) * (size_t)n);
        if (names->ptrs == NULL) {
            bytes_free(&names->bytes);
            throw_java(env, "java/lang/OutOfMemoryError", "deepseek_jni: names");
            return 0;
        }
    }
    const char *p = names->bytes.data;
    for (jint i = 0; i < n; i++) {
        names->ptrs[i] = p;
        p += strlen(p) + 1;
    }
    return 1;
}

static void names_free(Names *names) {
    if (names->ptrs != names->small) free((void *)names->ptrs);
    bytes_free(&names->bytes);
}

/* A copy of a Java long[] of handles or dims, on the stack when small. */
typedef struct {
    int64_t *data;
    int64_t small[MAX_SMALL];
    size_t len;
} Longs;

static int longs_get(JNIEnv *env, jlongArray arr, Longs *l) {
    l->data = l->small;
    l->len = 0;
    if (arr == NULL) return 1;
    l->len = (size_t)(*env)->GetArrayLength(env, arr);
    if (l->len > MAX_SMALL) {
        l->data = malloc(sizeof(int64_t) * l->len);
        if (l->data == NULL) {
            throw_java(env, "java/lang/OutOfMemoryError", "deepseek_jni: long[] copy");
            return 0;
        }
    }
    (*env)->GetLongArrayRegion(env, arr, 0, (jsize)l->len, (jlong *)l->data);
    return 1;
}

static void longs_free(Longs *l) {
    if (l->data != l->small) free(l->data);
}

/* Returns a new long[] holding `n` handles; on failure frees them (freeing is what the caller
   could no longer do) and leaves OutOfMemoryError pending. */
static jlongArray handles_to_java(JNIEnv *env, DsTensor **tensors, size_t n) {
    jlongArray out = (*env)->NewLongArray(env, (jsize)n);
    if (out == NULL) {
        for (size_t i = 0; i < n; i++) ds_tensor_free(tensors[i]);
        return NULL;
    }
    jlong vals[MAX_SMALL];
    jlong *v = n <= MAX_SMALL ? vals : malloc(sizeof(jlong) * n);
    if (v == NULL) {
        for (size_t i = 0; i < n; i++) ds_tensor_free(tensors[i]);
        throw_java(env, "java/lang/OutOfMemoryError", "deepseek_jni: outputs");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) v[i] = J(tensors[i]);
    (*env)->SetLongArrayRegion(env, out, 0, (jsize)n, v);
    if (v != vals) free(v);
    return out;
}

/* Room for `n` output handles, on the stack when small. */
typedef struct {
    DsTensor **data;
    DsTensor *small[MAX_SMALL];
} Outs;

static int outs_get(JNIEnv *env, size_t n, Outs *o) {
    o->data = n <= MAX_SMALL ? o->small : calloc(n, sizeof(DsTensor *));
    if (o->data == NULL) {
        throw_java(env, "java/lang/OutOfMemoryError", "deepseek_jni: outputs");
        return 0;
    }
    return 1;
}

static void outs_free(Outs *o) {
    if (o->data != o->small) free(o->data);
}

#define FN(name) JNICALL Java_ai_libdeepseek_Native_##name

/* ---- library ---- */

JNIEXPORT jint FN(headerAbiVersion)(JNIEnv *env, jclass c) {
    (void)env, (void)c;
    return DS_ABI_VERSION;
}

JNIEXPORT void FN(checkAbi)(JNIEnv *env, jclass c, jint expected) {
    (void)c;
    failed(env, ds_check_abi((uint32_t)expected));
}

JNIEXPORT jint FN(abiVersion)(JNIEnv *env, jclass c) {
    (void)env, (void)c;
    return (jint)ds_abi_version();
}

JNIEXPORT jbyteArray FN(versionString)(JNIEnv *env, jclass c) {
    (void)c;
    const char *v = ds_version_string();
    jsize len = (jsize)strlen(v);
    jbyteArray out = (*env)->NewByteArray(env, len);
    if (out != NULL) (*env)->SetByteArrayRegion(env, out, 0, len, (const jbyte *)v);
    return out;
}

JNIEXPORT jlong FN(liveObjects)(JNIEnv *env, jclass c) {
    (void)env, (void)c;
    return (jlong)ds_live_objects();
}

JNIEXPORT void FN(setNumThreads)(JNIEnv *env, jclass c, jint n) {
    (void)c;
    failed(env, ds_set_num_threads(n));
}

JNIEXPORT jint FN(getNumThreads)(JNIEnv *env, jclass c) {
    (void)c;
    int32_t n = 0;
    failed(env, ds_get_num_threads(&n));
    return n;
}

/* ---- tensors ---- */

JNIEXPORT jlong FN(tensorFromArray)(JNIEnv *env, jclass c, jint dtype, jlongArray jdims, jarray data,
                                    jlong nbytes) {
    (void)c;
    Longs dims;
    if (!longs_get(env, jdims, &dims)) return 0;
    DsTensor *t = NULL;
    void *p = (*env)->GetPrimitiveArrayCritical(env, data, NULL);
    if (p == NULL) {
        longs_free(&dims);
        return 0; /* OutOfMemoryError pending */
    }
    DsStatus s = ds_tensor_from_data(dtype, dims.data, dims.len, p, (size_t)nbytes, &t);
    (*env)->ReleasePrimitiveArrayCritical(env, data, p, JNI_ABORT); /* read only: no copy back */
    longs_free(&dims);
    return failed(env, s) ? 0 : J(t);
}

JNIEXPORT jlong FN(tensorFromBuffer)(JNIEnv *env, jclass c, jint dtype, jlongArray jdims, jobject buf,
                                     jlong offset, jlong nbytes) {
    (void)c;
    char *base = (*env)->GetDirectBufferAddress(env, buf);
    if (base == NULL) {
        throw_java(env, "java/lang/IllegalArgumentException", "not a direct ByteBuffer");
        return 0;
    }
    Longs dims;
    if (!longs_get(env, jdims, &dims)) return 0;
    DsTensor *t = NULL;
    DsStatus s = ds_tensor_from_data(dtype, dims.data, dims.len, base + offset, (size_t)nbytes, &t);
    longs_free(&dims);
    return failed(env, s) ? 0 : J(t);
}

/* Throws IllegalArgumentException unless the tensor's dtype is `want` (the Java array's element
   type): the engine copies raw bytes and cannot know what the destination holds. */
static int check_dtype(JNIEnv *env, const DsTensor *t, jint want) {
    DsDtype have = 0;
    if (failed(env, ds_tensor_dtype(t, &have))) return 0;
    if (have == want) return 1;
    char msg[128];
    const char *hn = ds_dtype_name(have), *wn = ds_dtype_name(want);
    snprintf(msg, sizeof msg, "the tensor holds %s, the array %s", hn ? hn : "?", wn ? wn : "?");
    throw_java(env, "java/lang/IllegalArgumentException", msg);
    return 0;
}

JNIEXPORT void FN(tensorCopyToArray)(JNIEnv *env, jclass c, jlong h, jint dtype, jarray dst, jlong nbytes) {
    (void)c;
    if (!check_dtype(env, H(DsTensor, h), dtype)) return;
    void *p = (*env)->GetPrimitiveArrayCritical(env, dst, NULL);
    if (p == NULL) return;
    DsStatus s = ds_tensor_copy_to(H(DsTensor, h), p, (size_t)nbytes);
    (*env)->ReleasePrimitiveArrayCritical(env, dst, p, 0);
    failed(env, s);
}

JNIEXPORT void FN(tensorCopyToBuffer)(JNIEnv *env, jclass c, jlong h, jobject buf, jlong offset, jlong nbytes) {
    (void)c;
    char *base = (*env)->GetDirectBufferAddress(env, buf);
    if (base == NULL) {
        throw_java(env, "java/lang/IllegalArgumentException", "not a direct ByteBuffer");
        return;
    }
    failed(env, ds_tensor_copy_to(H(DsTensor, h), base + offset, (size_t)nbytes));
}

JNIEXPORT jlongArray FN(tensorShape)(JNIEnv *env, jclass c, jlong h) {
    (void)c;
    size_t ndim = 0;
    if (failed(env, ds_tensor_ndim(H(DsTensor, h), &ndim))) return NULL;
    int64_t dims[64];
    if (ndim > 64) {
        throw_java(env, "java/lang/IllegalStateException", "tensor rank above 64");
        return NULL;
    }
    if (failed(env, ds_tensor_shape(H(DsTensor, h), dims, 64))) return NULL;
    jlongArray out = (*env)->NewLongArray(env, (jsize)ndim);
    if (out != NULL) (*env)->SetLongArrayRegion(env, out, 0, (jsize)ndim, (const jlong *)dims);
    return out;
}

JNIEXPORT jint FN(tensorDtype)(JNIEnv *env, jclass c, jlong h) {
    (void)c;
    DsDtype d = 0;
    failed(env, ds_tensor_dtype(H(DsTensor, h), &d));
    return d;
}

JNIEXPORT jlong FN(tensorNumel)(JNIEnv *env, jclass c, jlong h) {
    (void)c;
    int64_t n = 0;
    failed(env, ds_tensor_numel(H(DsTensor, h), &n));
    return n;
}

JNIEXPORT jlong FN(tensorSlice)(JNIEnv *env, jclass c, jlong h, jlong dim, jlong start, jlong end, jlong step) {
    (void)c;
    DsTensor *t = NULL;
    return failed(env, ds_tensor_slice(H(DsTensor, h), dim, start, end, step, &t)) ? 0 : J(t);
}

JNIEXPORT void FN(tensorFree)(JNIEnv *env, jclass c, jlong h) {
    (void)env, (void)c;
    (void)ds_tensor_free(H(DsTensor, h));
}

/* ---- attributes ---- */

JNIEXPORT jlong FN(attrsCreate)(JNIEnv *env, jclass c) {
    (void)c;
    DsAttrs *a = NULL;
    return failed(env, ds_attrs_create(&a)) ? 0 : J(a);
}

JNIEXPORT void FN(attrsFree)(JNIEnv *env, jclass c, jlong h) {
    (void)env, (void)c;
    (void)ds_attrs_free(H(DsAttrs, h));
}

JNIEXPORT void FN(attrsSetInt)(JNIEnv *env, jclass c, jlong h, jbyteArray name, jlong v) {
    (void)c;
    Bytes n;
    if (!bytes_get(env, name, &n)) return;
    DsStatus s = ds_attrs_set_int(H(DsAttrs, h), n.data, v);
    bytes_free(&n);
    failed(env, s);
}

JNIEXPORT void FN(attrsSetFloat)(JNIEnv *env, jclass c, jlong h, jbyteArray name, jdouble v) {
    (void)c;
    Bytes n;
    if (!bytes_get(env, name, &n)) return;
    DsStatus s = ds_attrs_set_float(H(DsAttrs, h), n.data, v);
    bytes_free(&n);
    failed(env, s);
}

JNIEXPORT void FN(attrsSetBool)(JNIEnv *env, jclass c, jlong h, jbyteArray name, jboolean v) {
    (void)c;
    Bytes n;
    if (!bytes_get(env, name, &n)) return;
    DsStatus s = ds_attrs_set_bool(H(DsAttrs, h), n.data, v == JNI_TRUE);
    bytes_free(&n);
    failed(env, s);
}

JNIEXPORT void FN(attrsSetInts)(JNIEnv *env, jclass c, jlong h, jbyteArray name, jlongArray values) {
    (void)c;
    Bytes n;
    Longs v;
    if (!bytes_get(env, name, &n)) return;
    if (!longs_get(env, values, &v)) {
        bytes_free(&n);
        return;
    }
    DsStatus s = ds_attrs_set_ints(H(DsAttrs, h), n.data, v.data, v.len);
    longs_free(&v);
    bytes_free(&n);
    failed(env, s);
}

JNIEXPORT void FN(attrsSetString)(JNIEnv *env, jclass c, jlong h, jbyteArray name, jbyteArray value) {
    (void)c;
    Bytes n, v;
    if (!bytes_get(env, name, &n)) return;
    if (!bytes_get(env, value, &v)) {
        bytes_free(&n);
        return;
    }
    DsStatus s = ds_attrs_set_string(H(DsAttrs, h), n.data, v.data);
    bytes_free(&v);
    bytes_free(&n);
    failed(env, s);
}

/* ---- graphs ---- */

JNIEXPORT jlong FN(modelBuild)(JNIEnv *env, jclass c, jbyteArray name, jlong attrs) {
    (void)c;
    Bytes n;
    if (!bytes_get(env, name, &n)) return 0;
    DsGraph *g = NULL;
    DsStatus s = ds_model_build(n.data, H(DsAttrs, attrs), &g);
    bytes_free(&n);
    return failed(env, s) ? 0 : J(g);
}

JNIEXPORT jlong FN(graphLoad)(JNIEnv *env, jclass c, jbyteArray path) {
    (void)c;
    Bytes p;
    if (!bytes_get(env, path, &p)) return 0;
    DsGraph *g = NULL;
    DsStatus s = ds_graph_load(p.data, &g);
    bytes_free(&p);
    return failed(env, s) ? 0 : J(g);
}

JNIEXPORT void FN(graphSave)(JNIEnv *env, jclass c, jlong h, jbyteArray path) {
    (void)c;
    Bytes p;
    if (!bytes_get(env, path, &p)) return;
    DsStatus s = ds_graph_save(H(DsGraph, h), p.data);
    bytes_free(&p);
    failed(env, s);
}

JNIEXPORT jlong FN(graphNumOps)(JNIEnv *env, jclass c, jlong h) {
    (void)c;
    size_t n = 0;
    failed(env, ds_graph_num_ops(H(DsGraph, h), &n));
    return (jlong)n;
}

JNIEXPORT void FN(graphFree)(JNIEnv *env, jclass c, jlong h) {
    (void)env, (void)c;
    (void)ds_graph_free(H(DsGraph, h));
}

/* ---- executors ---- */

JNIEXPORT jlong FN(execOptionsNew)(JNIEnv *env, jclass c) {
    (void)c;
    DsExecOptions *o = NULL;
    return failed(env, ds_exec_options_new(&o)) ? 0 : J(o);
}

JNIEXPORT void FN(execOptionsSetOptLevel)(JNIEnv *env, jclass c, jlong h, jint level) {
    (void)c;
    failed(env, ds_exec_options_set_opt_level(H(DsExecOptions, h), level));
}

JNIEXPORT void FN(execOptionsSetInterOpThreads)(JNIEnv *env, jclass c, jlong h, jint n) {
    (void)c;
    failed(env, ds_exec_options_set_inter_op_threads(H(DsExecOptions, h), n));
}

JNIEXPORT void FN(execOptionsFree)(JNIEnv *env, jclass c, jlong h) {
    (void)env, (void)c;
    (void)ds_exec_options_free(H(DsExecOptions, h));
}

JNIEXPORT jlong FN(executorNew)(JNIEnv *env, jclass c, jlong graph, jlong options) {
    (void)c;
    DsExecutor *ex = NULL;
    return failed(env, ds_executor_new(H(DsGraph, graph), H(DsExecOptions, options), &ex)) ? 0 : J(ex);
}

JNIEXPORT void FN(executorFree)(JNIEnv *env, jclass c, jlong h) {
    (void)env, (void)c;
    (void)ds_executor_free(H(DsExecutor, h));
}

JNIEXPORT jlongArray FN(executorRun)(JNIEnv *env, jclass c, jlong h, jbyteArray jfeed_names, jint n_feeds,
                                     jlongArray jfeeds, jbyteArray jfetch_names, jint n_fetches, jlong cancel) {
    (void)c;
    Names feed_names, fetch_names;
    Longs feeds;
    Outs outs;
    jlongArray result = NULL;
    if (!names_get(env, jfeed_names, n_feeds, &feed_names)) return NULL;
    if (!names_get(env, jfetch_names, n_fetches, &fetch_names)) goto free_feed_names;
    if (!longs_get(env, jfeeds, &feeds)) goto free_fetch_names;
    if (!outs_get(env, (size_t)n_fetches, &outs)) goto free_feeds;
    DsStatus s = cancel == 0
                     ? ds_executor_run(H(DsExecutor, h), feed_names.ptrs, (const DsTensor *const *)feeds.data,
                                       (size_t)n_feeds, fetch_names.ptrs, (size_t)n_fetches, outs.data)
                     : ds_executor_run_with(H(DsExecutor, h), feed_names.ptrs,
                                            (const DsTensor *const *)feeds.data, (size_t)n_feeds,
                                            fetch_names.ptrs, (size_t)n_fetches, H(DsCancelToken, cancel),
                                            NULL, outs.data);
    if (!failed(env, s)) result = handles_to_java(env, outs.data, (size_t)n_fetches);
    outs_free(&outs);
free_feeds:
    longs_free(&feeds);
free_fetch_names:
    names_free(&fetch_names);
free_feed_names:
    names_free(&feed_names);
    return result;
}

/* ---- cancel tokens ---- */

JNIEXPORT jlong FN(cancelTokenNew)(JNIEnv *env, jclass c) {
    (void)c;
    DsCancelToken *t = NULL;
    return failed(env, ds_cancel_token_new(&t)) ? 0 : J(t);
}

JNIEXPORT void FN(cancelTokenCancel)(JNIEnv *env, jclass c, jlong h) {
    (void)c;
    failed(env, ds_cancel_token_cancel(H(DsCancelToken, h)));
}

JNIEXPORT void FN(cancelTokenReset)(JNIEnv *env, jclass c, jlong h) {
    (void)c;
    failed(env, ds_cancel_token_reset(H(DsCancelToken, h)));
}

JNIEXPORT jboolean FN(cancelTokenIsCancelled)(JNIEnv *env, jclass c, jlong h) {
    (void)c;
    bool v = false;
    failed(env, ds_cancel_token_is_cancelled(H(DsCancelToken, h), &v));
    return v ? JNI_TRUE : JNI_FALSE;
}

JNIEXPORT void FN(cancelTokenFree)(JNIEnv *env, jclass c, jlong h) {
    (void)env, (void)c;
    (void)ds_cancel_token_free(H(DsCancelToken, h));
}

/* ---- trainer options ---- */

JNIEXPORT jlong FN(trainerOptionsNew)(JNIEnv *env, jclass c) {
    (void)c;
    DsTrainerOptions *o = NULL;
    return failed(env, ds_trainer_options_new(&o)) ? 0 : J(o);
}

JNIEXPORT void FN(trainerOptionsFree)(JNIEnv *env, jclass c, jlong h) {
    (void)env, (void)c;
    (void)ds_trainer_options_free(H(DsTrainerOptions, h));
}

/* The three setters taking (name, attrs) differ only in the C function. */
typedef DsStatus (*NamedSetter)(DsTrainerOptions *, const char *, const DsAttrs *);

static void set_named(JNIEnv *env, NamedSetter fn, jlong h, jbyteArray name, jlong attrs) {
    Bytes n;
    if (!bytes_get(env, name, &n)) return;
    DsStatus s = fn(H(DsTrainerOptions, h), n.data, H(DsAttrs, attrs));
    bytes_free(&n);
    failed(env, s);
}

JNIEXPORT void FN(trainerOptionsSetOptimizer)(JNIEnv *env, jclass c, jlong h, jbyteArray name, jlong attrs) {
    (void)c;
    set_named(env, ds_trainer_options_set_optimizer, h, name, attrs);
}

JNIEXPORT void FN(trainerOptionsSetSparseOptimizer)(JNIEnv *env, jclass c, jlong h, jbyteArray name,
                                                    jlong attrs) {
    (void)c;
    set_named(env, ds_trainer_options_set_sparse_optimizer, h, name, attrs);
}

JNIEXPORT void FN(trainerOptionsSetSchedule)(JNIEnv *env, jclass c, jlong h, jbyteArray name, jlong attrs) {
    (void)c;
    set_named(env, ds_trainer_options_set_schedule, h, name, attrs);
}

JNIEXPORT void FN(trainerOptionsSetLr)(JNIEnv *env, jclass c, jlong h, jdouble lr) {
    (void)c;
    failed(env, ds_trainer_options_set_lr(H(DsTrainerOptions, h), lr));
}

JNIEXPORT void FN(trainerOptionsSetSparseLr)(JNIEnv *env, jclass c, jlong h, jdouble lr) {
    (void)c;
    failed(env, ds_trainer_options_set_sparse_lr(H(DsTrainerOptions, h), lr));
}

JNIEXPORT void FN(trainerOptionsSetClipNorm)(JNIEnv *env, jclass c, jlong h, jdouble max_norm) {
    (void)c;
    failed(env, ds_trainer_options_set_clip_norm(H(DsTrainerOptions, h), max_norm));
}

JNIEXPORT void FN(trainerOptionsSetCheckpoints)(JNIEnv *env, jclass c, jlong h, jbyteArray dir, jlong every,
                                                jlong keep) {
    (void)c;
    Bytes d;
    if (!bytes_get(env, dir, &d)) return;
    DsStatus s = ds_trainer_options_set_checkpoints(H(DsTrainerOptions, h), d.data, every, keep);
    bytes_free(&d);
    failed(env, s);
}

JNIEXPORT void FN(trainerOptionsSetExec)(JNIEnv *env, jclass c, jlong h, jlong exec) {
    (void)c;
    failed(env, ds_trainer_options_set_exec(H(DsTrainerOptions, h), H(DsExecOptions, exec)));
}

JNIEXPORT void FN(trainerOptionsSetSeed)(JNIEnv *env, jclass c, jlong h, jlong seed) {
    (void)c;
    failed(env, ds_trainer_options_set_seed(H(DsTrainerOptions, h), (uint64_t)seed));
}

/* ---- trainers ---- */

JNIEXPORT jlong FN(trainerNew)(JNIEnv *env, jclass c, jlong graph, jbyteArray loss, jlong options) {
    (void)c;
    Bytes l;
    if (!bytes_get(env, loss, &l)) return 0;
    DsTrainer *t = NULL;
    DsStatus s = ds_trainer_new(H(DsGraph, graph), l.data, H(DsTrainerOptions, options), &t);
    bytes_free(&l);
    return failed(env, s) ? 0 : J(t);
}

JNIEXPORT void FN(trainerFree)(JNIEnv *env, jclass c, jlong h) {
    (void)env, (void)c;
    (void)ds_trainer_free(H(DsTrainer, h));
}

JNIEXPORT jdouble FN(trainerStep)(JNIEnv *env, jclass c, jlong h, jbyteArray jnames, jint n, jlongArray jfeeds) {
    (void)c;
    Names names;
    Longs feeds;
    double loss = 0;
    if (!names_get(env, jnames, n, &names)) return 0;
    if (longs_get(env, jfeeds, &feeds)) {
        failed(env, ds_trainer_step(H(DsTrainer, h), names.ptrs, (const DsTensor *const *)feeds.data, (size_t)n,
                                    &loss));
        longs_free(&feeds);
    }
    names_free(&names);
    return loss;
}

JNIEXPORT jlongArray FN(trainerEvaluate)(JNIEnv *env, jclass c, jlong h, jbyteArray jfeed_names, jint n_feeds,
                                         jlongArray jfeeds, jbyteArray jfetch_names, jint n_fetches) {
    (void)c;
    Names feed_names, fetch_names;
    Longs feeds;
    Outs outs;
    jlongArray result = NULL;
    if (!names_get(env, jfeed_names, n_feeds, &feed_names)) return NULL;
    if (!names_get(env, jfetch_names, n_fetches, &fetch_names)) goto free_feed_names;
    if (!longs_get(env, jfeeds, &feeds)) goto free_fetch_names;
    if (!outs_get(env, (size_t)n_fetches, &outs)) goto free_feeds;
    DsStatus s = ds_trainer_evaluate(H(DsTrainer, h), feed_names.ptrs, (const DsTensor *const *)feeds.data,
                                     (size_t)n_feeds, fetch_names.ptrs, (size_t)n_fetches, outs.data);
    if (!failed(env, s)) result = handles_to_java(env, outs.data, (size_t)n_fetches);
    outs_free(&outs);
free_feeds:
    longs_free(&feeds);
free_fetch_names:
    names_free(&fetch_names);
free_feed_names:
    names_free(&feed_names);
    return result;
}

JNIEXPORT jlong FN(trainerExport)(JNIEnv *env, jclass c, jlong h, jbyteArray joutputs, jint n) {
    (void)c;
    Names outputs;
    if (!names_get(env, joutputs, n, &outputs)) return 0;
    DsGraph *g = NULL;
    DsStatus s = ds_trainer_export(H(DsTrainer, h), outputs.ptrs, (size_t)n, &g);
    names_free(&outputs);
    return failed(env, s) ? 0 : J(g);
}

JNIEXPORT void FN(trainerSaveCheckpoint)(JNIEnv *env, jclass c, jlong h) {
    (void)c;
    failed(env, ds_trainer_save_checkpoint(H(DsTrainer, h)));
}

JNIEXPORT jlong FN(trainerStepCount)(JNIEnv *env, jclass c, jlong h) {
    (void)c;
    uint64_t v = 0;
    failed(env, ds_trainer_step_count(H(DsTrainer, h), &v));
    return (jlong)v;
}

JNIEXPORT jlong FN(trainerDataCursor)(JNIEnv *env, jclass c, jlong h) {
    (void)c;
    uint64_t v = 0;
    failed(env, ds_trainer_data_cursor(H(DsTrainer, h), &v));
    return (jlong)v;
}

JNIEXPORT void FN(trainerSetDataCursor)(JNIEnv *env, jclass c, jlong h, jlong cursor) {
    (void)c;
    failed(env, ds_trainer_set_data_cursor(H(DsTrainer, h), (uint64_t)cursor));
}

JNIEXPORT jlong FN(trainerParam)(JNIEnv *env, jclass c, jlong h, jbyteArray name) {
    (void)c;
    Bytes n;
    if (!bytes_get(env, name, &n)) return 0;
    DsTensor *t = NULL;
    DsStatus s = ds_trainer_param(H(DsTrainer, h), n.data, &t);
    bytes_free(&n);
    return failed(env, s) ? 0 : J(t);
}

/* ---- CTR generator ---- */

JNIEXPORT jlong FN(ctrGeneratorNew)(JNIEnv *env, jclass c, jlongArray jvocab, jdouble zipf, jlong seed) {
    (void)c;
    DsCtrConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.struct_size = sizeof cfg;
    if (failed(env, ds_ctr_config_init(&cfg))) return 0;
    if (jvocab != NULL) {
        /* Not the engine's check: the fixed-size C array cannot take another length. */
        if ((*env)->GetArrayLength(env, jvocab) != DS_CTR_NUM_FIELDS) {
            throw_java(env, "java/lang/IllegalArgumentException", "vocabSizes must have DS_CTR_NUM_FIELDS (26) entries");
            return 0;
        }
        (*env)->GetLongArrayRegion(env, jvocab, 0, DS_CTR_NUM_FIELDS, (jlong *)cfg.vocab_sizes);
    }
    if (zipf == zipf) cfg.zipf_exponent = zipf; /* NaN keeps the default */
    DsCtrGenerator *g = NULL;
    return failed(env, ds_ctr_generator_new(&cfg, (uint64_t)seed, &g)) ? 0 : J(g);
}

JNIEXPORT jlongArray FN(ctrGeneratorNext)(JNIEnv *env, jclass c, jlong h, jlong n, jboolean with_probs) {
    (void)c;
    DsTensor *t[4] = {NULL, NULL, NULL, NULL};
    DsStatus s = ds_ctr_generator_next(H(DsCtrGenerator, h), n, &t[0], &t[1], &t[2], with_probs ? &t[3] : NULL);
    if (failed(env, s)) return NULL;
    return handles_to_java(env, t, with_probs ? 4 : 3);
}

JNIEXPORT jlong FN(ctrGeneratorCursor)(JNIEnv *env, jclass c, jlong h) {
    (void)c;
    uint64_t v = 0;
    failed(env, ds_ctr_generator_cursor(H(DsCtrGenerator, h), &v));
    return (jlong)v;
}

JNIEXPORT void FN(ctrGeneratorSeek)(JNIEnv *env, jclass c, jlong h, jlong cursor) {
    (void)c;
    failed(env, ds_ctr_generator_seek(H(DsCtrGenerator, h), (uint64_t)cursor));
}

JNIEXPORT void FN(ctrGeneratorFree)(JNIEnv *env, jclass c, jlong h) {
    (void)env, (void)c;
    (void)ds_ctr_generator_free(H(DsCtrGenerator, h));
}

/* ---- metrics ---- */

JNIEXPORT jdouble FN(metricAuc)(JNIEnv *env, jclass c, jlong scores, jlong labels) {
    (void)c;
    double v = 0;
    failed(env, ds_metric_auc(H(DsTensor, scores), H(DsTensor, labels), &v));
    return v;
}

JNIEXPORT jdouble FN(metricLogLoss)(JNIEnv *env, jclass c, jlong probs, jlong labels) {
    (void)c;
    double v = 0;
    failed(env, ds_metric_log_loss(H(DsTensor, probs), H(DsTensor, labels), &v));
    return v;
}
