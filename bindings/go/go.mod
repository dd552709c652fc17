module github.com/libdeepseek/deepseek-go

go 1.22
