module tinyapi-go

go 1.19
