package deepseek

/*
#include "shim.h"
*/
import "C"

import (
	"strings"
	"sync"
	"unsafe"
)

// callScratch holds what one run or training call hands to C: the feed and fetch names
// packed for the shim, and slots for the feeds' C handles, the outputs and the error
// message. Calls take one from a pool instead of allocating each piece: on a batch-1
// predict the Go side's allocations are a visible share of the binding's cost over C's.
type callScratch struct {
	feedNames, fetchNames []byte
	slots                 *cSlots
	feeds, out            []*C.DsTensor // views of slots' C memory
	msg                   **C.char      // a slot too
}

// cSlots is a block of pointer-sized slots in C memory, grown on demand. The slots are C
// memory, not Go's, because cgo's pointer check scans Go memory that a pointer-to-pointer
// argument reaches on every call (a measurable share of a batch-1 predict), and lets
// C memory through untouched.
type cSlots struct {
	base unsafe.Pointer
	n    int
}

// reserve returns the block with room for at least n slots (their contents undefined).
func (c *cSlots) reserve(n int) unsafe.Pointer {
	if n > c.n {
		C.free(c.base)
		c.base = C.malloc(C.size_t(uintptr(n) * unsafe.Sizeof(uintptr(0)))) // cgo's malloc never returns nil
		c.n = n
	}
	return c.base
}

// freeSlots releases the block of a scratch the pool let go.
func freeSlots(c *cSlots) { C.free(c.base) }

var scratchPool = sync.Pool{New: func() any {
	s := &callScratch{slots: new(cSlots)}
	whenCollected(s, freeSlots, s.slots) // sync.Pool drops idle scratches at a collection
	return s
}}

// getScratch takes a scratch from the pool; give it back with put once C has returned.
func getScratch() *callScratch { return scratchPool.Get().(*callScratch) }

// put returns s to the pool.
func (s *callScratch) put() { scratchPool.Put(s) }

// bind packs the feed and fetch names, lays out the slots (the message, one per feed,
// one per fetch plus one so the output array is never empty) and acquires the feeds'
// tensors (a call in flight on each, so Close waits for it). On success the caller
// releases them with releaseFeeds after the C call; on failure nothing stays acquired. A
// closed tensor fails before C sees anything.
func (s *callScratch) bind(feeds []Feed, fetches []string) error {
	names := s.feedNames[:0]
	for _, f := range feeds {
		var err error
		if names, err = appendName(names, f.Name); err != nil {
			return err
		}
	}
	s.feedNames = append(names, 0) // never empty, so the blob's address is valid
	names, err := appendNames(s.fetchNames[:0], fetches)
	if err != nil {
		return err
	}
	s.fetchNames = names
	nf, no := len(feeds), len(fetches)
	base := s.slots.reserve(1 + nf + no + 1)
	s.msg = (**C.char)(base)
	*s.msg = nil
	all := unsafe.Slice((**C.DsTensor)(unsafe.Add(base, unsafe.Sizeof(uintptr(0)))), nf+no+1)
	s.out = all[nf:]
	clear(s.out)
	// Capacity nf: acquireEach appends in place, inside the C block.
	s.feeds, err = acquireEach(all[:0:nf], nf, func(i int) *Tensor { return feeds[i].Tensor })
	return err
}

// releaseFeeds ends the calls bindFeeds registered on the feeds' tensors.
func releaseFeeds(feeds []Feed) {
	for _, f := range feeds {
		f.Tensor.h.release()
	}
}

// feedBlob, fetchBlob, feedPtrs, outPtr and msgPtr are the C arguments of the bound call.
func (s *callScratch) feedBlob() *C.char  { return (*C.char)(unsafe.Pointer(&s.feedNames[0])) }
func (s *callScratch) fetchBlob() *C.char { return (*C.char)(unsafe.Pointer(&s.fetchNames[0])) }
func (s *callScratch) outPtr() **C.DsTensor {
	return &s.out[0]
}
func (s *callScratch) msgPtr() **C.char { return s.msg }
func (s *callScratch) feedPtrs() **C.DsTensor {
	if len(s.feeds) == 0 {
		return nil
	}
	return &s.feeds[0]
}

// appendNames appends each name with its NUL, then one more NUL so the blob is never
// empty (its address is always valid to pass).
func appendNames(b []byte, names []string) ([]byte, error) {
	for _, name := range names {
		var err error
		if b, err = appendName(b, name); err != nil {
			return b, err
		}
	}
	return append(b, 0), nil
}

// appendName appends name and its terminating NUL to b for the shims to split; a name
// holding a NUL is refused.
func appendName(b []byte, name string) ([]byte, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return b, argError("name %q contains a NUL byte", name)
	}
	return append(append(b, name...), 0), nil
}
