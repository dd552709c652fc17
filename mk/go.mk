# The Go binding (bindings/go) and its example (examples/go): go vet, the test suite under
# the race detector, then the example. Offline: no module is ever downloaded (the binding
# uses the standard library only; the example reaches it through a replace directive).
GO := $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
GO_ENV := GOTOOLCHAIN=local GOPROXY=off CGO_ENABLED=1

.PHONY: go-tests go-bench

go-tests: lib setup
	cd bindings/go && $(GO_ENV) $(GO) vet ./...
	cd bindings/go && $(GO_ENV) $(GO) test -race -count=1 ./...
	cd examples/go && $(GO_ENV) $(GO) vet ./...
	@mkdir -p build/go
	cd examples/go && $(GO_ENV) $(GO) build -o $(CURDIR)/build/go/ctr_example ./ctr_example
	build/go/ctr_example build/go/ctr-example

# Per-call cost of a batch-1 predict and bulk copy throughput (not part of make test).
go-bench: lib setup
	cd bindings/go && $(GO_ENV) $(GO) test -run '^$$' -bench . -benchtime 2s -count 5

BINDING_TESTS += go-tests
