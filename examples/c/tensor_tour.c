/*
 * A tour of libdeepseek's tensors through the C ABI: create, view without copying, cast,
 * and read back. Built and run by `make demo`.
 */
#include <stdio.h>
#include <stdlib.h>

#include "deepseek.h"

/* Prints the failing call and the library's message, then exits. */
#define TRY(call)                                                                        \
    do {                                                                                 \
        DsStatus s_ = (call);                                                            \
        if (s_ != DS_STATUS_OK) {                                                        \
            fprintf(stderr, "%s failed: %s: %s\n", #call, ds_status_name(s_), ds_last_error()); \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

static void show(const char *label, const DsTensor *t) {
    char text[4096];
    size_t needed = 0;
    TRY(ds_tensor_to_string(t, text, sizeof text, &needed));
    int64_t strides[8];
    size_t ndim = 0;
    TRY(ds_tensor_ndim(t, &ndim));
    TRY(ds_tensor_strides(t, strides, 8));
    bool contiguous = false;
    TRY(ds_tensor_is_contiguous(t, &contiguous));
    printf("%s\n  strides [", label);
    for (size_t i = 0; i < ndim; i++) printf("%s%lld", i ? ", " : "", (long long)strides[i]);
    printf("]%s\n  %s\n\n", contiguous ? "" : " (a strided view)", text);
}

int main(void) {
    TRY(ds_check_abi(DS_ABI_VERSION));
    int32_t threads = 0, gpus = 0;
    TRY(ds_get_num_threads(&threads));
    TRY(ds_cuda_device_count(&gpus));
    printf("libdeepseek %s (ABI %u): %d threads, %d CUDA device(s)\n\n", ds_version_string(), ds_abi_version(), threads, gpus);

    float data[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    int64_t dims[2] = {3, 4};
    DsTensor *m = NULL, *t = NULL, *s = NULL, *e = NULL, *h = NULL, *c = NULL, *r = NULL, *col = NULL;
    TRY(ds_tensor_from_data(DS_DTYPE_F32, dims, 2, data, sizeof data, &m));
    show("m = from_data(3x4 f32)", m);

    uint64_t bytes_before = 0, bytes_after = 0;
    TRY(ds_cpu_allocator_stats(&bytes_before, NULL, NULL, NULL));
    TRY(ds_tensor_transpose(m, 0, 1, &t));
    show("transpose(m): same storage, swapped strides", t);
    TRY(ds_tensor_slice(m, 1, 0, 4, 2, &s));
    show("m[:, 0:4:2]: a slice with step", s);
    int64_t wide[3] = {2, 3, 4};
    TRY(ds_tensor_slice(m, 1, 3, 4, 1, &col));
    TRY(ds_tensor_expand(col, wide, 3, &e));
    show("m[:, 3:4] expanded to 2x3x4: stride 0 repeats without copying", e);
    TRY(ds_cpu_allocator_stats(&bytes_after, NULL, NULL, NULL));
    printf("views allocated %llu bytes\n\n", (unsigned long long)(bytes_after - bytes_before));

    TRY(ds_tensor_contiguous(t, &c));
    show("contiguous(transpose(m)): now a packed copy", c);
    TRY(ds_tensor_cast(m, DS_DTYPE_F16, &h));
    show("cast(m, f16)", h);
    TRY(ds_tensor_rand_normal(DS_DTYPE_F32, dims, 2, 0.0, 1.0, 42, DS_DEVICE_CPU, 0, &r));
    show("rand_normal(3x4, seed 42): the same numbers on every machine", r);

    DsTensor *gpu = NULL;
    DsStatus st = ds_tensor_to_device(m, DS_DEVICE_CUDA, 0, &gpu);
    printf("to_device(m, cuda:0): %s%s%s\n", ds_status_name(st), st ? " - " : "", st ? ds_last_error() : "");
    TRY(ds_tensor_free(gpu));

    DsTensor *all[] = {m, t, s, e, h, c, r, col};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) TRY(ds_tensor_free(all[i]));
    printf("live handles after freeing: %llu\n", (unsigned long long)ds_live_objects());
    return 0;
}
