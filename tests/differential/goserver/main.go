// The second reference of tests/differential/run.py: Go's net/http server, which parses
// requests with its own code (net/textproto, net/url), independent of h11 and of tinyapi.
// It listens on a loopback port the kernel picks, prints "listening on ADDR", and answers every
// request it parses with 200; any other status is the server refusing the request.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	os.Stdout.Sync()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(200)
		w.Write([]byte("ok"))
	})
	fmt.Fprintln(os.Stderr, http.Serve(ln, handler))
	os.Exit(1)
}
