// Package goid stands in for github.com/choleraehyq/pid when Dapr's daprd is built for
// the mixed-fleet tests: that module's amd64 assembly no longer assembles with the Go
// on our machines, and the only caller in Dapr's build (kitex, through the dubbo
// binding) uses GetPid as a shard index. Plain Go, same API.
package goid

import (
	"bytes"
	"runtime"
	"strconv"
	"sync/atomic"
)

var next atomic.Uint64

// GetPid returns a small non-negative number that spreads callers over shards, which is
// all its callers need of the processor id the original returned.
func GetPid() int {
	return int(next.Add(1) % uint64(runtime.GOMAXPROCS(0)))
}

// Get returns the calling goroutine's id, read from its stack header.
func Get() int64 {
	var buf [64]byte
	return ExtractGID(buf[:runtime.Stack(buf[:], false)])
}

// ExtractGID reads the id from a stack trace that starts "goroutine N [".
func ExtractGID(s []byte) int64 {
	s = bytes.TrimPrefix(s, []byte("goroutine "))
	if i := bytes.IndexByte(s, ' '); i > 0 {
		s = s[:i]
	}
	id, _ := strconv.ParseInt(string(s), 10, 64)
	return id
}
