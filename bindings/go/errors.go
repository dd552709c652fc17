package deepseek

/*
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// Status is a DS_STATUS_* code of the C ABI; 0 (StatusOK) is success.
type Status int32

// String returns the C name of the code, e.g. "DS_STATUS_SHAPE_MISMATCH".
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("DS_STATUS_%d", int32(s))
}

// Error is a failure reported by the engine (or, for closed objects and Go-side argument
// problems such as a NUL inside a name, by the binding): its code and its message.
type Error struct {
	// Code is the engine's status code.
	Code Status
	// Msg is the engine's message, unchanged (empty in the Err* sentinels).
	Msg string

	cause  error // what errors.Unwrap returns: ctx.Err() for a run stopped by its context
	closed bool  // set on use-after-Close errors, so that they match ErrClosed
}

// Error formats the code and the message.
func (e *Error) Error() string {
	if e.Msg == "" {
		return "deepseek: " + e.Code.String()
	}
	return "deepseek: " + e.Code.String() + ": " + e.Msg
}

// Is makes errors.Is(err, ErrShapeMismatch) match every *Error with that code (a target
// without a message is a sentinel), and errors.Is(err, ErrClosed) match use-after-Close.
func (e *Error) Is(target error) bool {
	if target == ErrClosed {
		return e.closed
	}
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Code == e.Code
}

// Unwrap returns the context error of a run cancelled through its context, else nil.
func (e *Error) Unwrap() error { return e.cause }

// ErrClosed matches errors from methods called on an object after its Close. Those errors
// are *Error values with Code StatusInvalidHandle, so they match ErrInvalidHandle too.
var ErrClosed = errors.New("deepseek: object is closed")

func closedError(kind string) error {
	return &Error{Code: StatusInvalidHandle, Msg: "deepseek-go: " + kind + " used after Close (or nil)", closed: true}
}

// statusError turns a shim's status and copied message into an error (nil for success)
// and frees the message.
func statusError(s C.DsStatus, msg *C.char) error {
	if s == C.DS_STATUS_OK {
		return nil
	}
	e := &Error{Code: Status(s)}
	if msg != nil {
		e.Msg = C.GoString(msg)
		C.free(unsafe.Pointer(msg))
	}
	return e
}

// argError reports a Go value that cannot cross into C (the engine never sees it).
func argError(format string, args ...any) error {
	return &Error{Code: StatusInvalidArgument, Msg: "deepseek-go: " + fmt.Sprintf(format, args...)}
}
