module tinyapi/differential/goserver

go 1.19
