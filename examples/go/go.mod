module github.com/libdeepseek/deepseek-go/examples

go 1.22

require github.com/libdeepseek/deepseek-go v0.0.0

// The binding is used from this checkout (no network needed).
replace github.com/libdeepseek/deepseek-go => ../../bindings/go
