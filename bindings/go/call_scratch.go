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
// packed for the shim, the feeds' C handles, the output slots and the error message. Calls
// take one from a pool instead of allocating each piece: on a batch-1 predict the Go
// side's allocations are a visible share of the binding's cost over C's. Every buffer
// holds C pointers or bytes only, so cgo lets C read and write it during the call.
type callScratch struct {
	feedNames, fetchNames []byte
	feeds, out            []*C.DsTensor
	msg                   *C.char
}

var scratchPool = sync.Pool{New: func() any { return new(callScratch) }}

// getScratch takes a scratch from the pool; give it back with put once C has returned.
func getScratch() *callScratch { return scratchPool.Get().(*callScratch) }

// put clears the handles the call saw (so the pool keeps no stale pointers) and returns s.
func (s *callScratch) put() {
	clear(s.feeds)
	clear(s.out)
	s.msg = nil
	scratchPool.Put(s)
}

// bindFeeds packs the feeds' names and acquires their tensors (a call in flight on each,
// so Close waits for it). On success the caller releases them with releaseFeeds after the
// C call; on failure nothing stays acquired. A closed tensor fails before C sees anything.
func (s *callScratch) bindFeeds(feeds []Feed) error {
	names := s.feedNames[:0]
	for _, f := range feeds {
		var err error
		if names, err = appendName(names, f.Name); err != nil {
			return err
		}
	}
	s.feedNames = append(names, 0) // never empty, so the blob's address is valid
	var err error
	s.feeds, err = acquireEach(s.feeds[:0], len(feeds), func(i int) *Tensor { return feeds[i].Tensor })
	return err
}

// releaseFeeds ends the calls bindFeeds registered on the feeds' tensors.
func releaseFeeds(feeds []Feed) {
	for _, f := range feeds {
		f.Tensor.h.release()
	}
}

// bindFetches packs the fetch names and makes one output slot per fetch.
func (s *callScratch) bindFetches(fetches []string) error {
	names, err := appendNames(s.fetchNames[:0], fetches)
	if err != nil {
		return err
	}
	s.fetchNames = names
	if cap(s.out) < len(fetches)+1 {
		s.out = make([]*C.DsTensor, len(fetches)+1) // +1: never empty, so &out[0] is valid
	}
	s.out = s.out[:len(fetches)+1]
	clear(s.out)
	return nil
}

// feedBlob, fetchBlob, feedPtrs and outPtr are the C arguments of the bound call.
func (s *callScratch) feedBlob() *C.char  { return (*C.char)(unsafe.Pointer(&s.feedNames[0])) }
func (s *callScratch) fetchBlob() *C.char { return (*C.char)(unsafe.Pointer(&s.fetchNames[0])) }
func (s *callScratch) outPtr() **C.DsTensor {
	return &s.out[0]
}
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
