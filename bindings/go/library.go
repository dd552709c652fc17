package deepseek

/*
#include "shim.h"
*/
import "C"

import (
	"strings"
	"sync"
)

var (
	abiOnce sync.Once
	abiErr  error
)

// ready checks once, before the first call that creates an object, that the loaded library
// has the ABI version this package was compiled against (its header's DS_ABI_VERSION).
func ready() error {
	abiOnce.Do(func() { abiErr = checkABI(C.DS_ABI_VERSION) })
	return abiErr
}

// checkABI asks the library to accept ABI version expected; its error names both versions.
func checkABI(expected uint32) error {
	var msg *C.char
	return statusError(C.dsgo_check_abi(C.uint32_t(expected), &msg), msg)
}

// ABIVersion returns the loaded library's ABI version.
func ABIVersion() uint32 { return uint32(C.ds_abi_version()) }

// HeaderABIVersion returns the DS_ABI_VERSION this package was compiled against.
func HeaderABIVersion() uint32 { return uint32(C.DS_ABI_VERSION) }

// Version returns the library version, e.g. "0.1.0".
func Version() string { return C.GoString(C.ds_version_string()) }

// LiveObjects returns the engine's count of live handles of every kind (0 after full teardown).
func LiveObjects() uint64 { return uint64(C.ds_live_objects()) }

// SetNumThreads sizes the engine's thread pool (1 = run on the calling thread).
func SetNumThreads(n int) error {
	if err := ready(); err != nil {
		return err
	}
	var msg *C.char
	return statusError(C.dsgo_set_num_threads(C.int32_t(n), &msg), msg)
}

// NumThreads returns the size of the engine's thread pool.
func NumThreads() (int, error) {
	if err := ready(); err != nil {
		return 0, err
	}
	var n C.int32_t
	var msg *C.char
	err := statusError(C.dsgo_get_num_threads(&n, &msg), msg)
	return int(n), err
}

// cString returns s NUL-terminated in Go memory, to pass to C for one call (C copies what
// it keeps). A NUL inside s would silently cut the name short in C, so it is refused.
func cString(s string) ([]byte, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, argError("string %q contains a NUL byte", s)
	}
	b := make([]byte, len(s)+1)
	copy(b, s)
	return b, nil
}

// nameBlob packs names as consecutive NUL-terminated strings for the shims to split: one
// Go buffer holding no Go pointers, which cgo lets C read for the duration of a call.
func nameBlob(names []string) ([]byte, error) {
	n := 1
	for _, s := range names {
		n += len(s) + 1
	}
	return appendNames(make([]byte, 0, n), names)
}
